package miniorangetest

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// call posts body to path with the headers a correct client sends at now.
func call(t *testing.T, url, path string, body any, edit func(http.Header)) (int, map[string]any, http.Header) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, err := http.NewRequest(http.MethodPost, url+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	sum := sha512.Sum512([]byte(DefaultCustomerKey + ts + DefaultAPIKey))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Customer-Key", DefaultCustomerKey)
	req.Header.Set("Timestamp", ts)
	req.Header.Set("Authorization", hex.EncodeToString(sum[:]))
	if edit != nil {
		edit(req.Header)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out, resp.Header
}

func listBody(start, size int) map[string]any {
	return map[string]any{"customerKey": DefaultCustomerKey, "startIndex": start, "batchSize": size}
}

func TestAuthentication(t *testing.T) {
	srv := NewServer(t, Options{Org: &Org{Users: []User{{UserName: "a@example.com"}}}})
	cases := []struct {
		name string
		edit func(http.Header)
		body map[string]any
		want string
	}{
		{"valid", nil, nil, ""},
		{"stale timestamp", func(h http.Header) {
			ts := strconv.FormatInt(time.Now().Add(-3*time.Minute).UnixMilli(), 10)
			h.Set("Timestamp", ts)
			sum := sha512.Sum512([]byte(DefaultCustomerKey + ts + DefaultAPIKey))
			h.Set("Authorization", hex.EncodeToString(sum[:]))
		}, nil, "outside the allowed window"},
		{"future timestamp", func(h http.Header) {
			ts := strconv.FormatInt(time.Now().Add(3*time.Minute).UnixMilli(), 10)
			h.Set("Timestamp", ts)
			sum := sha512.Sum512([]byte(DefaultCustomerKey + ts + DefaultAPIKey))
			h.Set("Authorization", hex.EncodeToString(sum[:]))
		}, nil, "outside the allowed window"},
		{"wrong hash", func(h http.Header) { h.Set("Authorization", strings.Repeat("0", 128)) }, nil, "invalid authorization hash"},
		{"uppercase hash", func(h http.Header) { h.Set("Authorization", strings.ToUpper(h.Get("Authorization"))) }, nil, "invalid authorization hash"},
		{"wrong customer key", func(h http.Header) { h.Set("Customer-Key", "100002") }, nil, "invalid customer key"},
		{"no customer key", func(h http.Header) { h.Del("Customer-Key") }, nil, "Customer-Key header is missing"},
		{"garbage timestamp", func(h http.Header) { h.Set("Timestamp", "yesterday") }, nil, "Timestamp header"},
		{"wrong Api-Key header", func(h http.Header) { h.Set("Api-Key", "nope") }, nil, "invalid Api-Key"},
		{"body customerKey differs", nil, map[string]any{"customerKey": "999", "startIndex": 0, "batchSize": 5}, "customerKey in the body"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body
			if body == nil {
				body = listBody(0, 5)
			}
			code, out, _ := call(t, srv.URL, PathUsersList, body, tc.edit)
			if tc.want == "" {
				if code != 200 || out["status"] != "SUCCESS" {
					t.Fatalf("valid request: %d %v", code, out)
				}
				return
			}
			if code == 200 || out["status"] != "ERROR" || !strings.Contains(fmt.Sprint(out["message"]), tc.want) {
				t.Errorf("got %d %v, want an ERROR mentioning %q", code, out, tc.want)
			}
		})
	}
}

func TestSkewAndWindowKnobs(t *testing.T) {
	srv := NewServer(t, Options{Org: &Org{}})
	srv.SetClockSkew(10 * time.Minute)
	if code, _, _ := call(t, srv.URL, PathUsersList, listBody(0, 5), nil); code != http.StatusUnauthorized {
		t.Errorf("skewed server accepted a local timestamp: %d", code)
	}
	code, _, _ := call(t, srv.URL, PathTimestamp, nil, nil)
	if code != 200 {
		t.Fatalf("timestamp: %d", code)
	}
	resp, err := http.Post(srv.URL+PathTimestamp, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	ms, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		t.Fatalf("timestamp answer %q is not epoch ms", raw)
	}
	if d := time.Until(time.UnixMilli(ms)) - 10*time.Minute; d > 5*time.Second || d < -5*time.Second {
		t.Errorf("server time off by %v from the skew", d)
	}
	srv.SetTimestampWindow(time.Hour)
	if code, _, _ := call(t, srv.URL, PathUsersList, listBody(0, 5), nil); code != 200 {
		t.Errorf("a 1h window still rejects a 10m skew: %d", code)
	}
}

func TestErrorsAsOK(t *testing.T) {
	srv := NewServer(t, Options{Org: &Org{}, ErrorsAsOK: true})
	code, out, _ := call(t, srv.URL, PathUsersList, listBody(0, 5), func(h http.Header) { h.Set("Authorization", "x") })
	if code != 200 || out["status"] != "ERROR" {
		t.Errorf("got %d %v, want HTTP 200 with status ERROR", code, out)
	}
}

func TestListingsAndCap(t *testing.T) {
	org := GenerateOrg(OrgSpec{Users: 30, Groups: 3, MembershipsPerUser: 1, Seed: 2})
	srv := NewServer(t, Options{Org: &org, BatchCap: 7})
	_, out, _ := call(t, srv.URL, PathUsersList, listBody(0, 100), nil)
	if out["totalCount"] != float64(30) || len(out["users"].([]any)) != 7 {
		t.Fatalf("first page: total %v, %d users; want 30 and the cap 7", out["totalCount"], len(out["users"].([]any)))
	}
	u := out["users"].([]any)[0].(map[string]any)
	for _, k := range []string{"id", "username", "email", "firstName", "lastName", "status", "groups"} {
		if _, ok := u[k]; !ok {
			t.Errorf("user lacks %q: %v", k, u)
		}
	}
	if u["groups"].([]any)[0] != DefaultGroup {
		t.Errorf("groups %v do not start with DEFAULT", u["groups"])
	}
	_, out, _ = call(t, srv.URL, PathUsersList, listBody(28, 100), nil)
	if len(out["users"].([]any)) != 2 {
		t.Errorf("last page holds %d users, want 2", len(out["users"].([]any)))
	}
	_, out, _ = call(t, srv.URL, PathUsersList, listBody(40, 5), nil)
	if len(out["users"].([]any)) != 0 || out["totalCount"] != float64(30) {
		t.Errorf("past the end: %v", out)
	}
	if code, _, _ := call(t, srv.URL, PathUsersList, listBody(0, 0), nil); code != http.StatusBadRequest {
		t.Errorf("batchSize 0 answered %d", code)
	}

	_, out, _ = call(t, srv.URL, PathGroupsList, listBody(0, 100), nil)
	if out["totalCount"] != float64(4) || out["groups"].([]any)[0].(map[string]any)["name"] != DefaultGroup {
		t.Errorf("groups: %v", out)
	}
	body := listBody(0, 100)
	body["groupName"] = DefaultGroup
	_, out, _ = call(t, srv.URL, PathGroupMembers, body, nil)
	if out["totalCount"] != float64(30) {
		t.Errorf("DEFAULT has %v members, want everyone", out["totalCount"])
	}
	body["groupName"] = "Nope"
	_, out, _ = call(t, srv.URL, PathGroupMembers, body, nil)
	if out["status"] != "FAILED" {
		t.Errorf("unknown group: %v", out)
	}

	name := org.Users[4].UserName
	_, out, _ = call(t, srv.URL, PathUserGet, map[string]any{"customerKey": DefaultCustomerKey, "username": strings.ToUpper(name)}, nil)
	if out["status"] != "SUCCESS" || out["username"] != name || out["userStatus"] != "ACTIVE" {
		t.Errorf("users/get: %v", out)
	}
	_, out, _ = call(t, srv.URL, PathUserGet, map[string]any{"customerKey": DefaultCustomerKey, "username": "ghost"}, nil)
	if out["status"] != "FAILED" {
		t.Errorf("users/get unknown: %v", out)
	}
	_, out, _ = call(t, srv.URL, PathUserSearch, map[string]any{"customerKey": DefaultCustomerKey, "username": name}, nil)
	if out["status"] != "USER_FOUND" {
		t.Errorf("users/search: %v", out)
	}
	_, out, _ = call(t, srv.URL, PathUserSearch, map[string]any{"customerKey": DefaultCustomerKey, "username": "ghost"}, nil)
	if out["status"] != "USER_NOT_FOUND" {
		t.Errorf("users/search unknown: %v", out)
	}
	if code, _, _ := call(t, srv.URL, "/moas/api/admin/users/create", map[string]any{}, nil); code != 404 {
		t.Errorf("an undocumented write endpoint answered %d", code)
	}
}

func TestUserHook(t *testing.T) {
	srv := NewServer(t, Options{Org: &Org{Users: []User{{UserName: "a@example.com"}, {UserName: "b@example.com", Disabled: true}}}})
	srv.SetUserHook(func(endpoint, userName string, u map[string]any) {
		if userName != "b@example.com" {
			return
		}
		switch endpoint {
		case PathUsersList:
			u["state"] = u["status"]
			delete(u, "status")
		case PathUserGet:
			delete(u, "userStatus")
		}
	})
	_, page, _ := call(t, srv.URL, PathUsersList, listBody(0, 10), nil)
	users, _ := page["users"].([]any)
	if len(users) != 2 {
		t.Fatalf("page = %v", page)
	}
	a, b := users[0].(map[string]any), users[1].(map[string]any)
	if a["status"] != "ACTIVE" || b["status"] != nil || b["state"] != "DISABLED" {
		t.Errorf("listing with the hook: a = %v, b = %v", a, b)
	}
	_, got, _ := call(t, srv.URL, PathUserGet, map[string]any{"customerKey": DefaultCustomerKey, "username": "b@example.com"}, nil)
	if _, ok := got["userStatus"]; ok || got["status"] != "SUCCESS" || got["username"] != "b@example.com" {
		t.Errorf("users/get with the hook = %v, want no userStatus and the call's SUCCESS", got)
	}
	srv.SetUserHook(nil)
	_, page, _ = call(t, srv.URL, PathUsersList, listBody(0, 10), nil)
	if b := page["users"].([]any)[1].(map[string]any); b["status"] != "DISABLED" {
		t.Errorf("hook removed, b = %v", b)
	}
}

func TestCountersAndRateLimit(t *testing.T) {
	srv := NewServer(t, Options{Org: &Org{}})
	for range 3 {
		call(t, srv.URL, PathUsersList, listBody(0, 5), nil)
	}
	call(t, srv.URL, PathGroupsList, listBody(0, 5), nil)
	if c := srv.Calls(); c[PathUsersList] != 3 || c[PathGroupsList] != 1 || srv.TotalCalls() != 4 {
		t.Errorf("calls = %v", c)
	}
	srv.Reset()
	if srv.TotalCalls() != 0 {
		t.Error("Reset kept counts")
	}
	srv.SetRateLimit(0.001, 1)
	call(t, srv.URL, PathUsersList, listBody(0, 5), nil)
	code, out, h := call(t, srv.URL, PathUsersList, listBody(0, 5), nil)
	if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" || out["status"] != "ERROR" {
		t.Errorf("over the limit: %d %v Retry-After %q", code, out, h.Get("Retry-After"))
	}
	if srv.Throttled() != 1 || srv.Calls()[PathUsersList] != 1 {
		t.Errorf("throttled %d, calls %v: 429s must be counted apart", srv.Throttled(), srv.Calls())
	}
}

func TestFaults(t *testing.T) {
	org := GenerateOrg(OrgSpec{Users: 30, Groups: 3, MembershipsPerUser: 1, Seed: 2})
	srv := NewServer(t, Options{Org: &org, BatchCap: 10})
	srv.AddFault(Fault{Kind: FaultStatus, Status: 502, Endpoint: PathUsersList, Page: 1, Times: 1})
	srv.AddFault(Fault{Kind: FaultTotalSkew, Delta: 5, Endpoint: PathUsersList, Page: 2})
	srv.AddFault(Fault{Kind: FaultShift, Endpoint: PathGroupMembers, Group: DefaultGroup, Page: 1})
	if code, _, _ := call(t, srv.URL, PathUsersList, listBody(0, 10), nil); code != 200 {
		t.Errorf("page 0 hit a page-1 fault: %d", code)
	}
	if code, _, _ := call(t, srv.URL, PathUsersList, listBody(10, 10), nil); code != 502 {
		t.Errorf("page 1: %d, want 502", code)
	}
	if code, _, _ := call(t, srv.URL, PathUsersList, listBody(10, 10), nil); code != 200 {
		t.Errorf("page 1 again: %d, want 200 (Times 1)", code)
	}
	if _, out, _ := call(t, srv.URL, PathUsersList, listBody(20, 10), nil); out["totalCount"] != float64(35) {
		t.Errorf("skewed page total %v, want 35", out["totalCount"])
	}
	body := listBody(10, 10)
	body["groupName"] = DefaultGroup
	_, out, _ := call(t, srv.URL, PathGroupMembers, body, nil)
	if out["members"].([]any)[0] != org.Users[9].UserName {
		t.Errorf("shifted page starts with %v, want the previous page's last member", out["members"].([]any)[0])
	}
	srv.ClearFaults()
	srv.AddFault(Fault{Kind: FaultHireAfter, Endpoint: PathUsersList, Page: 0, Times: 1})
	call(t, srv.URL, PathUsersList, listBody(0, 10), nil)
	if n := len(srv.Users()); n != 31 {
		t.Errorf("%d users after a hire-after fault, want 31", n)
	}
	srv.ClearFaults()
	srv.AddFault(Fault{Kind: FaultReset, Endpoint: PathUsersList, Page: AnyPage, Times: 1})
	b, _ := json.Marshal(listBody(0, 10))
	req, _ := http.NewRequest(http.MethodPost, srv.URL+PathUsersList, bytes.NewReader(b))
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	req.Header.Set("Customer-Key", DefaultCustomerKey)
	req.Header.Set("Timestamp", ts)
	req.Header.Set("Authorization", Signature(DefaultCustomerKey, ts, DefaultAPIKey))
	if resp, err := http.DefaultClient.Do(req); err == nil {
		_ = resp.Body.Close()
		t.Error("a reset fault answered")
	}
}

func TestMutations(t *testing.T) {
	org := GenerateOrg(OrgSpec{Users: 10, Groups: 3, MembershipsPerUser: 1, Seed: 4})
	s := New(Options{Org: &org})
	u := org.Users[0]
	if err := s.Disable(u.UserName); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.User(u.UserName); !got.Disabled {
		t.Error("Disable had no effect")
	}
	if err := s.Enable(strings.ToUpper(u.UserName)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.User(u.UserName); got.Disabled {
		t.Error("Enable had no effect")
	}
	from := u.Groups[0]
	to := GroupName(0)
	if to == from {
		to = GroupName(1)
	}
	if err := s.Move(u.UserName, from, to); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.User(u.UserName); len(got.Groups) != 1 || got.Groups[0] != to {
		t.Errorf("after Move: %v", got.Groups)
	}
	if err := s.Move(u.UserName, from, to); err == nil {
		t.Error("Move from a group the user left succeeded")
	}
	if err := s.Rename(u.UserName, Profile{UserName: "renamed", Email: "Renamed@Example.com"}); err != nil {
		t.Fatal(err)
	}
	got, ok := s.User("renamed")
	if !ok || got.ID != u.ID || got.Email != "Renamed@Example.com" {
		t.Errorf("after Rename: %+v", got)
	}
	if _, ok := s.User(u.UserName); ok {
		t.Error("old username still resolves")
	}
	if err := s.Rename("renamed", Profile{UserName: org.Users[1].UserName}); err == nil {
		t.Error("Rename onto an existing username succeeded")
	}
	if err := s.Leave("renamed"); err != nil {
		t.Fatal(err)
	}
	if len(s.Users()) != 9 {
		t.Errorf("%d users after Leave", len(s.Users()))
	}
	if err := s.Leave("renamed"); err == nil {
		t.Error("Leave twice succeeded")
	}
	if _, err := s.Hire(User{UserName: org.Users[1].UserName}); err == nil {
		t.Error("Hire of an existing username succeeded")
	}
	if _, err := s.CreateGroup("New", "fresh"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddToGroup(org.Users[1].UserName, "New"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddToGroup(org.Users[1].UserName, DefaultGroup); err == nil {
		t.Error("explicit DEFAULT membership accepted")
	}
	if err := s.RemoveFromGroup(org.Users[1].UserName, "New"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteGroup(to); err != nil {
		t.Fatal(err)
	}
	for _, x := range s.Users() {
		for _, g := range x.Groups {
			if g == to {
				t.Errorf("%s still in deleted group", x.UserName)
			}
		}
	}
	hired := s.HireN(3)
	if len(hired) != 3 || len(s.Users()) != 12 {
		t.Errorf("HireN: %d hired, %d users", len(hired), len(s.Users()))
	}
	if err := s.SetAttribute(hired[0].UserName, "department", "Ops"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.User(hired[0].UserName); got.Attributes["department"] != "Ops" {
		t.Errorf("SetAttribute: %v", got.Attributes)
	}
}

func TestGenerateOrg(t *testing.T) {
	a := GenerateOrg(OrgSpec{Users: 2000, Groups: 40, MembershipsPerUser: 3, DisabledFraction: 0.1, CustomAttributes: true, Seed: 9})
	b := GenerateOrg(OrgSpec{Users: 2000, Groups: 40, MembershipsPerUser: 3, DisabledFraction: 0.1, CustomAttributes: true, Seed: 9})
	c := GenerateOrg(OrgSpec{Users: 2000, Groups: 40, MembershipsPerUser: 3, DisabledFraction: 0.1, CustomAttributes: true, Seed: 10})
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Error("same seed, different orgs")
	}
	if fmt.Sprint(a.Users[:20]) == fmt.Sprint(c.Users[:20]) {
		t.Error("different seeds, same users")
	}
	emails := map[string]bool{}
	disabled := 0
	for _, u := range a.Users {
		if u.Email != strings.ToLower(u.Email) || !strings.HasSuffix(u.Email, "@example.com") || emails[u.Email] {
			t.Fatalf("email %q not unique, lowercase, at example.com", u.Email)
		}
		emails[u.Email] = true
		if u.FirstName == "" || u.LastName == "" || u.ID == "" || u.UserName == "" || u.Attributes["employeeId"] == "" {
			t.Fatalf("incomplete user %+v", u)
		}
		if len(u.Groups) != 3 || u.Groups[0] == u.Groups[1] || u.Groups[1] == u.Groups[2] || u.Groups[0] == u.Groups[2] {
			t.Fatalf("memberships %v, want 3 distinct", u.Groups)
		}
		if u.Disabled {
			disabled++
		}
	}
	if disabled != 200 {
		t.Errorf("%d disabled, want 10%% = 200", disabled)
	}
	groups := map[string]bool{}
	for _, g := range a.Groups {
		if groups[g.Name] {
			t.Errorf("group %q twice", g.Name)
		}
		groups[g.Name] = true
	}

	d := DefaultOrg()
	if len(d.Users) != 200 || len(d.Groups) != 15 {
		t.Fatalf("DefaultOrg: %d users, %d groups", len(d.Users), len(d.Groups))
	}
	disabled = 0
	for _, u := range d.Users {
		if u.Disabled {
			disabled++
		}
	}
	names := map[string]bool{}
	for _, g := range d.Groups {
		names[g.Name] = true
	}
	if disabled != 5 || !names["Engineering"] || !names["Sales"] || !names["Support"] || !names["Jira-Service-group"] {
		t.Errorf("DefaultOrg: %d disabled, groups %v", disabled, names)
	}
	if s := New(Options{}); len(s.Groups()) != 16 || s.Groups()[0].Name != DefaultGroup {
		t.Errorf("simulator groups %v, want DEFAULT and the 15", s.Groups())
	}
}

func TestGroupNamesUnique(t *testing.T) {
	seen := map[string]bool{}
	for i := range 12000 {
		n := GroupName(i)
		if seen[n] || n == DefaultGroup {
			t.Fatalf("GroupName(%d) = %q repeats", i, n)
		}
		seen[n] = true
	}
}

// BenchmarkGenerateOrg100k is the bench's org: 100,000 users, 10,000 groups, 1,000,000
// memberships.
func BenchmarkGenerateOrg100k(b *testing.B) {
	for b.Loop() {
		org := GenerateOrg(OrgSpec{Users: 100_000, Groups: 10_000, MembershipsPerUser: 10, DisabledFraction: 0.02, CustomAttributes: true, Seed: 1})
		if len(org.Users) != 100_000 {
			b.Fatal(len(org.Users))
		}
	}
}

// BenchmarkLoad100k adds loading the org into a simulator.
func BenchmarkLoad100k(b *testing.B) {
	org := GenerateOrg(OrgSpec{Users: 100_000, Groups: 10_000, MembershipsPerUser: 10, Seed: 1})
	for b.Loop() {
		s := New(Options{Org: &org})
		if len(s.Groups()) != 10_001 {
			b.Fatal(len(s.Groups()))
		}
	}
}
