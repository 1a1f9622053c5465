package cli

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/reconcile/reconciletest"
	"github.com/idsync/idsync/reconcile/runner"
)

// lockedBuffer is a terminal stand-in the read line's goroutine can write to.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// pagedSource reports pages of ten users through the pass's context, then waits to be let go
// before it answers: a long read caught in the middle.
type pagedSource struct {
	*reconciletest.FakeSource
	pages   int
	reading chan struct{} // closed once every page was reported
	release chan struct{}
}

func (s *pagedSource) Snapshot(ctx context.Context) (reconcile.Directory, error) {
	for range s.pages {
		reconcile.ReportReadProgress(ctx, 1, 10)
	}
	close(s.reading)
	select {
	case <-s.release:
	case <-ctx.Done():
		return reconcile.Directory{}, ctx.Err()
	}
	return s.FakeSource.Snapshot(ctx)
}

// TestProgressShowsSourcePagesDuringARead: a real pass feeds the read line: while a source is
// still reading, the line shows the pages and objects it reported; once the read ends, its
// totals.
func TestProgressShowsSourcePagesDuringARead(t *testing.T) {
	out := &lockedBuffer{}
	p := &Progress{w: out}
	src := &pagedSource{
		FakeSource: reconciletest.NewFakeSource("corp", []reconcile.User{{Key: "1", UserName: "ada", Email: "ada@example.com", Active: true}}),
		pages:      3, reading: make(chan struct{}), release: make(chan struct{}),
	}
	r, err := runner.NewRunner(runner.RunnerConfig{
		Sources: []runner.SourceSpec{{Source: src, Priority: 10}},
		Sink:    reconciletest.NewFakeSink(), Store: reconciletest.NewMemStore(),
		Mapping: configs.MappingConfig{ImportUsers: true},
		Safety:  configs.SafetyConfig{Policy: configs.PolicySync, MaxDeactivations: 100, MaxDeactivationPercent: 100, MaxMembershipRemovals: 100},
		Logger:  zerolog.Nop(), Observer: p.Observer(), Concurrency: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := r.RunOnce(context.Background(), runner.RunOptions{Trigger: reconcile.TriggerCLI, DryRun: true})
		done <- err
	}()
	<-src.reading
	const during = "reading  corp: 3 pages, 30 objects"
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), during) {
		if time.Now().After(deadline) {
			t.Fatalf("the terminal never showed %q while the source read; it shows %q", during, out.String())
		}
		time.Sleep(readTick / 4)
	}
	close(src.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	reading := p.reading
	p.mu.Unlock()
	if reading {
		t.Error("the read line is still drawn after the pass")
	}
}
