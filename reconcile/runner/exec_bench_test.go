package runner_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/reconcile/runner"
	"github.com/idsync/idsync/state"
)

// latencySink answers every change after a fixed delay, like a remote API.
type latencySink struct{ d time.Duration }

func (s latencySink) Live(context.Context, reconcile.Scope) (reconcile.Live, error) {
	return reconcile.Live{}, nil
}

func (s latencySink) Apply(ctx context.Context, c reconcile.Change) (reconcile.Result, error) {
	select {
	case <-time.After(s.d):
	case <-ctx.Done():
		return reconcile.Result{}, ctx.Err()
	}
	return reconcile.Result{Writes: 1}, nil
}

// BenchmarkExecuteJournal measures executor throughput with the real state store (bbolt on a
// temporary file, fsync included) and a sink taking 10 ms per change at concurrency 8: the
// theoretical ceiling is 800 items/s, so items/s shows what journaling costs.
func BenchmarkExecuteJournal(b *testing.B) {
	st, err := state.Open(filepath.Join(b.TempDir(), "idsync.db"), state.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	const n = 400
	var c reconcile.Changes
	for i := 0; i < n; i++ {
		c.AddMembers = append(c.AddMembers, reconcile.Change{Kind: reconcile.KindAddMember, Source: "corp", UserKey: fmt.Sprint(i),
			UserName: fmt.Sprintf("user%04d", i), AccountID: fmt.Sprintf("acc-%04d", i), Group: &reconcile.GroupRef{ID: "g1", Name: "engineering"},
			Reason: "in IdP group Engineering -> engineering"})
	}
	sink := latencySink{d: 10 * time.Millisecond}
	b.ResetTimer()
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		res := runner.Execute(context.Background(), sink, st, c, runner.ExecOptions{RunID: fmt.Sprintf("run-%d", i), Actor: "bench", Concurrency: 8})
		if res.Counts[reconcile.KindAddMember][reconcile.ItemOK] != n {
			b.Fatalf("applied %+v", res.Counts)
		}
	}
	b.ReportMetric(float64(n*b.N)/time.Since(start).Seconds(), "items/s")
}
