package runner

import (
	"github.com/idsync/idsync/internal/metrics"
	"github.com/idsync/idsync/reconcile"
)

// Observer hears what a pass does, for metrics and progress display. Calls come from the pass's
// goroutines (ChangeApplied and Progress concurrently, SourceProgress from each source's
// readers); implementations must be quick and safe for concurrent use.
type Observer interface {
	PassStarted(run reconcile.Run)
	// SourceProgress is a source's read so far, after each page it read: running totals of
	// pages and objects (users, groups, members or entries), never decreasing within a read.
	// Sources report through reconcile.ReportReadProgress; a source that does not report
	// sends none, and SourceRead follows either way.
	SourceProgress(source string, pages, objects int)
	Progress(done, total int)
	ChangeApplied(k reconcile.Kind, result string)
	SourceRead(sr reconcile.SourceRun)
	PassFinished(run reconcile.Run)
	Held(n int)
}

type nop struct{}

func (nop) PassStarted(reconcile.Run)            {}
func (nop) SourceProgress(string, int, int)      {}
func (nop) Progress(int, int)                    {}
func (nop) ChangeApplied(reconcile.Kind, string) {}
func (nop) SourceRead(reconcile.SourceRun)       {}
func (nop) PassFinished(reconcile.Run)           {}
func (nop) Held(int)                             {}

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

func (o MetricsObserver) PassStarted(reconcile.Run)       {}
func (o MetricsObserver) SourceProgress(string, int, int) {}
func (o MetricsObserver) Progress(int, int)               {}

func (o MetricsObserver) ChangeApplied(k reconcile.Kind, result string) {
	o.M.Change(string(k), result, 1)
}

func (o MetricsObserver) SourceRead(sr reconcile.SourceRun) {
	o.M.SourceRead(sr.Name, sr.Complete, sr.Users, sr.Groups)
}

func (o MetricsObserver) PassFinished(r reconcile.Run) {
	o.M.Pass(r.Trigger, r.Result, r.Finished.Sub(r.Started), r.Finished)
	if r.JiraRead == reconcile.ReadFull {
		o.M.FullRead()
	}
}

func (o MetricsObserver) Held(n int) { o.M.HeldChanges(n) }

// Observers fans pass events out to several observers, in order.
type Observers []Observer

func (m Observers) PassStarted(r reconcile.Run) {
	for _, o := range m {
		o.PassStarted(r)
	}
}
func (m Observers) SourceProgress(source string, pages, objects int) {
	for _, o := range m {
		o.SourceProgress(source, pages, objects)
	}
}
func (m Observers) Progress(done, total int) {
	for _, o := range m {
		o.Progress(done, total)
	}
}
func (m Observers) ChangeApplied(k reconcile.Kind, result string) {
	for _, o := range m {
		o.ChangeApplied(k, result)
	}
}
func (m Observers) SourceRead(sr reconcile.SourceRun) {
	for _, o := range m {
		o.SourceRead(sr)
	}
}
func (m Observers) PassFinished(r reconcile.Run) {
	for _, o := range m {
		o.PassFinished(r)
	}
}
func (m Observers) Held(n int) {
	for _, o := range m {
		o.Held(n)
	}
}

var _ Observer = Observers{}
