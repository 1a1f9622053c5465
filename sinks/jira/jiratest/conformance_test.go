package jiratest_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/sinks/jira"
	"github.com/idsync/idsync/sinks/jira/jiratest"
	"github.com/rs/zerolog"
)

// specFor maps a path template to the spec that documents it.
func loadSpecs(t *testing.T) map[string]*openapi3.T {
	t.Helper()
	out := map[string]*openapi3.T{}
	for prefix, file := range map[string]string{
		"/rest/api/3/":         "testdata/jira-platform-v3.trimmed.json",
		"/rest/servicedeskapi": "testdata/jsm-servicedeskapi.trimmed.json",
		"/users/":              "testdata/admin-user-management.trimmed.json",
	} {
		doc, err := openapi3.NewLoader().LoadFromFile(file)
		if err != nil {
			t.Fatalf("loading %s: %v", file, err)
		}
		out[prefix] = doc
	}
	return out
}

// Statuses any endpoint may answer without the spec listing them (rate limits, gateway
// faults, the experimental-API precondition).
var generic = map[int]bool{412: true, 429: true, 500: true, 502: true, 503: true}

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

type recorder struct {
	mu  sync.Mutex
	all []jiratest.Exchange
}

func (r *recorder) add(x jiratest.Exchange) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// Keep a copy of what validation needs; the request's body was replaced after reading.
	req := x.Request.Clone(context.Background())
	req.Body = nil
	x.Request = req
	r.all = append(r.all, x)
}

// TestResponsesMatchSpecs drives every operation the simulator implements (through the Jira
// sink and directly) and validates each response against the vendored OpenAPI schemas.
func TestResponsesMatchSpecs(t *testing.T) {
	specs := loadSpecs(t)
	rec := &recorder{}
	// jira-software grants access through a group beyond its default group.
	sim, srv := jiratest.NewServer(t, jiratest.Options{Seed: 7, OnExchange: rec.add, Data: jiratest.Seed{
		Roles: []jiratest.Role{{Key: "jira-software", Groups: []string{"jira-software-admins-legacy"}}}}})
	for i := range 60 {
		_, _ = sim.AddUser(jiratest.User{Email: fmt.Sprintf("c%d@example.com", i), DisplayName: fmt.Sprintf("C %d", i),
			HideEmail: i%7 == 0, Groups: []string{"Engineering"}})
	}
	ctx := context.Background()
	s, err := jira.New(configs.JiraConfig{BaseURL: srv.URL, Email: jiratest.DefaultEmail, APIToken: jiratest.DefaultAPIToken,
		Products: []string{"jira-software"}, AdminAPI: &configs.AdminAPIConfig{BaseURL: srv.URL, OrgAPIKey: jiratest.DefaultOrgAPIKey}},
		jira.Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	scope := reconcile.Scope{Groups: []string{"Engineering", "jira-software-users"}, ServiceDesks: []string{"DEMO"}, Organizations: []string{"Org"}}
	apply := func(c reconcile.Change) reconcile.Result {
		t.Helper()
		res, err := s.Apply(ctx, c)
		if err != nil {
			t.Fatalf("%s: %v", c.Kind, err)
		}
		return res
	}
	g := apply(reconcile.Change{Kind: reconcile.KindCreateGroup, Group: &reconcile.GroupRef{Name: "New"}})
	apply(reconcile.Change{Kind: reconcile.KindCreateGroup, Group: &reconcile.GroupRef{Name: "new"}}) // 400, adopted
	u := apply(reconcile.Change{Kind: reconcile.KindCreateUser, Email: "n@example.com"})
	apply(reconcile.Change{Kind: reconcile.KindAddMember, AccountID: u.AccountID, Group: &reconcile.GroupRef{ID: g.GroupID}})
	apply(reconcile.Change{Kind: reconcile.KindAddMember, AccountID: u.AccountID, Group: &reconcile.GroupRef{ID: g.GroupID}})
	apply(reconcile.Change{Kind: reconcile.KindUpdateUser, AccountID: u.AccountID, Fields: []reconcile.FieldChange{{Field: "displayName", New: "N N"}, {Field: "email", New: "n2@example.com"}}})
	c := apply(reconcile.Change{Kind: reconcile.KindCreateCustomer, Email: "p@example.org", ServiceDesk: "DEMO"})
	apply(reconcile.Change{Kind: reconcile.KindCreateCustomer, Email: "p@example.org", ServiceDesk: "DEMO"})
	apply(reconcile.Change{Kind: reconcile.KindAddCustomer, AccountID: c.AccountID, ServiceDesk: "DEMO"})
	apply(reconcile.Change{Kind: reconcile.KindAddOrganizationMember, AccountID: c.AccountID, Organization: "Org"})
	if _, err := s.Live(ctx, scope); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Live(ctx, reconcile.Scope{Targeted: true, Accounts: []string{u.AccountID}, Emails: []string{"c1@example.com"},
		Groups: scope.Groups, ServiceDesks: scope.ServiceDesks, Organizations: scope.Organizations}); err != nil {
		t.Fatal(err)
	}
	apply(reconcile.Change{Kind: reconcile.KindRemoveOrganizationMember, AccountID: c.AccountID, Organization: "Org"})
	apply(reconcile.Change{Kind: reconcile.KindRemoveCustomer, AccountID: c.AccountID, ServiceDesk: "DEMO"})
	apply(reconcile.Change{Kind: reconcile.KindRemoveMember, AccountID: u.AccountID, Group: &reconcile.GroupRef{ID: g.GroupID}})
	apply(reconcile.Change{Kind: reconcile.KindRemoveMember, AccountID: u.AccountID, Group: &reconcile.GroupRef{ID: g.GroupID}})
	apply(reconcile.Change{Kind: reconcile.KindDeactivateUser, AccountID: u.AccountID, Groups: []reconcile.GroupRef{{Name: "jira-software-users"}}})

	// Operations the sink does not use, and error answers.
	raw := func(method, path, body string, hdr ...string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if strings.HasPrefix(path, "/users/") {
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
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	raw("GET", "/rest/api/3/myself", "")
	raw("GET", "/rest/api/3/users?maxResults=5", "")
	raw("GET", "/rest/api/3/user?accountId="+u.AccountID+"&expand=groups,applicationRoles", "")
	raw("GET", "/rest/api/3/user?accountId=nobody", "")
	raw("GET", "/rest/api/3/group/member?groupname=Engineering&groupId=x", "")
	raw("POST", "/rest/api/3/user", `{"emailAddress":"q@example.com"}`)
	sim.SetMembershipFaults(jiratest.MembershipFault{Group: "jira-software-admins-legacy", Status: 403})
	raw("DELETE", "/rest/api/3/group/user?groupname=jira-software-admins-legacy&accountId="+u.AccountID, "")
	sim.SetMembershipFaults()
	raw("DELETE", "/rest/api/3/group/user?groupId="+g.GroupID+"&accountId="+u.AccountID, "") // not a member: 404
	raw("DELETE", "/rest/api/3/user?accountId="+u.AccountID, "")
	raw("DELETE", "/rest/api/3/group?groupId="+g.GroupID, "")
	raw("GET", "/rest/servicedeskapi/servicedesk/DEMO", "")
	raw("GET", "/rest/servicedeskapi/servicedesk/NOPE", "")
	raw("GET", "/rest/servicedeskapi/servicedesk/1/customer", "")
	raw("POST", "/rest/servicedeskapi/servicedesk/1/customer", `{"accountIds":["nobody"]}`)
	raw("GET", "/users/"+u.AccountID+"/manage/profile", "")
	raw("POST", "/users/"+u.AccountID+"/manage/lifecycle/disable", `{}`)
	raw("POST", "/users/"+u.AccountID+"/manage/lifecycle/enable", "")
	raw("POST", "/users/nobody/manage/lifecycle/enable", "")

	served := map[string]bool{}
	checkedNegative := false
	var failures []string
	for _, x := range rec.all {
		var doc *openapi3.T
		for prefix, d := range specs {
			if strings.HasPrefix(x.Template, prefix) {
				doc = d
			}
		}
		if doc == nil {
			failures = append(failures, fmt.Sprintf("%s %s: no spec documents this path", x.Method, x.Template))
			continue
		}
		item := doc.Paths.Find(x.Template)
		var op *openapi3.Operation
		if item != nil {
			op = item.GetOperation(x.Method)
		}
		if op == nil {
			failures = append(failures, fmt.Sprintf("%s %s: not in the spec", x.Method, x.Template))
			continue
		}
		if x.Status < 300 {
			served[x.Method+" "+x.Template] = true
		}
		if generic[x.Status] {
			continue
		}
		if err := validate(ctx, doc, item, op, x); err != nil {
			failures = append(failures, fmt.Sprintf("%s %s -> %d: %v\nbody: %.300s", x.Method, x.Template, x.Status, err, x.Body))
		}
		// The validator must not be vacuous: the same answer with a field the schema does not
		// allow (or a wrong type) has to fail.
		if x.Method == "GET" && x.Template == "/rest/api/3/group/bulk" && x.Status == 200 && !checkedNegative {
			checkedNegative = true
			bad := x
			bad.Body = bytes.Replace(x.Body, []byte(`"isLast":`), []byte(`"isLast":"yes","bogus":`), 1)
			if err := validate(ctx, doc, item, op, bad); err == nil {
				t.Error("a corrupted group/bulk page passed validation")
			}
		}
	}
	for _, f := range failures {
		t.Error(f)
	}
	// Every operation in the specs was answered successfully at least once.
	var missed []string
	for _, doc := range specs {
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
		t.Errorf("operations never exercised with a 2xx: %v", missed)
	}
	if !checkedNegative {
		t.Error("negative control did not run")
	}
	t.Logf("validated %d exchanges", len(rec.all))
}

func validate(ctx context.Context, doc *openapi3.T, item *openapi3.PathItem, op *openapi3.Operation, x jiratest.Exchange) error {
	params := map[string]string{}
	for _, m := range pathParam.FindAllStringSubmatch(x.Template, -1) {
		params[m[1]] = x.Request.PathValue(m[1])
	}
	in := &openapi3filter.RequestValidationInput{Request: x.Request, PathParams: params,
		Route:   &routers.Route{Spec: doc, Path: x.Template, PathItem: item, Method: x.Method, Operation: op},
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: x.Status, Header: x.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	out.SetBodyBytes(bytes.Clone(x.Body))
	return openapi3filter.ValidateResponse(ctx, out)
}
