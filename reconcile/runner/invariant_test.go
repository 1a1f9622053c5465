package runner_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"pgregory.net/rapid"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/reconcile/reconciletest"
	"github.com/idsync/idsync/reconcile/runner"
)

// mapSources maps several sources (in config order, equal priority).
func mapSources(t testing.TB, m configs.MappingConfig, dirs ...reconcile.Directory) reconcile.Desired {
	t.Helper()
	var srcs []reconcile.SourceData
	for _, d := range dirs {
		srcs = append(srcs, reconcile.SourceData{Directory: d})
	}
	d, _, err := reconcile.Map(srcs, m)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestPlanNeverDeprovisionsAnActivePerson(t *testing.T) {
	jsu := grp("g-jsu", "jira-software-users", "a1")
	jsu.ProductAccess = true
	live := reconcile.Live{Accounts: []reconcile.Account{acc("a1", "bob@corp.example")}, Groups: []reconcile.LiveGroup{jsu},
		ServiceDesks: []reconcile.LiveDesk{{ID: "10", Key: "DEMO", Customers: []string{"a1"}}}}
	ownCust := reconcile.Owned{Kind: reconcile.OwnedCustomer, Container: "10", ContainerName: "DEMO", AccountID: "a1"}
	cases := []struct {
		name string
		dirs []reconcile.Directory
		own  reconcile.Ownership
	}{
		{
			// hr lists bob disabled, corp lists him active; both records are linked to a1.
			// The disabled record comes first: it must not win the account.
			name: "a disabled record of one source and an active one of another share an account",
			dirs: []reconcile.Directory{
				{Source: "hr", Users: []reconcile.User{disabled(user("h1", "bob.h", "bob@hr.example", "Customers", "Eng"))}},
				{Source: "corp", Users: []reconcile.User{user("c1", "bob", "bob@corp.example", "Customers", "Eng")}},
			},
			own: reconcile.Ownership{Links: []reconcile.Link{
				{Source: "hr", Key: "h1", AccountID: "a1"}, {Source: "corp", Key: "c1", AccountID: "a1"},
			}, Owned: []reconcile.Owned{ownCust}},
		},
		{
			// A stale link to a1 is missing; the active person with a1's email is linked to
			// nothing usable (their link's account is gone) and must keep a1.
			name: "a missing link's account has an active person's email",
			dirs: []reconcile.Directory{{Source: "corp", Users: []reconcile.User{user("c2", "bob", "bob@corp.example", "Customers", "Eng")}}},
			own: reconcile.Ownership{Links: []reconcile.Link{
				{Source: "corp", Key: "old", AccountID: "a1", MissingPasses: 9}, {Source: "corp", Key: "c2", AccountID: "gone"},
			}, Owned: []reconcile.Owned{ownCust}},
		},
		{
			// The pushed record's key is an alias of the pulled one: its link is the person's.
			name: "a link under an alias key",
			dirs: []reconcile.Directory{{Source: "corp", Users: []reconcile.User{
				{Key: "5", Aliases: []string{"scim-1"}, UserName: "bob", Email: "bob@other.example", Active: true, Groups: []string{"Customers", "Eng"}},
			}}},
			own: reconcile.Ownership{Links: []reconcile.Link{{Source: "corp", Key: "scim-1", AccountID: "a1"}}, Owned: []reconcile.Owned{ownCust}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := mapSources(t, simpleMapping(), tc.dirs...)
			c := reconcile.Plan(d, live, tc.own, reconcile.PlanOptions{DeactivateMethod: configs.DeactivateRemoveAccess})
			wantLen(t, "DeactivateUsers", c.DeactivateUsers, 0)
			wantLen(t, "RemoveCustomers", c.RemoveCustomers, 0)
			wantLen(t, "RemoveMembers", c.RemoveMembers, 0)
			wantLen(t, "CreateUsers", c.CreateUsers, 0)
			// The guard agrees with the planner: nothing to drop.
			if _, held := reconcile.IdentityGuard(c, reconcile.ActiveView{People: d.People, Links: tc.own.Links, Accounts: live.Accounts}); len(held) != 0 {
				t.Errorf("identity guard dropped %+v", held)
			}
		})
	}
}

func TestIdentityGuard(t *testing.T) {
	people := []reconcile.Person{
		{Source: "corp", Key: "5", UserName: "avery", Email: "Avery@Example.com", Active: true,
			Records: []reconcile.Record{{Source: "corp", Key: "5"}, {Source: "corp", Key: "scim-1"}}},
		{Source: "corp", Key: "6", UserName: "gone", Active: false, Records: []reconcile.Record{{Source: "corp", Key: "6"}}},
	}
	links := []reconcile.Link{
		{Source: "corp", Key: "scim-1", AccountID: "a-avery"},
		{Source: "corp", Key: "6", AccountID: "a-gone"},
	}
	accounts := []reconcile.Account{acc("a-avery", "x@example.com"), acc("a-mail", "avery@example.com"), acc("a-gone", "gone@example.com")}
	deact := func(id, how string) reconcile.Change {
		c := ch(reconcile.KindDeactivateUser, id)
		c.Deprovision = how
		return c
	}
	custGone := ch(reconcile.KindRemoveCustomer, "a-avery")
	custGone.Deprovision = reconcile.DeprovisionMissing
	drift := ch(reconcile.KindRemoveMember, "a-avery") // ordinary membership drift of an active person
	in := plan(deact("a-avery", reconcile.DeprovisionMissing), deact("a-mail", reconcile.DeprovisionMissing),
		deact("a-gone", reconcile.DeprovisionExplicit), custGone, drift)
	out, held := reconcile.IdentityGuard(in, reconcile.ActiveView{People: people, Links: links, Accounts: accounts})
	if len(out.DeactivateUsers) != 1 || out.DeactivateUsers[0].AccountID != "a-gone" {
		t.Errorf("deactivations kept %+v", out.DeactivateUsers)
	}
	if len(out.RemoveCustomers) != 0 || len(out.RemoveMembers) != 1 {
		t.Errorf("removals kept: customers %+v members %+v", out.RemoveCustomers, out.RemoveMembers)
	}
	if len(held) != 3 {
		t.Fatalf("held %+v", held)
	}
	for _, h := range held {
		if h.Guard != reconcile.GuardIdentity || h.Waiting() || !strings.Contains(h.Reason, "avery") {
			t.Errorf("held %+v", h)
		}
	}
}

// invWorld is a random small world built to provoke identity confusion: few keys, aliases,
// shared emails, two sources, stale links, accounts of every type.
func genInvWorld(t *rapid.T) (reconcile.Desired, reconcile.Live, reconcile.Ownership) {
	emails := []string{"a@x.io", "b@x.io", "c@x.io", "A@X.IO", ""}
	keys := []string{"k0", "k1", "k2", "k3", "s0", "s1", "s2"}
	var dirs []reconcile.Directory
	for _, src := range []string{"corp", "hr"} {
		d := reconcile.Directory{Source: src}
		n := rapid.IntRange(0, 5).Draw(t, "users")
		for i := 0; i < n; i++ {
			u := reconcile.User{Key: rapid.SampledFrom(keys).Draw(t, "key"), UserName: fmt.Sprintf("u%d", rapid.IntRange(0, 6).Draw(t, "name")),
				Email: rapid.SampledFrom(emails).Draw(t, "email"), Active: rapid.Bool().Draw(t, "active")}
			if rapid.Bool().Draw(t, "has-alias") {
				u.Aliases = []string{rapid.SampledFrom(keys).Draw(t, "alias")}
			}
			for _, g := range []string{"Eng", "Cust"} {
				if rapid.Bool().Draw(t, "in-"+g) {
					u.Groups = append(u.Groups, g)
				}
			}
			d.Users = append(d.Users, u)
		}
		dirs = append(dirs, d)
	}
	m := propMapping(false)
	m.Customers = []configs.CustomerMapping{{IdP: "Cust", ServiceDesks: []string{"DEMO"}}}
	d, _, err := reconcile.Map([]reconcile.SourceData{{Directory: dirs[0]}, {Directory: dirs[1]}}, m)
	if err != nil {
		t.Fatal(err)
	}
	var live reconcile.Live
	jsu := reconcile.LiveGroup{ID: "g-jsu", Name: "jira-software-users", MembersRead: true, ProductAccess: true}
	desk := reconcile.LiveDesk{ID: "10", Key: "DEMO"}
	var own reconcile.Ownership
	na := rapid.IntRange(0, 5).Draw(t, "accounts")
	for i := 0; i < na; i++ {
		id := fmt.Sprintf("a%d", i)
		live.Accounts = append(live.Accounts, reconcile.Account{AccountID: id,
			AccountType: rapid.SampledFrom([]string{reconcile.AccountAtlassian, reconcile.AccountCustomer}).Draw(t, "type"),
			Email:       rapid.SampledFrom(emails).Draw(t, "acc-email"), Active: true})
		if rapid.Bool().Draw(t, "jsu") {
			jsu.Members = append(jsu.Members, id)
		}
		if rapid.Bool().Draw(t, "customer") {
			desk.Customers = append(desk.Customers, id)
			own.Owned = append(own.Owned, reconcile.Owned{Kind: reconcile.OwnedCustomer, Container: "10", AccountID: id})
		}
	}
	nl := rapid.IntRange(0, 6).Draw(t, "links")
	seen := map[string]bool{} // the store keys links by source/key
	for i := 0; i < nl && na > 0; i++ {
		l := reconcile.Link{Source: rapid.SampledFrom([]string{"corp", "hr"}).Draw(t, "link-src"),
			Key: rapid.SampledFrom(append(keys, "gone")).Draw(t, "link-key"), AccountID: fmt.Sprintf("a%d", rapid.IntRange(0, na-1).Draw(t, "link-acc")),
			Customer: rapid.Float64Range(0, 1).Draw(t, "link-cust") < 0.2, Deactivated: rapid.Float64Range(0, 1).Draw(t, "link-deact") < 0.2}
		if !seen[l.LinkKey()] {
			seen[l.LinkKey()] = true
			own.Links = append(own.Links, l)
		}
	}
	live.Groups = []reconcile.LiveGroup{jsu}
	live.ServiceDesks = []reconcile.LiveDesk{desk}
	return d, live, own
}

// The planner's safety invariant: no deactivation, and no removal made as part of a
// deprovision, ever targets an account that an active desired person matches (a stored link
// of any of their records, or the account's email); and the identity guard, written
// independently, never finds anything to drop in the planner's output.
func TestPropertyNeverDeprovisionsAWantedPerson(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		d, live, own := genInvWorld(t)
		email := map[string]string{}
		for _, a := range live.Accounts {
			email[a.AccountID] = strings.ToLower(a.Email)
		}
		wanted := map[string]bool{}
		for _, p := range d.People {
			if !p.Active {
				continue
			}
			for _, r := range p.Records {
				for _, l := range own.Links {
					if l.Source == r.Source && l.Key == r.Key {
						wanted[l.AccountID] = true
					}
				}
			}
			for id, e := range email {
				if e != "" && e == strings.ToLower(p.Email) {
					wanted[id] = true
				}
			}
		}
		for _, targeted := range []bool{false, true} {
			c := reconcile.Plan(d, live, own, reconcile.PlanOptions{Targeted: targeted, DeactivateMethod: configs.DeactivateRemoveAccess})
			for _, k := range reconcile.Kinds {
				for _, ch := range *c.List(k) {
					if k.IsRemoval() && (k == reconcile.KindDeactivateUser || ch.Deprovision != "") && wanted[ch.AccountID] {
						t.Fatalf("targeted=%v: %s of %s, which an active person matches (%s)\npeople %+v\nlinks %+v", targeted, k, ch.AccountID, ch.Reason, d.People, own.Links)
					}
				}
			}
			if _, held := reconcile.IdentityGuard(c, reconcile.ActiveView{People: d.People, Links: own.Links, Accounts: live.Accounts}); len(held) > 0 {
				t.Fatalf("the identity guard caught what the planner let through: %+v", held)
			}
		}
	})
}

// The same invariant end to end: a pulled-and-pushed source with random pushes (new hires,
// pushes joined to pulled people, deletions) never deprovisions anyone the sources list as
// active, over a push-triggered pass followed by complete passes.
func TestPropertyPushJoinNeverDeprovisionsTheActive(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		clk := newClock()
		names := []string{"ann", "ben", "cat", "dan"}
		var pulled []reconcile.User
		for i, n := range names {
			if rapid.Bool().Draw(t, "pulled-"+n) {
				pulled = append(pulled, reconcile.User{Key: fmt.Sprintf("p%d", i), UserName: n, Email: n + "@x.io", Active: true, Groups: []string{"Eng"}})
			}
		}
		src := reconciletest.NewFakeSource("corp", pulled)
		push := reconciletest.NewFakeSource("corp", nil)
		sink := newSite()
		sink.HideEmails = rapid.Bool().Draw(t, "hide-emails")
		store := reconciletest.NewMemStore()
		r, err := runner.NewRunner(runner.RunnerConfig{
			Sources: []runner.SourceSpec{{Source: src, Push: push}}, Sink: sink, Store: store,
			Mapping: propMapping(false), Safety: limits(configs.SafetyConfig{Policy: configs.PolicySync}), Concurrency: 2,
			Logger: zerolog.Nop(), Now: clk.Now,
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if _, err := r.RunOnce(ctx, runner.RunOptions{Trigger: "cli"}); err != nil {
			t.Fatal(err)
		}
		var pushed []reconcile.User
		var touched []string
		for i, n := range names {
			if !rapid.Bool().Draw(t, "push-"+n) {
				continue
			}
			u := reconcile.User{Key: fmt.Sprintf("scim-%d", i), UserName: strings.ToUpper(n[:1]) + n[1:], Email: n + "@x.io",
				Active: rapid.Float64Range(0, 1).Draw(t, "push-active") < 0.8, Groups: []string{"Eng"}, Modified: clk.Now()}
			pushed = append(pushed, u)
			touched = append(touched, n)
		}
		push.Set(pushed)
		clk.Now()
		if len(touched) > 0 {
			if _, err := r.RunOnce(ctx, runner.RunOptions{Trigger: reconcile.TriggerPush, Users: touched}); err != nil {
				t.Fatal(err)
			}
		}
		// The IdP's list catches up: every person in it, active unless a pushed deletion said
		// otherwise; then complete passes.
		var final []reconcile.User
		for i, n := range names {
			u := reconcile.User{Key: fmt.Sprintf("p%d", i), UserName: n, Email: n + "@x.io", Active: true, Groups: []string{"Eng"}}
			for _, p := range pushed {
				if strings.EqualFold(p.UserName, n) {
					u.Active = p.Active
				}
			}
			if rapid.Float64Range(0, 1).Draw(t, "listed-"+n) < 0.9 {
				final = append(final, u)
			}
		}
		src.Set(final)
		clk.advance(1e9)
		for pass := 0; pass < 3; pass++ {
			run, err := r.RunOnce(ctx, runner.RunOptions{Trigger: "cli"})
			if err != nil {
				t.Fatal(err)
			}
			for _, ch := range run.Changes.DeactivateUsers {
				for _, u := range final {
					if u.Active && strings.EqualFold(u.UserName, ch.UserName) {
						t.Fatalf("pass %d deactivates active %s (%s)", pass, u.UserName, ch.Reason)
					}
				}
			}
			if n := sink.DuplicateCreates(); n != 0 {
				t.Fatalf("pass %d: %d duplicate creates", pass, n)
			}
		}
		for _, u := range final {
			if !u.Active {
				continue
			}
			var ids []string
			for _, a := range sink.Accounts() {
				if strings.EqualFold(a.Email, u.Email) {
					ids = append(ids, a.AccountID)
				}
			}
			if len(ids) != 1 || !contains(sink.Members("jira-software-users"), ids[0]) {
				t.Fatalf("active %s: accounts %v, product access %v", u.UserName, ids, sink.Members("jira-software-users"))
			}
		}
	})
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}
