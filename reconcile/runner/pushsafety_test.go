package runner_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/reconcile/reconciletest"
	"github.com/idsync/idsync/reconcile/runner"
)

// A person deleted by a push stays deprovisioned when a later push pass cannot read the push
// store: the older pulled snapshot (which still lists them active) must not stand in for the
// pushes it cannot see.
func TestPushStoreFailureNeverUndoesAPushedDeprovision(t *testing.T) {
	for _, trigger := range []string{reconcile.TriggerPush, reconcile.TriggerAPI} {
		t.Run(trigger, func(t *testing.T) {
			alice := user("1", "alice", "alice@example.com", "Engineering")
			bob := user("2", "bob", "bob@example.com", "Engineering")
			e := newEnv(t, []reconcile.User{alice, bob}, baseMapping(), openSafety())
			push := reconciletest.NewFakeSource("corp", nil)
			e.cfg.Sources[0].Push = push
			e.rebuild()
			e.run(runner.RunOptions{})
			acct, ok := e.sink.AccountByEmail("bob@example.com")
			if !ok {
				t.Fatal("bob has no account")
			}

			// The IdP deletes bob by push; the push pass deprovisions him.
			e.clock.advance(time.Minute)
			gone := disabled(bob)
			gone.Key = "scim-2"
			gone.Modified = e.clock.advance(time.Second)
			push.Set([]reconcile.User{gone})
			if run := e.run(runner.RunOptions{Trigger: reconcile.TriggerPush, Users: []string{"bob"}}); applied(run, reconcile.KindDeactivateUser) != 1 {
				t.Fatalf("pushed deletion not applied: %+v", run.Counts)
			}

			// Now the push store cannot be read.
			push.Fail = func(int) error { return errors.New("push store: read failed") }
			e.clock.advance(time.Minute)
			run, err := e.r.RunOnce(context.Background(), runner.RunOptions{Trigger: trigger, Users: []string{"bob"}})
			if err == nil {
				t.Errorf("a pass that could not read the pushes of its only source succeeded: %s", run.Result)
			}
			if n := applied(run, reconcile.KindReactivateUser) + applied(run, reconcile.KindCreateUser) + applied(run, reconcile.KindAddMember); n != 0 {
				t.Fatalf("a pass that could not read the pushes gave bob access back: %+v", run.Counts)
			}
			for _, g := range []string{"engineering", "jira-software-users"} {
				if slices.Contains(e.sink.Members(g), acct.AccountID) {
					t.Errorf("bob is back in %s", g)
				}
			}
			// A full pass with the failure still armed does not either.
			if run, _ := e.r.RunOnce(context.Background(), runner.RunOptions{Trigger: reconcile.TriggerCLI}); applied(run, reconcile.KindReactivateUser) != 0 {
				t.Fatalf("full pass reactivated bob: %+v", run.Counts)
			}
		})
	}
}

// A newer push changes only what SCIM carries: the groups and attributes only the pull knows
// stay, so a push landing between two pulls never removes a pulled membership (which the next
// pull would add back: access flapping).
func TestNewerPushKeepsPullOnlyGroups(t *testing.T) {
	m := baseMapping()
	m.Groups = append(m.Groups, configs.GroupMapping{IdP: "Finance", Jira: []string{"finance"}})
	alice := user("1", "alice", "alice@example.com", "Engineering", "Finance")
	alice.Attributes = map[string]string{"department": "Ledger"}
	e := newEnv(t, []reconcile.User{alice}, m, openSafety())
	push := reconciletest.NewFakeSource("corp", nil)
	e.cfg.Sources[0].Push = push
	e.rebuild()
	e.run(runner.RunOptions{})
	acct, _ := e.sink.AccountByEmail("alice@example.com")

	// The SCIM client pushes only Engineering (and a new name); Finance is pull-only.
	e.clock.advance(time.Minute)
	pushed := user("scim-1", "alice", "alice@example.com", "Engineering")
	pushed.DisplayName = "Alice Liddell"
	pushed.Modified = e.clock.advance(time.Second)
	push.Set([]reconcile.User{pushed}, reconcile.Group{Key: "scim-g1", Name: "Engineering"})
	for _, o := range []runner.RunOptions{{Trigger: reconcile.TriggerPush, Users: []string{"alice"}}, {}} {
		run := e.run(o)
		if n := len(run.Changes.RemoveMembers) + run.Counts[reconcile.KindRemoveMember][reconcile.ItemHeld]; n != 0 {
			t.Fatalf("pass %q removes a pull-only membership: %+v", o.Trigger, run.Changes.RemoveMembers)
		}
	}
	if !slices.Contains(e.sink.Members("finance"), acct.AccountID) {
		t.Fatal("alice lost finance")
	}

}

func TestOverlayIsFieldByField(t *testing.T) {
	taken := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	pulled := reconcile.Directory{Source: "corp", Users: []reconcile.User{{
		Key: "7", UserName: "alice", Email: "alice@example.com", DisplayName: "Alice", GivenName: "Alice", FamilyName: "L",
		Active: true, Groups: []string{"Engineering", "Finance"}, Attributes: map[string]string{"department": "Ledger", "title": "Clerk"},
	}}}
	push := reconcile.Directory{Source: "corp",
		Users: []reconcile.User{{Key: "scim-1", UserName: "ALICE", Email: "alice@new.example.com", DisplayName: "Alice Liddell",
			Active: true, Groups: []string{"Support"}, Attributes: map[string]string{"title": "Lead"}, Modified: taken.Add(time.Minute)}},
		Groups: []reconcile.Group{{Key: "g1", Name: "engineering"}, {Key: "g2", Name: "Support"}},
	}
	out, warns := reconcile.Overlay(pulled, taken, push)
	if len(warns) != 0 || len(out.Users) != 1 {
		t.Fatalf("warnings %v, users %+v", warns, out.Users)
	}
	u := out.Users[0]
	if u.Key != "7" || !slices.Contains(u.Aliases, "scim-1") {
		t.Errorf("key %q aliases %v", u.Key, u.Aliases)
	}
	if u.Email != "alice@new.example.com" || u.DisplayName != "Alice Liddell" || u.GivenName != "Alice" || u.FamilyName != "L" {
		t.Errorf("names and email: %+v", u)
	}
	slices.Sort(u.Groups)
	if !slices.Equal(u.Groups, []string{"Finance", "Support"}) {
		t.Errorf("groups %v, want the pull-only Finance kept, the pushed Engineering left, Support added", u.Groups)
	}
	if u.Attributes["department"] != "Ledger" || u.Attributes["title"] != "Lead" {
		t.Errorf("attributes %v", u.Attributes)
	}
	if pulled.Users[0].Attributes["title"] != "Clerk" {
		t.Error("the overlay changed the pulled directory")
	}
}

// Deprovisioning is exhaustive: a step that fails does not stop the others, the person is
// reported as partly deactivated, the next pass takes what is left, and a return restores
// every group taken over both passes.
func TestPartialDeactivationIsReportedAndFinished(t *testing.T) {
	alice := user("1", "alice", "alice@example.com", "Engineering")
	bob := user("2", "bob", "bob@example.com", "Engineering")
	e := newEnv(t, []reconcile.User{alice, bob}, baseMapping(), openSafety())
	e.run(runner.RunOptions{})
	acct, _ := e.sink.AccountByEmail("alice@example.com")
	e.sink.FailLeave = func(id, group string) error {
		if id == acct.AccountID && group == "jira-software-users" {
			return errors.New("403 forbidden")
		}
		return nil
	}
	e.src.Set([]reconcile.User{bob})
	run := e.run(runner.RunOptions{})
	if run.Counts[reconcile.KindDeactivateUser][reconcile.ItemFailed] != 1 || run.Result == reconcile.ResultOK {
		t.Fatalf("partial deactivation: %s %+v", run.Result, run.Counts)
	}
	if slices.Contains(e.sink.Members("engineering"), acct.AccountID) {
		t.Fatal("one failed step stopped the others: alice is still in engineering")
	}
	var partial bool
	for _, a := range mustAudit(t, e.store, run.ID) {
		if a.Action == string(reconcile.KindDeactivateUser) && a.Result == reconcile.ItemFailed &&
			strings.Contains(a.Error, "partly deactivated (left engineering)") && strings.Contains(a.Error, "jira-software-users") {
			partial = true
		}
	}
	if !partial {
		t.Errorf("the audit does not say alice is partly deactivated and which step failed")
	}

	e.sink.FailLeave = nil
	run = e.run(runner.RunOptions{})
	if applied(run, reconcile.KindDeactivateUser) != 1 || slices.Contains(e.sink.Members("jira-software-users"), acct.AccountID) {
		t.Fatalf("the next pass did not finish the deactivation: %+v", run.Counts)
	}
	if l := linkOf(t, e.store, "corp/1"); l == nil || !l.Deactivated {
		t.Fatalf("link %+v", l)
	}

	e.src.Set([]reconcile.User{alice, bob})
	back := e.run(runner.RunOptions{})
	if rs := back.Changes.ReactivateUsers; len(rs) != 1 || rs[0].Method != configs.DeactivateRemoveAccess {
		t.Errorf("the reactivation does not name the method that took the access: %+v", rs)
	}
	for _, g := range []string{"engineering", "jira-software-users"} {
		if !slices.Contains(e.sink.Members(g), acct.AccountID) {
			t.Errorf("alice's return did not restore %s", g)
		}
	}
}
