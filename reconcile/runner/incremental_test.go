package runner_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/reconcile/runner"
)

// incrementalEnv is a site of ten people in engineering with incremental reads on.
func incrementalEnv(t *testing.T) (*env, []reconcile.User) {
	t.Helper()
	users := numbered(10, "Engineering")
	e := newEnv(t, users, baseMapping(), openSafety())
	e.cfg.FullReadInterval = time.Hour
	e.rebuild()
	return e, users
}

func scheduled() runner.RunOptions { return runner.RunOptions{Trigger: reconcile.TriggerSchedule} }

func TestIncrementalPassReadsOnlyWhatItWrites(t *testing.T) {
	e, users := incrementalEnv(t)
	first := e.run(scheduled())
	if first.JiraRead != reconcile.ReadFull || applied(first, reconcile.KindCreateUser) != 10 {
		t.Fatalf("first pass: read %q, %d created; want a full read creating 10", first.JiraRead, applied(first, reconcile.KindCreateUser))
	}
	calls := e.sink.LiveCalls()
	// Nothing changed: the pass plans against the cache (patched with the 10 creates and
	// their memberships) and reads nothing.
	noop := e.run(scheduled())
	if noop.JiraRead != reconcile.ReadIncremental || totalApplied(noop) != 0 || e.sink.LiveCalls() != calls {
		t.Fatalf("no-op pass: read %q, %d items, %d Jira reads; want incremental, 0, 0",
			noop.JiraRead, totalApplied(noop), e.sink.LiveCalls()-calls)
	}
	// One person moves: the pass re-reads that account alone, then writes.
	moved := slices.Clone(users)
	moved[3].Groups = nil
	e.src.Set(moved)
	run := e.run(scheduled())
	acc, _ := e.sink.AccountByEmail("u3@example.com")
	if run.JiraRead != reconcile.ReadIncremental || e.sink.LiveCalls() != calls+1 {
		t.Fatalf("churn pass: read %q with %d Jira reads; want incremental with 1", run.JiraRead, e.sink.LiveCalls()-calls)
	}
	if sc := e.sink.LastScope(); !sc.Targeted || !slices.Equal(sc.Accounts, []string{acc.AccountID}) {
		t.Fatalf("the re-read asked for %+v, want exactly u3's account", sc)
	}
	if applied(run, reconcile.KindRemoveMember) != 1 || slices.Contains(e.sink.Members("engineering"), acc.AccountID) {
		t.Fatalf("u3 not removed from engineering: %v", run.Counts)
	}
	// The interval passes: the next scheduled pass reads in full.
	e.clock.advance(time.Hour)
	if full := e.run(scheduled()); full.JiraRead != reconcile.ReadFull || full.FullReadReason == "" {
		t.Fatalf("after the interval: read %q (%q), want full with a reason", full.JiraRead, full.FullReadReason)
	}
	if e.sink.RedundantAdds() != 0 || e.sink.DuplicateCreates() != 0 {
		t.Fatalf("redundant writes: %d adds, %d creates", e.sink.RedundantAdds(), e.sink.DuplicateCreates())
	}
}

// Hand-made changes in Jira: incremental passes never write from a stale record of what they
// touch, and leave the rest to the next full read, which restores the managed state and
// leaves the unmanaged alone.
func TestDriftIsRepairedByTheNextFullRead(t *testing.T) {
	e, users := incrementalEnv(t)
	e.run(scheduled())
	u1, _ := e.sink.AccountByEmail("u1@example.com")
	u2, _ := e.sink.AccountByEmail("u2@example.com")
	stranger := e.sink.AddAccount(reconcile.Account{Email: "contractor@example.com", DisplayName: "Contractor", Active: true})
	// By hand: u1 and u2 leave engineering, a stranger joins it.
	e.sink.RemoveFromGroup("engineering", u1.AccountID)
	e.sink.RemoveFromGroup("engineering", u2.AccountID)
	if err := e.sink.AddToGroup("engineering", stranger); err != nil {
		t.Fatal(err)
	}
	// The IdP then takes u1 out of Engineering: the pass touches u1, re-reads it, and finds
	// nothing to remove. It does not see u2's drift (it does not touch u2).
	changed := slices.Clone(users)
	changed[1].Groups = nil
	e.src.Set(changed)
	run := e.run(scheduled())
	if run.JiraRead != reconcile.ReadIncremental || totalApplied(run) != 0 {
		t.Fatalf("incremental pass over drift: read %q, counts %v; want incremental and no write (u1 is already out)", run.JiraRead, run.Counts)
	}
	if n := e.run(scheduled()); totalApplied(n) != 0 {
		t.Fatalf("a second incremental pass wrote %v", n.Counts)
	}
	e.clock.advance(time.Hour)
	full := e.run(scheduled())
	if full.JiraRead != reconcile.ReadFull || applied(full, reconcile.KindAddMember) != 1 || applied(full, reconcile.KindRemoveMember) != 0 {
		t.Fatalf("full pass: read %q, counts %v; want u2 added back and nothing removed", full.JiraRead, full.Counts)
	}
	members := e.sink.Members("engineering")
	if !slices.Contains(members, u2.AccountID) || slices.Contains(members, u1.AccountID) || !slices.Contains(members, stranger) {
		t.Fatalf("engineering after the full pass: %v; want u2 back, u1 out, the stranger left alone", members)
	}
}

func TestFullReadTriggers(t *testing.T) {
	e, users := incrementalEnv(t)
	e.run(scheduled())
	if r := e.run(runner.RunOptions{Trigger: reconcile.TriggerAPI}); r.JiraRead != reconcile.ReadFull {
		t.Errorf("a manual (api) pass read %q, want full", r.JiraRead)
	}
	if r := e.run(runner.RunOptions{Trigger: reconcile.TriggerSchedule, Full: true}); r.JiraRead != reconcile.ReadFull {
		t.Errorf("a pass asked to read in full read %q", r.JiraRead)
	}
	if r := e.run(scheduled()); r.JiraRead != reconcile.ReadIncremental {
		t.Fatalf("a plain scheduled pass read %q, want incremental", r.JiraRead)
	}
	// A failed item: the outcome is unknown, so the next pass reads in full.
	e.sink.Fail = func(c reconcile.Change, _ int) error {
		if c.Kind == reconcile.KindRemoveMember {
			return errors.New("503")
		}
		return nil
	}
	changed := slices.Clone(users)
	changed[4].Groups = nil
	e.src.Set(changed)
	if r := e.run(scheduled()); r.Counts[reconcile.KindRemoveMember][reconcile.ItemFailed] != 1 {
		t.Fatalf("the removal did not fail: %v", r.Counts)
	}
	e.sink.Fail = nil
	if r := e.run(scheduled()); r.JiraRead != reconcile.ReadFull || applied(r, reconcile.KindRemoveMember) != 1 {
		t.Fatalf("after a failed item: read %q, counts %v; want a full read that finishes the removal", r.JiraRead, r.Counts)
	}
	// Everyone changes at once: re-reading all of them would cost more than a full read.
	all := slices.Clone(users)
	for i := range all {
		all[i].Groups = nil
	}
	e.src.Set(all)
	if r := e.run(scheduled()); r.JiraRead != reconcile.ReadFull || !strings.Contains(r.FullReadReason, "more calls than a full read") {
		t.Fatalf("mass change: read %q (%q), want a full read because it is cheaper", r.JiraRead, r.FullReadReason)
	}
	e.src.Set(users)
	e.run(scheduled())
	// A reload drops the cache.
	e.r.Reconfigure(baseMapping(), openSafety())
	if r := e.run(scheduled()); r.JiraRead != reconcile.ReadFull {
		t.Errorf("after a reload: read %q, want full", r.JiraRead)
	}
	// Interval 0: every pass reads in full.
	e.cfg.FullReadInterval = 0
	e.rebuild()
	e.run(scheduled())
	if r := e.run(scheduled()); r.JiraRead != reconcile.ReadFull {
		t.Errorf("with full_read_interval 0: read %q, want full", r.JiraRead)
	}
}

// A person the IdP adds between full reads is created once, and the pass after knows the
// account and its memberships without reading them.
func TestIncrementalCreatesArePatchedIntoTheCache(t *testing.T) {
	e, users := incrementalEnv(t)
	e.run(scheduled())
	more := append(slices.Clone(users), user("new", "newbie", "newbie@example.com", "Engineering"))
	e.src.Set(more)
	run := e.run(scheduled())
	if run.JiraRead != reconcile.ReadIncremental || applied(run, reconcile.KindCreateUser) != 1 {
		t.Fatalf("create pass: read %q, counts %v", run.JiraRead, run.Counts)
	}
	if sc := e.sink.LastScope(); !slices.Equal(sc.Emails, []string{"newbie@example.com"}) {
		t.Errorf("the create was not preceded by a lookup of its email: %+v", sc)
	}
	calls := e.sink.LiveCalls()
	if after := e.run(scheduled()); totalApplied(after) != 0 || e.sink.LiveCalls() != calls {
		t.Fatalf("the pass after the create: counts %v, %d reads; want nothing", after.Counts, e.sink.LiveCalls()-calls)
	}
	if e.sink.DuplicateCreates() != 0 || e.sink.RedundantAdds() != 0 {
		t.Fatalf("duplicates: %d creates, %d adds", e.sink.DuplicateCreates(), e.sink.RedundantAdds())
	}
}
