package runner_test

import (
	"sync/atomic"
	"testing"

	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/reconcile/runner"
)

type countObserver struct{ n atomic.Int32 }

func (c *countObserver) PassStarted(reconcile.Run)            { c.n.Add(1) }
func (c *countObserver) SourceProgress(string, int, int)      { c.n.Add(1) }
func (c *countObserver) Progress(int, int)                    { c.n.Add(1) }
func (c *countObserver) ChangeApplied(reconcile.Kind, string) { c.n.Add(1) }
func (c *countObserver) SourceRead(reconcile.SourceRun)       { c.n.Add(1) }
func (c *countObserver) PassFinished(reconcile.Run)           { c.n.Add(1) }
func (c *countObserver) Held(int)                             { c.n.Add(1) }

func TestMultiObserver(t *testing.T) {
	a, b := &countObserver{}, &countObserver{}
	m := runner.Observers{a, b}
	m.PassStarted(reconcile.Run{})
	m.SourceProgress("corp", 1, 10)
	m.Progress(1, 2)
	m.ChangeApplied(reconcile.KindCreateUser, "ok")
	m.SourceRead(reconcile.SourceRun{})
	m.PassFinished(reconcile.Run{})
	m.Held(1)
	if a.n.Load() != 7 || b.n.Load() != 7 {
		t.Errorf("fan-out: %d and %d of 7", a.n.Load(), b.n.Load())
	}
}
