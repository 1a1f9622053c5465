package reconcile_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
)

var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

func desired(t *testing.T, m configs.MappingConfig, users ...reconcile.User) reconcile.Desired {
	t.Helper()
	d, _, err := reconcile.Map([]reconcile.SourceData{{Directory: reconcile.Directory{Source: "corp", Users: users}, Priority: 1}}, m)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func acc(id, email string) reconcile.Account {
	return reconcile.Account{AccountID: id, AccountType: reconcile.AccountAtlassian, Email: email, DisplayName: strings.Split(email, "@")[0], Active: true}
}

func grp(id, name string, members ...string) reconcile.LiveGroup {
	return reconcile.LiveGroup{ID: id, Name: name, Members: members, MembersRead: true}
}

func link(key, name, accountID string) reconcile.Link {
	return reconcile.Link{Source: "corp", Key: key, UserName: name, Email: name + "@example.com", AccountID: accountID, LinkedAt: t0}
}

func ownM(groupID, name, accountID string) reconcile.Owned {
	return reconcile.Owned{Kind: reconcile.OwnedMembership, Container: groupID, ContainerName: name, AccountID: accountID}
}

func simpleMapping() configs.MappingConfig {
	return configs.MappingConfig{ImportUsers: true, ImportGroups: true, DefaultGroups: []string{"jira-software-users"},
		Customers: []configs.CustomerMapping{{IdP: "Customers", ServiceDesks: []string{"DEMO"}, Organizations: []string{"Acme"}}}}
}

func TestPlan(t *testing.T) {
	jsu := func(members ...string) reconcile.LiveGroup {
		g := grp("g-jsu", "jira-software-users", members...)
		g.ProductAccess = true
		return g
	}
	demo := reconcile.LiveDesk{ID: "10", Key: "DEMO", Name: "Demo", Customers: []string{}}
	cases := []struct {
		name  string
		m     func(*configs.MappingConfig)
		users []reconcile.User
		live  reconcile.Live
		own   reconcile.Ownership
		opts  reconcile.PlanOptions
		check func(t *testing.T, c reconcile.Changes)
	}{
		{
			name:  "missing group is created and new members reference it by name",
			users: []reconcile.User{user("1", "alice", "alice@example.com", "Eng")},
			live:  reconcile.Live{Accounts: []reconcile.Account{acc("a1", "alice@example.com")}, Groups: []reconcile.LiveGroup{jsu("a1")}},
			own:   reconcile.Ownership{Links: []reconcile.Link{link("1", "alice", "a1")}},
			check: func(t *testing.T, c reconcile.Changes) {
				wantLen(t, "CreateGroups", c.CreateGroups, 1)
				wantLen(t, "AddMembers", c.AddMembers, 1)
				if g := c.AddMembers[0].Group; g.ID != "" || g.Name != "Eng" || c.AddMembers[0].AccountID != "a1" {
					t.Errorf("add %+v %+v", c.AddMembers[0], g)
				}
				if !strings.Contains(c.AddMembers[0].Reason, "in IdP group Eng -> Eng") {
					t.Errorf("reason %q", c.AddMembers[0].Reason)
				}
			},
		},
		{
			name:  "unmatched person is created and gets default groups after creation",
			users: []reconcile.User{user("1", "alice", "alice@example.com")},
			live:  reconcile.Live{Groups: []reconcile.LiveGroup{jsu()}},
			check: func(t *testing.T, c reconcile.Changes) {
				wantLen(t, "CreateUsers", c.CreateUsers, 1)
				wantLen(t, "AddMembers", c.AddMembers, 1)
				if a := c.AddMembers[0]; a.AccountID != "" || a.Group.ID != "g-jsu" || a.Reason != "default group for licensed users" {
					t.Errorf("add %+v", a)
				}
			},
		},
		{
			name:  "email matches case-insensitively and becomes a link without a Jira write",
			users: []reconcile.User{user("1", "alice", "Alice@Example.COM")},
			live:  reconcile.Live{Accounts: []reconcile.Account{acc("a1", "alice@example.com")}, Groups: []reconcile.LiveGroup{jsu("a1")}},
			check: func(t *testing.T, c reconcile.Changes) {
				wantLen(t, "CreateUsers", c.CreateUsers, 0)
				if len(c.Links) != 1 || c.Links[0].AccountID != "a1" || c.Links[0].Key != "1" || c.Links[0].Created {
					t.Errorf("links %+v", c.Links)
				}
				if c.HasChanges() {
					t.Errorf("plan has changes: %+v", c)
				}
			},
		},
		{
			name:  "display name never matches: a same-name account with another email is not taken",
			users: []reconcile.User{user("1", "alice", "alice@corp.example")},
			live:  reconcile.Live{Accounts: []reconcile.Account{{AccountID: "a1", AccountType: "atlassian", Email: "other@example.com", DisplayName: "alice", Active: true}}, Groups: []reconcile.LiveGroup{jsu()}},
			check: func(t *testing.T, c reconcile.Changes) {
				wantLen(t, "CreateUsers", c.CreateUsers, 1)
				wantLen(t, "Links", c.Links, 0)
			},
		},
		{
			name:  "email change at the IdP updates the linked account, never creates a second",
			users: []reconcile.User{user("1", "alice", "alice@new.example")},
			live:  reconcile.Live{Accounts: []reconcile.Account{acc("a1", "alice@example.com")}, Groups: []reconcile.LiveGroup{jsu("a1")}},
			own:   reconcile.Ownership{Links: []reconcile.Link{link("1", "alice", "a1")}},
			opts:  reconcile.PlanOptions{ProfileWritable: true},
			check: func(t *testing.T, c reconcile.Changes) {
				wantLen(t, "CreateUsers", c.CreateUsers, 0)
				wantLen(t, "UpdateUsers", c.UpdateUsers, 1)
				u := c.UpdateUsers[0]
				if u.Unsupported != "" || len(u.Fields) != 1 || u.Fields[0].Field != "email" || u.Fields[0].New != "alice@new.example" {
					t.Errorf("update %+v", u)
				}
				if len(c.Links) != 1 || c.Links[0].Email != "alice@new.example" {
					t.Errorf("link not updated: %+v", c.Links)
				}
			},
		},
		{
			name:  "profile drift without admin_api is unsupported and not a change",
			users: []reconcile.User{{Key: "1", UserName: "alice", Email: "alice@example.com", DisplayName: "Alice Liddell", Active: true}},
			live:  reconcile.Live{Accounts: []reconcile.Account{acc("a1", "alice@example.com")}, Groups: []reconcile.LiveGroup{jsu("a1")}},
			own:   reconcile.Ownership{Links: []reconcile.Link{link("1", "alice", "a1")}},
			check: func(t *testing.T, c reconcile.Changes) {
				wantLen(t, "UpdateUsers", c.UpdateUsers, 1)
				if c.UpdateUsers[0].Unsupported != "needs admin_api" || c.HasChanges() {
					t.Errorf("update %+v", c.UpdateUsers[0])
				}
			},
		},
		{
			name:  "hidden live email is never compared",
			users: []reconcile.User{user("1", "alice", "alice@example.com")},
			live:  reconcile.Live{Accounts: []reconcile.Account{{AccountID: "a1", AccountType: "atlassian", DisplayName: "alice", Active: true}}, Groups: []reconcile.LiveGroup{jsu("a1")}},
			own:   reconcile.Ownership{Links: []reconcile.Link{link("1", "alice", "a1")}},
			check: func(t *testing.T, c reconcile.Changes) { wantLen(t, "UpdateUsers", c.UpdateUsers, 0) },
		},
		{
			name:  "deactivated link of an active person is reactivated with its product-access groups",
			users: []reconcile.User{user("1", "alice", "alice@example.com")},
			live:  reconcile.Live{Accounts: []reconcile.Account{acc("a1", "alice@example.com")}, Groups: []reconcile.LiveGroup{jsu(), grp("g-x", "extra-access")}},
			own: reconcile.Ownership{Links: []reconcile.Link{func() reconcile.Link {
				l := link("1", "alice", "a1")
				l.Deactivated, l.Method = true, configs.DeactivateRemoveAccess
				l.RemovedGroups = []reconcile.GroupRef{{ID: "g-jsu", Name: "jira-software-users"}, {ID: "g-x", Name: "extra-access"}}
				return l
			}()}},
			check: func(t *testing.T, c reconcile.Changes) {
				wantLen(t, "ReactivateUsers", c.ReactivateUsers, 1)
				if g := c.ReactivateUsers[0].Groups; len(g) != 1 || g[0].Name != "extra-access" {
					t.Errorf("restore %+v (managed groups come back as adds)", g)
				}
				wantLen(t, "AddMembers", c.AddMembers, 1)
			},
		},
		{
			name:  "membership no longer granted is a removal candidate",
			users: []reconcile.User{user("1", "alice", "alice@example.com")},
			live:  reconcile.Live{Accounts: []reconcile.Account{acc("a1", "alice@example.com")}, Groups: []reconcile.LiveGroup{jsu("a1"), grp("g-eng", "Eng", "a1")}},
			own:   reconcile.Ownership{Links: []reconcile.Link{link("1", "alice", "a1")}, Owned: []reconcile.Owned{ownM("g-eng", "Eng", "a1")}},
			check: func(t *testing.T, c reconcile.Changes) {
				wantLen(t, "RemoveMembers", c.RemoveMembers, 1)
				if r := c.RemoveMembers[0]; r.Group.ID != "g-eng" || r.AccountID != "a1" || !strings.Contains(r.Reason, "no longer mapped") {
					t.Errorf("remove %+v", r)
				}
			},
		},
		{
			name:  "IdP-disabled person is deactivated with every managed and product-access group",
			users: []reconcile.User{disabled(user("1", "alice", "alice@example.com", "Eng"))},
			live:  reconcile.Live{Accounts: []reconcile.Account{acc("a1", "alice@example.com")}, Groups: []reconcile.LiveGroup{jsu("a1"), grp("g-eng", "Eng", "a1"), grp("g-other", "other", "a1")}},
			own:   reconcile.Ownership{Links: []reconcile.Link{link("1", "alice", "a1")}},
			check: func(t *testing.T, c reconcile.Changes) {
				wantLen(t, "DeactivateUsers", c.DeactivateUsers, 1)
				d := c.DeactivateUsers[0]
				if d.Deprovision != reconcile.DeprovisionExplicit || len(d.Groups) != 2 {
					t.Errorf("deactivate %+v", d)
				}
				wantLen(t, "AddMembers", c.AddMembers, 0)
				wantLen(t, "RemoveMembers", c.RemoveMembers, 0)
			},
		},
		{
			name: "linked person missing from every source is a missing deprovision",
			live: reconcile.Live{Accounts: []reconcile.Account{acc("a1", "alice@example.com")}, Groups: []reconcile.LiveGroup{jsu("a1")}},
			own:  reconcile.Ownership{Links: []reconcile.Link{func() reconcile.Link { l := link("1", "alice", "a1"); l.MissingPasses = 2; return l }()}},
			check: func(t *testing.T, c reconcile.Changes) {
				wantLen(t, "DeactivateUsers", c.DeactivateUsers, 1)
				d := c.DeactivateUsers[0]
				if d.Deprovision != reconcile.DeprovisionMissing || d.Reason != "not in any source for 2 complete passes" {
					t.Errorf("deactivate %+v", d)
				}
			},
		},
		{
			name:  "customer-only person gets a portal-only customer, desk access and organization",
			users: []reconcile.User{user("1", "carol", "carol@example.com", "Customers")},
			live:  reconcile.Live{Groups: []reconcile.LiveGroup{jsu()}, ServiceDesks: []reconcile.LiveDesk{demo}},
			check: func(t *testing.T, c reconcile.Changes) {
				wantLen(t, "CreateUsers", c.CreateUsers, 0)
				wantLen(t, "CreateCustomers", c.CreateCustomers, 1)
				wantLen(t, "AddMembers", c.AddMembers, 0)
				wantLen(t, "AddCustomers", c.AddCustomers, 1)
				wantLen(t, "AddOrganizationMembers", c.AddOrganizationMembers, 1)
				if a := c.AddCustomers[0]; a.ServiceDesk != "10" || a.AccountID != "" {
					t.Errorf("add customer %+v", a)
				}
				if o := c.AddOrganizationMembers[0]; o.Organization != "Acme" || o.OrganizationID != "" {
					t.Errorf("org %+v", o)
				}
			},
		},
		{
			name:  "licensed person in a customer group is added to the desk by accountId",
			users: []reconcile.User{user("1", "alice", "alice@example.com", "Customers", "Eng")},
			live:  reconcile.Live{Accounts: []reconcile.Account{acc("a1", "alice@example.com")}, Groups: []reconcile.LiveGroup{jsu("a1"), grp("g-eng", "Eng", "a1")}, ServiceDesks: []reconcile.LiveDesk{demo}, Organizations: []reconcile.LiveOrg{{ID: "o1", Name: "Acme", Members: []string{"a1"}}}},
			own:   reconcile.Ownership{Links: []reconcile.Link{link("1", "alice", "a1")}},
			check: func(t *testing.T, c reconcile.Changes) {
				wantLen(t, "CreateCustomers", c.CreateCustomers, 0)
				wantLen(t, "AddCustomers", c.AddCustomers, 1)
				if c.AddCustomers[0].AccountID != "a1" {
					t.Errorf("add customer %+v", c.AddCustomers[0])
				}
				wantLen(t, "AddOrganizationMembers", c.AddOrganizationMembers, 0)
			},
		},
		{
			name:  "customer no longer in the customer group is a removal candidate",
			users: []reconcile.User{user("1", "carol", "carol@example.com")},
			live: reconcile.Live{Accounts: []reconcile.Account{acc("a1", "carol@example.com")}, Groups: []reconcile.LiveGroup{jsu("a1")},
				ServiceDesks: []reconcile.LiveDesk{{ID: "10", Key: "DEMO", Customers: []string{"a1"}}}},
			own: reconcile.Ownership{Links: []reconcile.Link{link("1", "carol", "a1")}},
			check: func(t *testing.T, c reconcile.Changes) {
				wantLen(t, "RemoveCustomers", c.RemoveCustomers, 1)
			},
		},
		{
			name: "missing customer-only link loses its desk access and is never deactivated",
			live: reconcile.Live{Accounts: []reconcile.Account{{AccountID: "qm:1", AccountType: "customer", Email: "carol@example.com", Active: true}}, ServiceDesks: []reconcile.LiveDesk{{ID: "10", Key: "DEMO", Customers: []string{"qm:1"}}}},
			own:  reconcile.Ownership{Links: []reconcile.Link{func() reconcile.Link { l := link("1", "carol", "qm:1"); l.Customer = true; return l }()}},
			check: func(t *testing.T, c reconcile.Changes) {
				wantLen(t, "DeactivateUsers", c.DeactivateUsers, 0)
				wantLen(t, "RemoveCustomers", c.RemoveCustomers, 1)
				if c.RemoveCustomers[0].Deprovision != reconcile.DeprovisionMissing {
					t.Errorf("remove %+v", c.RemoveCustomers[0])
				}
			},
		},
		{
			name:  "import_users off reports unmatched people instead of creating them",
			m:     func(m *configs.MappingConfig) { m.ImportUsers = false },
			users: []reconcile.User{user("1", "alice", "alice@example.com")},
			live:  reconcile.Live{Groups: []reconcile.LiveGroup{jsu()}},
			check: func(t *testing.T, c reconcile.Changes) {
				wantLen(t, "CreateUsers", c.CreateUsers, 0)
				wantLen(t, "AddMembers", c.AddMembers, 0)
				if !strings.Contains(strings.Join(c.Notes, "\n"), "alice: no Jira account matches alice@example.com; not created (import_users is off)") {
					t.Errorf("notes %q", c.Notes)
				}
			},
		},
		{
			name:  "targeted plan has no missing-user logic and no removals for others",
			users: []reconcile.User{user("1", "alice", "alice@example.com")},
			live:  reconcile.Live{Accounts: []reconcile.Account{acc("a1", "alice@example.com"), acc("b1", "bob@example.com")}, Groups: []reconcile.LiveGroup{jsu("a1", "b1"), grp("g-eng", "Eng", "b1")}},
			own:   reconcile.Ownership{Links: []reconcile.Link{link("1", "alice", "a1"), link("2", "bob", "b1")}, Owned: []reconcile.Owned{ownM("g-eng", "Eng", "b1")}},
			opts:  reconcile.PlanOptions{Targeted: true},
			check: func(t *testing.T, c reconcile.Changes) {
				wantLen(t, "DeactivateUsers", c.DeactivateUsers, 0)
				wantLen(t, "RemoveMembers", c.RemoveMembers, 0)
			},
		},
		{
			name:  "ownership of a membership that is gone and not wanted is forgotten",
			users: []reconcile.User{user("1", "alice", "alice@example.com")},
			live:  reconcile.Live{Accounts: []reconcile.Account{acc("a1", "alice@example.com")}, Groups: []reconcile.LiveGroup{jsu("a1"), grp("g-eng", "Eng")}},
			own:   reconcile.Ownership{Links: []reconcile.Link{link("1", "alice", "a1")}, Owned: []reconcile.Owned{ownM("g-eng", "Eng", "a1"), ownM("g-jsu", "jira-software-users", "a1")}},
			check: func(t *testing.T, c reconcile.Changes) {
				if len(c.Forget) != 1 || c.Forget[0].Container != "g-eng" {
					t.Errorf("forget %+v", c.Forget)
				}
			},
		},
		{
			name:  "inactive people get no membership adds",
			users: []reconcile.User{disabled(user("1", "alice", "alice@example.com", "Eng"))},
			live:  reconcile.Live{Accounts: []reconcile.Account{acc("a1", "alice@example.com")}, Groups: []reconcile.LiveGroup{jsu(), grp("g-eng", "Eng")}},
			own: reconcile.Ownership{Links: []reconcile.Link{func() reconcile.Link {
				l := link("1", "alice", "a1")
				l.Deactivated = true
				return l
			}()}},
			check: func(t *testing.T, c reconcile.Changes) {
				if c.Len() != 0 {
					t.Errorf("plan %+v", c)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := simpleMapping()
			if tc.m != nil {
				tc.m(&m)
			}
			d := desired(t, m, tc.users...)
			if tc.opts.Now.IsZero() {
				tc.opts.Now = t0
			}
			c := reconcile.Plan(d, tc.live, tc.own, tc.opts)
			tc.check(t, c)
			for _, k := range reconcile.Kinds {
				for _, ch := range *c.List(k) {
					if ch.Reason == "" {
						t.Errorf("%s without a reason: %+v", k, ch)
					}
				}
			}
			if _, err := json.Marshal(c); err != nil {
				t.Errorf("plan does not encode: %v", err)
			}
		})
	}
}

func wantLen[T any](t *testing.T, what string, s []T, n int) {
	t.Helper()
	if len(s) != n {
		t.Errorf("%s: %d items, want %d: %+v", what, len(s), n, s)
	}
}
