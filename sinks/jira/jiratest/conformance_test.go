package jiratest_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/sinks/jira"
	"github.com/idsync/idsync/sinks/jira/jiratest"
	"github.com/rs/zerolog"
)

// clientRecorder is the sink's transport: it records every request as sent (each attempt of
// a retried one) with the status it got.
type clientRecorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	all  []exchange
}

func (rt *clientRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	resp, err := rt.next.RoundTrip(req)
	x := exchange{req: req.Clone(context.Background()), reqBody: body}
	if err == nil {
		x.status = resp.StatusCode
	}
	rt.mu.Lock()
	rt.all = append(rt.all, x)
	rt.mu.Unlock()
	return resp, err
}

func (rt *clientRecorder) list() []exchange {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return append([]exchange(nil), rt.all...)
}

// serverRecorder keeps every exchange the simulator served, with an absolute URL.
type serverRecorder struct {
	mu   sync.Mutex
	host string
	all  []exchange
}

func (r *serverRecorder) add(x jiratest.Exchange) {
	r.mu.Lock()
	defer r.mu.Unlock()
	req := x.Request.Clone(context.Background())
	req.Body = nil
	req.URL.Scheme, req.URL.Host = "http", r.host
	r.all = append(r.all, exchange{req: req, reqBody: x.ReqBody, status: x.Status, header: x.Header, body: x.Body})
}

func (r *serverRecorder) list() []exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]exchange(nil), r.all...)
}

// TestConformance runs the real sink, with every deactivation method, against the simulator
// and validates both directions against the vendored specs (Jira platform v3, JSM, user
// management, the organization API): every request the sink sent (route, path, query,
// security header, body) and every response the simulator returned (status, body), error
// answers included where the operation documents them. A route absent from the specs fails,
// an exception no exchange needed fails, and an operation of the specs never answered 2xx
// fails.
func TestConformance(t *testing.T) {
	clock := jiratest.NewScaledClock(100)
	srvRec := &serverRecorder{}
	sim, srv := jiratest.NewServer(t, jiratest.Options{Seed: 7, Clock: clock, OnExchange: srvRec.add, Data: jiratest.LegacyAccessSeed()})
	srvRec.host = strings.TrimPrefix(srv.URL, "http://")
	for i := range 60 {
		_, _ = sim.AddUser(jiratest.User{Email: fmt.Sprintf("c%d@example.com", i), DisplayName: fmt.Sprintf("C %d", i),
			HideEmail: i%7 == 0, Groups: []string{"Engineering"}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	rec := &clientRecorder{next: tr}
	hc := &http.Client{Transport: rec}
	sink := func(method string) *jira.Sink {
		s, err := jira.New(configs.JiraConfig{BaseURL: srv.URL, Email: jiratest.DefaultEmail, APIToken: jiratest.DefaultAPIToken,
			Products: []string{"jira-software"}, Deactivate: method, Timeout: 10 * time.Second,
			AdminAPI: &configs.AdminAPIConfig{BaseURL: srv.URL, OrgAPIKey: jiratest.DefaultOrgAPIKey, OrgID: jiratest.DefaultOrgID}},
			jira.Options{Logger: zerolog.Nop(), HTTPClient: hc, Clock: clock})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	apply := func(s *jira.Sink, c reconcile.Change) reconcile.Result {
		t.Helper()
		res, err := s.Apply(ctx, c)
		if err != nil {
			t.Fatalf("%s (%s): %v", c.Kind, s.Method(), err)
		}
		return res
	}
	live := func(s *jira.Sink, scope reconcile.Scope) {
		t.Helper()
		if _, err := s.Live(ctx, scope); err != nil {
			t.Fatalf("Live (%s): %v", s.Method(), err)
		}
	}
	person := func(email string, groups ...string) string {
		id, err := sim.AddUser(jiratest.User{Email: email, Groups: groups})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}

	// remove-access, with profile updates.
	ra := sink(configs.DeactivateRemoveAccess)
	g := apply(ra, reconcile.Change{Kind: reconcile.KindCreateGroup, Group: &reconcile.GroupRef{Name: "New"}})
	apply(ra, reconcile.Change{Kind: reconcile.KindCreateGroup, Group: &reconcile.GroupRef{Name: "new"}}) // 400, adopted
	u := apply(ra, reconcile.Change{Kind: reconcile.KindCreateUser, Email: "n@example.com", DisplayName: "N Person"})
	apply(ra, reconcile.Change{Kind: reconcile.KindAddMember, AccountID: u.AccountID, Group: &reconcile.GroupRef{ID: g.GroupID}})
	apply(ra, reconcile.Change{Kind: reconcile.KindAddMember, AccountID: u.AccountID, Group: &reconcile.GroupRef{ID: g.GroupID}})
	apply(ra, reconcile.Change{Kind: reconcile.KindUpdateUser, AccountID: u.AccountID, Fields: []reconcile.FieldChange{
		{Field: "displayName", New: "N N"}, {Field: "email", New: "n2@example.com"}}})
	c := apply(ra, reconcile.Change{Kind: reconcile.KindCreateCustomer, Email: "p@example.org", ServiceDesk: "DEMO"})
	apply(ra, reconcile.Change{Kind: reconcile.KindCreateCustomer, Email: "p@example.org", ServiceDesk: "DEMO"})
	apply(ra, reconcile.Change{Kind: reconcile.KindAddCustomer, AccountID: c.AccountID, ServiceDesk: "DEMO"})
	apply(ra, reconcile.Change{Kind: reconcile.KindAddOrganizationMember, AccountID: c.AccountID, Organization: "Org"})
	scope := reconcile.Scope{Groups: []string{"Engineering", "jira-software-users"}, ServiceDesks: []string{"DEMO"}, Organizations: []string{"Org"}}
	sim.InjectFault(jiratest.Fault503, 1, "GET /rest/api/3/users/search") // retried after Retry-After
	live(ra, scope)
	live(ra, reconcile.Scope{Targeted: true, Accounts: []string{u.AccountID}, Emails: []string{"c1@example.com"},
		Groups: scope.Groups, ServiceDesks: scope.ServiceDesks, Organizations: scope.Organizations})
	apply(ra, reconcile.Change{Kind: reconcile.KindRemoveOrganizationMember, AccountID: c.AccountID, Organization: "Org"})
	apply(ra, reconcile.Change{Kind: reconcile.KindRemoveCustomer, AccountID: c.AccountID, ServiceDesk: "DEMO"})
	apply(ra, reconcile.Change{Kind: reconcile.KindRemoveMember, AccountID: u.AccountID, Group: &reconcile.GroupRef{ID: g.GroupID}})
	apply(ra, reconcile.Change{Kind: reconcile.KindRemoveMember, AccountID: u.AccountID, Group: &reconcile.GroupRef{ID: g.GroupID}})
	leaver := person("leaver@example.com", "Engineering", "jira-software-users", jiratest.LegacyAccessGroup)
	sim.InjectFault(jiratest.Fault500, 1, "DELETE /rest/api/3/group/user") // retried
	left := apply(ra, reconcile.Change{Kind: reconcile.KindDeactivateUser, AccountID: leaver, Groups: []reconcile.GroupRef{{Name: "Engineering"}}})
	if len(left.Groups) != 3 {
		t.Fatalf("remove-access left %v, want Engineering and both product-access groups", left.Groups)
	}
	apply(ra, reconcile.Change{Kind: reconcile.KindReactivateUser, AccountID: leaver, Groups: left.Groups})
	apply(ra, reconcile.Change{Kind: reconcile.KindDeactivateUser, AccountID: u.AccountID, Groups: []reconcile.GroupRef{{Name: "jira-software-users"}}})

	// admin-api: lifecycle disable and enable.
	adm := sink(configs.DeactivateAdminAPI)
	disabled := person("disabled@example.com", "jira-software-users")
	apply(adm, reconcile.Change{Kind: reconcile.KindDeactivateUser, AccountID: disabled})
	apply(adm, reconcile.Change{Kind: reconcile.KindReactivateUser, AccountID: disabled})

	// suspend: directory discovery, suspend (a 500 first, then a refused repeat settled by a
	// read) and restore (twice).
	sus := sink(configs.DeactivateSuspend)
	suspended := person("suspended@example.com", "Engineering", jiratest.LegacyAccessGroup)
	live(sus, reconcile.Scope{Groups: []string{"Engineering"}})
	sim.InjectFault(jiratest.Fault500, 1, "POST /admin/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}/suspend")
	apply(sus, reconcile.Change{Kind: reconcile.KindDeactivateUser, AccountID: suspended})
	apply(sus, reconcile.Change{Kind: reconcile.KindDeactivateUser, AccountID: suspended})
	apply(sus, reconcile.Change{Kind: reconcile.KindReactivateUser, AccountID: suspended})
	apply(sus, reconcile.Change{Kind: reconcile.KindReactivateUser, AccountID: suspended})

	// delete, and reactivation by a new POST /user.
	del := sink(configs.DeactivateDelete)
	deleted := person("deleted@example.com", "jira-software-users")
	apply(del, reconcile.Change{Kind: reconcile.KindDeactivateUser, AccountID: deleted})
	apply(del, reconcile.Change{Kind: reconcile.KindReactivateUser, AccountID: deleted, Email: "deleted@example.com"})

	// Operations the sink does not use, and error answers.
	raw := func(method, path, body string, hdr ...string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if strings.HasPrefix(path, "/users/") || strings.HasPrefix(path, "/admin/") {
			req.Header.Set("Authorization", "Bearer "+jiratest.DefaultOrgAPIKey)
		} else {
			req.SetBasicAuth(jiratest.DefaultEmail, jiratest.DefaultAPIToken)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	raw("GET", "/rest/api/3/myself", "")
	raw("GET", "/rest/api/3/users?maxResults=5", "")
	raw("GET", "/rest/api/3/user?accountId="+u.AccountID+"&expand=groups,applicationRoles", "")
	raw("GET", "/rest/api/3/user?accountId=nobody", "")
	raw("GET", "/rest/api/3/group/member?groupname=Engineering&groupId=x", "")
	raw("POST", "/rest/api/3/user", `{"emailAddress":"q@example.com"}`)
	sim.SetMembershipFaults(jiratest.MembershipFault{Group: jiratest.LegacyAccessGroup, Status: 403})
	raw("DELETE", "/rest/api/3/group/user?groupname="+jiratest.LegacyAccessGroup+"&accountId="+u.AccountID, "")
	sim.SetMembershipFaults()
	raw("DELETE", "/rest/api/3/group/user?groupId="+g.GroupID+"&accountId="+u.AccountID, "") // not a member: 404
	raw("DELETE", "/rest/api/3/user?accountId="+u.AccountID, "")
	raw("DELETE", "/rest/api/3/group?groupId="+g.GroupID, "")
	raw("GET", "/rest/servicedeskapi/servicedesk/DEMO", "")
	raw("GET", "/rest/servicedeskapi/servicedesk/NOPE", "")
	raw("GET", "/rest/servicedeskapi/servicedesk/1/customer", "") // no X-ExperimentalApi: 412
	raw("POST", "/rest/servicedeskapi/servicedesk/1/customer", `{"accountIds":["nobody"]}`)
	raw("GET", "/users/"+u.AccountID+"/manage/profile", "")
	raw("POST", "/users/"+u.AccountID+"/manage/lifecycle/disable", `{}`)
	raw("POST", "/users/"+u.AccountID+"/manage/lifecycle/enable", "")
	raw("POST", "/users/nobody/manage/lifecycle/enable", "")
	orgDirs := "/admin/v2/orgs/" + jiratest.DefaultOrgID + "/directories"
	raw("GET", orgDirs+"?limit=500", "")
	raw("GET", "/admin/v2/orgs/nope/directories", "")
	raw("GET", orgDirs, "", "Authorization", "Bearer wrong")
	raw("GET", orgDirs+"/"+jiratest.DefaultDirectoryID+"/users?cursor=not-a-cursor", "")
	raw("GET", orgDirs+"/-/users?status=suspended&limit=5", "")
	sim.SetLimit("GET /admin/v2/orgs/{orgId}/directories/{directoryId}/users", jiratest.Limit{RPS: 0.01, Burst: 1})
	raw("GET", orgDirs+"/"+jiratest.DefaultDirectoryID+"/users", "")
	raw("GET", orgDirs+"/"+jiratest.DefaultDirectoryID+"/users", "") // 429
	sim.SetLimit("GET /admin/v2/orgs/{orgId}/directories/{directoryId}/users", jiratest.Limit{})
	sim.InjectFault(jiratest.Fault500, 1, "GET /admin/v2/orgs/{orgId}/directories")
	raw("GET", orgDirs, "")
	raw("POST", orgDirs+"/"+jiratest.DefaultDirectoryID+"/users/"+jiratest.AppID+"/suspend", "")

	ck := newChecker(t, srv.URL)
	specOf := func(x exchange) string {
		route, _, err := ck.strict.route(x.req)
		if err != nil {
			return ""
		}
		return ck.strict.docs[route.Spec]
	}
	requests, responses := map[string]int{}, map[string]int{}
	for _, x := range rec.list() {
		if v := ck.check(x, "request"); v == passed || v == excepted {
			requests[specOf(x)]++
		}
	}
	served := map[string]bool{}
	notDocumented := map[int]int{}
	statuses := map[string]bool{}
	for _, x := range srvRec.list() {
		switch ck.check(x, "response") {
		case undocumented:
			notDocumented[x.status]++
			continue
		case passed, excepted:
			responses[specOf(x)]++
			statuses[fmt.Sprint(x.status)] = true
		}
		if route, _, rerr := ck.strict.route(x.req); rerr == nil && x.status < 300 {
			served[route.Method+" "+route.Path] = true
		}
	}
	for _, f := range ck.failures {
		t.Error(f)
	}
	for _, ex := range specExceptions {
		if ck.needed[ex.Name] == 0 {
			t.Errorf("exception %s (%s %s) is no longer needed: every exchange it covers passes the published spec", ex.Name, ex.Op, ex.Side)
		}
	}
	for _, f := range specFiles {
		if requests[f.name] == 0 || responses[f.name] == 0 {
			t.Errorf("%s: %d requests and %d responses validated, want some of each", f.name, requests[f.name], responses[f.name])
		}
	}
	for _, s := range []string{"400", "401", "404", "429", "500"} {
		if !statuses[s] {
			t.Errorf("no %s answer was validated against a documented response", s)
		}
	}
	var missed []string
	for doc := range ck.strict.docs {
		for path, item := range doc.Paths.Map() {
			for method := range item.Operations() {
				if !served[method+" "+path] {
					missed = append(missed, method+" "+path)
				}
			}
		}
	}
	sort.Strings(missed)
	if len(missed) > 0 {
		t.Errorf("operations never answered with a 2xx: %v", missed)
	}
	negativeControls(t, ck, rec.list(), srvRec.list())
	t.Logf("validated %v requests and %v responses; exceptions needed %v; generic statuses not documented by their operation %v",
		requests, responses, ck.needed, notDocumented)
}

// negativeControls shows the validation is not vacuous: a corrupted copy of a recorded
// exchange must fail.
func negativeControls(t *testing.T, ck *checker, sent, served []exchange) {
	t.Helper()
	mustFail := func(what string, x exchange, side string) {
		t.Helper()
		c := &checker{strict: ck.strict, relaxed: ck.relaxed, needed: map[string]int{}}
		if v := c.check(x, side); v != failed {
			t.Errorf("negative control %q passed validation", what)
		}
	}
	find := func(list []exchange, method, path string, status int) (exchange, bool) {
		for _, x := range list {
			if x.req.Method == method && strings.HasSuffix(x.req.URL.Path, path) && x.status == status {
				return x, true
			}
		}
		return exchange{}, false
	}
	controls := 0
	if x, ok := find(served, "GET", "/rest/api/3/group/bulk", 200); ok {
		x.body = bytes.Replace(x.body, []byte(`"isLast":`), []byte(`"isLast":"yes","bogus":`), 1)
		mustFail("group/bulk page with a wrong type", x, "response")
		controls++
	}
	if x, ok := find(served, "GET", "/users", 200); ok && strings.HasPrefix(x.req.URL.Path, "/admin/") {
		x.body = bytes.Replace(x.body, []byte(`"membershipStatus":"`), []byte(`"membershipStatus":"gone`), 1)
		mustFail("directory user with an unknown membershipStatus", x, "response")
		controls++
	}
	if x, ok := find(sent, "POST", "/rest/api/3/user", 201); ok {
		x.reqBody = []byte(`{"emailAddress":"x@example.com"}`)
		mustFail("POST /user without products", x, "request")
		x.reqBody = []byte(`{"emailAddress":"x@example.com","products":[]}`)
		x.req = x.req.Clone(context.Background())
		x.req.Header.Set("Authorization", "Bearer token")
		mustFail("Jira request with a bearer token instead of basic auth", x, "request")
		x.req = x.req.Clone(context.Background())
		x.req.URL.Path = "/rest/api/3/user/nonexistent"
		mustFail("a route no spec documents", x, "request")
		controls += 3
	}
	if x, ok := find(sent, "POST", "/suspend", 204); ok {
		x.reqBody = []byte(`{"reason":"left"}`)
		mustFail("suspend with a body the spec does not define", x, "request")
		controls++
	}
	if x, ok := find(sent, "GET", "/users", 200); ok && strings.HasPrefix(x.req.URL.Path, "/admin/") {
		x.req = x.req.Clone(context.Background())
		q := url.Values{"limit": {"1000"}}
		x.req.URL.RawQuery = q.Encode()
		mustFail("directory users with limit above the maximum", x, "request")
		controls++
	}
	if x, ok := find(sent, "GET", "/customer", 200); ok {
		x.req = x.req.Clone(context.Background())
		x.req.Header.Del("X-ExperimentalApi")
		mustFail("an experimental JSM operation without X-ExperimentalApi", x, "request")
		controls++
	}
	if controls != 8 {
		t.Errorf("%d of 8 negative controls ran", controls)
	}
}
