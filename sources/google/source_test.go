package google

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/sources/google/googletest"
)

// wantGroups is every user's groups as the simulator's org says (nested groups expanded).
func wantGroups(sim *googletest.Server, nameOf func(googletest.Group) string) map[string][]string {
	out := map[string][]string{}
	for _, g := range sim.Groups() {
		for _, m := range sim.EffectiveMembers(g.Email) {
			out[m] = append(out[m], nameOf(g))
		}
	}
	for k := range out {
		slices.Sort(out[k])
	}
	return out
}

func byName(g googletest.Group) string { return g.Name }

func userByName(dir reconcile.Directory, name string) (reconcile.User, bool) {
	for _, u := range dir.Users {
		if u.UserName == name {
			return u, true
		}
	}
	return reconcile.User{}, false
}

func TestSnapshotDefaultOrg(t *testing.T) {
	e := newEnv(t, googletest.Options{}, nil)
	dir, err := e.src.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(dir.Users) != 200 || len(dir.Groups) != 15 || dir.Source != "gws" {
		t.Fatalf("users %d groups %d source %q", len(dir.Users), len(dir.Groups), dir.Source)
	}
	want := wantGroups(e.sim, byName)
	simUsers := map[string]googletest.User{}
	for _, u := range e.sim.Users() {
		simUsers[u.PrimaryEmail] = u
	}
	inactive, nestedOnly := 0, 0
	for _, u := range dir.Users {
		su := simUsers[u.UserName]
		if u.Key != su.ID || u.Email != su.PrimaryEmail || u.GivenName != su.GivenName || u.FamilyName != su.FamilyName ||
			u.DisplayName != su.GivenName+" "+su.FamilyName || u.Attributes["orgUnitPath"] != su.OrgUnitPath {
			t.Errorf("user %s = %+v, simulator has %+v", u.UserName, u, su)
		}
		if u.Active == (su.Suspended || su.Archived) {
			t.Errorf("user %s active=%v, suspended=%v archived=%v", u.UserName, u.Active, su.Suspended, su.Archived)
		}
		if !u.Active {
			inactive++
		}
		if !slices.Equal(u.Groups, want[u.UserName]) {
			t.Errorf("user %s groups %v, want %v", u.UserName, u.Groups, want[u.UserName])
		}
		if slices.Contains(u.Groups, "Engineering") && !slices.Contains(direct(e.sim, "Engineering"), u.UserName) {
			nestedOnly++
		}
	}
	if inactive != 5 {
		t.Errorf("%d inactive users, want 3 suspended + 2 archived", inactive)
	}
	if nestedOnly == 0 {
		t.Error("no user is in Engineering through QA: nested groups were not expanded")
	}
	// The fewest calls: one page of users (500 a page), one of groups, one per group's
	// members, one token.
	calls := e.sim.Calls()
	if calls[googletest.EndpointUsersList] != 1 || calls[googletest.EndpointGroupsList] != 1 ||
		calls[googletest.EndpointMembersList] != 15 || calls[googletest.EndpointToken] != 1 {
		t.Errorf("calls %v", calls)
	}
	// The token asked for exactly the read-only scopes, impersonating admin_email.
	sub, scopes := e.sim.LastAssertion()
	if sub != googletest.DefaultAdminEmail || !slices.Equal(scopes, configs.GoogleScopes) {
		t.Errorf("assertion sub %q scopes %v", sub, scopes)
	}
}

// direct is the primary emails of a group's direct user members.
func direct(sim *googletest.Server, name string) []string {
	for _, g := range sim.Groups() {
		if g.Name == name {
			return g.Members
		}
	}
	return nil
}

func TestNestedGroupsServerSideEqualsClientSide(t *testing.T) {
	client := newEnv(t, googletest.Options{}, nil)
	server := newEnv(t, googletest.Options{}, func(c *configs.GoogleConfig) { c.NestedGroups = true })
	a, err := client.src.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b, err := server.src.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Users) != len(b.Users) {
		t.Fatalf("%d vs %d users", len(a.Users), len(b.Users))
	}
	for i := range a.Users {
		if !slices.Equal(a.Users[i].Groups, b.Users[i].Groups) {
			t.Errorf("user %s: expanded by idsync %v, by Google %v", a.Users[i].UserName, a.Users[i].Groups, b.Users[i].Groups)
		}
	}
}

// smallOrg: three groups, Outer contains Inner (outside group_query), Inner contains Loop and
// Loop contains Inner (a cycle); Everyone holds the whole account.
func smallOrg() *googletest.Org {
	return &googletest.Org{
		Users: []googletest.User{
			{ID: "u1", PrimaryEmail: "ann@example.com", GivenName: "Ann", FamilyName: "A"},
			{ID: "u2", PrimaryEmail: "bob@example.com", GivenName: "Bob", FamilyName: "B", Suspended: true},
			{ID: "u3", PrimaryEmail: "cy@example.com", GivenName: "Cy", FamilyName: "C", Aliases: []string{"cy@corp.example.net"}},
		},
		Groups: []googletest.Group{
			{ID: "g1", Email: "outer@example.com", Name: "Team-Outer", Members: []string{"ann@example.com", "hidden-inner@example.com"}},
			{ID: "g2", Email: "hidden-inner@example.com", Name: "Hidden-Inner", Members: []string{"bob@example.com", "hidden-loop@example.com"}},
			{ID: "g3", Email: "hidden-loop@example.com", Name: "Hidden-Loop", Members: []string{"cy@example.com", "hidden-inner@example.com"}},
			{ID: "g4", Email: "everyone@example.com", Name: "Team-Everyone", Members: []string{googletest.CustomerMember}},
		},
	}
}

func TestNestedGroupsOutsideTheListingAndCycles(t *testing.T) {
	for _, derived := range []bool{false, true} {
		e := newEnv(t, googletest.Options{Org: smallOrg()}, func(c *configs.GoogleConfig) {
			c.GroupQuery = "name:Team*"
			c.NestedGroups = derived
		})
		dir, err := e.src.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(dir.Groups) != 2 {
			t.Errorf("derived=%v: groups %+v, want the two the query selects", derived, dir.Groups)
		}
		for name, want := range map[string][]string{
			"ann@example.com": {"Team-Everyone", "Team-Outer"},
			"bob@example.com": {"Team-Everyone", "Team-Outer"},
			"cy@example.com":  {"Team-Everyone", "Team-Outer"},
		} {
			u, _ := userByName(dir, name)
			if !slices.Equal(u.Groups, want) {
				t.Errorf("derived=%v: %s groups %v, want %v", derived, name, u.Groups, want)
			}
		}
		if n := e.sim.Calls()[googletest.EndpointMembersList]; derived && n != 2 || !derived && n != 4 {
			t.Errorf("derived=%v: %d member listings (idsync reads the two nested groups outside the query once each)", derived, n)
		}
	}
}

func TestPagingAtTheSimulatorsCaps(t *testing.T) {
	org := googletest.GenerateOrg(googletest.OrgSpec{Users: 53, Groups: 9, MembershipsPerUser: 3, Nested: 2, Seed: 4})
	e := newEnv(t, googletest.Options{Org: &org}, nil)
	e.sim.SetPageCaps(7, 4, 3)
	dir, err := e.src.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(dir.Users) != 53 || len(dir.Groups) != 9 {
		t.Fatalf("users %d groups %d", len(dir.Users), len(dir.Groups))
	}
	want := wantGroups(e.sim, byName)
	for _, u := range dir.Users {
		if !slices.Equal(u.Groups, want[u.UserName]) {
			t.Errorf("%s: %v, want %v", u.UserName, u.Groups, want[u.UserName])
		}
	}
	wantMembers := 0
	for _, g := range e.sim.Groups() {
		wantMembers += max(1, (len(g.Members)+2)/3)
	}
	calls := e.sim.Calls()
	if calls[googletest.EndpointUsersList] != 8 || calls[googletest.EndpointGroupsList] != 3 || calls[googletest.EndpointMembersList] != wantMembers {
		t.Errorf("calls %v, want 8 user pages, 3 group pages, %d member pages", calls, wantMembers)
	}
}

func TestMaxObjectsBoundsAListing(t *testing.T) {
	e := newEnv(t, googletest.Options{}, func(c *configs.GoogleConfig) { c.MaxObjects = 150; c.PageSize = 100 })
	_, err := e.src.Snapshot(context.Background())
	if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "more than max_objects (150)") {
		t.Fatalf("err = %v", err)
	}
	if n := e.sim.Calls()[googletest.EndpointUsersList]; n != 2 {
		t.Errorf("%d user pages read: the read must stop at the page that crosses the bound", n)
	}
}

func TestGroupNames(t *testing.T) {
	org := smallOrg()
	org.Groups[3].Name = "Team-Outer"
	e := newEnv(t, googletest.Options{Org: org}, nil)
	_, err := e.src.Snapshot(context.Background())
	if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), `both named "Team-Outer"`) || !strings.Contains(err.Error(), "group_name: email") {
		t.Fatalf("two groups with one name: err = %v", err)
	}
	e = newEnv(t, googletest.Options{Org: smallOrg()}, func(c *configs.GoogleConfig) { c.GroupName = configs.GoogleGroupNameEmail })
	dir, err := e.src.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	u, _ := userByName(dir, "ann@example.com")
	if !slices.Equal(u.Groups, []string{"everyone@example.com", "outer@example.com"}) {
		t.Errorf("group_name email: %v", u.Groups)
	}
}

func TestEmailDomainPicksTheAlias(t *testing.T) {
	e := newEnv(t, googletest.Options{Org: smallOrg()}, func(c *configs.GoogleConfig) { c.EmailDomain = "corp.example.net" })
	dir, err := e.src.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cy, _ := userByName(dir, "cy@example.com")
	ann, _ := userByName(dir, "ann@example.com")
	if cy.Email != "cy@corp.example.net" || ann.Email != "ann@example.com" {
		t.Errorf("emails %q %q", cy.Email, ann.Email)
	}
	e = newEnv(t, googletest.Options{Org: smallOrg()}, nil)
	dir, err = e.src.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if cy, _ := userByName(dir, "cy@example.com"); cy.Email != "cy@example.com" {
		t.Errorf("without email_domain aliases are ignored, got %q", cy.Email)
	}
}

func TestUserQueryAndDomain(t *testing.T) {
	e := newEnv(t, googletest.Options{Org: smallOrg()}, func(c *configs.GoogleConfig) {
		c.Customer, c.Domain, c.UserQuery = "", "example.com", "isSuspended=false"
	})
	dir, err := e.src.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(dir.Users) != 2 {
		t.Errorf("users %+v, want the two not suspended", dir.Users)
	}
	e = newEnv(t, googletest.Options{Org: smallOrg()}, func(c *configs.GoogleConfig) { c.Customer, c.Domain = "", "other.example.org" })
	if _, err := e.src.Snapshot(context.Background()); !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "lack the admin privileges") {
		t.Errorf("another domain: err = %v", err)
	}
}

func TestUser(t *testing.T) {
	e := newEnv(t, googletest.Options{Org: smallOrg()}, func(c *configs.GoogleConfig) { c.GroupQuery = "name:Team*" })
	ctx := context.Background()
	u, err := e.src.User(ctx, "Cy@example.com")
	if err != nil {
		t.Fatal(err)
	}
	// cy is in Hidden-Loop, inside Hidden-Inner (a cycle), inside Team-Outer. Team-Everyone
	// holds the whole account, which groups.list by member does not report.
	if u.Key != "u3" || !u.Active || !slices.Equal(u.Groups, []string{"Team-Outer"}) {
		t.Errorf("user = %+v", u)
	}
	b, err := e.src.User(ctx, "bob@example.com")
	if err != nil || b.Active {
		t.Errorf("suspended bob: %+v, %v", b, err)
	}
	if _, err := e.src.User(ctx, "nobody@example.com"); !errors.Is(err, reconcile.ErrUserNotFound) {
		t.Errorf("unknown user: %v", err)
	}
	if _, err := e.src.User(ctx, "cy@corp.example.net"); err == nil || !strings.Contains(err.Error(), "the answer is for") {
		t.Errorf("an alias: %v", err)
	}
}

func TestCredentialsRefused(t *testing.T) {
	e := newEnv(t, googletest.Options{Org: smallOrg()}, nil)
	e.sim.SetGranted(googletest.ReadOnlyScopes[:1])
	_, err := e.src.Snapshot(context.Background())
	if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "Domain-wide delegation") || !strings.Contains(err.Error(), googletest.DefaultClientID) {
		t.Errorf("scopes not delegated: %v", err)
	}
	e = newEnv(t, googletest.Options{Org: smallOrg()}, func(c *configs.GoogleConfig) { c.AdminEmail = "someone@example.com" })
	_, err = e.src.Snapshot(context.Background())
	if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), `admin_email "someone@example.com" must be an existing`) {
		t.Errorf("not an admin: %v", err)
	}
	if strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Error("the error quotes the key")
	}
}

func TestEndpointLabels(t *testing.T) {
	for path, want := range map[string]string{
		"/admin/directory/v1/users":                   "/admin/directory/v1/users",
		"/admin/directory/v1/users/ann@example.com":   "/admin/directory/v1/users/{userKey}",
		"/proxy/admin/directory/v1/groups":            "/admin/directory/v1/groups",
		"/admin/directory/v1/groups/g1/members":       "/admin/directory/v1/groups/{groupKey}/members",
		"/token":                                      "token",
		"/admin/directory/v1/groups/g1/hasMember/u2x": "/admin/directory/v1/other",
	} {
		if got := endpointLabel(path); got != want {
			t.Errorf("%s: %s, want %s", path, got, want)
		}
	}
}

func TestNewRefusesBadInput(t *testing.T) {
	sim := googletest.NewServer(t, googletest.Options{Org: smallOrg()})
	good := configs.GoogleConfig{AdminEmail: "a@example.com", CredentialsFile: sim.CredentialsFile(), BaseURL: sim.URL}
	for name, edit := range map[string]func(*configs.GoogleConfig){
		"base url":    func(c *configs.GoogleConfig) { c.BaseURL = "ftp://x" },
		"admin email": func(c *configs.GoogleConfig) { c.AdminEmail = " " },
		"no file":     func(c *configs.GoogleConfig) { c.CredentialsFile = "" },
		"bad file":    func(c *configs.GoogleConfig) { c.CredentialsFile = t.TempDir() },
	} {
		c := good
		edit(&c)
		if _, err := New("gws", c, Options{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := New("gws", good, Options{}); err != nil {
		t.Errorf("good config: %v", err)
	}
}
