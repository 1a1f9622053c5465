package reconcile

import (
	"github.com/idsync/idsync/internal/metrics"
)

// Observer hears what a pass does, for metrics and progress display. Calls come from the pass's
// goroutines (ChangeApplied and Progress concurrently); implementations must be quick and safe
// for concurrent use.
type Observer interface {
	PassStarted(run Run)
	Progress(done, total int)
	ChangeApplied(k Kind, result string)
	SourceRead(sr SourceRun)
	PassFinished(run Run)
	Held(n int)
}

type nop struct{}

func (nop) PassStarted(Run)            {}
func (nop) Progress(int, int)          {}
func (nop) ChangeApplied(Kind, string) {}
func (nop) SourceRead(SourceRun)       {}
func (nop) PassFinished(Run)           {}
func (nop) Held(int)                   {}

func nopObserver(o Observer) Observer {
	if o == nil {
		return nop{}
	}
	return o
}

// MetricsObserver feeds the fixed Prometheus metrics from pass events.
type MetricsObserver struct {
	M *metrics.Metrics
}

var _ Observer = MetricsObserver{}

func (o MetricsObserver) PassStarted(Run)   {}
func (o MetricsObserver) Progress(int, int) {}

func (o MetricsObserver) ChangeApplied(k Kind, result string) { o.M.Change(string(k), result, 1) }

func (o MetricsObserver) SourceRead(sr SourceRun) {
	o.M.SourceRead(sr.Name, sr.Complete, sr.Users, sr.Groups)
}

func (o MetricsObserver) PassFinished(r Run) {
	o.M.Pass(r.Trigger, r.Result, r.Finished.Sub(r.Started), r.Finished)
}

func (o MetricsObserver) Held(n int) { o.M.HeldChanges(n) }
