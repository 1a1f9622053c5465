package daemon

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/idsync/idsync/internal/version"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/state"
)

// syncUserWait bounds how long POST /api/v1/sync/users/{userName} waits for its pass before
// answering 202 and leaving the pass queued.
const syncUserWait = 25 * time.Second

type statusBody struct {
	Version    string                 `json:"version"`
	Started    time.Time              `json:"started"`
	Uptime     string                 `json:"uptime"`
	ConfigFile string                 `json:"configFile"`
	Schedule   string                 `json:"schedule"`
	NextPass   time.Time              `json:"nextScheduledPass,omitzero"`
	Sources    []sourceStatus         `json:"sources"`
	Runner     reconcile.RunnerStatus `json:"runner"`
	Budget     *state.Budget          `json:"apiBudget,omitempty"`
}

type sourceStatus struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Push     bool   `json:"push"`
	Priority int    `json:"priority"`
}

func (d *Daemon) apiStatus(w http.ResponseWriter, _ *http.Request) {
	cfg := d.config()
	b := statusBody{
		Version:    version.String(),
		Started:    d.started,
		Uptime:     time.Since(d.started).Round(time.Second).String(),
		ConfigFile: cfg.Path,
		Schedule:   cfg.Schedule,
		NextPass:   d.sched.next(),
		Runner:     d.app.Runner.Status(),
	}
	for _, s := range cfg.Sources {
		b.Sources = append(b.Sources, sourceStatus{Name: s.Name, Type: s.Type, Push: s.PushEnabled(), Priority: s.Priority})
	}
	if bud, err := d.app.Store.Budget("jira"); err == nil {
		b.Budget = &bud
	}
	writeJSON(w, http.StatusOK, b)
}

func (d *Daemon) apiRuns(w http.ResponseWriter, r *http.Request) {
	limit := 50
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			writeJSON(w, http.StatusBadRequest, apiError{Error: "limit must be an integer from 1 to 1000"})
			return
		}
		limit = n
	}
	runs, err := d.app.Store.Runs(limit)
	if err != nil {
		d.internal(w, "listing runs", err)
		return
	}
	for i := range runs {
		runs[i].Changes = nil
	}
	writeJSON(w, http.StatusOK, map[string]any{"runs": runs})
}

func (d *Daemon) apiRun(w http.ResponseWriter, r *http.Request) {
	run, err := d.app.Store.Run(r.PathValue("id"))
	if errors.Is(err, reconcile.ErrNotFound) {
		writeJSON(w, http.StatusNotFound, apiError{Error: "no such run"})
		return
	}
	if err != nil {
		d.internal(w, "reading a run", err)
		return
	}
	writeJSON(w, http.StatusOK, run)
}

// apiReconcile requests a full pass. With ?wait=true it runs it and answers with the run
// record; otherwise it answers 202 at once (the pass coalesces with any other request).
func (d *Daemon) apiReconcile(w http.ResponseWriter, r *http.Request) {
	o := reconcile.RunOptions{Trigger: reconcile.TriggerAPI, Source: r.URL.Query().Get("source"), DryRun: r.URL.Query().Get("dry_run") == "true"}
	if o.Source != "" && !d.hasSource(o.Source) {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "unknown source", Detail: o.Source})
		return
	}
	if r.URL.Query().Get("wait") != "true" {
		d.app.Runner.Request(o)
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "requested"})
		return
	}
	run, err := d.app.Runner.RunOnce(d.passContext(r.Context()), o)
	d.answerRun(w, run, err)
}

// apiSyncUser is the login-time sync: one user from the source to Jira, answered with what
// changed. When a long pass holds the runner, the request is queued and answered 202.
func (d *Daemon) apiSyncUser(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSpace(r.PathValue("userName"))
	if name == "" || len(name) > 256 {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "userName must be 1 to 256 characters"})
		return
	}
	o := reconcile.RunOptions{Trigger: reconcile.TriggerAPI, Users: []string{name}, DryRun: r.URL.Query().Get("dry_run") == "true"}
	ctx, cancel := context.WithTimeout(d.passContext(r.Context()), syncUserWait)
	defer cancel()
	run, err := d.app.Runner.RunOnce(ctx, o)
	if err != nil && run.ID == "" && errors.Is(err, context.DeadlineExceeded) {
		d.app.Runner.Request(o)
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "queued", "detail": "another pass is running; this user's sync follows it"})
		return
	}
	d.answerRun(w, run, err)
}

func (d *Daemon) answerRun(w http.ResponseWriter, run reconcile.Run, err error) {
	if err != nil && run.ID == "" {
		d.log.Error().Err(err).Msg("admin API pass failed")
		writeJSON(w, http.StatusBadGateway, apiError{Error: "pass failed", Detail: err.Error()})
		return
	}
	status := http.StatusOK
	if run.Result == reconcile.ResultFailed {
		status = http.StatusBadGateway
	}
	writeJSON(w, status, run)
}

func (d *Daemon) apiHeld(w http.ResponseWriter, _ *http.Request) {
	h, err := d.app.Store.HeldPlan()
	if errors.Is(err, reconcile.ErrNotFound) {
		writeJSON(w, http.StatusNotFound, apiError{Error: "no changes are held"})
		return
	}
	if err != nil {
		d.internal(w, "reading the held plan", err)
		return
	}
	writeJSON(w, http.StatusOK, h)
}

func (d *Daemon) apiApprove(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("runId")
	err := d.app.Runner.Approve(id, "api")
	if err != nil {
		status := http.StatusConflict
		if h, herr := d.app.Store.HeldPlan(); errors.Is(herr, reconcile.ErrNotFound) {
			status = http.StatusNotFound
		} else if herr == nil && h.RunID == id {
			status = http.StatusInternalServerError
		}
		writeJSON(w, status, apiError{Error: "not approved", Detail: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "approved", "runId": id, "detail": "the next complete pass may exceed the circuit breaker once"})
	d.app.Runner.Request(reconcile.RunOptions{Trigger: reconcile.TriggerAPI})
}

func (d *Daemon) internal(w http.ResponseWriter, what string, err error) {
	d.log.Error().Err(err).Msg("admin API: " + what)
	writeJSON(w, http.StatusInternalServerError, apiError{Error: "internal error", Detail: what})
}

func (d *Daemon) hasSource(name string) bool {
	for _, s := range d.config().Sources {
		if s.Name == name {
			return true
		}
	}
	return false
}

// passContext detaches an API-triggered pass from nothing but the daemon's lifetime and the
// request: a client that goes away stops waiting, the daemon's shutdown stops the pass.
func (d *Daemon) passContext(req context.Context) context.Context {
	ctx, cancel := context.WithCancel(req)
	stop := context.AfterFunc(d.ctx, cancel)
	context.AfterFunc(ctx, func() { stop() })
	return ctx
}
