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
type health struct {
	mu           sync.Mutex
	failingSince time.Time // zero while healthy
	lastPass     *reconcile.Run
	sources      map[string]reconcile.SourceRun
}

func newHealth() *health { return &health{sources: map[string]reconcile.SourceRun{}} }

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

func (o healthObserver) PassStarted(reconcile.Run)            {}
func (o healthObserver) Progress(int, int)                    {}
func (o healthObserver) ChangeApplied(reconcile.Kind, string) {}
func (o healthObserver) SourceRead(reconcile.SourceRun)       {}
func (o healthObserver) PassFinished(r reconcile.Run)         { o.h.observe(r) }
func (o healthObserver) Held(int)                             {}
