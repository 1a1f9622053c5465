package runner_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/reconcile/reconciletest"
	"github.com/idsync/idsync/reconcile/runner"
)

func TestRunnerFirstPassThenNoop(t *testing.T) {
	users := []reconcile.User{
		user("1", "alice", "alice@example.com", "Engineering", "Sales", "DEFAULT"),
		user("2", "bob", "bob@example.com", "Engineering"),
		user("3", "carol", "carol@example.com", "Jira-Service-group"),
		disabled(user("4", "dave", "dave@example.com", "Engineering")),
	}
	e := newEnv(t, users, baseMapping(), openSafety())
	run := e.run(runner.RunOptions{})
	if run.Result != reconcile.ResultOK {
		t.Fatalf("result %s errors %v", run.Result, run.Errors)
	}
	t.Logf("%s", e.sink.Describe())
	if got := applied(run, reconcile.KindCreateUser); got != 2 {
		t.Errorf("created users %d, want 2", got)
	}
	if got := applied(run, reconcile.KindCreateCustomer); got != 1 {
		t.Errorf("created customers %d, want 1", got)
	}
	if got := applied(run, reconcile.KindCreateGroup); got != 2 {
		t.Errorf("created groups %d, want 2 (engineering, Sales)", got)
	}
	if _, ok := e.sink.AccountByEmail("dave@example.com"); ok {
		t.Errorf("disabled dave got an account")
	}
	if n := len(e.sink.Members("jira-software-users")); n != 3 {
		t.Errorf("jira-software-users has %d members, want admin+alice+bob", n)
	}
	if g := e.sink.GroupID("DEFAULT"); g != "" {
		t.Errorf("DEFAULT was imported")
	}
	if n := len(e.sink.Customers("DEMO")); n != 1 {
		t.Errorf("DEMO customers %d, want 1", n)
	}
	if n := len(e.sink.OrgMembers("Acme")); n != 1 {
		t.Errorf("Acme members %d, want 1", n)
	}
	again := e.run(runner.RunOptions{})
	if again.Changes.HasChanges() || totalApplied(again) != 0 {
		t.Fatalf("second pass not a no-op: %+v", again.Counts)
	}
	if e.sink.DuplicateCreates() != 0 {
		t.Errorf("duplicate creates %d", e.sink.DuplicateCreates())
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunOnceIsSingleFlight(t *testing.T) {
	e := newEnv(t, []reconcile.User{user("1", "alice", "alice@example.com")}, baseMapping(), openSafety())
	block := make(chan struct{})
	e.src.Block = block
	var running, maxRunning atomic.Int32
	e.cfg.Observer = &funcObserver{started: func() {
		if n := running.Add(1); n > maxRunning.Load() {
			maxRunning.Store(n)
		}
	}, finished: func() { running.Add(-1) }}
	e.rebuild()
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.r.RunOnce(context.Background(), runner.RunOptions{Trigger: "api"}); err != nil {
				t.Error(err)
			}
		}()
	}
	for i := 0; i < 3; i++ {
		block <- struct{}{}
	}
	wg.Wait()
	if maxRunning.Load() != 1 {
		t.Fatalf("%d passes overlapped", maxRunning.Load())
	}
	if n := e.src.SnapshotCalls(); n != 3 {
		t.Fatalf("%d passes ran, want 3", n)
	}
}

type funcObserver struct {
	started, finished func()
	mu                sync.Mutex
	runs              []reconcile.Run
}

func (o *funcObserver) PassStarted(reconcile.Run) {
	if o.started != nil {
		o.started()
	}
}
func (o *funcObserver) SourceProgress(string, int, int)      {}
func (o *funcObserver) Progress(int, int)                    {}
func (o *funcObserver) ChangeApplied(reconcile.Kind, string) {}
func (o *funcObserver) SourceRead(reconcile.SourceRun)       {}
func (o *funcObserver) Held(int)                             {}
func (o *funcObserver) PassFinished(r reconcile.Run) {
	o.mu.Lock()
	o.runs = append(o.runs, r)
	o.mu.Unlock()
	if o.finished != nil {
		o.finished()
	}
}

func (o *funcObserver) finishedRuns() []reconcile.Run {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.runs)
}

func TestRequestsDuringAPassCoalesceIntoOne(t *testing.T) {
	e := newEnv(t, []reconcile.User{user("1", "alice", "alice@example.com"), user("2", "bob", "bob@example.com")}, baseMapping(), openSafety())
	block := make(chan struct{})
	e.src.Block = block
	obs := &funcObserver{}
	e.cfg.Observer = obs
	e.rebuild()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.r.Serve(ctx) }()
	e.r.Request(runner.RunOptions{Trigger: "schedule"})
	// Wait until the first pass runs (it blocks in the source), then pile up requests.
	waitFor(t, "the first pass to start", func() bool { return e.r.Status().Running })
	for i := 0; i < 10; i++ {
		e.r.Request(runner.RunOptions{Trigger: "push", Users: []string{fmt.Sprintf("u%d", i)}})
	}
	e.r.Request(runner.RunOptions{Trigger: "signal"})
	if !e.r.Status().Pending {
		t.Errorf("status does not show the pending pass")
	}
	block <- struct{}{} // first pass
	block <- struct{}{} // the one follow-up (a full pass absorbed the targeted ones)
	waitFor(t, "two passes to finish", func() bool { return len(obs.finishedRuns()) >= 2 })
	// A third pass would be pending or running now (blocked in the source): the follow-up
	// absorbed every request, so neither is.
	waitFor(t, "the runner to go idle", func() bool { st := e.r.Status(); return !st.Running })
	if st := e.r.Status(); st.Pending {
		t.Errorf("a third pass is pending: %+v", st)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	runs := obs.finishedRuns()
	if len(runs) != 2 {
		t.Fatalf("%d passes, want 2", len(runs))
	}
	if runs[1].Trigger != "signal" || runs[1].Target != "" {
		t.Errorf("follow-up %s %q, want the full signal pass", runs[1].Trigger, runs[1].Target)
	}
}

func TestTargetedRequestsMergeUsers(t *testing.T) {
	e := newEnv(t, []reconcile.User{user("1", "alice", "alice@example.com"), user("2", "bob", "bob@example.com")}, baseMapping(), openSafety())
	e.r.Request(runner.RunOptions{Trigger: "push", Users: []string{"alice"}})
	e.r.Request(runner.RunOptions{Trigger: "push", Users: []string{"BOB", "alice"}})
	obs := &funcObserver{}
	e.cfg.Observer = obs
	// Serve the merged request with a runner sharing nothing but the options: read them back.
	st := e.r.Status()
	if !st.Pending {
		t.Fatal("no pending request")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.r.Serve(ctx) }()
	waitFor(t, "the merged pass to finish", func() bool { return e.r.Status().Last != nil })
	cancel()
	<-done
	if got := e.r.Status().Last.Target; got != "users alice, BOB" {
		t.Fatalf("merged target %q", got)
	}
	if _, ok := e.sink.AccountByEmail("bob@example.com"); !ok {
		t.Errorf("bob not created by the targeted pass")
	}
}

func TestGraceOverPasses(t *testing.T) {
	s := openSafety()
	s.GracePasses = 2
	e := newEnv(t, []reconcile.User{user("1", "alice", "alice@example.com"), user("2", "bob", "bob@example.com")}, baseMapping(), s)
	e.run(runner.RunOptions{})
	e.src.Set([]reconcile.User{user("1", "alice", "alice@example.com")})
	bob, _ := e.sink.AccountByEmail("bob@example.com")
	held := func(o runner.RunOptions) {
		t.Helper()
		run := e.run(o)
		if applied(run, reconcile.KindDeactivateUser) != 0 || run.Counts[reconcile.KindDeactivateUser][reconcile.ItemHeld] != 1 {
			t.Fatalf("%+v: %+v", o, run.Counts)
		}
	}
	held(runner.RunOptions{})                               // missing 0 of 2
	held(runner.RunOptions{Trigger: reconcile.TriggerPush}) // missing 1 of 2; push passes do not count
	held(runner.RunOptions{})                               // missing 1 of 2
	run := e.run(runner.RunOptions{})
	if applied(run, reconcile.KindDeactivateUser) != 1 {
		t.Fatalf("missing pass after grace did not deactivate: %+v", run.Counts)
	}
	if slices.Contains(e.sink.Members("jira-software-users"), bob.AccountID) {
		t.Errorf("bob still has product access")
	}
	// Coming back reactivates and restores access.
	e.src.Set([]reconcile.User{user("1", "alice", "alice@example.com"), user("2", "bob", "bob@example.com")})
	run = e.run(runner.RunOptions{})
	if applied(run, reconcile.KindReactivateUser) != 1 || !slices.Contains(e.sink.Members("jira-software-users"), bob.AccountID) {
		t.Fatalf("not reactivated: %+v", run.Counts)
	}
	if again := e.run(runner.RunOptions{}); again.Changes.HasChanges() {
		t.Fatalf("not converged after reactivation: %+v", again.Counts)
	}
}

func TestIncompleteSourceHoldsRemovals(t *testing.T) {
	e := newEnv(t, []reconcile.User{user("1", "alice", "alice@example.com", "Engineering"), user("2", "bob", "bob@example.com")}, baseMapping(), openSafety())
	e.run(runner.RunOptions{})
	e.src.Set([]reconcile.User{user("3", "carl", "carl@example.com")})
	e.src.Fail = func(int) error { return errors.New("page 2: 502") }
	run := e.run(runner.RunOptions{})
	if run.Result != reconcile.ResultPartial || run.Complete || run.Sources[0].Complete {
		t.Fatalf("result %s complete %v sources %+v", run.Result, run.Complete, run.Sources)
	}
	if totalApplied(run) != 0 {
		t.Fatalf("an unreadable source changed Jira: %+v", run.Counts)
	}
	links, _ := e.store.Links()
	for _, l := range links {
		if l.MissingPasses != 0 {
			t.Errorf("grace counter moved on an incomplete pass: %+v", l)
		}
	}
}

func TestEverySourceFailedWithoutSnapshotFails(t *testing.T) {
	e := newEnv(t, []reconcile.User{user("1", "alice", "alice@example.com")}, baseMapping(), openSafety())
	e.src.Fail = func(int) error { return errors.New("401") }
	run, err := e.r.RunOnce(context.Background(), runner.RunOptions{Trigger: "cli"})
	if err == nil || run.Result != reconcile.ResultFailed || e.sink.ApplyCalls() != 0 || e.sink.LiveCalls() != 0 {
		t.Fatalf("err %v result %s", err, run.Result)
	}
	e.src.Fail = nil
	e.sink.LiveFail = func(reconcile.Scope) error { return errors.New("jira down") }
	run, err = e.r.RunOnce(context.Background(), runner.RunOptions{Trigger: "cli"})
	if err == nil || run.Result != reconcile.ResultFailed || e.sink.ApplyCalls() != 0 {
		t.Fatalf("sink failure: err %v result %s", err, run.Result)
	}
	if stored, _ := e.store.Runs(0); len(stored) != 2 {
		t.Errorf("failed runs not recorded: %d", len(stored))
	}
}

func TestSourceLimitedPass(t *testing.T) {
	e := newEnv(t, []reconcile.User{user("1", "alice", "alice@example.com")}, baseMapping(), openSafety())
	hr := reconciletest.NewFakeSource("hr", []reconcile.User{user("h1", "bob", "bob@example.com")})
	e.cfg.Sources = append(e.cfg.Sources, runner.SourceSpec{Source: hr, Priority: 5})
	e.rebuild()
	e.run(runner.RunOptions{})
	// Bob leaves hr, alice leaves corp; a pass limited to hr reads only hr.
	hr.Set(nil)
	e.src.Set(nil)
	before := e.src.SnapshotCalls()
	run := e.run(runner.RunOptions{Source: "hr"})
	if e.src.SnapshotCalls() != before {
		t.Errorf("corp was read")
	}
	if run.Complete || applied(run, reconcile.KindDeactivateUser) != 0 || run.Counts[reconcile.KindDeactivateUser][reconcile.ItemHeld] != 1 {
		t.Fatalf("limited pass: complete %v counts %+v", run.Complete, run.Counts)
	}
	links, _ := e.store.Links()
	for _, l := range links {
		if l.MissingPasses != 0 {
			t.Errorf("grace moved on a limited pass: %+v", l)
		}
	}
}

func TestTargetedPass(t *testing.T) {
	e := newEnv(t, []reconcile.User{user("1", "alice", "alice@example.com", "Engineering"), user("2", "bob", "bob@example.com", "Engineering")}, baseMapping(), openSafety())
	e.run(runner.RunOptions{})
	bob, _ := e.sink.AccountByEmail("bob@example.com")
	alice, _ := e.sink.AccountByEmail("alice@example.com")
	// Alice moves to Sales, bob vanishes, dave is hired; only alice and dave are targeted.
	e.src.Set([]reconcile.User{user("1", "alice", "alice@example.com", "Sales"), user("4", "dave", "dave@example.com"),
		disabled(user("5", "erin", "erin@example.com"))})
	run := e.run(runner.RunOptions{Trigger: "api", Users: []string{"alice", "dave"}})
	if !e.sink.LastScope().Targeted {
		t.Errorf("Jira read was not targeted")
	}
	if !slices.Contains(e.sink.Members("Sales"), alice.AccountID) {
		t.Errorf("alice not added to Sales")
	}
	if _, ok := e.sink.AccountByEmail("dave@example.com"); !ok {
		t.Errorf("dave not created")
	}
	if !slices.Contains(e.sink.Members("engineering"), alice.AccountID) {
		t.Errorf("a targeted pass removed a membership (waits for a full pass)")
	}
	if applied(run, reconcile.KindDeactivateUser) != 0 || !slices.Contains(e.sink.Members("jira-software-users"), bob.AccountID) {
		t.Errorf("a targeted pass deprovisioned someone it did not target")
	}
	if e.src.UserCalls() != 2 {
		t.Errorf("users fetched %d times, want 2", e.src.UserCalls())
	}
}

func TestPushOverlayAndExplicitDeprovision(t *testing.T) {
	e := newEnv(t, []reconcile.User{user("1", "alice", "alice@example.com"), user("2", "bob", "bob@example.com")}, baseMapping(), limits(configs.SafetyConfig{GracePasses: 5}))
	push := reconciletest.NewFakeSource("corp", nil)
	e.cfg.Sources[0].Push = push
	e.rebuild()
	e.run(runner.RunOptions{})
	// The IdP pushes bob's deletion after the last pull: explicit, so no grace.
	gone := disabled(user("scim-b", "bob", "bob@example.com"))
	gone.Modified = e.clock.advance(time.Minute)
	push.Set([]reconcile.User{gone})
	e.clock.advance(time.Minute)
	e.src.Fail = func(int) error { return errors.New("timeout") } // no newer pull: the push is newest
	run := e.run(runner.RunOptions{Trigger: reconcile.TriggerPush, Users: []string{"bob"}})
	if applied(run, reconcile.KindDeactivateUser) != 1 {
		t.Fatalf("pushed deletion not applied: %+v %v", run.Counts, run.Errors)
	}
	// The next complete pull still lists bob active and is authoritative: he comes back.
	e.src.Fail = nil
	run = e.run(runner.RunOptions{})
	if applied(run, reconcile.KindReactivateUser) != 1 {
		t.Fatalf("complete pull did not win over the older push: %+v", run.Counts)
	}
}

func TestApprovalFlow(t *testing.T) {
	s := limits(configs.SafetyConfig{Policy: configs.PolicySync, MaxDeactivations: 2})
	users := numbered(20)
	e := newEnv(t, users, baseMapping(), s)
	e.run(runner.RunOptions{})
	e.src.Set(users[:15]) // five leave at once
	held := e.run(runner.RunOptions{})
	if held.Result != reconcile.ResultHeld || held.Held != 5 || applied(held, reconcile.KindDeactivateUser) != 0 {
		t.Fatalf("breaker did not hold: %s %d %+v", held.Result, held.Held, held.Counts)
	}
	// Later passes keep holding and replace the held plan.
	held2 := e.run(runner.RunOptions{})
	if held2.Result != reconcile.ResultHeld {
		t.Fatalf("second pass %s", held2.Result)
	}
	if _, err := e.r.Approve(held.ID, "ops"); err == nil || !strings.Contains(err.Error(), held2.ID) {
		t.Fatalf("approving a stale run: %v", err)
	}
	if _, err := e.r.Approve(held2.ID, "ops"); err != nil {
		t.Fatal(err)
	}
	if h := e.r.Status().Hold; h == nil || !h.Approved {
		t.Fatalf("status hold %+v", h)
	}
	// Three more leave: the five approved apply, the three others trip the breaker on their
	// own (over max_deactivations 2) and are held in a new plan.
	e.src.Set(users[:12])
	again := e.run(runner.RunOptions{})
	if again.Result != reconcile.ResultHeld || applied(again, reconcile.KindDeactivateUser) != 5 || again.Held != 3 {
		t.Fatalf("approved items with unapproved ones over the limit: %s held %d %+v", again.Result, again.Held, again.Counts)
	}
	if _, err := e.r.Approve(again.ID, "ops"); err != nil {
		t.Fatal(err)
	}
	run := e.run(runner.RunOptions{})
	if applied(run, reconcile.KindDeactivateUser) != 3 || run.Result != reconcile.ResultOK {
		t.Fatalf("approved pass: %s %+v", run.Result, run.Counts)
	}
	if e.r.Status().Hold != nil {
		t.Errorf("hold not cleared")
	}
	audit, _ := e.store.Audit(time.Time{}, "")
	var approvals, deacts int
	for _, a := range audit {
		if a.Action == "approve" {
			approvals++
		}
		if a.Action == string(reconcile.KindDeactivateUser) && a.Actor == "approve:ops" && a.Result == reconcile.ItemOK {
			deacts++
		}
	}
	if approvals != 2 || deacts != 8 {
		t.Errorf("audit: %d approvals, %d deactivations by approve:ops", approvals, deacts)
	}
	// The approval was used once: a new mass change holds again.
	e.src.Set(users[:8])
	if run := e.run(runner.RunOptions{}); run.Result != reconcile.ResultHeld {
		t.Errorf("approval reused: %s", run.Result)
	}
}

// An approval is a set, not a count: approving five held leavers never lets five other
// people go (issue: after approving N, any N x 1.1 accounts could be deactivated).
func TestApprovalBindsToItems(t *testing.T) {
	s := limits(configs.SafetyConfig{Policy: configs.PolicySync, MaxDeactivations: 2})
	users := numbered(10)
	e := newEnv(t, users, baseMapping(), s)
	e.run(runner.RunOptions{})
	e.src.Set(users[:5]) // u5..u9 leave
	held := e.run(runner.RunOptions{})
	if held.Result != reconcile.ResultHeld || held.Held != 5 {
		t.Fatalf("breaker did not hold: %s %d", held.Result, held.Held)
	}
	h, err := e.r.Approve(held.ID, "ops")
	if err != nil {
		t.Fatal(err)
	}
	if sum := h.Summary(5); !strings.Contains(sum, "5 deactivate_user (u5 <u5@example.com>, u6 <u6@example.com>") {
		t.Errorf("approval summary %q", sum)
	}
	// Before the next pass the IdP changes its mind: u5..u9 are back, u0..u4 leave instead.
	e.src.Set(users[5:])
	run := e.run(runner.RunOptions{})
	if n := applied(run, reconcile.KindDeactivateUser); n != 0 {
		t.Fatalf("%d people the admin never saw were deactivated under an approval of others", n)
	}
	if run.Result != reconcile.ResultHeld || run.Held != 5 {
		t.Fatalf("the five unapproved leavers must be held on their own: %s held %d", run.Result, run.Held)
	}
	for _, x := range e.r.Status().Hold.Changes.DeactivateUsers {
		if x.UserName >= "u5" {
			t.Errorf("new held plan names %s, who came back", x.UserName)
		}
	}
	// Some approved and some not: only the approved apply beyond the limit.
	e.src.Set(users[:7]) // u7..u9 leave: approve them, then u0, u1, u2 leave too
	h2 := e.run(runner.RunOptions{})
	if h2.Result != reconcile.ResultHeld {
		t.Fatalf("%s", h2.Result)
	}
	if _, err := e.r.Approve(h2.ID, "ops"); err != nil {
		t.Fatal(err)
	}
	e.src.Set(users[3:7])
	mixed := e.run(runner.RunOptions{})
	got := map[string]bool{}
	for _, a := range mustAudit(t, e.store, mixed.ID) {
		if a.Action == string(reconcile.KindDeactivateUser) && a.Result == reconcile.ItemOK {
			got[a.UserName] = true
			if a.Actor != "approve:ops" {
				t.Errorf("%s deactivated by %s, want approve:ops", a.UserName, a.Actor)
			}
		}
	}
	if len(got) != 3 || !got["u7"] || !got["u8"] || !got["u9"] || mixed.Held != 3 {
		t.Fatalf("mixed pass deactivated %v, held %d; want exactly u7..u9 applied and u0..u2 held", got, mixed.Held)
	}
}

func mustAudit(t *testing.T, st runner.Store, runID string) []reconcile.AuditRecord {
	t.Helper()
	all, err := st.Audit(time.Time{}, "")
	if err != nil {
		t.Fatal(err)
	}
	var out []reconcile.AuditRecord
	for _, a := range all {
		if a.RunID == runID {
			out = append(out, a)
		}
	}
	return out
}

func TestDryRunAppliesNothing(t *testing.T) {
	e := newEnv(t, []reconcile.User{user("1", "alice", "alice@example.com")}, baseMapping(), openSafety())
	run := e.run(runner.RunOptions{DryRun: true})
	if !run.DryRun || e.sink.ApplyCalls() != 0 || run.Counts[reconcile.KindCreateUser][reconcile.ItemPlanned] != 1 {
		t.Fatalf("dry run: %+v applies %d", run.Counts, e.sink.ApplyCalls())
	}
	if links, _ := e.store.Links(); len(links) != 0 {
		t.Errorf("dry run journaled links")
	}
	if r, err := e.store.Run(run.ID); err != nil || !r.DryRun {
		t.Errorf("dry run not recorded: %v", err)
	}
}

func TestFailedItemSkipsDependantsAndRetriesNextPass(t *testing.T) {
	e := newEnv(t, []reconcile.User{user("1", "alice", "alice@example.com", "Engineering"), user("2", "bob", "bob@example.com")}, baseMapping(), openSafety())
	e.sink.Fail = func(c reconcile.Change, _ int) error {
		if c.Kind == reconcile.KindCreateUser && c.UserName == "alice" {
			return errors.New("400 licence limit")
		}
		return nil
	}
	run := e.run(runner.RunOptions{})
	if run.Result != reconcile.ResultPartial || run.Counts[reconcile.KindCreateUser][reconcile.ItemFailed] != 1 ||
		run.Counts[reconcile.KindAddMember][reconcile.ItemSkipped] != 2 || applied(run, reconcile.KindCreateUser) != 1 {
		t.Fatalf("%s %+v", run.Result, run.Counts)
	}
	if len(run.Errors) != 1 || !strings.Contains(run.Errors[0], "licence limit") {
		t.Errorf("errors %v", run.Errors)
	}
	e.sink.Fail = nil
	if run := e.run(runner.RunOptions{}); applied(run, reconcile.KindCreateUser) != 1 || run.Result != reconcile.ResultOK {
		t.Fatalf("retry: %+v", run.Counts)
	}
}

func TestRenderTable(t *testing.T) {
	e := newEnv(t, []reconcile.User{user("1", "alice", "alice@example.com", "Engineering"), {Key: "2", UserName: "bob", Email: "bob@example.com", DisplayName: "Bob\tBuilder", Active: true}}, baseMapping(), openSafety())
	e.sink.AddAccount(reconcile.Account{Email: "bob@example.com", DisplayName: "Bob", Active: true})
	run := e.run(runner.RunOptions{DryRun: true})
	var b strings.Builder
	if err := reconcile.Render(&b, *run.Changes, reconcile.RenderOptions{Links: true}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"KIND", "create_user", "alice <alice@example.com>", "in IdP group Engineering -> engineering",
		"update_user (unsupported: needs admin_api)", "Summary:", "(1 unsupported)", "link"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Bob\tBuilder") {
		t.Errorf("a tab from source data broke the table")
	}
}

// Ownership drops are counted but not listed: the held table then has no header either.
func TestRenderHeldOwnershipOnly(t *testing.T) {
	held := []reconcile.Held{{Guard: reconcile.GuardOwnership, Change: reconcile.Change{Kind: reconcile.KindRemoveMember, UserName: "admin"}, Reason: "not owned"}}
	var b strings.Builder
	if err := reconcile.Render(&b, reconcile.Changes{}, reconcile.RenderOptions{Held: held}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.Contains(out, "ownership") || strings.Contains(out, "GUARD") || strings.Contains(out, "admin") {
		t.Errorf("held section:\n%s", out)
	}
	held = append(held, reconcile.Held{Guard: reconcile.GuardGrace, Change: reconcile.Change{Kind: reconcile.KindDeactivateUser, UserName: "leaver"}, Reason: "grace"})
	b.Reset()
	if err := reconcile.Render(&b, reconcile.Changes{}, reconcile.RenderOptions{Held: held}); err != nil {
		t.Fatal(err)
	}
	if out := b.String(); !strings.Contains(out, "GUARD") || !strings.Contains(out, "leaver") {
		t.Errorf("held section with a grace item:\n%s", out)
	}
}

// An approved deactivation Jira refuses keeps its approval: the next full passes retry it
// without counting it, holds of other people do not absorb it, and the approval goes once it
// succeeds. Before, each pass counted it again, so approvals alternated between it and the
// rest forever.
func TestRefusedApprovedItemKeepsItsApproval(t *testing.T) {
	s := limits(configs.SafetyConfig{Policy: configs.PolicySync, MaxDeactivations: 2})
	users := numbered(10)
	e := newEnv(t, users, baseMapping(), s)
	e.run(runner.RunOptions{})
	var refuse atomic.Bool
	refuse.Store(true)
	e.sink.Fail = func(c reconcile.Change, _ int) error {
		if c.Kind == reconcile.KindDeactivateUser && c.UserName == "u9" && refuse.Load() {
			return errors.New("403: the group is managed elsewhere")
		}
		return nil
	}
	e.src.Set(users[:5]) // u5..u9 leave
	held := e.run(runner.RunOptions{})
	if _, err := e.r.Approve(held.ID, "ops"); err != nil {
		t.Fatal(err)
	}
	e.src.Set(users[3:5]) // u0..u2 leave too, beyond the limit on their own
	run := e.run(runner.RunOptions{})
	if n := applied(run, reconcile.KindDeactivateUser); n != 4 || run.Held != 3 {
		t.Fatalf("approved pass: %d deactivated, %d held; want u5..u8 deactivated, u0..u2 held", n, run.Held)
	}
	standing, err := e.store.Standing()
	if err != nil || len(standing) != 1 || standing[0].Change.UserName != "u9" || standing[0].By != "ops" || standing[0].RunID != held.ID {
		t.Fatalf("standing approvals %+v, %v; want u9's approval by ops in run %s", standing, err, held.ID)
	}
	// With a new hold open, the refused item is still retried under its approval, not held.
	retry := e.run(runner.RunOptions{})
	if retry.Held != 3 || retry.Counts[reconcile.KindDeactivateUser][reconcile.ItemFailed] != 1 {
		t.Fatalf("retry pass: held %d, counts %v; want u0..u2 held and u9 tried", retry.Held, retry.Counts)
	}
	for _, x := range e.r.Status().Hold.Changes.DeactivateUsers {
		if x.UserName == "u9" {
			t.Fatal("u9's standing approval was put back into a held plan")
		}
	}
	if _, err := e.r.Approve(retry.ID, "sec"); err != nil {
		t.Fatal(err)
	}
	after := e.run(runner.RunOptions{})
	if after.Result == reconcile.ResultHeld || applied(after, reconcile.KindDeactivateUser) != 3 {
		t.Fatalf("after the second approval: %s, %d deactivated; want u0..u2 applied and nothing held", after.Result, applied(after, reconcile.KindDeactivateUser))
	}
	for _, a := range mustAudit(t, e.store, after.ID) {
		if a.UserName == "u9" && a.Actor != "approve:ops" {
			t.Errorf("u9 retried by %q, want approve:ops", a.Actor)
		}
	}
	// A targeted pass is not full: the standing approval does not let u9 past the breaker there.
	if got := e.run(runner.RunOptions{Users: []string{"u9"}, Trigger: reconcile.TriggerPush}); applied(got, reconcile.KindDeactivateUser) != 0 {
		t.Errorf("a targeted pass applied the standing approval")
	}
	refuse.Store(false)
	done := e.run(runner.RunOptions{})
	if applied(done, reconcile.KindDeactivateUser) != 1 {
		t.Fatalf("u9 not deactivated once Jira let it: %v", done.Counts)
	}
	if standing, _ := e.store.Standing(); len(standing) != 0 {
		t.Fatalf("a standing approval outlived its item: %+v", standing)
	}
}
