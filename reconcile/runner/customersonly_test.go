package runner_test

import (
	"slices"
	"testing"
	"time"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/reconcile/reconciletest"
	"github.com/idsync/idsync/reconcile/runner"
)

// customersEnv is a corp source plus a customers_only source "customers", whose people get
// desk DEMO through a source: entry.
func customersEnv(t *testing.T, staff, customers []reconcile.User, m configs.MappingConfig, s configs.SafetyConfig) (*env, *reconciletest.FakeSource) {
	t.Helper()
	m.Customers = append(m.Customers, configs.CustomerMapping{Source: "customers", ServiceDesks: []string{"DEMO"}})
	e := newEnv(t, staff, m, s)
	cust := reconciletest.NewFakeSource("customers", customers)
	e.cfg.Sources = append(e.cfg.Sources, runner.SourceSpec{Source: cust, CustomersOnly: true})
	e.rebuild()
	return e, cust
}

func TestCustomersOnlyMapping(t *testing.T) {
	m := baseMapping()
	m.Customers = append(m.Customers, configs.CustomerMapping{Source: "customers", ServiceDesks: []string{"PORTAL"}})
	cases := []struct {
		name          string
		corp, cust    []reconcile.User
		wantCustOnly  bool
		wantGroups    int
		wantDesks     []string
		customersOnly bool
	}{
		{name: "customer source person in a mapped Jira group gets no group, only desks",
			cust:         []reconcile.User{user("c1", "carol", "carol@example.com", "Engineering", "Jira-Service-group")},
			wantCustOnly: true, wantDesks: []string{"DEMO", "PORTAL"}, customersOnly: true},
		{name: "customer source person in an unmapped group is not imported on the fly and gets no default",
			cust:         []reconcile.User{user("c1", "carol", "carol@example.com", "Random-Team")},
			wantCustOnly: true, wantDesks: []string{"PORTAL"}, customersOnly: true},
		{name: "the same source without customers_only gives a licensed account",
			cust:       []reconcile.User{user("c1", "carol", "carol@example.com", "Engineering")},
			wantGroups: 2, wantDesks: []string{"PORTAL"}},
		{name: "a person of both sources keeps the licensed grants and adds the desks",
			corp:       []reconcile.User{user("1", "carol", "carol@example.com", "Engineering")},
			cust:       []reconcile.User{user("c1", "carol", "carol@example.com")},
			wantGroups: 2, wantDesks: []string{"PORTAL"}, customersOnly: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, _, err := reconcile.Map([]reconcile.SourceData{
				{Directory: reconcile.Directory{Source: "corp", Users: tc.corp}, Priority: 10},
				{Directory: reconcile.Directory{Source: "customers", Users: tc.cust}, CustomersOnly: tc.customersOnly},
			}, m)
			if err != nil {
				t.Fatal(err)
			}
			if len(d.People) != 1 {
				t.Fatalf("people %+v", d.People)
			}
			p := d.People[0]
			var desks []string
			for _, g := range p.Desks {
				desks = append(desks, d.Desks[g.Target])
			}
			slices.Sort(desks)
			if p.CustomerOnly != tc.wantCustOnly || len(p.Groups) != tc.wantGroups || !slices.Equal(desks, tc.wantDesks) {
				t.Errorf("customerOnly %v groups %d desks %v; want %v %d %v", p.CustomerOnly, len(p.Groups), desks,
					tc.wantCustOnly, tc.wantGroups, tc.wantDesks)
			}
		})
	}
}

// A customers_only person becomes a portal-only customer of the desk; one no entry reaches
// gets nothing at all; removing them removes the access idsync granted.
func TestCustomersOnlySourceGivesPortalAccessOnly(t *testing.T) {
	m := baseMapping()
	m.Customers = nil // only the source: entry
	e, cust := customersEnv(t, nil, []reconcile.User{user("c1", "carol", "carol@example.com", "Engineering")}, m, openSafety())
	run := e.run(runner.RunOptions{})
	if applied(run, reconcile.KindCreateUser) != 0 || applied(run, reconcile.KindCreateCustomer) != 1 || applied(run, reconcile.KindAddMember) != 0 {
		t.Fatalf("customers-only pass: %+v", run.Counts)
	}
	acc, ok := e.sink.AccountByEmail("carol@example.com")
	if !ok || acc.AccountType != reconcile.AccountCustomer || !slices.Contains(e.sink.Customers("DEMO"), acc.AccountID) {
		t.Fatalf("carol: %+v on DEMO %v", acc, e.sink.Customers("DEMO"))
	}
	for g, ms := range e.sink.Groups() {
		if slices.Contains(ms, acc.AccountID) {
			t.Errorf("a portal-only customer is in group %s", g)
		}
	}

	// Pushed away (inactive): the desk access goes, nothing else happens.
	cust.Set([]reconcile.User{disabled(user("c1", "carol", "carol@example.com", "Engineering"))})
	run = e.run(runner.RunOptions{})
	if applied(run, reconcile.KindRemoveCustomer) != 1 || applied(run, reconcile.KindDeactivateUser) != 0 || slices.Contains(e.sink.Customers("DEMO"), acc.AccountID) {
		t.Fatalf("removal: %+v", run.Counts)
	}
}

// A person of a normal source and a customers_only one has a licensed account and the desk by
// accountId; leaving the normal source never falls back into a licensed account: the product
// access idsync granted goes, the desk stays.
func TestCustomersOnlyNeverFallsBackToALicence(t *testing.T) {
	s := openSafety()
	s.GracePasses = 1
	carol := user("1", "carol", "carol@example.com", "Engineering")
	e, _ := customersEnv(t, []reconcile.User{carol, user("2", "dave", "dave@example.com")},
		[]reconcile.User{user("c1", "carol", "carol@example.com")}, baseMapping(), s)
	e.run(runner.RunOptions{})
	acc, ok := e.sink.AccountByEmail("carol@example.com")
	if !ok || acc.AccountType != reconcile.AccountAtlassian || !slices.Contains(e.sink.Customers("DEMO"), acc.AccountID) ||
		!slices.Contains(e.sink.Members("jira-software-users"), acc.AccountID) {
		t.Fatalf("carol of both sources: %+v", acc)
	}
	e.src.Set([]reconcile.User{user("2", "dave", "dave@example.com")}) // carol leaves corp
	for i := 0; i < 3; i++ {
		e.clock.advance(time.Minute)
		run := e.run(runner.RunOptions{})
		if n := applied(run, reconcile.KindReactivateUser) + applied(run, reconcile.KindCreateUser) + applied(run, reconcile.KindAddMember); n != 0 {
			t.Fatalf("pass %d gave carol licensed access back: %+v", i, run.Counts)
		}
	}
	for _, g := range []string{"engineering", "jira-software-users"} {
		if slices.Contains(e.sink.Members(g), acc.AccountID) {
			t.Errorf("carol kept %s after leaving every licensed source", g)
		}
	}
	if !slices.Contains(e.sink.Customers("DEMO"), acc.AccountID) {
		t.Error("carol lost the desk the customers source still gives")
	}
}
