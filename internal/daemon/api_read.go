package daemon

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/reconcile/runner"
	"github.com/idsync/idsync/state"
)

// planWriteTimeout replaces the server's WriteTimeout for GET /api/v1/plan: a dry-run pass
// over a large org reads every source and Jira first, and waits for a pass in flight.
const planWriteTimeout = 30 * time.Minute

// apiPlan answers a dry-run plan the daemon makes now through its Runner, so it never
// overlaps a pass (it waits for the one in flight): the Changes value, as `idsync plan -o
// json` prints it, every item included. ?run=true answers the whole dry-run record instead
// (its changes are that same value, uncapped), which `idsync plan --addr` renders as the
// table. ?source=NAME and ?user=NAME (repeatable) narrow it as plan's flags do. A plan that
// could not be made answers 502 with the pass's errors; a client that goes away, or a
// shutdown, stops the pass.
func (d *Daemon) apiPlan(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	o := runner.RunOptions{Trigger: reconcile.TriggerAPI, DryRun: true, Source: q.Get("source"), Users: q["user"]}
	if o.Source != "" && !d.hasSource(o.Source) {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "unknown source", Detail: o.Source})
		return
	}
	for _, u := range o.Users {
		if u = strings.TrimSpace(u); u == "" || len(u) > 256 {
			writeJSON(w, http.StatusBadRequest, apiError{Error: "user must be 1 to 256 characters"})
			return
		}
	}
	if !d.enter() {
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "shutting down"})
		return
	}
	defer d.passes.Done()
	if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(planWriteTimeout)); err != nil {
		d.log.Warn().Err(err).Msg("admin API: plan keeps the server's write timeout")
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(d.ctx, cancel)()
	var (
		run reconcile.Run
		err error
	)
	if !d.guard("admin API plan", func() { run, err = d.app.RunOnce(ctx, o) }) {
		writeJSON(w, http.StatusInternalServerError, apiError{Error: "internal error", Detail: "the plan's pass panicked (logged)"})
		return
	}
	switch {
	case err != nil && run.ID == "" && d.ctx.Err() != nil:
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "shutting down"})
		return
	case err != nil && run.ID == "":
		writeJSON(w, http.StatusBadGateway, apiError{Error: "no plan", Detail: err.Error()})
		return
	case run.Result == reconcile.ResultFailed:
		writeJSON(w, http.StatusBadGateway, apiError{Error: "no plan", Detail: "run " + run.ID + ": " + strings.Join(run.Errors, "; ")})
		return
	}
	if q.Get("run") == "true" {
		writeJSON(w, http.StatusOK, run)
		return
	}
	changes := run.Changes
	if changes == nil {
		changes = &reconcile.Changes{}
	}
	writeJSON(w, http.StatusOK, changes)
}

// auditLookahead bounds how far past a page the audit API looks for the outcomes of the
// page's "started" records (outcomes follow within the items applied at the same time).
const auditLookahead = 1000

// apiAudit answers the audit log in pages, with `idsync audit`'s filters: ?since= a duration
// back from now (24h) or an RFC 3339 time, ?user=NAME (userName, key or accountId), and
// ?intents=true to keep the write-ahead "started" record of every change that has an outcome
// (by default they are dropped when the outcome is on the page or within the next
// auditLookahead records). ?limit= (1 to 10000, default 1000) records per page; the answer's
// next is the ?cursor= of the following page, absent on the last.
func (d *Daemon) apiAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	aq := state.AuditQuery{User: q.Get("user"), Cursor: q.Get("cursor"), Limit: state.DefaultAuditPageSize}
	if s := q.Get("since"); s != "" {
		t, err := sinceParam(s, time.Now())
		if err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{Error: "bad since", Detail: err.Error()})
			return
		}
		aq.Since = t
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > state.MaxAuditPageSize {
			writeJSON(w, http.StatusBadRequest, apiError{Error: "limit must be an integer from 1 to " + strconv.Itoa(state.MaxAuditPageSize)})
			return
		}
		aq.Limit = n
	}
	intents := false
	if s := q.Get("intents"); s != "" {
		v, err := strconv.ParseBool(s)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{Error: "intents must be true or false"})
			return
		}
		intents = v
	}
	st := d.app.Store
	if st == nil || d.isClosing() {
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "state is closed (shutting down)"})
		return
	}
	page, err := st.AuditPage(aq)
	if errors.Is(err, state.ErrBadCursor) {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "bad cursor", Detail: "pass the next value of the previous page, with the same user"})
		return
	}
	if err != nil {
		d.internal(w, "reading the audit log", err)
		return
	}
	if !intents {
		var later []reconcile.AuditRecord
		if page.Next != "" && hasStarted(page.Records) {
			ahead := aq
			ahead.Cursor, ahead.Limit = page.Next, auditLookahead
			if p, err := st.AuditPage(ahead); err == nil {
				later = p.Records
			}
		}
		page.Records = state.CollapseIntents(page.Records, later)
	}
	writeJSON(w, http.StatusOK, page)
}

func hasStarted(recs []reconcile.AuditRecord) bool {
	for _, r := range recs {
		if r.Result == reconcile.ItemStarted {
			return true
		}
	}
	return false
}

// sinceParam reads ?since: a duration back from now ("24h") or an RFC 3339 time.
func sinceParam(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, errors.New("a duration must be positive")
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, errors.New("want a duration such as 24h or an RFC 3339 time such as 2026-01-02T15:04:05Z")
	}
	return t, nil
}
