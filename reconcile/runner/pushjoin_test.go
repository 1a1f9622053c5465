package runner_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/reconcile/reconciletest"
	"github.com/idsync/idsync/reconcile/runner"
)

// The exact sequence of a hire pushed over SCIM to a source that is also pulled: a pull
// pass; the push (the SCIM record's key is the SCIM id); the push-triggered targeted pass that
// creates and links the account under the SCIM key; then the next complete pull, which lists
// the same person under the pull key. The person is desired and active throughout: nothing of
// theirs may be deprovisioned, and both records end up on the one account.
func TestPushedHireSurvivesTheNextPull(t *testing.T) {
	cases := []struct {
		name      string
		grace     int
		hide      bool   // Jira hides emails (privacy settings): no email match is possible
		pullEmail string // the pulled record's email (joined to the push by userName)
	}{
		{name: "same email, grace 0", pullEmail: "avery.jackson@example.com"},
		{name: "same email, grace 1", grace: 1, pullEmail: "avery.jackson@example.com"},
		{name: "hidden emails", hide: true, pullEmail: "avery.jackson@example.com"},
		{name: "pulled email differs", pullEmail: "avery@example.com"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			grace := tc.grace
			s := limits(configs.SafetyConfig{Policy: configs.PolicySync, GracePasses: grace})
			staff := []reconcile.User{user("1", "alice", "alice@example.com", "Engineering")}
			e := newEnv(t, staff, baseMapping(), s)
			e.sink.HideEmails = tc.hide
			push := reconciletest.NewFakeSource("corp", nil)
			e.cfg.Sources[0].Push = push
			e.rebuild()
			e.run(runner.RunOptions{})

			// The IdP hires avery and pushes her (and Engineering with her as member).
			e.clock.advance(time.Minute)
			pushed := user("scim-7f3a", "avery.jackson", "avery.jackson@example.com", "Engineering")
			pushed.Modified = e.clock.advance(time.Second)
			push.Set([]reconcile.User{pushed})
			run := e.run(runner.RunOptions{Trigger: reconcile.TriggerPush, Users: []string{"avery.jackson"}, Groups: []string{"Engineering"}})
			if applied(run, reconcile.KindCreateUser) != 1 {
				t.Fatalf("push pass did not create the hire: %+v %v", run.Counts, run.Errors)
			}
			avery, ok := e.sink.AccountByEmail("avery.jackson@example.com")
			if !ok {
				t.Fatal("no account for the pushed hire")
			}
			if l := linkOf(t, e.store, "corp/scim-7f3a"); l == nil || l.AccountID != avery.AccountID || !l.Created {
				t.Fatalf("push pass link %+v", l)
			}

			// The next complete pulls list her under the pull key (no later push).
			e.clock.advance(time.Minute)
			accounts := len(e.sink.Accounts())
			e.src.Set(append(slices.Clone(staff), user("5", "Avery.Jackson", tc.pullEmail, "Engineering")))
			for i := 0; i < grace+2; i++ {
				run = e.run(runner.RunOptions{})
				if n := len(run.Changes.DeactivateUsers) + len(run.Changes.RemoveMembers) + len(run.Changes.RemoveCustomers); n != 0 {
					t.Fatalf("full pass %d deprovisions the pushed hire: %+v", i+1, run.Changes)
				}
				for _, k := range reconcile.Kinds {
					if k.IsRemoval() && run.Counts[k][reconcile.ItemHeld] != 0 {
						t.Fatalf("full pass %d holds a %s for the pushed hire: %+v", i+1, k, run.Counts)
					}
				}
				for _, n := range run.Changes.Notes {
					if strings.Contains(n, "different accounts") {
						t.Fatalf("link confusion: %s", n)
					}
				}
				if run.Result != reconcile.ResultOK {
					t.Fatalf("full pass %d: %s %v", i+1, run.Result, run.Errors)
				}
			}
			if n := len(e.sink.Accounts()); n != accounts || e.sink.DuplicateCreates() != 0 {
				t.Fatalf("%d accounts after the pull, %d before; %d duplicate creates", n, accounts, e.sink.DuplicateCreates())
			}
			for _, key := range []string{"corp/scim-7f3a", "corp/5"} {
				l := linkOf(t, e.store, key)
				if l == nil || l.AccountID != avery.AccountID || l.Deactivated || l.MissingPasses != 0 || !l.Created {
					t.Errorf("link %s: %+v", key, l)
				}
			}
			for _, g := range []string{"engineering", "jira-software-users"} {
				if !slices.Contains(e.sink.Members(g), avery.AccountID) {
					t.Errorf("the hire lost %s", g)
				}
			}
			if again := e.run(runner.RunOptions{}); again.Changes.HasChanges() || len(again.Changes.Links) != 0 {
				t.Errorf("not converged: %+v", again.Changes)
			}

			// Her later deprovision at the IdP still works, under either key: a pushed
			// deletion is explicit.
			gone := disabled(pushed)
			gone.Modified = e.clock.advance(time.Minute)
			push.Set([]reconcile.User{gone})
			e.clock.advance(time.Second)
			run = e.run(runner.RunOptions{Trigger: reconcile.TriggerPush, Users: []string{"avery.jackson"}})
			if applied(run, reconcile.KindDeactivateUser) != 1 {
				t.Fatalf("pushed deletion not applied: %+v", run.Counts)
			}
		})
	}
}

func linkOf(t *testing.T, s runner.Store, key string) *reconcile.Link {
	t.Helper()
	links, err := s.Links()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if l.LinkKey() == key {
			return &l
		}
	}
	return nil
}

// When the next pull lists the pushed hire as disabled (as the demo's mass removal does), the
// deprovision is explicit and names the IdP's decision, not a missing record.
func TestPushedHireDisabledAtThePullIsAnExplicitDeprovision(t *testing.T) {
	e := newEnv(t, []reconcile.User{user("1", "alice", "alice@example.com")}, baseMapping(), limits(configs.SafetyConfig{GracePasses: 3}))
	e.sink.HideEmails = true
	push := reconciletest.NewFakeSource("corp", nil)
	e.cfg.Sources[0].Push = push
	e.rebuild()
	e.run(runner.RunOptions{})
	pushed := user("scim-9", "avery", "avery@example.com", "Engineering")
	pushed.Modified = e.clock.advance(time.Minute)
	push.Set([]reconcile.User{pushed})
	e.clock.advance(time.Second)
	e.run(runner.RunOptions{Trigger: reconcile.TriggerPush, Users: []string{"avery"}})
	e.src.Set([]reconcile.User{user("1", "alice", "alice@example.com"), disabled(user("5", "avery", "avery@example.com", "Engineering"))})
	e.clock.advance(time.Minute)
	run := e.run(runner.RunOptions{})
	if len(run.Changes.DeactivateUsers) != 1 || applied(run, reconcile.KindDeactivateUser) != 1 {
		t.Fatalf("the disabled hire is not deactivated at once (grace is for missing people): %+v", run.Counts)
	}
	if d := run.Changes.DeactivateUsers[0]; d.Deprovision != reconcile.DeprovisionExplicit || !strings.Contains(d.Reason, "disabled") {
		t.Errorf("deactivation %s: %q", d.Deprovision, d.Reason)
	}
	if len(run.Changes.CreateUsers) != 0 {
		t.Errorf("creates %+v", run.Changes.CreateUsers)
	}
}
