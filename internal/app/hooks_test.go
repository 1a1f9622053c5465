package app

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/idsync/idsync/internal/httpx"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/reconcile/runner"
	"github.com/idsync/idsync/sources/scim"
)

// fixedClock stands still; Sleep returns at once.
type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time                                   { return c.t }
func (c fixedClock) Sleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }

type countingStore struct {
	runner.Store
	mu   sync.Mutex
	runs []reconcile.Run
}

func (s *countingStore) PutRun(r reconcile.Run) error {
	s.mu.Lock()
	s.runs = append(s.runs, r)
	s.mu.Unlock()
	return s.Store.PutRun(r)
}

type countingSink struct {
	reconcile.Sink
	lives int
}

func (s *countingSink) Live(ctx context.Context, sc reconcile.Scope) (reconcile.Live, error) {
	s.lives++
	return s.Sink.Live(ctx, sc)
}

// TestHooks: the Options hooks reach the parts they name: the clock stamps the pass, RunID
// names it, the wrapped store and sink are the ones the Runner uses, every source spec goes
// through WrapSource, and SCIM triggers go to OnPush through the given AfterFunc.
func TestHooks(t *testing.T) {
	cfg := testConfig(t)
	clock := fixedClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	var store *countingStore
	sink := &countingSink{}
	var wrapped []string
	var timers []func()
	var pushes [][]string
	a, err := Open(cfg, Options{
		Logger: zerolog.Nop(),
		Clock:  clock,
		RunID:  func(now time.Time) string { return "run-" + now.Format("2006") },
		AfterFunc: func(d time.Duration, f func()) scim.Timer {
			timers = append(timers, f) // fired by the test, not by time
			return time.NewTimer(time.Hour)
		},
		OnPush:      func(_ string, users, _ []string) { pushes = append(pushes, users) },
		SourceRetry: httpx.Retry{Max: 1, WaitMin: time.Millisecond, WaitMax: time.Millisecond, MaxRetryAfter: time.Millisecond},
		WrapStore: func(s runner.Store) runner.Store {
			store = &countingStore{Store: s}
			return store
		},
		WrapSink: func(s reconcile.Sink) reconcile.Sink {
			sink.Sink = s
			return sink
		},
		WrapSource: func(spec runner.SourceSpec) runner.SourceSpec {
			wrapped = append(wrapped, spec.Source.Name())
			return spec
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if len(wrapped) != 1 || wrapped[0] != "corp" {
		t.Errorf("WrapSource saw %v, want [corp]", wrapped)
	}

	// The sources answer nothing (127.0.0.1:9): the pass fails fast, but it is recorded
	// through the wrapped store, named by RunID and stamped by the clock.
	run, _ := a.Runner.RunOnce(context.Background(), runner.RunOptions{Trigger: reconcile.TriggerCLI})
	if run.ID != "run-2030" || !run.Started.Equal(clock.t) {
		t.Errorf("run %q started %v, want run-2030 at %v", run.ID, run.Started, clock.t)
	}
	if len(store.runs) == 0 {
		t.Error("the Runner did not record through the wrapped store")
	}
	if sink.Sink == nil {
		t.Error("WrapSink was not called")
	}

	// A SCIM write reaches OnPush (not Runner.Request) through AfterFunc.
	req := httptest.NewRequest(http.MethodPost, "/scim/v2/corp/Users", strings.NewReader(`{"userName":"ann@example.com","active":true}`))
	req.Header.Set("Authorization", "Bearer scim-token-0123456789")
	req.Header.Set("Content-Type", "application/scim+json")
	rec := httptest.NewRecorder()
	a.SCIM.ServeHTTP(rec, req)
	if rec.Code != http.StatusCreated {
		t.Fatalf("SCIM create: %d %s", rec.Code, rec.Body)
	}
	for _, f := range timers {
		f()
	}
	if len(timers) == 0 || len(pushes) != 1 || len(pushes[0]) != 1 || pushes[0][0] != "ann@example.com" {
		t.Errorf("AfterFunc calls %d, OnPush got %v; want one trigger for ann@example.com", len(timers), pushes)
	}
	if a.Runner.Status().Pending {
		t.Error("with OnPush set, a push still requested a pass from the Runner")
	}
}
