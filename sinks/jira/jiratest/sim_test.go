package jiratest_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idsync/idsync/sinks/jira/jiratest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type answer struct {
	status int
	header http.Header
	body   string
}

func call(t *testing.T, base, method, path, body string, hdr ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(path, "/users/") {
		req.Header.Set("Authorization", "Bearer "+jiratest.DefaultOrgAPIKey)
	} else {
		req.SetBasicAuth(jiratest.DefaultEmail, jiratest.DefaultAPIToken)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Authorization" {
			req.Header.Del("Authorization")
			if hdr[i+1] == "" {
				continue
			}
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

func TestSimulatorFaithfulness(t *testing.T) {
	sim, srv := jiratest.NewServer(t, jiratest.Options{Seed: 3})
	u := srv.URL
	alice, _ := sim.AddUser(jiratest.User{Email: "alice@example.com", DisplayName: "Alice Liddell", Groups: []string{"Engineering"}})
	hidden, _ := sim.AddUser(jiratest.User{Email: "hid@example.com", DisplayName: "Hid Den", HideEmail: true})
	off, _ := sim.AddUser(jiratest.User{Email: "off@example.com", DisplayName: "Off Line", Inactive: true})
	eng, _ := sim.Group("Engineering")

	cases := []struct {
		name, method, path, body string
		hdr                      []string
		status                   int
		contains                 string
	}{
		{"no auth", "GET", "/rest/api/3/users/search", "", []string{"Authorization", ""}, 401, "authenticated"},
		{"wrong token", "GET", "/rest/api/3/users/search", "", []string{"Authorization", "Basic YWRtaW5AZXhhbXBsZS5jb206bm8="}, 401, ""},
		{"admin route needs the org key", "GET", "/users/" + alice + "/manage/profile", "", []string{"Authorization", "Bearer nope"}, 401, `"unauthorized"`},
		{"users/search is a bare array", "GET", "/rest/api/3/users/search?maxResults=2", "", nil, 200, `[{"self"`},
		{"groupname and groupId together", "GET", "/rest/api/3/group/member?groupname=Engineering&groupId=" + eng.ID, "", nil, 400, "not both"},
		{"group/member by groupname", "GET", "/rest/api/3/group/member?groupname=engineering", "", nil, 200, `"maxResults":50`},
		{"group/member caps maxResults", "GET", "/rest/api/3/group/member?groupId=" + eng.ID + "&maxResults=500", "", nil, 200, `"maxResults":50`},
		{"group/member of unknown group", "GET", "/rest/api/3/group/member?groupId=nope", "", nil, 404, ""},
		{"group/bulk groupName filter", "GET", "/rest/api/3/group/bulk?groupName=ENGINEERING", "", nil, 200, `"total":1`},
		{"group/bulk site-admin groups", "GET", "/rest/api/3/group/bulk?accessType=site-admin", "", nil, 200, `"name":"site-admins"`},
		{"products are required", "POST", "/rest/api/3/user", `{"emailAddress":"x@example.com"}`, nil, 400, jiratest.MsgProductsRequired},
		{"unknown product", "POST", "/rest/api/3/user", `{"emailAddress":"x@example.com","products":["confluence"]}`, nil, 400, "Invalid product"},
		{"create user 201", "POST", "/rest/api/3/user", `{"emailAddress":"x@example.com","products":["jira-software"]}`, nil, 201, `"accountType":"atlassian"`},
		{"existing user with access 201", "POST", "/rest/api/3/user", `{"emailAddress":"X@example.com","products":["jira-software"]}`, nil, 201, ""},
		{"existing user without access 400", "POST", "/rest/api/3/user", `{"emailAddress":"hid@example.com","products":["jira-software"]}`, nil, 400, "does not have access"},
		{"create group 201", "POST", "/rest/api/3/group", `{"name":"Sales"}`, nil, 201, `"groupId"`},
		{"group name in use 400", "POST", "/rest/api/3/group", `{"name":"sales"}`, nil, 400, "already exists"},
		{"add member 201", "POST", "/rest/api/3/group/user?groupId=" + eng.ID, `{"accountId":"` + hidden + `"}`, nil, 201, ""},
		{"add member without accountId", "POST", "/rest/api/3/group/user?groupId=" + eng.ID, `{}`, nil, 400, "accountId"},
		{"remove member 200", "DELETE", "/rest/api/3/group/user?groupId=" + eng.ID + "&accountId=" + hidden, "", nil, 200, ""},
		{"remove non-member 404", "DELETE", "/rest/api/3/group/user?groupId=" + eng.ID + "&accountId=" + hidden, "", nil, 404, jiratest.MsgNotMember},
		{"remove from unknown group 404", "DELETE", "/rest/api/3/group/user?groupId=nope&accountId=" + hidden, "", nil, 404, ""},
		{"remove unknown user 404", "DELETE", "/rest/api/3/group/user?groupId=" + eng.ID + "&accountId=nobody", "", nil, 404, ""},
		{"remove without accountId 400", "DELETE", "/rest/api/3/group/user?groupId=" + eng.ID, "", nil, 400, "accountId"},
		{"username is dead", "GET", "/rest/api/3/user?username=alice", "", nil, 400, "GDPR"},
		{"user/search needs a parameter", "GET", "/rest/api/3/user/search", "", nil, 400, ""},
		{"user/search query and accountId", "GET", "/rest/api/3/user/search?query=a&accountId=" + alice, "", nil, 400, ""},
		{"hidden email absent", "GET", "/rest/api/3/user?accountId=" + hidden, "", nil, 200, `"displayName":"Hid Den"`},
		{"customers need the experimental header", "GET", "/rest/servicedeskapi/servicedesk/DEMO/customer", "", nil, 412, "X-ExperimentalApi"},
		{"customers with the header", "GET", "/rest/servicedeskapi/servicedesk/DEMO/customer", "", []string{"X-ExperimentalApi", "opt-in"}, 200, `"isLastPage":true`},
		{"desk by projectKey: alias", "GET", "/rest/servicedeskapi/servicedesk/projectKey:DEMO", "", nil, 200, `"projectName":"Demo service project"`},
		{"create customer 201 qm id", "POST", "/rest/servicedeskapi/customer", `{"email":"c@example.org","displayName":"C"}`, nil, 201, `"accountId":"qm:`},
		{"duplicate customer 400", "POST", "/rest/servicedeskapi/customer", `{"email":"c@example.org"}`, nil, 400, "errorMessage"},
		{"duplicate customer strict 409", "POST", "/rest/servicedeskapi/customer?strictConflictStatusCode=true", `{"email":"c@example.org"}`, nil, 409, "i18nErrorMessage"},
		{"add customers 204", "POST", "/rest/servicedeskapi/servicedesk/1/customer", `{"accountIds":["` + alice + `"]}`, nil, 204, ""},
		{"add unknown customer 400", "POST", "/rest/servicedeskapi/servicedesk/1/customer", `{"accountIds":["nobody"]}`, nil, 400, "nobody"},
		{"organization create returns existing", "POST", "/rest/servicedeskapi/organization", `{"name":"Acme"}`, nil, 201, `"id":"1"`},
		{"organization create same name", "POST", "/rest/servicedeskapi/organization", `{"name":"Acme"}`, nil, 201, `"id":"1"`},
		{"disable needs a body", "POST", "/users/" + alice + "/manage/lifecycle/disable", "", nil, 400, "bodyParseFailure"},
		{"disable 204", "POST", "/users/" + alice + "/manage/lifecycle/disable", `{"message":"bye"}`, nil, 204, ""},
		{"delete user 204", "DELETE", "/rest/api/3/user?accountId=" + off, "", nil, 204, ""},
		{"deleted user 404", "GET", "/rest/api/3/user?accountId=" + off, "", nil, 404, "does not exist"},
	}
	for _, c := range cases {
		a := call(t, u, c.method, c.path, c.body, c.hdr...)
		if a.status != c.status || !strings.Contains(a.body, c.contains) {
			t.Errorf("%s: %s %s = %d %s, want %d containing %q", c.name, c.method, c.path, a.status, a.body, c.status, c.contains)
		}
	}
	if a, _ := sim.Account(hidden); strings.Contains(call(t, u, "GET", "/rest/api/3/user?accountId="+hidden, "").body, a.Email) {
		t.Error("hidden email returned")
	}
	// user/search: active users only, prefix match on names and visible emails.
	var found []map[string]any
	_ = json.Unmarshal([]byte(call(t, u, "GET", "/rest/api/3/user/search?query=DEN", "").body), &found)
	if len(found) != 1 || found[0]["accountId"] != hidden {
		t.Errorf("user/search DEN = %v, want Hid Den (prefix of a name word)", found)
	}
	// "li" prefixes Liddell and Line, but Alice is now disabled and Off Line left the site.
	_ = json.Unmarshal([]byte(call(t, u, "GET", "/rest/api/3/user/search?query=li", "").body), &found)
	if len(found) != 0 {
		t.Errorf("user/search returned inactive users: %v", found)
	}
	_ = json.Unmarshal([]byte(call(t, u, "GET", "/rest/api/3/user/search?query=hid%40", "").body), &found)
	if len(found) != 0 {
		t.Errorf("hidden email matched by query: %v", found)
	}
	if a, _ := sim.Account(alice); a.Active {
		t.Error("lifecycle/disable did not deactivate")
	}
	if len(sim.DuplicateEmails())+len(sim.DuplicateGroupNames()) != 0 {
		t.Error("duplicates")
	}
}

func TestSimulatorPagination(t *testing.T) {
	sim, srv := jiratest.NewServer(t, jiratest.Options{})
	for i := range 1203 {
		_, _ = sim.AddUser(jiratest.User{Email: "p" + strings.Repeat("x", i%3) + "@e" + string(rune('a'+i%26)) + url.PathEscape(time.Duration(i).String()) + ".com", Groups: []string{"big"}})
	}
	var page []json.RawMessage
	_ = json.Unmarshal([]byte(call(t, srv.URL, "GET", "/rest/api/3/users/search?startAt=0&maxResults=5000", "").body), &page)
	if len(page) != 1000 {
		t.Fatalf("users/search page = %d, want the 1000 cap", len(page))
	}
	g, _ := sim.Group("big")
	var pb struct {
		IsLast   bool   `json:"isLast"`
		Total    int    `json:"total"`
		NextPage string `json:"nextPage"`
		Values   []any  `json:"values"`
		Self     string `json:"self"`
	}
	_ = json.Unmarshal([]byte(call(t, srv.URL, "GET", "/rest/api/3/group/member?groupId="+g.ID+"&startAt=1150", "").body), &pb)
	if pb.IsLast || pb.Total != 1203 || len(pb.Values) != 50 || !strings.Contains(pb.NextPage, "startAt=1200") {
		t.Fatalf("member page = %+v", pb)
	}
}

func TestSimulatorRateLimitAndEarlyRetries(t *testing.T) {
	sim, srv := jiratest.NewServer(t, jiratest.Options{Limits: map[string]jiratest.Limit{
		"GET /rest/api/3/myself": {RPS: 0.01, Burst: 1}}, RetryAfter: 30 * time.Second})
	if a := call(t, srv.URL, "GET", "/rest/api/3/myself", ""); a.status != 200 || a.header.Get("X-RateLimit-Limit") == "" {
		t.Fatalf("first call = %d %v", a.status, a.header)
	}
	a := call(t, srv.URL, "GET", "/rest/api/3/myself", "")
	if a.status != 429 || a.header.Get("Retry-After") != "30" || a.header.Get("RateLimit-Reason") != jiratest.ReasonBurst ||
		a.header.Get("X-RateLimit-Remaining") != "0" || len(a.header.Get("X-RateLimit-Reset")) != len("2006-01-02T15:04Z") {
		t.Fatalf("429 = %d %v", a.status, a.header)
	}
	if !strings.Contains(a.body, "errorMessages") {
		t.Errorf("429 body %s is not a Jira error collection", a.body)
	}
	if sim.EarlyRetries() != 0 {
		t.Fatal("the first 429 counted as early")
	}
	// Re-sending the same request inside its window is an early retry.
	if a := call(t, srv.URL, "GET", "/rest/api/3/myself", ""); a.status != 429 {
		t.Fatalf("retry inside the window = %d", a.status)
	}
	if sim.EarlyRetries() != 1 || sim.Throttled() != 2 || sim.Reads() != 1 {
		t.Fatalf("early %d throttled %d reads %d", sim.EarlyRetries(), sim.Throttled(), sim.Reads())
	}
	// Other endpoints have their own buckets.
	if a := call(t, srv.URL, "GET", "/rest/api/3/applicationrole", ""); a.status != 200 {
		t.Fatalf("other endpoint = %d", a.status)
	}
	sim.Reset()
	if sim.Reads()+sim.Writes()+sim.Throttled()+sim.EarlyRetries() != 0 {
		t.Fatal("Reset kept counters")
	}
}

func TestSimulatorSeatsLagAndFaults(t *testing.T) {
	clock := jiratest.NewScaledClock(1000)
	sim, srv := jiratest.NewServer(t, jiratest.Options{Clock: clock, Seats: 2, IndexLag: time.Minute})
	a := call(t, srv.URL, "POST", "/rest/api/3/user", `{"emailAddress":"one@example.com","products":["jira-software"]}`)
	if a.status != 201 {
		t.Fatalf("first seat: %d %s", a.status, a.body)
	}
	if a := call(t, srv.URL, "POST", "/rest/api/3/user", `{"emailAddress":"two@example.com","products":["jira-software"]}`); a.status != 400 || !strings.Contains(a.body, "licensed") {
		t.Fatalf("past the seats: %d %s", a.status, a.body)
	}
	var u struct{ AccountID string }
	_ = json.Unmarshal([]byte(a.body), &u)
	if strings.Contains(call(t, srv.URL, "GET", "/rest/api/3/users/search", "").body, u.AccountID) {
		t.Fatal("new user listed before the index caught up")
	}
	if call(t, srv.URL, "GET", "/rest/api/3/user?accountId="+u.AccountID, "").status != 200 {
		t.Fatal("GET /user is not read-your-writes")
	}
	_ = clock.Sleep(t.Context(), 2*time.Minute)
	if !strings.Contains(call(t, srv.URL, "GET", "/rest/api/3/users/search", "").body, u.AccountID) {
		t.Fatal("new user still hidden after the lag")
	}
	sim.InjectFault(jiratest.Fault503, 1, "GET /rest/api/3/myself")
	if a := call(t, srv.URL, "GET", "/rest/api/3/myself", ""); a.status != 503 || a.header.Get("Retry-After") == "" {
		t.Fatalf("503 fault = %d %v", a.status, a.header)
	}
	sim.InjectFault(jiratest.Fault500, 1, "")
	if a := call(t, srv.URL, "GET", "/rest/api/3/myself", ""); a.status != 500 {
		t.Fatalf("500 fault = %d", a.status)
	}
	sim.InjectFault(jiratest.FaultReset, 1, "")
	req, _ := http.NewRequest("GET", srv.URL+"/rest/api/3/myself", nil)
	req.SetBasicAuth(jiratest.DefaultEmail, jiratest.DefaultAPIToken)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	if resp, err := (&http.Client{Transport: tr}).Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("reset fault answered")
	}
	sim.InjectFault(jiratest.FaultTruncate, 1, "")
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Fatal("truncated body read whole")
	}
	if n := sim.Calls()[jiratest.Call{Method: "GET", Endpoint: "/rest/api/3/myself", Status: 0}]; n != 1 {
		t.Errorf("reset counted %d times", n)
	}
}

// Member pages are served under the read lock; concurrent readers of one group must not race
// on its cached sorted member list (go test -race catches it).
func TestConcurrentMemberReadsDoNotRace(t *testing.T) {
	sim := jiratest.New(jiratest.Options{})
	for i := range 50 {
		id, err := sim.AddUser(jiratest.User{Email: fmt.Sprintf("u%d@example.com", i), Groups: []string{"jira-software-users"}})
		if err != nil || id == "" {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if g, ok := sim.Group("jira-software-users"); !ok || len(g.Members) < 50 {
					t.Errorf("group members = %d", len(g.Members))
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestSimulatorCredentialRotation(t *testing.T) {
	sim, srv := jiratest.NewServer(t, jiratest.Options{})
	id, err := sim.AddUser(jiratest.User{Email: "r@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	basic := func(token string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(jiratest.DefaultEmail+":"+token))
	}
	const jira, admin = "/rest/api/3/myself", "/users/{id}/manage/profile"
	steps := []struct {
		name string
		set  func()
		path string
		auth string
		want int
	}{
		{"default token", nil, jira, basic(jiratest.DefaultAPIToken), 200},
		{"old token once rotated", func() { sim.SetAPITokens("t2", "t3") }, jira, basic(jiratest.DefaultAPIToken), 401},
		{"new token", nil, jira, basic("t2"), 200},
		{"second accepted token", nil, jira, basic("t3"), 200},
		{"every token revoked", func() { sim.SetAPITokens() }, jira, basic("t2"), 401},
		{"default org key", nil, admin, "Bearer " + jiratest.DefaultOrgAPIKey, 200},
		{"old org key once rotated", func() { sim.SetOrgAPIKeys("k2") }, admin, "Bearer " + jiratest.DefaultOrgAPIKey, 401},
		{"new org key", nil, admin, "Bearer k2", 200},
	}
	for _, st := range steps {
		if st.set != nil {
			st.set()
		}
		path := strings.Replace(st.path, "{id}", id, 1)
		if got := call(t, srv.URL, "GET", path, "", "Authorization", st.auth).status; got != st.want {
			t.Errorf("%s: status %d, want %d", st.name, got, st.want)
		}
	}
}

// A seed role with the key of an existing role extends it; a role's default groups are
// always among its groups; every group of a role grants product access.
func TestSimulatorRoleGroupsBeyondDefaults(t *testing.T) {
	sim, srv := jiratest.NewServer(t, jiratest.Options{Data: jiratest.Seed{Roles: []jiratest.Role{
		{Key: "jira-software", Groups: []string{"jira-software-admins-legacy", "engineering-access"}},
		{Key: "jira-servicedesk", Name: "Jira Service Management", DefaultGroups: []string{"jsm-agents"}},
	}}})
	var roles []struct {
		Key           string   `json:"key"`
		Groups        []string `json:"groups"`
		DefaultGroups []string `json:"defaultGroups"`
		GroupDetails  []struct {
			GroupID string `json:"groupId"`
		} `json:"groupDetails"`
	}
	if err := json.Unmarshal([]byte(call(t, srv.URL, "GET", "/rest/api/3/applicationrole", "").body), &roles); err != nil {
		t.Fatal(err)
	}
	if len(roles) != 2 {
		t.Fatalf("roles = %+v, want jira-software (extended) and jira-servicedesk", roles)
	}
	sw, sd := roles[0], roles[1]
	if sw.Key != "jira-software" || fmt.Sprint(sw.Groups) != "[jira-software-users jira-software-admins-legacy engineering-access]" ||
		fmt.Sprint(sw.DefaultGroups) != "[jira-software-users]" || len(sw.GroupDetails) != 3 {
		t.Errorf("jira-software = %+v", sw)
	}
	if sd.Key != "jira-servicedesk" || fmt.Sprint(sd.Groups) != "[jsm-agents]" || fmt.Sprint(sd.DefaultGroups) != "[jsm-agents]" {
		t.Errorf("jira-servicedesk = %+v, want its default group among its groups", sd)
	}
	names := func(path string) string {
		var p struct {
			Values []struct {
				Name string `json:"name"`
			} `json:"values"`
		}
		_ = json.Unmarshal([]byte(call(t, srv.URL, "GET", path, "").body), &p)
		var out []string
		for _, v := range p.Values {
			out = append(out, v.Name)
		}
		return fmt.Sprint(out)
	}
	if got := names("/rest/api/3/group/bulk?accessType=user"); got != "[jira-software-users jira-software-admins-legacy engineering-access jsm-agents]" {
		t.Errorf("accessType=user lists %s", got)
	}
	if got := names("/rest/api/3/group/bulk?applicationKey=jira-software"); got != "[jira-software-users jira-software-admins-legacy engineering-access]" {
		t.Errorf("applicationKey=jira-software lists %s", got)
	}
	// A non-default group grants access (and a seat) too, but a new account joins only the
	// default group.
	id, _ := sim.AddUser(jiratest.User{Email: "legacy@example.com", Groups: []string{"engineering-access"}})
	if body := call(t, srv.URL, "GET", "/rest/api/3/user?accountId="+id+"&expand=applicationRoles", "").body; !strings.Contains(body, `"key":"jira-software"`) {
		t.Errorf("a member of engineering-access has no jira-software role: %s", body)
	}
	a := call(t, srv.URL, "POST", "/rest/api/3/user", `{"emailAddress":"new@example.com","products":["jira-software"]}`)
	var u struct{ AccountID string }
	_ = json.Unmarshal([]byte(a.body), &u)
	if acct, _ := sim.Account(u.AccountID); fmt.Sprint(acct.Groups) != "[jira-software-users]" {
		t.Errorf("new account's groups = %v", acct.Groups)
	}
}

// Membership faults fail one group's adds or removals, change nothing, and clear.
func TestSimulatorMembershipFaults(t *testing.T) {
	sim, srv := jiratest.NewServer(t, jiratest.Options{MembershipFaults: []jiratest.MembershipFault{
		{Group: "LOCKED", Method: "DELETE", Status: 403}}})
	id, _ := sim.AddUser(jiratest.User{Email: "m@example.com", Groups: []string{"locked", "open"}})
	locked, _ := sim.Group("locked")
	open, _ := sim.Group("open")
	del := func(g jiratest.GroupInfo) answer {
		return call(t, srv.URL, "DELETE", "/rest/api/3/group/user?groupId="+g.ID+"&accountId="+id, "")
	}
	if a := del(locked); a.status != 403 || !strings.Contains(a.body, "errorMessages") {
		t.Fatalf("removal from the faulty group = %d %s, want 403 with a Jira error body", a.status, a.body)
	}
	if a := del(open); a.status != 200 {
		t.Fatalf("removal from another group = %d", a.status)
	}
	if a := call(t, srv.URL, "POST", "/rest/api/3/group/user?groupId="+locked.ID, `{"accountId":"`+id+`"}`); a.status != 400 {
		t.Fatalf("an add to the faulty group = %d, want the usual already-a-member 400 (DELETE only)", a.status)
	}
	if acct, _ := sim.Account(id); fmt.Sprint(acct.Groups) != "[locked]" {
		t.Fatalf("groups = %v, want the faulty one kept", acct.Groups)
	}
	sim.SetMembershipFaults(jiratest.MembershipFault{Group: locked.ID, Status: 500})
	if a := call(t, srv.URL, "POST", "/rest/api/3/group/user?groupId="+locked.ID, `{"accountId":"`+id+`"}`); a.status != 500 {
		t.Fatalf("add with a fault on both methods = %d", a.status)
	}
	sim.SetMembershipFaults()
	if a := del(locked); a.status != 200 {
		t.Fatalf("removal after clearing = %d", a.status)
	}
}

// TestSimulatorStartedCountsRequestsOnArrival: Started counts a request while its latency
// still holds it, before any other counter sees it.
func TestSimulatorStartedCountsRequestsOnArrival(t *testing.T) {
	sim, srv := jiratest.NewServer(t, jiratest.Options{})
	sim.SetLatency(time.Hour, 0)
	before := sim.Started()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/rest/api/3/myself", nil)
		req.SetBasicAuth(jiratest.DefaultEmail, jiratest.DefaultAPIToken)
		resp, err := srv.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for sim.Started() == before {
		if time.Now().After(deadline) {
			t.Fatal("timed out after 10s waiting for Started to count the request held by its latency")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := sim.Reads(); n != 0 {
		t.Errorf("Reads = %d while the only request is still held", n)
	}
	cancel()
	if err := <-done; err == nil {
		t.Error("the held request was answered")
	}
	sim.Reset()
	if sim.Started() != 0 {
		t.Error("Reset kept Started")
	}
}
