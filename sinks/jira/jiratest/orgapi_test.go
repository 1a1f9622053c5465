package jiratest_test

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/idsync/idsync/sinks/jira/jiratest"
)

var orgKey = []string{"Authorization", "Bearer " + jiratest.DefaultOrgAPIKey}

const orgBase = "/admin/v2/orgs/" + jiratest.DefaultOrgID + "/directories"

type dirUser struct {
	AccountID        string `json:"accountId"`
	AccountStatus    string `json:"accountStatus"`
	MembershipStatus string `json:"membershipStatus"`
	Status           string `json:"status"`
}

type orgPage struct {
	Data  []json.RawMessage `json:"data"`
	Links struct{ Self, Next, Prev string }
}

func decodePage(t *testing.T, a answer) orgPage {
	t.Helper()
	if a.status != 200 {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	var p orgPage
	if err := json.Unmarshal([]byte(a.body), &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func dirUsers(t *testing.T, base, query string) ([]dirUser, orgPage) {
	t.Helper()
	p := decodePage(t, call(t, base, "GET", orgBase+"/"+jiratest.DefaultDirectoryID+"/users"+query, "", orgKey...))
	out := make([]dirUser, len(p.Data))
	for i, raw := range p.Data {
		if err := json.Unmarshal(raw, &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out, p
}

// The organization API: bearer org key, Errors bodies, directories, users paged by cursor
// and limit, suspend and restore with their effect on the Jira routes.
func TestOrganizationAPI(t *testing.T) {
	sim, srv := jiratest.NewServer(t, jiratest.Options{Seed: 4, Data: jiratest.LegacyAccessSeed()})
	u := srv.URL
	var ids []string
	for i := range 25 {
		id, _ := sim.AddUser(jiratest.User{Email: "u" + string(rune('a'+i)) + "@example.com",
			Groups: []string{"Engineering", jiratest.LegacyAccessGroup}})
		ids = append(ids, id)
	}
	alice := ids[0]
	for _, tc := range []struct {
		name, method, path string
		hdr                []string
		status             int
		contains           string
	}{
		{"basic auth is not the org key", "GET", orgBase, nil, 401, `"errors"`},
		{"wrong key", "GET", orgBase, []string{"Authorization", "Bearer nope"}, 401, `"code":"UNAUTHORIZED"`},
		{"another org's directories", "GET", "/admin/v2/orgs/nope/directories", orgKey, 401, "UNAUTHORIZED"},
		{"another org's users", "GET", "/admin/v2/orgs/nope/directories/-/users", orgKey, 404, "ORG_NOT_FOUND"},
		{"directories", "GET", orgBase, orgKey, 200, `"directoryId":"` + jiratest.DefaultDirectoryID + `"`},
		{"limit above 100", "GET", orgBase + "/-/users?limit=101", orgKey, 400, "INVALID_LIMIT"},
		{"limit 0", "GET", orgBase + "/-/users?limit=0", orgKey, 400, "INVALID_LIMIT"},
		{"bad cursor", "GET", orgBase + "/-/users?cursor=zz", orgKey, 400, "INVALID_PAGE_CURSOR"},
		{"unknown directory", "GET", orgBase + "/nope/users", orgKey, 404, "DIRECTORY_NOT_FOUND"},
		{"too many accountIds", "GET", orgBase + "/-/users?" + strings.Repeat("accountIds=x&", 11), orgKey, 400, "INVALID_FILTER"},
		{"suspend in an unknown directory", "POST", orgBase + "/nope/users/" + alice + "/suspend", orgKey, 404, ""},
		{"suspend an app account", "POST", orgBase + "/" + jiratest.DefaultDirectoryID + "/users/" + jiratest.AppID + "/suspend", orgKey, 404, "USER_NOT_FOUND"},
		{"restore an active account", "POST", orgBase + "/" + jiratest.DefaultDirectoryID + "/users/" + alice + "/restore", orgKey, 400, "USER_NOT_SUSPENDED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := call(t, u, tc.method, tc.path, "", tc.hdr...)
			if a.status != tc.status || !strings.Contains(a.body, tc.contains) {
				t.Fatalf("%s %s = %d %s, want %d containing %q", tc.method, tc.path, a.status, a.body, tc.status, tc.contains)
			}
		})
	}

	// Every Atlassian account, in pages of 10 following links.next; app accounts are in no
	// directory.
	var all []string
	cursor := ""
	for pages := 0; ; pages++ {
		q := "?limit=10"
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		us, p := dirUsers(t, u, q)
		for _, x := range us {
			all = append(all, x.AccountID)
		}
		if p.Links.Next == "" {
			if pages != 2 {
				t.Fatalf("%d pages of 10 for %d users", pages+1, len(all))
			}
			break
		}
		cursor = p.Links.Next
	}
	if len(all) != 26 || slices.Contains(all, jiratest.AppID) || !slices.Contains(all, jiratest.SiteAdminID) {
		t.Fatalf("directory lists %d users %v, want the site admin and the 25 users, not the app", len(all), all)
	}

	// Suspend: groups kept, Jira reports the account inactive, user/search no longer finds it,
	// group/member shows it only with includeInactiveUsers, the org API lists it suspended.
	path := orgBase + "/" + jiratest.DefaultDirectoryID + "/users/" + alice
	if a := call(t, u, "POST", path+"/suspend", "", orgKey...); a.status != 204 {
		t.Fatalf("suspend = %d %s", a.status, a.body)
	}
	if a := call(t, u, "POST", path+"/suspend", "", orgKey...); a.status != 400 || !strings.Contains(a.body, "USER_ALREADY_SUSPENDED") {
		t.Fatalf("repeated suspend = %d %s, want 400", a.status, a.body)
	}
	acc, _ := sim.Account(alice)
	if !acc.Suspended || acc.Suspensions != 1 || !slices.Equal(acc.Groups, []string{"Engineering", jiratest.LegacyAccessGroup}) {
		t.Fatalf("account after suspend: %+v", acc)
	}
	us, _ := dirUsers(t, u, "?accountIds="+alice)
	if len(us) != 1 || us[0].MembershipStatus != "suspended" || us[0].Status != "suspended" || us[0].AccountStatus != "active" {
		t.Fatalf("directory lists %+v, want alice suspended (account active)", us)
	}
	if a := call(t, u, "GET", "/rest/api/3/user?accountId="+alice, ""); !strings.Contains(a.body, `"active":false`) {
		t.Fatalf("GET /user of a suspended account: %s", a.body)
	}
	if a := call(t, u, "GET", "/rest/api/3/user/search?query="+url.QueryEscape("ua@example.com"), ""); a.body != "[]\n" {
		t.Fatalf("user/search finds a suspended account: %s", a.body)
	}
	legacy, _ := sim.Group(jiratest.LegacyAccessGroup)
	if a := call(t, u, "GET", "/rest/api/3/group/member?groupId="+legacy.ID, ""); strings.Contains(a.body, alice) {
		t.Fatal("group/member lists a suspended account without includeInactiveUsers")
	}
	if a := call(t, u, "GET", "/rest/api/3/group/member?includeInactiveUsers=true&groupId="+legacy.ID, ""); !strings.Contains(a.body, alice) {
		t.Fatal("group/member?includeInactiveUsers=true omits a suspended account")
	}
	if us, _ := dirUsers(t, u, "?status=suspended"); len(us) != 1 || us[0].AccountID != alice {
		t.Fatalf("status=suspended lists %+v", us)
	}

	// A suspended account holds no licensed seat; restoring it needs one.
	sim.SetSeats(26) // the site admin and the 24 others hold 25
	if a := call(t, u, "POST", path+"/restore", "", orgKey...); a.status != 204 {
		t.Fatalf("restore = %d %s", a.status, a.body)
	}
	if a := call(t, u, "POST", path+"/suspend", "", orgKey...); a.status != 204 {
		t.Fatalf("second suspend = %d %s", a.status, a.body)
	}
	if _, err := sim.AddUser(jiratest.User{Email: "late@example.com", Groups: []string{"jira-software-users"}}); err != nil {
		t.Fatal(err)
	}
	if a := call(t, u, "POST", path+"/restore", "", orgKey...); a.status != 400 || !strings.Contains(a.body, "LICENSE_LIMIT_EXCEEDED") {
		t.Fatalf("restore without a seat = %d %s, want 400", a.status, a.body)
	}
	if acc, _ := sim.Account(alice); !acc.Suspended || acc.Suspensions != 2 {
		t.Fatalf("account %+v, want still suspended, suspended twice", acc)
	}
}

// Directories can be added (several directories: clients must be told which one to use),
// and filtered by the accounts they hold.
func TestOrganizationDirectories(t *testing.T) {
	sim, srv := jiratest.NewServer(t, jiratest.Options{Seed: 5})
	other, err := sim.AddDirectory("", "Contractors")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sim.AddDirectory(other, "again"); err == nil {
		t.Fatal("a directory id was accepted twice")
	}
	if p := decodePage(t, call(t, srv.URL, "GET", orgBase, "", orgKey...)); len(p.Data) != 2 {
		t.Fatalf("%d directories, want 2", len(p.Data))
	}
	p := decodePage(t, call(t, srv.URL, "GET", orgBase+"?accountId="+jiratest.SiteAdminID, "", orgKey...))
	if len(p.Data) != 1 || !strings.Contains(string(p.Data[0]), jiratest.DefaultDirectoryID) {
		t.Fatalf("directories of the site admin: %s", p.Data)
	}
	if a := call(t, srv.URL, "POST", orgBase+"/"+other+"/users/"+jiratest.SiteAdminID+"/suspend", "", orgKey...); a.status != 404 {
		t.Fatalf("suspend in a directory the account is not in = %d", a.status)
	}
	if err := sim.SetSuspended(jiratest.AppID, true); err == nil {
		t.Fatal("an app account was suspended")
	}
}
