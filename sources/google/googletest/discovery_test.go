package googletest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/oauth2/google"
)

// The discovery document's shape, as far as the checks need it.
type discovery struct {
	Parameters map[string]dParam    `json:"parameters"`
	Resources  map[string]dResource `json:"resources"`
	Schemas    map[string]*dSchema  `json:"schemas"`
}

type dResource struct {
	Methods map[string]dMethod `json:"methods"`
}

type dMethod struct {
	ID         string            `json:"id"`
	Path       string            `json:"path"`
	HTTPMethod string            `json:"httpMethod"`
	Parameters map[string]dParam `json:"parameters"`
	Scopes     []string          `json:"scopes"`
	Response   *dSchema          `json:"response"`
}

type dParam struct {
	Type     string `json:"type"`
	Location string `json:"location"`
	Maximum  string `json:"maximum"`
}

type dSchema struct {
	Ref                  string              `json:"$ref"`
	Type                 string              `json:"type"`
	Format               string              `json:"format"`
	Properties           map[string]*dSchema `json:"properties"`
	Items                *dSchema            `json:"items"`
	AdditionalProperties *dSchema            `json:"additionalProperties"`
}

func loadDiscovery(t *testing.T) *discovery {
	t.Helper()
	b, err := os.ReadFile("testdata/admin-api.json")
	if err != nil {
		t.Fatal(err)
	}
	var d discovery
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return &d
}

// method finds a method by its endpoint name ("users.list").
func (d *discovery) method(t *testing.T, ep string) dMethod {
	t.Helper()
	res, name, _ := strings.Cut(ep, ".")
	m, ok := d.Resources[res].Methods[name]
	if !ok {
		t.Fatalf("the discovery document has no method %s", ep)
	}
	return m
}

// Every route and query parameter the simulator serves exists in the discovery document,
// with the same HTTP method and path; the scopes it accepts are the method's; the page caps
// are the documented maximums where the document states one.
func TestRoutesAndParametersAreInTheDiscoveryDocument(t *testing.T) {
	d := loadDiscovery(t)
	served := ServedParams()
	eps := make([]string, 0, len(served))
	for ep := range served {
		eps = append(eps, ep)
	}
	sort.Strings(eps)
	for _, ep := range eps {
		m := d.method(t, ep)
		if m.ID != "directory."+ep || m.HTTPMethod != http.MethodGet {
			t.Errorf("%s: id %q method %q", ep, m.ID, m.HTTPMethod)
		}
		path := "/" + strings.NewReplacer("{userKey}", "someone@example.com", "{groupKey}", "g1").Replace(m.Path)
		if got, _ := route(path); got != ep {
			t.Errorf("%s: the document's path %s routes to %q", ep, m.Path, got)
		}
		for _, p := range served[ep] {
			dp, ok := m.Parameters[p]
			if !ok {
				dp, ok = d.Parameters[p]
			}
			if !ok || dp.Location != "query" {
				t.Errorf("%s: query parameter %q is not in the discovery document", ep, p)
			}
		}
		for p, dp := range m.Parameters {
			if dp.Location == "query" && !slices.Contains(served[ep], p) {
				t.Errorf("%s: the document's parameter %q is refused by the simulator", ep, p)
			}
		}
		for _, sc := range methodScopes[ep] {
			if !slices.Contains(m.Scopes, sc) {
				t.Errorf("%s: scope %s is not one of the method's %v", ep, sc, m.Scopes)
			}
		}
		for _, sc := range m.Scopes {
			if !strings.HasSuffix(sc, "/cloud-platform") && !slices.Contains(methodScopes[ep], sc) {
				t.Errorf("%s: the document's scope %s is refused", ep, sc)
			}
		}
	}
	if mx := d.method(t, EndpointUsersList).Parameters["maxResults"].Maximum; mx != strconv.Itoa(CapUsers) {
		t.Errorf("users.list maxResults maximum %q, simulator cap %d", mx, CapUsers)
	}
	for _, sc := range ReadOnlyScopes {
		found := false
		for _, ep := range eps {
			found = found || slices.Contains(d.method(t, ep).Scopes, sc)
		}
		if !found {
			t.Errorf("read-only scope %s opens none of the methods", sc)
		}
	}
}

// token gets an access token the way the source does: a JWT signed with the test key.
func token(t *testing.T, s *Server, scopes ...string) string {
	t.Helper()
	cfg, err := google.JWTConfigFromJSON(ServiceAccountJSON(s.URL+PathToken), scopes...)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Subject = DefaultAdminEmail
	tok, err := cfg.TokenSource(context.Background()).Token()
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	return tok.AccessToken
}

func get(t *testing.T, s *Server, tok, path string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b, resp.Header
}

// conform checks v against schema s of the document: every field it holds is a property of
// the schema (or its additionalProperties), with the schema's type.
func (d *discovery) conform(path string, v any, s *dSchema) []string {
	if s.Ref != "" {
		s = d.Schemas[s.Ref]
		if s == nil {
			return []string{path + ": unknown schema"}
		}
	}
	var out []string
	switch s.Type {
	case "any":
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: want an object, got %T", path, v)}
		}
		for k, fv := range obj {
			ps := s.Properties[k]
			if ps == nil {
				ps = s.AdditionalProperties
			}
			if ps == nil {
				out = append(out, path+"."+k+": not in the schema")
				continue
			}
			out = append(out, d.conform(path+"."+k, fv, ps)...)
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: want an array, got %T", path, v)}
		}
		for i, e := range arr {
			out = append(out, d.conform(fmt.Sprintf("%s[%d]", path, i), e, s.Items)...)
		}
	case "string":
		if _, ok := v.(string); !ok {
			out = append(out, fmt.Sprintf("%s: want a string (format %q), got %T", path, s.Format, v))
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			out = append(out, fmt.Sprintf("%s: want a boolean, got %T", path, v))
		}
	case "integer", "number":
		if _, ok := v.(float64); !ok {
			out = append(out, fmt.Sprintf("%s: want a number, got %T", path, v))
		}
	default:
		out = append(out, fmt.Sprintf("%s: schema type %q not checked", path, s.Type))
	}
	return out
}

// Every answer the simulator gives decodes into the method's response schema, field names
// and types alike.
func TestAnswersConformToTheDiscoverySchemas(t *testing.T) {
	d := loadDiscovery(t)
	org := GenerateOrg(OrgSpec{Users: 12, Groups: 4, MembershipsPerUser: 2, Suspended: 1, Archived: 1, Nested: 1, Seed: 3})
	org.Groups[0].Members = append(org.Groups[0].Members, CustomerMember, org.Groups[2].Email)
	s := NewServer(t, Options{Org: &org})
	tok := token(t, s, ReadOnlyScopes...)
	u := org.Users[0]
	checks := []struct {
		ep, path string
		fields   []string // must be present somewhere in the answer
	}{
		{EndpointUsersList, "/admin/directory/v1/users?customer=my_customer&maxResults=5", []string{`"nextPageToken"`, `"suspended"`, `"archived"`, `"orgUnitPath"`, `"primaryEmail"`}},
		{EndpointUsersList, "/admin/directory/v1/users?domain=example.com&query=isSuspended%3Dtrue", []string{`"suspensionReason"`}},
		{EndpointUsersGet, "/admin/directory/v1/users/" + u.PrimaryEmail, []string{`"id"`, `"name"`}},
		{EndpointGroupsList, "/admin/directory/v1/groups?customer=my_customer&maxResults=2", []string{`"nextPageToken"`, `"directMembersCount"`}},
		{EndpointGroupsList, "/admin/directory/v1/groups?userKey=" + u.PrimaryEmail, nil},
		{EndpointMembersList, "/admin/directory/v1/groups/" + org.Groups[0].ID + "/members", []string{`"CUSTOMER"`, `"USER"`, `"GROUP"`}},
		{EndpointMembersList, "/admin/directory/v1/groups/" + org.Groups[0].Email + "/members?includeDerivedMembership=true&maxResults=3", []string{`"nextPageToken"`}},
	}
	for _, c := range checks {
		code, body, _ := get(t, s, tok, c.path)
		if code != http.StatusOK {
			t.Errorf("%s: HTTP %d: %s", c.path, code, body)
			continue
		}
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Errorf("%s: %v", c.path, err)
			continue
		}
		if probs := d.conform(c.ep, v, d.method(t, c.ep).Response); len(probs) > 0 {
			t.Errorf("%s:\n  %s", c.path, strings.Join(probs, "\n  "))
		}
		for _, f := range c.fields {
			if !strings.Contains(string(body), f) {
				t.Errorf("%s: the answer has no %s: %s", c.path, f, body)
			}
		}
	}
	// Error answers carry Google's error body.
	code, body, _ := get(t, s, tok, "/admin/directory/v1/users/nobody@example.com")
	var ge struct {
		Error struct {
			Code   int `json:"code"`
			Errors []struct {
				Reason string `json:"reason"`
			} `json:"errors"`
		} `json:"error"`
	}
	if code != http.StatusNotFound || json.Unmarshal(body, &ge) != nil || ge.Error.Code != 404 || len(ge.Error.Errors) != 1 || ge.Error.Errors[0].Reason != "notFound" {
		t.Errorf("users.get of nobody: HTTP %d %s", code, body)
	}
}
