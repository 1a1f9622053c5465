package jira_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/sinks/jira"
	"github.com/idsync/idsync/sinks/jira/jiratest"
	"github.com/rs/zerolog"
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

// Groups that grant admin rights (site-admin or admin access type) are flagged on full and
// targeted reads, at the cost of one group/bulk?accessType=admin lookup per read; members of
// admin-type groups are not read unless the scope names them.
func TestLiveFlagsAdminGroups(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	if _, err := e.sim.AddGroup("ops-admins", jiratest.AccessAdmin); err != nil {
		t.Fatal(err)
	}
	ops, err := e.sim.AddUser(jiratest.User{Email: "ops@example.com", Groups: []string{"ops-admins", "Engineering"}})
	if err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, live reconcile.Live, want map[string][2]bool) {
		t.Helper()
		for name, w := range want {
			g, ok := findGroup(live, name)
			if !ok {
				t.Errorf("group %s not in Live", name)
				continue
			}
			if g.Admin != w[0] || g.ProductAccess != w[1] {
				t.Errorf("%s: admin=%v productAccess=%v, want %v %v", name, g.Admin, g.ProductAccess, w[0], w[1])
			}
		}
	}

	e.sim.Reset()
	live, err := e.sink.Live(ctx, reconcile.Scope{Groups: []string{"Engineering"}})
	if err != nil {
		t.Fatal(err)
	}
	check(t, live, map[string][2]bool{"site-admins": {true, false}, "jira-admins": {true, false},
		"ops-admins": {true, false}, "jira-software-users": {false, true}, "Engineering": {false, false}})
	// One page of the group listing, the site-admin lookup and the admin lookup.
	if n := e.sim.CallCount("GET", "/rest/api/3/group/bulk"); n != 3 {
		t.Errorf("group/bulk calls = %d, want 3", n)
	}
	if g, _ := findGroup(live, "jira-admins"); g.MembersRead {
		t.Error("members of an admin-type group outside the scope were read")
	}
	if a, _ := findAccount(live, ops); a.SiteAdmin {
		t.Error("a member of an admin-type group was flagged as a site admin")
	}

	e.sim.Reset()
	live, err = e.sink.Live(ctx, reconcile.Scope{Targeted: true, Emails: []string{"ops@example.com"},
		Groups: []string{"jira-admins", "site-admins", "Engineering", "jira-software-users"}})
	if err != nil {
		t.Fatal(err)
	}
	check(t, live, map[string][2]bool{"site-admins": {true, false}, "jira-admins": {true, false},
		"ops-admins": {true, false}, "jira-software-users": {false, true}, "Engineering": {false, false}})
	if n := e.sim.CallCount("GET", "/rest/api/3/group/member"); n != 0 {
		t.Errorf("targeted read listed group members %d times", n)
	}
}

// A failed admin lookup fails the read, full or targeted: a group's admin flag is never
// guessed.
func TestLiveFailsWhenTheAdminLookupFails(t *testing.T) {
	clock := jiratest.NewScaledClock(100)
	sim := jiratest.New(jiratest.Options{Clock: clock, Seed: 1})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/rest/api/3/group/bulk" && r.URL.Query().Get("accessType") == "admin" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"errorMessages":["Browse users and groups permission is required to view groups."],"errors":{}}`))
			return
		}
		sim.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	hc := &http.Client{Transport: tr}
	t.Cleanup(hc.CloseIdleConnections)
	s, err := jira.New(configs.JiraConfig{BaseURL: srv.URL, Email: jiratest.DefaultEmail, APIToken: jiratest.DefaultAPIToken,
		Products: []string{"jira-software"}, RateLimit: configs.RateLimit{Concurrency: 4}},
		jira.Options{Logger: zerolog.Nop(), HTTPClient: hc, Version: "test", Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	for _, targeted := range []bool{false, true} {
		_, err := s.Live(ctxT(t), reconcile.Scope{Targeted: targeted, Emails: []string{"x@example.com"}, Groups: []string{"jira-admins"}})
		if err == nil || !strings.Contains(err.Error(), "reading admin groups") {
			t.Errorf("targeted=%v: Live = %v, want the admin lookup's error", targeted, err)
		}
	}
}

// A full read holds one copy of each account id, however many groups list the account: the
// members of every group and the account list share it.
func TestLiveSharesAccountIDs(t *testing.T) {
	e := newEnv(t)
	var ids []string
	for i := range 3 {
		id, err := e.sim.AddUser(jiratest.User{Email: fmt.Sprintf("share%d@example.com", i), Groups: []string{"alpha", "beta"}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	live, err := e.sink.Live(ctxT(t), reconcile.Scope{Groups: []string{"alpha", "beta"}})
	if err != nil {
		t.Fatal(err)
	}
	alpha, _ := findGroup(live, "alpha")
	beta, _ := findGroup(live, "beta")
	for _, id := range ids {
		a, ok := findAccount(live, id)
		ia, ib := slices.Index(alpha.Members, id), slices.Index(beta.Members, id)
		if !ok || ia < 0 || ib < 0 {
			t.Fatalf("account %s: listed %v, in alpha at %d, in beta at %d", id, ok, ia, ib)
		}
		if p := unsafe.StringData(a.AccountID); unsafe.StringData(alpha.Members[ia]) != p || unsafe.StringData(beta.Members[ib]) != p {
			t.Errorf("account %s is held in more than one copy", id)
		}
	}
}
