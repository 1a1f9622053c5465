package daemon

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/idsync/idsync/internal/version"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/reconcile/runner"
	"github.com/idsync/idsync/state"
)

// How long the admin API waits for a pass it started before answering 202 (the pass goes on).
// Both stay below the server's WriteTimeout. ?wait=DURATION picks another bound up to
// maxAPIWait.
const (
	syncUserWait = 10 * time.Second
	maxAPIWait   = 50 * time.Second
	// maxWaitingSyncs bounds the one-user syncs that wait for the runner one by one; past
	// it (a login storm during a long pass), syncs coalesce into one follow-up pass.
	maxWaitingSyncs = 8
	// backupWriteTimeout replaces the server's WriteTimeout for a state download: the file
	// can be hundreds of MB and the operator's link slow.
	backupWriteTimeout = 30 * time.Minute
)

// Status is the answer of GET /api/v1/status (`idsync status --addr`).
type Status struct {
	Version string       `json:"version"`
	Build   version.Info `json:"build"`
	Started time.Time    `json:"started"`
	Uptime  string       `json:"uptime"`
	// ConfigFile is the config the daemon runs with.
	ConfigFile string `json:"configFile"`
	Schedule   string `json:"schedule"`
	// NextPass is the schedule's next tick (a scheduled pass starts up to Jitter later).
	NextPass time.Time           `json:"nextScheduledPass,omitzero"`
	Jitter   string              `json:"jitter,omitempty"`
	Sources  []SourceStatus      `json:"sources"`
	Runner   runner.RunnerStatus `json:"runner"`
	Budget   *state.Budget       `json:"apiBudget,omitempty"`
}

// SourceStatus is one configured source in Status.
type SourceStatus struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Push     bool   `json:"push"`
	Priority int    `json:"priority"`
}

func (d *Daemon) apiStatus(w http.ResponseWriter, _ *http.Request) {
	cfg := d.config()
	b := Status{
		Version:    version.String(),
		Build:      version.Get(),
		Started:    d.started,
		Uptime:     time.Since(d.started).Round(time.Second).String(),
		ConfigFile: cfg.Path,
		Schedule:   cfg.Schedule,
		NextPass:   d.sched.next(),
		Jitter:     jitterString(cfg.Jitter),
		Runner:     d.app.Runner.Status(), // deep copies: safe to encode while a pass runs
	}
	for _, s := range cfg.Sources {
		b.Sources = append(b.Sources, SourceStatus{Name: s.Name, Type: s.Type, Push: s.PushEnabled(), Priority: s.Priority})
	}
	if bud, err := d.app.Store.Budget("jira"); err == nil {
		b.Budget = &bud
	}
	writeJSON(w, http.StatusOK, b)
}

func jitterString(j time.Duration) string {
	if j <= 0 {
		return ""
	}
	return j.String()
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

// apiReconcile requests a full pass. Without ?wait it answers 202 at once (the pass
// coalesces with any other request); with ?wait=true or ?wait=DURATION it waits up to that
// long (at most 50 s) for the pass and answers with its run record, else 202.
func (d *Daemon) apiReconcile(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	o := runner.RunOptions{Trigger: reconcile.TriggerAPI, Source: q.Get("source"), DryRun: q.Get("dry_run") == "true"}
	if o.Source != "" && !d.hasSource(o.Source) {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "unknown source", Detail: o.Source})
		return
	}
	wait, err := waitParam(q.Get("wait"), 0)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "bad wait", Detail: err.Error()})
		return
	}
	if d.isClosing() {
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "shutting down"})
		return
	}
	if wait == 0 {
		d.app.Runner.Request(o)
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "requested"})
		return
	}
	d.runAndWait(w, r, o, wait)
}

// apiSyncUser is the login-time sync: one user from the source to Jira, answered with the
// run record (what changed). It waits up to ?wait (default 10 s) for the runner; when a long
// pass holds it, the answer is 202 and the sync runs as soon as that pass ends.
func (d *Daemon) apiSyncUser(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSpace(r.PathValue("userName"))
	if name == "" || len(name) > 256 {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "userName must be 1 to 256 characters"})
		return
	}
	wait, err := waitParam(r.URL.Query().Get("wait"), syncUserWait)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "bad wait", Detail: err.Error()})
		return
	}
	o := runner.RunOptions{Trigger: reconcile.TriggerAPI, Users: []string{name}, DryRun: r.URL.Query().Get("dry_run") == "true"}
	if d.isClosing() {
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "shutting down"})
		return
	}
	if d.waitingSyncs.Add(1) > maxWaitingSyncs {
		d.waitingSyncs.Add(-1)
		d.app.Runner.Request(o)
		writeJSON(w, http.StatusAccepted, pendingBody{Status: "queued", Detail: "many syncs are waiting; this one joins the next pass", Current: d.currentRun()})
		return
	}
	d.runAndWait(w, r, o, wait, func() { d.waitingSyncs.Add(-1) })
}

// runAndWait runs a pass on the daemon's context (a client that goes away does not stop it)
// and answers with its run record, or 202 when it has not ended within wait.
func (d *Daemon) runAndWait(w http.ResponseWriter, r *http.Request, o runner.RunOptions, wait time.Duration, after ...func()) {
	type outcome struct {
		run reconcile.Run
		err error
	}
	done := make(chan outcome, 1)
	if !d.enter() {
		for _, f := range after {
			f()
		}
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "shutting down"})
		return
	}
	go func() {
		defer d.passes.Done()
		for _, f := range after {
			defer f()
		}
		var out outcome
		if !d.guard("admin API pass", func() { out.run, out.err = d.app.RunOnce(d.ctx, o) }) {
			out = outcome{err: errors.New("the pass panicked (logged); the daemon goes on")}
		}
		done <- out
	}()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case out := <-done:
		if len(o.Users) == 1 && len(o.Groups) == 0 && out.err == nil && out.run.Result != reconcile.ResultFailed && noneFound(out.run) {
			writeJSON(w, http.StatusNotFound, apiError{Error: "user not found",
				Detail: "no source has user " + o.Users[0] + "; nothing changed (run " + out.run.ID + ")"})
			return
		}
		d.answerRun(w, out.run, out.err)
	case <-t.C:
		cur := d.currentRun()
		b := pendingBody{Status: "running", Detail: "the pass goes on; GET /api/v1/runs shows its result", Current: cur}
		if cur == nil || cur.Trigger != o.Trigger || cur.Target != o.Describe() {
			b.Status, b.Detail = "queued", "another pass holds the runner; this one runs when it ends"
		}
		writeJSON(w, http.StatusAccepted, b)
	case <-r.Context().Done():
	}
}

// noneFound reports whether a targeted pass found its people in no source (every read
// complete and empty).
func noneFound(run reconcile.Run) bool {
	for _, s := range run.Sources {
		if !s.Complete || s.Users > 0 {
			return false
		}
	}
	return len(run.Sources) > 0
}

type pendingBody struct {
	Status  string         `json:"status"`
	Detail  string         `json:"detail"`
	Current *reconcile.Run `json:"current,omitempty"`
}

func (d *Daemon) currentRun() *reconcile.Run { return d.app.Runner.Status().Current }

// waitParam reads ?wait: "" gives def, "true" the longest wait, "false" none, else a
// duration up to maxAPIWait.
func waitParam(s string, def time.Duration) (time.Duration, error) {
	switch s {
	case "":
		return def, nil
	case "true":
		return maxAPIWait, nil
	case "false":
		return 0, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return 0, errors.New("want true, false or a duration such as 5s")
	}
	return min(v, maxAPIWait), nil
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

// approveNames is how many people per kind an approval's answer names.
const approveNames = 10

func (d *Daemon) apiApprove(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("runId")
	h, err := d.app.Runner.Approve(id, "api")
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
	writeJSON(w, http.StatusOK, map[string]any{"status": "approved", "runId": id, "approved": h.Summary(approveNames),
		"deactivations": h.Deactivations, "removals": h.Removals,
		"detail": "the next complete pass applies exactly these items where it still plans them; anything else is judged by the circuit breaker on its own"})
	d.app.Runner.Request(runner.RunOptions{Trigger: reconcile.TriggerAPI})
}

// apiStateBackup answers a consistent point-in-time copy of the state file, taken while
// passes and pushes go on. The copy is spooled to an unlinked temporary file beside the state
// file first, so the read transaction lasts as long as a local disk copy rather than the
// client's download: bbolt writers that must grow the file wait for open read transactions,
// and a slow client must not stall passes. It also gives an exact Content-Length and a JSON
// error when the copy fails.
func (d *Daemon) apiStateBackup(w http.ResponseWriter, _ *http.Request) {
	st := d.app.Store
	if st == nil || d.isClosing() {
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "state is closed (shutting down)"})
		return
	}
	if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(backupWriteTimeout)); err != nil {
		d.log.Warn().Err(err).Msg("admin API: state backup keeps the server's write timeout")
	}
	spool, err := os.CreateTemp(filepath.Dir(st.Path()), ".idsync-backup-*.tmp")
	if err != nil {
		d.internal(w, "creating the backup's temporary file", err)
		return
	}
	// Unlinked at once where the system allows it, so a crash leaves nothing behind.
	_ = os.Remove(spool.Name())
	defer func() {
		_ = spool.Close()
		_ = os.Remove(spool.Name())
	}()
	n, err := st.Backup(spool)
	if err == nil {
		_, err = spool.Seek(0, io.SeekStart)
	}
	if err != nil {
		d.internal(w, "copying the state file", err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="idsync-state-%s.db"`, time.Now().UTC().Format("20060102T150405Z")))
	h.Set("Content-Length", strconv.FormatInt(n, 10))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, spool); err != nil {
		d.log.Warn().Err(err).Int64("bytes", n).Msg("admin API: state backup download cut short")
		return
	}
	d.log.Info().Int64("bytes", n).Int("schema_version", st.SchemaVersion()).Msg("admin API: state backup sent")
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
