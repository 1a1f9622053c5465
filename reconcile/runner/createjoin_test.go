package runner_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/reconcile/reconciletest"
	"github.com/idsync/idsync/reconcile/runner"
)

// joinUsers are five new people: every one gets the default group, four get engineering.
func joinUsers() []reconcile.User {
	users := numbered(5, "Engineering")
	users[4].Groups = nil
	return users
}

// POST /user puts a new account into its products' default groups and the sink says so
// (Result.Groups). The planned adds of created people to those groups are then settled
// without a call: owned, audited and counted as done_by_create, never as writes; the adds
// Jira has not done are sent as usual.
func TestCreateJoinsDefaultGroupWithoutAnAdd(t *testing.T) {
	e := newEnv(t, joinUsers(), baseMapping(), openSafety())
	e.sink.CreateAddsTo = []string{"jira-software-users"}
	run := e.run(runner.RunOptions{})

	if got := e.sink.RedundantAdds(); got != 0 {
		t.Errorf("%d adds of accounts already in the group were sent (wasted writes)", got)
	}
	if got := e.sink.Calls(reconcile.KindAddMember); got != 4 {
		t.Errorf("%d add calls, want 4 (engineering only)", got)
	}
	adds := run.Counts[reconcile.KindAddMember]
	if adds[reconcile.ItemDoneByCreate] != 5 || adds[reconcile.ItemOK] != 4 || len(adds) != 2 {
		t.Errorf("add_member counts %v, want 5 done_by_create and 4 ok", adds)
	}
	if len(run.Changes.AddMembers) != 9 {
		t.Errorf("the plan lists %d adds, want all 9 (the run shows what was planned)", len(run.Changes.AddMembers))
	}

	// Ownership of every default-group membership, by group id, as an applied add records it.
	gid := e.sink.GroupID("jira-software-users")
	owned, err := e.store.Owned()
	if err != nil {
		t.Fatal(err)
	}
	ownedIn := map[string]bool{}
	for _, o := range owned {
		if o.Kind == reconcile.OwnedMembership && o.Container == gid {
			ownedIn[o.AccountID] = true
		}
	}
	audit, err := e.store.Audit(time.Time{}, "")
	if err != nil {
		t.Fatal(err)
	}
	byCreate := map[string]reconcile.AuditRecord{}
	for _, a := range audit {
		if a.Action == string(reconcile.KindAddMember) && a.Result == reconcile.ItemDoneByCreate {
			byCreate[a.AccountID] = a
		}
	}
	for _, u := range joinUsers() {
		acc, ok := e.sink.AccountByEmail(u.Email)
		if !ok {
			t.Fatalf("%s not created", u.Email)
		}
		if !ownedIn[acc.AccountID] {
			t.Errorf("%s: default-group membership not owned", u.UserName)
		}
		a, ok := byCreate[acc.AccountID]
		if !ok || a.Target != "jira-software-users" || a.UserName != u.UserName || a.RunID != run.ID ||
			!strings.Contains(a.Reason, "creation") {
			t.Errorf("%s: audit record of the settled add %+v", u.UserName, a)
		}
	}

	// Converged: the next pass has nothing to do, and owns what it found.
	if again := e.run(runner.RunOptions{}); again.Changes.HasChanges() {
		t.Errorf("not converged: %+v", again.Changes)
	}
}

// A sink that does not say which groups a create joined: the engine sends every add (Jira
// answers "already a member", a no-op) and counts them ok.
func TestCreateJoinsUnreportedAreSent(t *testing.T) {
	e := newEnv(t, joinUsers(), baseMapping(), openSafety())
	e.sink.CreateAddsTo = []string{"jira-software-users"}
	e.sink.HideCreateJoins = true
	run := e.run(runner.RunOptions{})
	if got := e.sink.RedundantAdds(); got != 5 {
		t.Errorf("%d redundant adds, want the 5 default-group adds sent", got)
	}
	if adds := run.Counts[reconcile.KindAddMember]; adds[reconcile.ItemOK] != 9 || adds[reconcile.ItemDoneByCreate] != 0 {
		t.Errorf("add_member counts %v", adds)
	}
}

// claimsJoins is a sink that reports the default group for adopting creates too.
type claimsJoins struct {
	*reconciletest.FakeSink
}

func (s claimsJoins) Apply(ctx context.Context, c reconcile.Change) (reconcile.Result, error) {
	res, err := s.FakeSink.Apply(ctx, c)
	if err == nil && c.Kind == reconcile.KindCreateUser && res.Adopted {
		res.Groups = []reconcile.GroupRef{{ID: s.GroupID("jira-software-users"), Name: "jira-software-users"}}
	}
	return res, err
}

// A create that adopts an existing account is not trusted to have joined anything, whatever
// the sink says: its adds are sent.
func TestCreateJoinsIgnoredForAdoptedAccount(t *testing.T) {
	e := newEnv(t, joinUsers()[:1], baseMapping(), openSafety())
	e.sink.CreateAddsTo = []string{"jira-software-users"}
	e.cfg.Sink = claimsJoins{e.sink}
	r, err := runner.NewRunner(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.r = r
	// The account exists but the listing misses it (search-index lag): the plan creates, the
	// create adopts.
	id := e.sink.AddAccount(reconcile.Account{Email: "u0@example.com", DisplayName: "u0", Active: true})
	lag := &lagSet{}
	lag.set(id)
	e.sink.Lagging = lag.has
	run := e.run(runner.RunOptions{})
	if run.Counts[reconcile.KindCreateUser][reconcile.ItemOK] != 1 || e.sink.DuplicateCreates() != 1 {
		t.Fatalf("expected an adopting create: %v", run.Counts)
	}
	if adds := run.Counts[reconcile.KindAddMember]; adds[reconcile.ItemOK] != 2 || adds[reconcile.ItemDoneByCreate] != 0 {
		t.Errorf("add_member counts %v, want both adds sent", adds)
	}
	if got := e.sink.Members("jira-software-users"); len(got) != 2 { // admin and u0
		t.Errorf("jira-software-users members %v", got)
	}
}

// A create whose default group is not a planned add (mapping.default_groups does not name it)
// records nothing for it: idsync does not own what it did not ask for.
func TestCreateJoinsOnlyPlannedAdds(t *testing.T) {
	m := baseMapping()
	m.DefaultGroups = nil
	e := newEnv(t, joinUsers(), m, openSafety())
	e.sink.CreateAddsTo = []string{"jira-software-users"}
	run := e.run(runner.RunOptions{})
	if adds := run.Counts[reconcile.KindAddMember]; adds[reconcile.ItemDoneByCreate] != 0 || adds[reconcile.ItemOK] != 4 {
		t.Errorf("add_member counts %v", adds)
	}
	gid := e.sink.GroupID("jira-software-users")
	owned, _ := e.store.Owned()
	for _, o := range owned {
		if o.Container == gid {
			t.Errorf("owns %+v without a planned add", o)
		}
	}
	if again := e.run(runner.RunOptions{}); again.Changes.HasChanges() {
		t.Errorf("not converged (the default group must not be removed): %+v", again.Changes)
	}
}

// Shutdown after any applied item, then a restart: the end state (memberships and their
// ownership) is the uninterrupted pass's, and no add of an account to a group it is in is
// ever sent.
func TestCreateJoinsSurviveShutdownAtEveryItem(t *testing.T) {
	world := func(t *testing.T) *env {
		e := newEnv(t, joinUsers(), baseMapping(), openSafety())
		e.sink.CreateAddsTo = []string{"jira-software-users"}
		e.cfg.Concurrency = 2
		e.rebuild()
		return e
	}
	ref := world(t)
	ref.run(runner.RunOptions{})
	want := endState(t, ref.sink, ref.store)
	applies := ref.sink.ApplyCalls()
	for k := 1; k <= applies; k++ {
		t.Run(fmt.Sprintf("after apply %d", k), func(t *testing.T) {
			e := world(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			e.sink.AfterApply = func(_ reconcile.Change, n int) {
				if n == k {
					cancel()
				}
			}
			_, _ = e.r.RunOnce(ctx, runner.RunOptions{Trigger: reconcile.TriggerCLI})
			e.sink.AfterApply = nil
			e.run(runner.RunOptions{Trigger: reconcile.TriggerStartup})
			if got := endState(t, e.sink, e.store); got != want {
				t.Fatalf("end state differs:\n--- got\n%s\n--- want\n%s", got, want)
			}
			if n := e.sink.RedundantAdds(); n != 0 {
				t.Errorf("%d redundant adds", n)
			}
		})
	}
}
