package jira_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/sinks/jira/jiratest"
)

func findAccount(live reconcile.Live, id string) (reconcile.Account, bool) {
	for _, a := range live.Accounts {
		if a.AccountID == id {
			return a, true
		}
	}
	return reconcile.Account{}, false
}

func findGroup(live reconcile.Live, name string) (reconcile.LiveGroup, bool) {
	for _, g := range live.Groups {
		if strings.EqualFold(g.Name, name) {
			return g, true
		}
	}
	return reconcile.LiveGroup{}, false
}

func TestLiveReadsEveryPage(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	const nUsers, nMembers, nCustomers, nDesks, nOrgMembers, nGroups = 2345, 123, 131, 57, 61, 75
	ids := make([]string, nUsers)
	for i := range nUsers {
		u := jiratest.User{Email: fmt.Sprintf("user%04d@example.com", i), DisplayName: fmt.Sprintf("User %d", i),
			HideEmail: i%10 == 3, Inactive: i%50 == 7}
		if i < nMembers {
			u.Groups = []string{"Engineering"}
		}
		id, err := e.sim.AddUser(u)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	for i := range nGroups {
		if _, err := e.sim.AddGroup(fmt.Sprintf("team-%02d", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	for i := range nCustomers {
		if err := e.sim.AddDeskCustomer("DEMO", ids[i]); err != nil {
			t.Fatal(err)
		}
	}
	for i := range nDesks {
		if _, err := e.sim.AddDesk(jiratest.Desk{Key: fmt.Sprintf("D%02d", i), Name: fmt.Sprintf("Desk %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	orgID := e.sim.AddOrg("Customers Inc")
	for i := range nOrgMembers {
		if err := e.sim.AddOrgMember(orgID, ids[i]); err != nil {
			t.Fatal(err)
		}
	}
	custID, err := e.sim.AddUser(jiratest.User{Type: jiratest.TypeCustomer, Email: "portal@example.org", DisplayName: "Portal Person"})
	if err != nil {
		t.Fatal(err)
	}

	// D56 is on the second page of the desk listing.
	live, err := e.sink.Live(ctx, reconcile.Scope{Groups: []string{"engineering", "jira-software-users"},
		ServiceDesks: []string{"DEMO", "D56", "NOPE"}, Organizations: []string{"Customers Inc"}})
	if err != nil {
		t.Fatal(err)
	}
	// 2 seeded + users + 1 customer.
	if got, want := len(live.Accounts), nUsers+3; got != want {
		t.Fatalf("accounts = %d, want %d", got, want)
	}
	if got := e.sim.CallCount("GET", "/rest/api/3/users/search"); got != 3 {
		t.Errorf("users/search calls = %d, want 3 (pages of 1000)", got)
	}
	eng, ok := findGroup(live, "Engineering")
	if !ok || !eng.MembersRead || len(eng.Members) != nMembers {
		t.Fatalf("Engineering = %+v (members %d), want %d members read", eng.Name, len(eng.Members), nMembers)
	}
	if got := e.sim.CallCount("GET", "/rest/api/3/group/member"); got != 3+1+1 {
		t.Errorf("group/member calls = %d, want 5 (3 pages Engineering, 1 jira-software-users, 1 site-admins)", got)
	}
	if len(live.Groups) != 3+1+nGroups {
		t.Errorf("groups = %d, want %d", len(live.Groups), 3+1+nGroups)
	}
	if g, _ := findGroup(live, "team-00"); g.MembersRead || g.Members != nil {
		t.Errorf("out-of-scope group read: %+v", g)
	}
	if g, _ := findGroup(live, "jira-software-users"); !g.ProductAccess {
		t.Error("jira-software-users not flagged as product access")
	}
	if a, _ := findAccount(live, jiratest.SiteAdminID); !a.SiteAdmin {
		t.Error("site admin not flagged")
	}
	if a, _ := findAccount(live, jiratest.AppID); a.AccountType != reconcile.AccountApp {
		t.Errorf("app account type = %q", a.AccountType)
	}
	if a, _ := findAccount(live, custID); a.AccountType != reconcile.AccountCustomer || !strings.HasPrefix(a.AccountID, "qm:") {
		t.Errorf("customer account = %+v", a)
	}
	if a, _ := findAccount(live, ids[3]); a.Email != "" {
		t.Errorf("hidden email leaked: %q", a.Email)
	}
	if a, _ := findAccount(live, ids[4]); a.Email != "user0004@example.com" {
		t.Errorf("visible email = %q", a.Email)
	}
	if a, _ := findAccount(live, ids[7]); a.Active {
		t.Error("inactive user reported active")
	}
	if len(live.ServiceDesks) != 2 {
		t.Fatalf("desks = %+v, want DEMO and D56 (NOPE skipped)", live.ServiceDesks)
	}
	if d := live.ServiceDesks[0]; d.Key != "DEMO" || len(d.Customers) != nCustomers {
		t.Errorf("DEMO has %d customers, want %d", len(d.Customers), nCustomers)
	}
	if d := live.ServiceDesks[1]; d.Key != "D56" {
		t.Errorf("second desk = %+v", d)
	}
	if len(live.Organizations) != 1 || len(live.Organizations[0].Members) != nOrgMembers {
		t.Errorf("organizations = %+v", live.Organizations)
	}
}

func TestLiveRescuesLaggingAccounts(t *testing.T) {
	e := newEnv(t, withSim(func(o *jiratest.Options) { o.IndexLag = 1 << 40 }))
	ctx := ctxT(t)
	res, err := e.sink.Apply(ctx, reconcile.Change{Kind: reconcile.KindCreateUser, Email: "new@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	live, err := e.sink.Live(ctx, reconcile.Scope{Groups: []string{"jira-software-users"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := findAccount(live, res.AccountID); ok {
		t.Fatal("index lag not simulated: new account listed at once")
	}
	live, err = e.sink.Live(ctx, reconcile.Scope{Groups: []string{"jira-software-users"}, Accounts: []string{res.AccountID, "712020:gone"}})
	if err != nil {
		t.Fatal(err)
	}
	a, ok := findAccount(live, res.AccountID)
	if !ok || a.Email != "new@example.com" || !a.Active {
		t.Fatalf("lagging account not rescued: %+v", a)
	}
	if _, ok := findAccount(live, "712020:gone"); ok {
		t.Error("unknown account invented")
	}
	if got := e.sim.CallCount("GET", "/rest/api/3/user"); got != 2 {
		t.Errorf("GET /user calls = %d, want 2 (one per missing account)", got)
	}
}

func TestLiveTargeted(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	alice, _ := e.sim.AddUser(jiratest.User{Email: "Alice@Example.com", DisplayName: "Alice A", Groups: []string{"Engineering", "jira-software-users"}})
	_, _ = e.sim.AddUser(jiratest.User{Email: "alice@example.com.evil", DisplayName: "Alice Fake"})
	hidden, _ := e.sim.AddUser(jiratest.User{Email: "hidden@example.com", DisplayName: "Hidden H", HideEmail: true, Groups: []string{"Engineering"}})
	bob, _ := e.sim.AddUser(jiratest.User{Email: "bob@example.com", DisplayName: "Bob B", Groups: []string{"Sales"}})
	for range 60 {
		_, _ = e.sim.AddUser(jiratest.User{Email: fmt.Sprintf("x%d@example.com", len(e.sim.Accounts())), Groups: []string{"Engineering"}})
	}
	if err := e.sim.AddDeskCustomer("DEMO", alice); err != nil {
		t.Fatal(err)
	}
	org := e.sim.AddOrg("Partners")
	_ = e.sim.AddOrgMember(org, bob)
	e.sim.Reset()

	live, err := e.sink.Live(ctx, reconcile.Scope{Targeted: true, Emails: []string{"alice@example.com", "hidden@example.com"},
		Accounts: []string{bob}, Groups: []string{"Engineering", "Support"}, ServiceDesks: []string{"DEMO"}, Organizations: []string{"Partners"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(live.Accounts) != 2 {
		t.Fatalf("accounts = %+v, want alice (exact email) and bob (by id); hidden email must not match", live.Accounts)
	}
	if _, ok := findAccount(live, hidden); ok {
		t.Error("hidden email matched")
	}
	eng, ok := findGroup(live, "Engineering")
	if !ok || !slices.Equal(eng.Members, []string{alice}) || !eng.MembersRead {
		t.Errorf("Engineering = %+v, want only alice", eng)
	}
	if sales, ok := findGroup(live, "Sales"); !ok || !slices.Equal(sales.Members, []string{bob}) {
		t.Errorf("Sales = %+v", sales)
	}
	if jsu, _ := findGroup(live, "jira-software-users"); !jsu.ProductAccess {
		t.Error("product access flag missing in targeted read")
	}
	if len(live.ServiceDesks) != 1 || !slices.Equal(live.ServiceDesks[0].Customers, []string{alice}) {
		t.Errorf("desks = %+v", live.ServiceDesks)
	}
	if len(live.Organizations) != 1 || !slices.Equal(live.Organizations[0].Members, []string{bob}) {
		t.Errorf("orgs = %+v", live.Organizations)
	}
	for _, full := range []string{"/rest/api/3/users/search", "/rest/api/3/group/member"} {
		if n := e.sim.CallCount("GET", full); n != 0 {
			t.Errorf("targeted read listed %s %d times", full, n)
		}
	}
}

// A remove-access deactivation must know every product-access group an account is in, so
// their members are read even when no mapping names them; owned groups named only by id
// (renamed since) are read too.
func TestLiveReadsProductAccessAndOwnedGroups(t *testing.T) {
	e := newEnv(t, func(c *configs.JiraConfig, _ *jiratest.Options) { c.ProductAccessGroups = []string{"jira-users-site"} })
	uid, _ := e.sim.AddUser(jiratest.User{Email: "pa@example.com"})
	if _, err := e.sim.AddGroup("jira-users-site", ""); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.AddMember("jira-users-site", uid); err != nil {
		t.Fatal(err)
	}
	renamedID, _ := e.sim.AddGroup("renamed-team", "")
	if err := e.sim.AddMember("renamed-team", uid); err != nil {
		t.Fatal(err)
	}
	live, err := e.sink.Live(ctxT(t), reconcile.Scope{GroupIDs: []string{renamedID}})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"jira-users-site", "renamed-team"} {
		var found bool
		for _, g := range live.Groups {
			if g.Name == name {
				found = true
				if !g.MembersRead || !slices.Contains(g.Members, uid) {
					t.Errorf("group %s: members not read (%+v)", name, g)
				}
			}
		}
		if !found {
			t.Errorf("group %s not listed", name)
		}
	}
}
