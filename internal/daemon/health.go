package daemon

import (
	"sync"
	"time"

	"github.com/idsync/idsync/reconcile"
)

// health remembers how passes went, for /readyz: the daemon is not ready when passes have
// been failing (result failed, or a source read incomplete) for longer than two schedule
// intervals. Failed items alone do not make it unready: they are counted in metrics and
// retried.
//
// It also watches the pass in flight: a pass that has shown no sign of life (no item done, no
// source read, no outbound request) for longer than stallLimit is reported as stalled, so an
// orchestrator can restart a daemon that hangs instead of one that is merely busy with a
// long first sync.
type health struct {
	now          func() time.Time
	mu           sync.Mutex
	failingSince time.Time // zero while healthy
	lastPass     *reconcile.Run
	sources      map[string]reconcile.SourceRun

	runID        string    // the pass in flight ("" when none)
	runStarted   time.Time // when it started
	lastActivity time.Time // its latest item, progress report or source read
}

func newHealth() *health {
	return &health{now: time.Now, sources: map[string]reconcile.SourceRun{}}
}

// minStallLimit keeps a short schedule (@every 1m) from calling a pass stalled while one
// request waits out a long Retry-After or a slow read.
const minStallLimit = 10 * time.Minute

// stallLimit is how long a pass may go without a sign of life: two schedule intervals, at
// least minStallLimit.
func stallLimit(interval time.Duration) time.Duration {
	return max(2*interval, minStallLimit)
}

func (h *health) started(r reconcile.Run) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.runID, h.runStarted, h.lastActivity = r.ID, h.now(), h.now()
}

func (h *health) active() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.runID != "" {
		h.lastActivity = h.now()
	}
}

// stalled reports the pass in flight when its latest sign of life (its own events, or
// lastOutbound, the latest outbound API request) is older than limit.
func (h *health) stalled(now, lastOutbound time.Time, limit time.Duration) (id string, started, lastSign time.Time, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.runID == "" {
		return "", time.Time{}, time.Time{}, false
	}
	last := h.lastActivity
	if lastOutbound.After(last) {
		last = lastOutbound
	}
	return h.runID, h.runStarted, last, now.Sub(last) > limit
}

func failing(r reconcile.Run) bool {
	if r.Result == reconcile.ResultFailed {
		return true
	}
	for _, s := range r.Sources {
		if !s.Complete {
			return true
		}
	}
	return false
}

func (h *health) observe(r reconcile.Run) {
	h.mu.Lock()
	h.runID = ""
	h.mu.Unlock()
	if r.DryRun || r.Target != "" {
		return // targeted passes read one user; they say nothing of the source's health
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	cp := r
	cp.Changes = nil
	h.lastPass = &cp
	for _, s := range r.Sources {
		h.sources[s.Name] = s
	}
	switch {
	case !failing(r):
		h.failingSince = time.Time{}
	case h.failingSince.IsZero():
		h.failingSince = r.Started
	}
}

// readiness says whether passes have been failing for longer than limit.
func (h *health) readiness(now time.Time, limit time.Duration) (ok bool, since time.Time, sources []reconcile.SourceRun) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.sources {
		sources = append(sources, s)
	}
	if h.failingSince.IsZero() || limit <= 0 {
		return true, h.failingSince, sources
	}
	return now.Sub(h.failingSince) <= limit, h.failingSince, sources
}

// healthObserver feeds health from the Runner.
type healthObserver struct{ h *health }

func (o healthObserver) PassStarted(r reconcile.Run)          { o.h.started(r) }
func (o healthObserver) SourceProgress(string, int, int)      { o.h.active() }
func (o healthObserver) Progress(int, int)                    { o.h.active() }
func (o healthObserver) ChangeApplied(reconcile.Kind, string) { o.h.active() }
func (o healthObserver) SourceRead(reconcile.SourceRun)       { o.h.active() }
func (o healthObserver) PassFinished(r reconcile.Run)         { o.h.observe(r) }
func (o healthObserver) Held(int)                             {}
