package googletest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2/google"
)

func small() *Org {
	o := GenerateOrg(OrgSpec{Users: 9, Groups: 3, MembershipsPerUser: 1, Suspended: 1, Nested: 0, Seed: 2})
	return &o
}

func TestTokenEndpointChecksTheAssertion(t *testing.T) {
	s := NewServer(t, Options{Org: small()})
	fetch := func(scopes []string, sub string, keyJSON []byte) error {
		cfg, err := google.JWTConfigFromJSON(keyJSON, scopes...)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Subject = sub
		_, err = cfg.TokenSource(context.Background()).Token()
		return err
	}
	good := ServiceAccountJSON(s.URL + PathToken)
	if err := fetch(ReadOnlyScopes, DefaultAdminEmail, good); err != nil {
		t.Fatalf("the read-only scopes as the admin: %v", err)
	}
	if err := fetch(append(slices.Clone(ReadOnlyScopes), "https://www.googleapis.com/auth/admin.directory.user"), DefaultAdminEmail, good); err == nil || !strings.Contains(err.Error(), "unauthorized_client") {
		t.Errorf("a scope not delegated: %v", err)
	}
	if err := fetch(ReadOnlyScopes, "intern@example.com", good); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("not an admin: %v", err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s2 := NewServer(t, Options{Org: small(), PublicKey: &other.PublicKey})
	if err := fetch(ReadOnlyScopes, DefaultAdminEmail, ServiceAccountJSON(s2.URL+PathToken)); err == nil || !strings.Contains(err.Error(), "Invalid JWT Signature") {
		t.Errorf("signed with another key: %v", err)
	}
	// The audience must be this endpoint: an assertion made out to another one is refused.
	s.SetTokenURL(s.URL + "/elsewhere" + PathToken)
	if err := fetch(ReadOnlyScopes, DefaultAdminEmail, good); err == nil || !strings.Contains(err.Error(), "audience") {
		t.Errorf("an assertion for another token endpoint: %v", err)
	}
	if got := s.Calls()[EndpointToken]; got != 4 {
		t.Errorf("token calls %d", got)
	}
}

func TestAPIChecksTheTokenAndItsScopes(t *testing.T) {
	s := NewServer(t, Options{Org: small()})
	if code, body, h := get(t, s, "", "/admin/directory/v1/users?customer=my_customer"); code != http.StatusUnauthorized || h.Get("WWW-Authenticate") == "" {
		t.Errorf("no token: %d %s", code, body)
	}
	if code, _, _ := get(t, s, "ya29.forged", "/admin/directory/v1/users?customer=my_customer"); code != http.StatusUnauthorized {
		t.Errorf("forged token: %d", code)
	}
	userOnly := token(t, s, ReadOnlyScopes[0])
	if code, _, _ := get(t, s, userOnly, "/admin/directory/v1/users?customer=my_customer"); code != http.StatusOK {
		t.Errorf("users with the user scope: %d", code)
	}
	if code, body, _ := get(t, s, userOnly, "/admin/directory/v1/groups?customer=my_customer"); code != http.StatusForbidden || !strings.Contains(string(body), "insufficientPermissions") {
		t.Errorf("groups with the user scope only: %d %s", code, body)
	}
	memberOnly := token(t, s, ReadOnlyScopes[2])
	if code, _, _ := get(t, s, memberOnly, "/admin/directory/v1/groups/grp000001/members"); code != http.StatusOK {
		t.Errorf("members with the member scope: %d", code)
	}
	s.RevokeTokens()
	if code, _, _ := get(t, s, userOnly, "/admin/directory/v1/users?customer=my_customer"); code != http.StatusUnauthorized {
		t.Errorf("a revoked token: %d", code)
	}
}

func TestRequestValidation(t *testing.T) {
	s := NewServer(t, Options{Org: small()})
	tok := token(t, s, ReadOnlyScopes...)
	for path, want := range map[string]int{
		"/admin/directory/v1/users":                                                   http.StatusBadRequest, // neither customer nor domain
		"/admin/directory/v1/users?customer=C999":                                     http.StatusForbidden,
		"/admin/directory/v1/users?domain=other.example.org":                          http.StatusForbidden,
		"/admin/directory/v1/users?customer=my_customer&maxResults=501":               http.StatusBadRequest,
		"/admin/directory/v1/users?customer=my_customer&maxResults=0":                 http.StatusBadRequest,
		"/admin/directory/v1/users?customer=my_customer&pageToken=bogus":              http.StatusBadRequest,
		"/admin/directory/v1/users?customer=my_customer&bogus=1":                      http.StatusBadRequest,
		"/admin/directory/v1/users?customer=my_customer&query=nickname:x":             http.StatusBadRequest,
		"/admin/directory/v1/users?customer=" + DefaultCustomerID:                     http.StatusOK,
		"/admin/directory/v1/groups?customer=my_customer&maxResults=201":              http.StatusBadRequest,
		"/admin/directory/v1/groups/nope@example.com/members":                         http.StatusNotFound,
		"/admin/directory/v1/groups/grp000001/members?maxResults=201":                 http.StatusBadRequest,
		"/admin/directory/v1/groups/grp000001/members?roles=OWNER":                    http.StatusOK,
		"/admin/directory/v1/groups/grp000001/members?includeDerivedMembership=maybe": http.StatusBadRequest,
		"/admin/directory/v1/customers/my_customer":                                   http.StatusNotFound,
	} {
		if code, body, _ := get(t, s, tok, path); code != want {
			t.Errorf("%s: HTTP %d, want %d: %s", path, code, want, body)
		}
	}
	// A page token belongs to its listing.
	_, body, _ := get(t, s, tok, "/admin/directory/v1/users?customer=my_customer&maxResults=2")
	var page struct {
		NextPageToken string `json:"nextPageToken"`
	}
	if err := json.Unmarshal(body, &page); err != nil || page.NextPageToken == "" {
		t.Fatalf("no next page: %s", body)
	}
	if code, _, _ := get(t, s, tok, "/admin/directory/v1/groups?customer=my_customer&pageToken="+url.QueryEscape(page.NextPageToken)); code != http.StatusBadRequest {
		t.Errorf("a users page token on groups: %d", code)
	}
}

// Listing by pageToken returns every user once, in order, whatever the page size; a
// query narrows the listing.
func TestPagingAndQueries(t *testing.T) {
	s := NewServer(t, Options{Org: small()})
	tok := token(t, s, ReadOnlyScopes...)
	list := func(q string) []string {
		var out []string
		next := ""
		for range 20 {
			path := "/admin/directory/v1/users?customer=my_customer&maxResults=4&" + q
			if next != "" {
				path += "&pageToken=" + url.QueryEscape(next)
			}
			code, body, _ := get(t, s, tok, path)
			if code != http.StatusOK {
				t.Fatalf("%s: %d %s", path, code, body)
			}
			var page struct {
				Users []struct {
					PrimaryEmail string `json:"primaryEmail"`
				} `json:"users"`
				NextPageToken string `json:"nextPageToken"`
			}
			if err := json.Unmarshal(body, &page); err != nil {
				t.Fatal(err)
			}
			for _, u := range page.Users {
				out = append(out, u.PrimaryEmail)
			}
			if next = page.NextPageToken; next == "" {
				return out
			}
		}
		t.Fatal("the listing does not end")
		return nil
	}
	all := list("")
	if len(all) != 9 {
		t.Fatalf("listed %v", all)
	}
	var want []string
	for _, u := range s.Users() {
		want = append(want, u.PrimaryEmail)
	}
	if !slices.Equal(all, want) {
		t.Errorf("listing %v, want %v", all, want)
	}
	if got := list("query=isSuspended%3Dtrue"); len(got) != 1 {
		t.Errorf("suspended: %v", got)
	}
	if got := list("query=" + url.QueryEscape("orgUnitPath='/'")); len(got) != 9 {
		t.Errorf("the root unit holds everyone: %v", got)
	}
	if got := list("orderBy=email&sortOrder=DESCENDING"); !slices.IsSortedFunc(got, func(a, b string) int { return strings.Compare(b, a) }) {
		t.Errorf("descending by email: %v", got)
	}
}

func TestDerivedMembership(t *testing.T) {
	org := &Org{
		Users: []User{{PrimaryEmail: "a@example.com"}, {PrimaryEmail: "b@example.com"}},
		Groups: []Group{
			{Email: "top@example.com", Name: "Top", Members: []string{"a@example.com", "mid@example.com"}},
			{Email: "mid@example.com", Name: "Mid", Members: []string{"b@example.com", "top@example.com"}},
		},
	}
	s := NewServer(t, Options{Org: org})
	tok := token(t, s, ReadOnlyScopes...)
	members := func(q string) []string {
		_, body, _ := get(t, s, tok, "/admin/directory/v1/groups/top@example.com/members"+q)
		var page struct {
			Members []struct {
				Email, Type string
			} `json:"members"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range page.Members {
			out = append(out, m.Type+":"+m.Email)
		}
		return out
	}
	if got := members(""); !slices.Equal(got, []string{"USER:a@example.com", "GROUP:mid@example.com"}) {
		t.Errorf("direct: %v", got)
	}
	if got := members("?includeDerivedMembership=true"); !slices.Equal(got, []string{"USER:a@example.com", "GROUP:mid@example.com", "USER:b@example.com"}) {
		t.Errorf("derived (a cycle back to top): %v", got)
	}
	if got := s.EffectiveMembers("top@example.com"); !slices.Equal(got, []string{"a@example.com", "b@example.com"}) {
		t.Errorf("EffectiveMembers %v", got)
	}
	// groups.list by member: a user's groups, and a group's parents.
	_, body, _ := get(t, s, tok, "/admin/directory/v1/groups?userKey=mid@example.com")
	if !strings.Contains(string(body), `"top@example.com"`) || strings.Contains(string(body), `"mid@example.com"`) {
		t.Errorf("parents of mid: %s", body)
	}
}

func TestKnobs(t *testing.T) {
	s := NewServer(t, Options{Org: small()})
	tok := token(t, s, ReadOnlyScopes...)
	s.Reset()
	s.SetRateLimit(1, 1, Throttle429)
	get(t, s, tok, "/admin/directory/v1/users?customer=my_customer")
	code, body, h := get(t, s, tok, "/admin/directory/v1/users?customer=my_customer")
	if code != http.StatusTooManyRequests || h.Get("Retry-After") != "1" {
		t.Errorf("over the limit: %d %s %v", code, body, h)
	}
	s.SetRateLimit(1, 1, Throttle403User)
	get(t, s, tok, "/admin/directory/v1/users?customer=my_customer")
	if code, body, _ := get(t, s, tok, "/admin/directory/v1/users?customer=my_customer"); code != http.StatusForbidden || !strings.Contains(string(body), "userRateLimitExceeded") {
		t.Errorf("403 throttle: %d %s", code, body)
	}
	if s.Throttled() != 2 || s.Calls()[EndpointUsersList] != 2 {
		t.Errorf("throttled %d, calls %v (throttled requests are not counted as served)", s.Throttled(), s.Calls())
	}
	s.ClearFaults()
	s.SetUserHook(func(_ string, rec map[string]any) { delete(rec, "suspended") })
	if _, body, _ := get(t, s, tok, "/admin/directory/v1/users?customer=my_customer"); strings.Contains(string(body), `"suspended"`) {
		t.Errorf("the hook did not apply: %s", body)
	}
	s.SetUserHook(nil)
	s.AddFault(Fault{Kind: FaultStatus, Endpoint: EndpointGroupsList, Page: 0, Times: 1, Status: 503})
	if code, _, _ := get(t, s, tok, "/admin/directory/v1/groups?customer=my_customer"); code != http.StatusServiceUnavailable {
		t.Errorf("fault: %d", code)
	}
	if code, _, _ := get(t, s, tok, "/admin/directory/v1/groups?customer=my_customer"); code != http.StatusOK {
		t.Errorf("after the fault's one time: %d", code)
	}
	if s.Injected() != 1 {
		t.Errorf("injected %d", s.Injected())
	}
	s.AddFault(Fault{Kind: FaultTruncate, Endpoint: EndpointUsersList, Page: AnyPage, Times: 1})
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/admin/directory/v1/users?customer=my_customer", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		var v any
		err = json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
	}
	if err == nil {
		t.Error("a truncated body decoded")
	}
}

func TestMutations(t *testing.T) {
	s := New(Options{Org: small()})
	users := s.Users()
	g := s.Groups()[0]
	if _, err := s.Hire(User{PrimaryEmail: "new@example.com", GivenName: "New"}, g.Email); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(s.EffectiveMembers(g.Email), "new@example.com") {
		t.Error("the hire is not a member")
	}
	if err := s.Delete(users[0].PrimaryEmail); err != nil {
		t.Fatal(err)
	}
	if len(s.Users()) != len(users) || slices.ContainsFunc(s.Users(), func(u User) bool { return u.PrimaryEmail == users[0].PrimaryEmail }) {
		t.Error("the leaver is still listed")
	}
	if err := s.SetSuspended(users[1].PrimaryEmail, true); err != nil || !s.Users()[0].Suspended {
		t.Errorf("suspend: %v", err)
	}
	if err := s.RemoveMember(g.Email, "new@example.com"); err != nil || slices.Contains(s.EffectiveMembers(g.Email), "new@example.com") {
		t.Errorf("remove: %v", err)
	}
	if err := s.Delete("nobody@example.com"); err == nil {
		t.Error("deleting nobody")
	}
	if err := s.SetName(users[1].PrimaryEmail, "Renée", "Roe"); err != nil {
		t.Fatal(err)
	}
	if u := s.Users()[0]; u.PrimaryEmail != users[1].PrimaryEmail || u.GivenName != "Renée" || u.FamilyName != "Roe" {
		t.Errorf("after SetName: %+v", u)
	}
	// A deleted group is gone from the listing, by either key, and from its parents.
	parent, child := Group{ID: "g-parent", Email: "parent@groups.example.com", Name: "Parent"}, Group{ID: "g-child", Email: "child@groups.example.com", Name: "Child"}
	if err := s.AddGroup(child); err != nil {
		t.Fatal(err)
	}
	parent.Members = []string{child.Email}
	if err := s.AddGroup(parent); err != nil {
		t.Fatal(err)
	}
	if err := s.AddMember(child.Email, users[1].PrimaryEmail); err != nil || !slices.Contains(s.EffectiveMembers(parent.Email), users[1].PrimaryEmail) {
		t.Fatalf("nested member: %v", err)
	}
	if err := s.DeleteGroup(child.ID); err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(s.Groups(), func(g Group) bool { return g.ID == child.ID }) || len(s.EffectiveMembers(parent.Email)) != 0 {
		t.Errorf("the deleted group is still listed or still a member: %+v", s.Groups())
	}
	if err := s.AddMember(child.Email, users[1].PrimaryEmail); err == nil {
		t.Error("adding to a deleted group succeeded")
	}
	if err := s.DeleteGroup(child.Email); err == nil {
		t.Error("deleting a deleted group succeeded")
	}
}
