package simulation

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/sinks/jira/jiratest"
)

// Each invariant function must flag a hand-made violation and stay quiet on the lawful
// twin of it: a check that cannot fail checks nothing.

const (
	accAnn   = "acc-ann"   // Ann, active, in Engineering
	accBob   = "acc-bob"   // Bob, gone
	accAdmin = "acc-admin" // the site admin
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fixture is a pass record with two people and a site admin, nothing written yet.
func fixture() *passRecord {
	m := &model{people: map[string]*person{}, groups: map[string]bool{"Engineering": true}, pushGroups: map[string]bool{},
		params: Params{Mappings: map[string][]string{"Engineering": {"engineering"}}, MaxDeact: 2, MaxPercent: 50, MaxRemovals: 2}}
	ann := &person{ID: "1", UserName: "ann@example.com", Email: "ann@example.com", Emails: []string{"ann@example.com"}, Groups: map[string]bool{"Engineering": true}}
	bob := &person{ID: "2", UserName: "bob@example.com", Email: "bob@example.com", Emails: []string{"bob@example.com"}, Groups: map[string]bool{}, Status: gone}
	m.add(ann)
	m.add(bob)
	d := newDirectory()
	d.addPerson(ann)
	d.addPerson(bob)
	d.learn(accAnn, "ann@example.com")
	d.learn(accBob, "bob@example.com")
	d.seedAccount(jiratest.Account{AccountID: accAdmin, AccountType: jiratest.TypeAtlassian, Email: jiratest.DefaultEmail})
	st := jiraState{
		Accounts: map[string]jiratest.Account{
			accAnn:   {AccountID: accAnn, Email: "ann@example.com", Active: true, OnSite: true},
			accBob:   {AccountID: accBob, Email: "bob@example.com", Active: true, OnSite: true},
			accAdmin: {AccountID: accAdmin, Email: jiratest.DefaultEmail, Active: true, OnSite: true},
		},
		Members: map[string]map[string]bool{
			defaultGroup:     {accAnn: true, accBob: true, accAdmin: true},
			"engineering":    {accAnn: true},
			contractorsGroup: {accAnn: true},
		},
	}
	tl := &timeline{certain: -1}
	tl.addView(m.view(t0, 1), true)
	return &passRecord{N: 1, Kind: kindFull, Before: st, After: st, Params: m.params, Model: m, Dir: d, TL: tl,
		ManagedEver: m.params.managedGroups(), Start: m.view(t0, 1), ManagedUsers: 10, ManagedMemberships: 10,
		Owner: map[memKey]string{{defaultGroup, accAnn}: "idsync", {"engineering", accAnn}: "admin"},
		Run:   reconcile.Run{Complete: true, Sources: []reconcile.SourceRun{{Name: "corp", Complete: true}}}}
}

func removal(group, acc string) Write {
	return Write{Pass: 1, Method: http.MethodDelete, Template: "/rest/api/3/group/user", Status: 200, Accounts: []string{acc}, GroupName: group, Ahead: true}
}

func add(group, acc string) Write {
	return Write{Pass: 1, Method: http.MethodPost, Template: "/rest/api/3/group/user", Status: 201, Accounts: []string{acc}, GroupName: group, Ahead: true}
}

func expect(t *testing.T, name string, vs []Violation, inv string, want bool) {
	t.Helper()
	got := false
	for _, v := range vs {
		if v.Invariant == inv {
			got = true
		}
	}
	if got != want {
		t.Errorf("%s: %s flagged=%v, want %v (%v)", name, inv, got, want, vs)
	}
}

func TestOwnershipFlags(t *testing.T) {
	p := fixture()
	p.Writes = []Write{add(defaultGroup, accAdmin)}
	expect(t, "a write to the site admin", checkOwnership(p), I1, true)

	p = fixture()
	p.Writes = []Write{removal(contractorsGroup, accAnn)}
	expect(t, "a removal from an unmanaged group", checkOwnership(p), I1, true)

	p = fixture()
	p.Writes = []Write{removal("engineering", accAnn)}
	expect(t, "a removal of a membership an admin added", checkOwnership(p), I1, true)

	p = fixture()
	p.Writes = []Write{{Pass: 1, Method: http.MethodDelete, Template: "/rest/api/3/user", Accounts: []string{accBob}}}
	expect(t, "an account deleted", checkOwnership(p), I1, true)

	p = fixture()
	p.Writes = []Write{removal(defaultGroup, accAnn)}
	expect(t, "a removal of a membership idsync added", checkOwnership(p), I1, false)

	p = fixture()
	p.Owner[memKey{"engineering", accBob}] = "admin"
	p.Before.Members["engineering"][accBob] = true
	p.Writes = []Write{removal("engineering", accBob)}
	expect(t, "a gone person's manual membership, as a deprovision step", checkOwnership(p), I1, false)
}

func TestDeprovisionedFlags(t *testing.T) {
	p := fixture()
	expect(t, "a gone person who kept access", checkDeprovisioned(p.After, p.Dir, p.Model, []string{"2"}, 1), I2, true)
	delete(p.After.Members[defaultGroup], accBob)
	expect(t, "a gone person without access", checkDeprovisioned(p.After, p.Dir, p.Model, []string{"2"}, 1), I2, false)
}

func TestIncompleteReadFlags(t *testing.T) {
	p := fixture()
	p.Run.Sources[0].Complete = false
	p.Writes = []Write{removal(defaultGroup, accBob)}
	expect(t, "a removal after an incomplete read", checkIncompleteRead(p), I3, true)

	p = fixture()
	p.Kind = kindPush
	p.Writes = []Write{removal(defaultGroup, accBob)}
	expect(t, "a removal in a targeted pass without a deprovision push", checkIncompleteRead(p), I3, true)
	p.TL.push(statement{At: t0.Add(time.Second), Person: "2", Status: gone})
	expect(t, "the deprovision a push named", checkIncompleteRead(p), I3, false)

	p = fixture()
	p.Kind = kindPush
	p.Model.people["2"].Status = disabled
	p.TL = &timeline{certain: -1}
	p.TL.addView(p.Model.view(t0, 1), true)
	p.Writes = []Write{removal(defaultGroup, accBob)}
	expect(t, "a targeted pass deprovisioning someone a complete pull listed disabled", checkIncompleteRead(p), I3, false)

	p = fixture()
	p.Faults.MissingStatus = "ann@example.com"
	p.Writes = []Write{removal(defaultGroup, accBob)}
	expect(t, "a removal while a record had no status, though idsync said complete", checkIncompleteRead(p), I3, true)

	p = fixture()
	p.Writes = []Write{removal(defaultGroup, accBob)}
	expect(t, "a removal after a complete read", checkIncompleteRead(p), I3, false)
}

func TestActiveSourceFlags(t *testing.T) {
	p := fixture()
	p.Writes = []Write{add(defaultGroup, accBob)}
	expect(t, "access for a person every view says is gone", checkActiveSource(p), I4, true)
	p.Writes = []Write{add(defaultGroup, accAnn)}
	expect(t, "access for an active person", checkActiveSource(p), I4, false)
	p.Writes = []Write{add("engineering", accBob)}
	expect(t, "a group without product access", checkActiveSource(p), I4, false)

	// Bob was active in the last complete read; a newer push deleted him.
	p = fixture()
	p.TL = &timeline{certain: -1}
	v := p.Model.view(t0, 1)
	v.Status["2"] = active
	p.TL.addView(v, true)
	p.Writes = []Write{add(defaultGroup, accBob)}
	expect(t, "access from a pull older than a push", checkActiveSource(p), I4, false)
	p.TL.push(statement{At: t0.Add(time.Second), Person: "2", Status: gone})
	expect(t, "access after a pushed delete newer than every pull", checkActiveSource(p), I4, true)
}

func deactivation(acc string) reconcile.Change {
	return reconcile.Change{Kind: reconcile.KindDeactivateUser, AccountID: acc}
}

func TestBreakerFlags(t *testing.T) {
	p := fixture()
	p.Run.Changes = &reconcile.Changes{DeactivateUsers: []reconcile.Change{deactivation("a"), deactivation("b"), deactivation("c")}}
	expect(t, "3 deactivations over max_deactivations 2", checkBreaker(p), I5, true)
	p.Approved = map[string]bool{itemKey(deactivation("a")): true}
	expect(t, "2 besides the one approved", checkBreaker(p), I5, false)
	p.Approved = nil
	p.Params.MaxDeact = 25
	p.ManagedUsers = 4
	expect(t, "3 of 4 managed users over 50%", checkBreaker(p), I5, true)

	p = fixture()
	p.Params.MaxDeact = 0
	p.Run.Changes = &reconcile.Changes{DeactivateUsers: []reconcile.Change{deactivation("a")}}
	expect(t, "a threshold of 0 holds every one", checkBreaker(p), I5, true)

	p = fixture()
	p.Params.MaxRemovals = 0
	p.Run.Changes = &reconcile.Changes{RemoveMembers: []reconcile.Change{{Kind: reconcile.KindRemoveMember, AccountID: "a", Group: &reconcile.GroupRef{ID: "g"}}}}
	expect(t, "a removal with max_membership_removals 0", checkBreaker(p), I5, true)

	// What Jira saw counts too, even when the plan says nothing.
	p = fixture()
	p.Params.MaxDeact = 0
	p.Writes = []Write{removal(defaultGroup, accBob)}
	p.After = jiraState{Accounts: p.Before.Accounts, Members: map[string]map[string]bool{"engineering": {accAnn: true}}}
	expect(t, "accounts that lost all access beyond the limit", checkBreaker(p), I5, true)
}

func TestConvergenceFlags(t *testing.T) {
	want := map[string]string{"person a": "active groups=[x]"}
	expect(t, "a different end state", checkConvergence(want, map[string]string{"person a": "active groups=[]"}, true, 3, ""), I6, true)
	expect(t, "no convergence", checkConvergence(want, want, false, 3, ""), I6, true)
	expect(t, "the same end state", checkConvergence(want, want, true, 3, ""), I6, false)
	expect(t, "a duplicate account", checkDuplicates([]string{"a@example.com"}, nil), I6, true)
	expect(t, "no duplicates", checkDuplicates(nil, nil), I6, false)
}

func TestAuditFlags(t *testing.T) {
	w := add(defaultGroup, accAnn)
	w.Ahead = false
	expect(t, "a write without a write-ahead record", checkAudit([]Write{w}), I7, true)
	w.Admin = true
	expect(t, "an admin's edit", checkAudit([]Write{w}), I7, false)
	expect(t, "a started record without outcome", checkUnresolved([]string{"run/1"}), I7, true)

	x := newAuditIndex()
	x.add([]reconcile.AuditRecord{{Action: string(reconcile.KindAddMember), AccountID: accAnn, Target: "engineering", Result: reconcile.ItemStarted, Intent: "r/1"}})
	if !x.covers([]reconcile.Kind{reconcile.KindAddMember}, []string{"acc:" + accAnn}, "Engineering") {
		t.Error("the started record does not cover its own write")
	}
	if x.covers([]reconcile.Kind{reconcile.KindAddMember}, []string{"acc:" + accAnn}, "sales") {
		t.Error("a record of another group covers the write")
	}
	if got := x.unresolved(); len(got) != 1 {
		t.Errorf("unresolved = %v, want the one intent", got)
	}
	x.add([]reconcile.AuditRecord{{Action: string(reconcile.KindAddMember), AccountID: accAnn, Result: reconcile.ItemOK, Intent: "r/1"}})
	if got := x.unresolved(); len(got) != 0 {
		t.Errorf("unresolved after the outcome = %v", got)
	}
}

func TestGrantedStaysFlags(t *testing.T) {
	p := fixture()
	p.Writes = []Write{removal("engineering", accAnn)}
	expect(t, "a membership the IdP grants, removed", checkGrantedStays(p), I8, true)
	p.Model.people["1"].Groups = map[string]bool{}
	expect(t, "a membership the IdP took away", checkGrantedStays(p), I8, false)
}

func TestBoundedFlags(t *testing.T) {
	expect(t, "a read that swelled", checkBounded(goroutineBound+1), I9, true)
	expect(t, "a bounded read", checkBounded(0), I9, false)
}

func TestFailureNamesItsReplay(t *testing.T) {
	f := &Failure{Seed: 42, Step: 3, Pass: 7, Faulty: true, Invariant: I5, Desc: "too many"}
	for _, want := range []string{"seed 42", "step 3", I5, "too many"} {
		if !strings.Contains(f.Error(), want) {
			t.Errorf("%q does not name %q", f.Error(), want)
		}
	}
	if f.Replay() != "IDSYNC_SIM_SEED=42 go test -run TestSimulation ./internal/simulation/" {
		t.Errorf("replay line %q", f.Replay())
	}
}
