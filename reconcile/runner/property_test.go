package runner_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/rs/zerolog"
	"pgregory.net/rapid"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/reconcile/reconciletest"
	"github.com/idsync/idsync/reconcile/runner"
)

var idpGroups = []string{"Eng", "Sales", "Cust", "DEFAULT", "Ops"}

func propMapping(authoritative bool) configs.MappingConfig {
	return configs.MappingConfig{
		ImportUsers: true, ImportGroups: true,
		Groups:        []configs.GroupMapping{{IdP: "Ops", Jira: []string{"ops", "oncall"}, Authoritative: authoritative}},
		DefaultGroups: []string{"jira-software-users"},
		Customers:     []configs.CustomerMapping{{IdP: "Cust", ServiceDesks: []string{"DEMO"}, Organizations: []string{"Acme"}}},
	}
}

// world is a random directory, Jira and store.
type world struct {
	users []reconcile.User
	sink  *reconciletest.FakeSink
	store *reconciletest.MemStore
	auth  bool
}

func genWorld(t *rapid.T) world {
	w := world{sink: newSite(), store: reconciletest.NewMemStore(), auth: rapid.Bool().Draw(t, "authoritative")}
	emails := []string{"a@x.io", "b@x.io", "c@x.io", "d@x.io", "e@x.io", "f@x.io", "g@x.io", ""}
	n := rapid.IntRange(0, 8).Draw(t, "users")
	for i := 0; i < n; i++ {
		u := reconcile.User{Key: fmt.Sprintf("k%d", i), UserName: fmt.Sprintf("u%d", i),
			Email:  rapid.SampledFrom(emails).Draw(t, "email"),
			Active: rapid.Float64Range(0, 1).Draw(t, "active") < 0.85}
		u.DisplayName = rapid.SampledFrom([]string{u.UserName, "Other Name"}).Draw(t, "dn")
		for _, g := range idpGroups {
			if rapid.Bool().Draw(t, "in-"+g) {
				u.Groups = append(u.Groups, g)
			}
		}
		w.users = append(w.users, u)
	}
	for _, g := range []string{"eng", "ops", "other"} {
		if rapid.Bool().Draw(t, "group-"+g) {
			w.sink.AddGroup(g, false)
		}
	}
	na := rapid.IntRange(0, 6).Draw(t, "accounts")
	var accIDs []string
	for i := 0; i < na; i++ {
		typ := rapid.SampledFrom([]string{reconcile.AccountAtlassian, reconcile.AccountAtlassian, reconcile.AccountCustomer}).Draw(t, "type")
		id := w.sink.AddAccount(reconcile.Account{AccountType: typ, Email: rapid.SampledFrom(emails).Draw(t, "acc-email"),
			DisplayName: "x", Active: rapid.Float64Range(0, 1).Draw(t, "acc-active") < 0.8})
		accIDs = append(accIDs, id)
		for _, g := range []string{"jira-software-users", "eng", "ops", "other"} {
			if rapid.Bool().Draw(t, "member") {
				_ = w.sink.AddToGroup(g, id)
			}
		}
		if rapid.Bool().Draw(t, "customer") {
			_ = w.sink.AddCustomerTo("DEMO", id)
		}
	}
	var e reconcile.JournalEntry
	for _, id := range accIDs {
		if !rapid.Bool().Draw(t, "linked") {
			continue
		}
		e.Links = append(e.Links, reconcile.Link{Source: "corp", Key: fmt.Sprintf("k%d", rapid.IntRange(0, 9).Draw(t, "link-key")),
			AccountID: id, MissingPasses: rapid.IntRange(0, 3).Draw(t, "missing"),
			Deactivated: rapid.Float64Range(0, 1).Draw(t, "deact") < 0.2})
	}
	for g, members := range w.sink.Groups() {
		for _, m := range members {
			if rapid.Bool().Draw(t, "owned") {
				e.Own = append(e.Own, reconcile.Owned{Kind: reconcile.OwnedMembership, Container: w.sink.GroupID(g), ContainerName: g, AccountID: m})
			}
		}
	}
	for _, m := range w.sink.Customers("DEMO") {
		if rapid.Bool().Draw(t, "owned-customer") {
			e.Own = append(e.Own, reconcile.Owned{Kind: reconcile.OwnedCustomer, Container: "1", ContainerName: "DEMO", AccountID: m})
		}
	}
	if err := w.store.Journal(e); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w world) runner(t *rapid.T, src reconcile.Source, s configs.SafetyConfig) *runner.Runner {
	r, err := runner.NewRunner(runner.RunnerConfig{
		Sources: []runner.SourceSpec{{Source: src}}, Sink: w.sink, Store: w.store,
		Mapping: propMapping(w.auth), Safety: s, Concurrency: 3, Logger: zerolog.Nop(), Now: newClock().Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Applying the guarded plan and planning again yields nothing to do.
func TestPropertyConvergence(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := genWorld(t)
		r := w.runner(t, reconciletest.NewFakeSource("corp", w.users), limits(configs.SafetyConfig{Policy: configs.PolicySync}))
		first, err := r.RunOnce(context.Background(), runner.RunOptions{Trigger: "cli"})
		if err != nil {
			t.Fatalf("first pass: %v", err)
		}
		if len(first.Errors) > 0 {
			t.Fatalf("first pass errors: %v", first.Errors)
		}
		second, err := r.RunOnce(context.Background(), runner.RunOptions{Trigger: "cli"})
		if err != nil {
			t.Fatalf("second pass: %v", err)
		}
		if second.Changes.HasChanges() {
			t.Fatalf("did not converge: %+v\nfirst: %+v\njira:\n%s", second.Changes, first.Changes, w.sink.Describe())
		}
		if n := w.sink.DuplicateCreates(); n != 0 {
			t.Fatalf("%d duplicate creates", n)
		}
	})
}

// No guarded plan deactivates an unlinked account or removes an unowned membership outside
// authoritative groups; an incomplete read never removes or deactivates anything.
func TestPropertySafety(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := genWorld(t)
		links, _ := w.store.Links()
		owned, _ := w.store.Owned()
		d, _, err := reconcile.Map([]reconcile.SourceData{{Directory: reconcile.Directory{Source: "corp", Users: w.users}}}, propMapping(w.auth))
		if err != nil {
			t.Fatal(err)
		}
		own := reconcile.Ownership{Links: links, Owned: owned}
		live, err := w.sink.Live(context.Background(), reconcile.BuildScope(d, own, false))
		if err != nil {
			t.Fatal(err)
		}
		c := reconcile.Plan(d, live, own, reconcile.PlanOptions{})
		c, _ = reconcile.PolicyGuard(c, configs.PolicySync)
		var auth []string
		for _, g := range d.Groups {
			if g.Authoritative {
				auth = append(auth, g.Name)
			}
		}
		c, _ = reconcile.OwnershipGuard(c, reconcile.OwnershipView{Links: links, Owned: owned, Authoritative: auth, Accounts: live.Accounts})
		linked := map[string]bool{}
		for _, l := range links {
			linked[l.AccountID] = true
		}
		isOwned := map[string]bool{}
		for _, o := range owned {
			isOwned[string(o.Kind)+o.Container+"/"+o.AccountID] = true
		}
		for _, ch := range c.DeactivateUsers {
			if !linked[ch.AccountID] {
				t.Fatalf("deactivates unlinked %s", ch.AccountID)
			}
		}
		for _, ch := range c.RemoveMembers {
			if !isOwned["membership"+ch.Group.ID+"/"+ch.AccountID] && !(w.auth && (ch.Group.Name == "ops" || ch.Group.Name == "oncall")) {
				t.Fatalf("removes unowned %s from %s", ch.AccountID, ch.Group.Name)
			}
		}
		for _, ch := range c.RemoveCustomers {
			if !isOwned["customer"+ch.ServiceDesk+"/"+ch.AccountID] {
				t.Fatalf("removes unowned customer %s", ch.AccountID)
			}
		}
		inc, _ := reconcile.IncompleteGuard(c, "source corp could not be read", false)
		for _, k := range reconcile.Kinds {
			if k.IsRemoval() && len(*inc.List(k)) > 0 {
				t.Fatalf("incomplete read still has %s", k)
			}
		}
	})
}

// A failing source never leads the Runner to remove or deactivate anything.
func TestPropertyIncompleteRunnerNeverRemoves(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := genWorld(t)
		src := reconciletest.NewFakeSource("corp", w.users)
		src.Fail = func(int) error { return fmt.Errorf("page 3: connection reset") }
		before := w.sink.Describe()
		r := w.runner(t, src, limits(configs.SafetyConfig{Policy: configs.PolicySync}))
		if _, err := w.store.Snapshot("corp"); err == nil {
			t.Fatal("no snapshot expected")
		}
		// With a stored snapshot standing in, the pass plans but removes nothing.
		_ = w.store.PutSnapshot(reconcile.SnapshotRecord{Source: "corp", Directory: reconcile.Directory{Source: "corp", Users: w.users[:len(w.users)/2]}})
		run, err := r.RunOnce(context.Background(), runner.RunOptions{Trigger: "cli"})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range reconcile.Kinds {
			if k.IsRemoval() && run.Counts[k][reconcile.ItemOK] > 0 {
				t.Fatalf("incomplete pass applied %s\nbefore:\n%s\nafter:\n%s", k, before, w.sink.Describe())
			}
		}
		if run.Result != reconcile.ResultPartial || run.Complete {
			t.Fatalf("result %s complete %v", run.Result, run.Complete)
		}
	})
}
