package runner_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/reconcile/reconciletest"
	"github.com/idsync/idsync/reconcile/runner"
)

// The run record says which items the guards held or dropped, and why, for dry runs too: all
// of them in the run RunOnce returns, capped like Changes in the stored record, counted
// exactly in both.
func TestRunRecordsHeldItems(t *testing.T) {
	users := numbered(6, "Jira-Service-group", "Engineering")
	s := limits(configs.SafetyConfig{Policy: configs.PolicySync, GracePasses: 1})
	e := newEnv(t, users, baseMapping(), s)
	e.cfg.RunChangesCap = 2
	e.rebuild()
	e.run(runner.RunOptions{})
	e.src.Set(users[:2]) // four leave

	for _, dry := range []bool{true, false} {
		run := e.run(runner.RunOptions{DryRun: dry})
		if got := run.HeldByGuard[reconcile.GuardGrace]; got != 3*4 { // deactivations, desk and organization removals
			t.Fatalf("dry=%v: grace held %d, want 12: %+v", dry, got, run.HeldByGuard)
		}
		graceItems := func(run reconcile.Run) (grace, deact int) {
			for _, h := range run.HeldItems {
				if h.Guard == reconcile.GuardGrace {
					grace++
					if h.Change.Kind == reconcile.KindDeactivateUser {
						deact++
					}
					if !strings.Contains(h.Reason, "0 of 1 complete passes") || !h.Waiting() {
						t.Errorf("dry=%v: held %+v", dry, h)
					}
				}
			}
			return grace, deact
		}
		if grace, deact := graceItems(run); deact != 4 || grace != 12 {
			t.Errorf("dry=%v: returned %d grace items (%d deactivations), want all 12 (4)", dry, grace, deact)
		}
		// The site admin is in jira-software-users without a source: dropped by ownership.
		if run.HeldByGuard[reconcile.GuardOwnership] != 1 {
			t.Errorf("dry=%v: ownership drops %+v", dry, run.HeldByGuard)
		}
		stored, err := e.store.Run(run.ID)
		if err != nil || stored.HeldByGuard[reconcile.GuardGrace] != 12 {
			t.Fatalf("dry=%v: stored run %v %+v", dry, err, stored.HeldByGuard)
		}
		if grace, deact := graceItems(stored); deact != 2 || grace != 6 {
			t.Errorf("dry=%v: stored %d grace items (%d deactivations), want 2 per kind", dry, grace, deact)
		}
		var b strings.Builder
		if err := reconcile.RenderRun(&b, stored, reconcile.RenderOptions{}); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		for _, want := range []string{"Held back:", "grace", "12  (held for a later pass)", "ownership", "1  (dropped)",
			"deactivate_user", "missing from every source for 0 of 1 complete passes", "service desk DEMO", "... 6 more"} {
			if !strings.Contains(out, want) {
				t.Errorf("dry=%v: rendering lacks %q:\n%s", dry, want, out)
			}
		}
	}

	// The breaker's hold is listed with its reason.
	e.cfg.Safety = limits(configs.SafetyConfig{Policy: configs.PolicySync, MaxDeactivations: 1})
	e.rebuild()
	run := e.run(runner.RunOptions{DryRun: true})
	if run.HeldByGuard[reconcile.GuardBreaker] != 12 || run.Held != 12 {
		t.Fatalf("breaker: %+v held %d", run.HeldByGuard, run.Held)
	}
	for _, h := range run.HeldItems {
		if h.Guard == reconcile.GuardBreaker && !strings.Contains(h.Reason, "safety.max_deactivations 1") {
			t.Errorf("breaker reason %q", h.Reason)
		}
	}
}

func TestWhatNamesTargets(t *testing.T) {
	cases := []struct {
		c    reconcile.Change
		want string
	}{
		{reconcile.Change{Kind: reconcile.KindAddCustomer, UserName: "ann", ServiceDesk: "1", ServiceDeskKey: "DEMO"}, "service desk DEMO"},
		{reconcile.Change{Kind: reconcile.KindRemoveCustomer, UserName: "ann", ServiceDesk: "1"}, "service desk 1"},
		{reconcile.Change{Kind: reconcile.KindDeactivateUser, UserName: "ann", AccountID: "712020:abc", Groups: []reconcile.GroupRef{{ID: "g", Name: "jira-software-users"}}},
			"deactivate account: remove from jira-software-users"},
		{reconcile.Change{Kind: reconcile.KindDeactivateUser, AccountID: "712020:abc"}, "deactivate account 712020:abc"},
		{reconcile.Change{Kind: reconcile.KindReactivateUser, Email: "ann@example.com", AccountID: "712020:abc"}, "reactivate account"},
	}
	for _, tc := range cases {
		if got := tc.c.What(); got != tc.want {
			t.Errorf("%s: What() = %q, want %q", tc.c.Kind, got, tc.want)
		}
	}
}

// An approval given while a pass runs (after it read the open hold, before it stored its
// own) is not lost: the pass keeps the approved plan instead of replacing it, and the next
// pass uses the approval.
func TestApprovalDuringAPassIsKept(t *testing.T) {
	s := limits(configs.SafetyConfig{Policy: configs.PolicySync, MaxDeactivations: 2})
	users := numbered(10)
	e := newEnv(t, users, baseMapping(), s)
	e.run(runner.RunOptions{})
	e.src.Set(users[:5])
	held := e.run(runner.RunOptions{})
	if held.Result != reconcile.ResultHeld {
		t.Fatalf("not held: %s", held.Result)
	}
	// The next pass blocks in its Jira read, after it has read the (unapproved) hold.
	inLive, release := make(chan struct{}), make(chan struct{})
	e.sink.LiveFail = func(reconcile.Scope) error {
		inLive <- struct{}{}
		<-release
		return nil
	}
	type result struct {
		run reconcile.Run
		err error
	}
	done := make(chan result)
	go func() {
		run, err := e.r.RunOnce(context.Background(), runner.RunOptions{Trigger: reconcile.TriggerSchedule})
		done <- result{run, err}
	}()
	<-inLive
	if _, err := e.r.Approve(held.ID, "ops"); err != nil {
		t.Fatal(err)
	}
	close(release)
	during := <-done
	e.sink.LiveFail = nil
	if during.err != nil || during.run.Result != reconcile.ResultHeld || applied(during.run, reconcile.KindDeactivateUser) != 0 {
		t.Fatalf("the pass that read the unapproved hold: %v %s %+v", during.err, during.run.Result, during.run.Counts)
	}
	h, err := e.store.HeldPlan()
	if err != nil || h.RunID != held.ID || !h.Approved {
		t.Fatalf("the approval was lost: %v %+v", err, h)
	}
	run := e.run(runner.RunOptions{})
	if applied(run, reconcile.KindDeactivateUser) != 5 || run.Result != reconcile.ResultOK {
		t.Fatalf("the approved pass: %s %+v", run.Result, run.Counts)
	}
}

// RunOnce returns the whole plan (`idsync plan -o json` of a first sync prints every item);
// only the stored run record keeps at most RunChangesCap items per kind, as copies (a stored
// record must not pin the whole plan in memory).
func TestRunReturnsTheWholePlan(t *testing.T) {
	e := newEnv(t, numbered(5, "Engineering"), baseMapping(), openSafety())
	spy := &putRunSpy{MemStore: e.store}
	e.cfg.RunChangesCap = 2
	e.rebuild()
	e.cfg.Store = spy
	r, err := runner.NewRunner(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.r = r
	for _, dry := range []bool{true, false} {
		run := e.run(runner.RunOptions{DryRun: dry})
		if run.Changes == nil || len(run.Changes.CreateUsers) != 5 || len(run.Changes.AddMembers) != 10 {
			t.Fatalf("dry=%v: returned plan %+v", dry, run.Changes)
		}
		for _, n := range run.Changes.Notes {
			if strings.Contains(n, "keeps the first") {
				t.Errorf("dry=%v: the returned plan says it is cut: %q", dry, n)
			}
		}
		stored, err := e.store.Run(run.ID)
		if err != nil {
			t.Fatal(err)
		}
		c := stored.Changes
		if c == nil || len(c.CreateUsers) != 2 || len(c.AddMembers) != 2 ||
			!strings.Contains(strings.Join(c.Notes, " "), "keeps the first 2 items") {
			t.Fatalf("dry=%v: stored plan %+v", dry, c)
		}
		if put := spy.last(); put.Changes == nil || &put.Changes.AddMembers[0] == &run.Changes.AddMembers[0] {
			t.Errorf("dry=%v: the record handed to the store shares the plan's list", dry)
		}
		created := len(e.sink.Accounts()) - 2 // the site admin and the app account were there
		if (dry && created != 0) || (!dry && created != 5) {
			t.Errorf("dry=%v: %d accounts created", dry, created)
		}
	}
}

// putRunSpy remembers the last run record handed to the store, as given.
type putRunSpy struct {
	*reconciletest.MemStore
	mu  sync.Mutex
	run reconcile.Run
}

func (s *putRunSpy) PutRun(r reconcile.Run) error {
	s.mu.Lock()
	s.run = r
	s.mu.Unlock()
	return s.MemStore.PutRun(r)
}

func (s *putRunSpy) last() reconcile.Run {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.run
}
