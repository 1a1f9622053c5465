package jiratest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// The vendored specs (testdata/README.md), each with the base path its server has on the
// simulator's listener: the organization API's server is https://api.atlassian.com/admin.
var specFiles = []struct {
	name, file, basePath string
}{
	{"Jira platform v3", "testdata/jira-platform-v3.trimmed.json", ""},
	{"JSM servicedeskapi", "testdata/jsm-servicedeskapi.trimmed.json", ""},
	{"user management", "testdata/admin-user-management.trimmed.json", ""},
	{"organization API", "testdata/admin-organizations.trimmed.json", "/admin"},
}

// specException is a place where a spec contradicts itself. Validation first runs against
// the spec as published; only an exchange that fails there is validated again against the
// spec with the exception's relax applied. An exception no failing exchange needed fails the
// test: it must go once the spec (or idsync) no longer needs it.
type specException struct {
	Name string
	// Op is "METHOD /path" as the spec writes it; Side is "request" or "response".
	Op, Side string
	Why      string
	relax    func(op *openapi3.Operation) error
}

// specExceptions is the one list of them.
var specExceptions = []specException{{
	Name: "jsm-basic-auth",
	Op:   "* /rest/servicedeskapi/*", Side: "request",
	Why: "the JSM spec declares the basicAuth scheme (\"You can access this resource via basic auth.\") " +
		"and its narrative says the API takes Jira Cloud's authentication (an API token), yet every " +
		"operation lists only OAuth2; idsync authenticates with basic auth. Relaxed: basicAuth added " +
		"to each operation's security.",
	relax: func(op *openapi3.Operation) error {
		if op.Security == nil {
			return errors.New("no security requirements")
		}
		sec := append(*op.Security, openapi3.SecurityRequirement{"basicAuth": {}})
		op.Security = &sec
		return nil
	},
}, {
	Name: "user-management-profile-patch-is-partial",
	Op:   "PATCH /users/{account_id}/manage/profile", Side: "request",
	Why: "the request body's schema is AtlassianAccountUser, which requires account_id, account_type, " +
		"account_status, name, picture, email and nickname, while the operation says the body is " +
		"\"a subset of the mutable fields\"; idsync sends only what changes ({\"name\": ...}). " +
		"Relaxed: the same schema with no property required.",
	relax: func(op *openapi3.Operation) error {
		if op.RequestBody == nil || op.RequestBody.Value == nil {
			return errors.New("no request body")
		}
		mt := op.RequestBody.Value.Content.Get("application/json")
		if mt == nil || mt.Schema == nil {
			return errors.New("no application/json schema")
		}
		mt.Schema = partial(mt.Schema)
		return nil
	},
}}

// covers reports whether the exception is about the operation: Op's method is one or "*",
// its path one or a prefix ending in "*".
func (ex *specException) covers(method, path string) bool {
	m, p, _ := strings.Cut(ex.Op, " ")
	if m != "*" && m != method {
		return false
	}
	if prefix, ok := strings.CutSuffix(p, "*"); ok {
		return strings.HasPrefix(path, prefix)
	}
	return p == path
}

// partial copies a schema with no property required, through allOf (the properties
// themselves are shared, unchanged).
func partial(ref *openapi3.SchemaRef) *openapi3.SchemaRef {
	if ref == nil || ref.Value == nil {
		return ref
	}
	v := *ref.Value
	v.Required = nil
	v.AllOf = nil
	for _, s := range ref.Value.AllOf {
		v.AllOf = append(v.AllOf, partial(s))
	}
	return &openapi3.SchemaRef{Value: &v}
}

// specSet is the four specs with one router over them, their servers pointed at the
// simulator.
type specSet struct {
	router legacy.Routers
	docs   map[*openapi3.T]string // doc -> spec name
}

// loadSpecs loads the specs; relaxed applies specExceptions.
func loadSpecs(t *testing.T, baseURL string, relaxed bool) *specSet {
	t.Helper()
	set := &specSet{docs: map[*openapi3.T]string{}}
	var rs legacy.Routers
	for _, f := range specFiles {
		doc, err := openapi3.NewLoader().LoadFromFile(f.file)
		if err != nil {
			t.Fatalf("loading %s: %v", f.file, err)
		}
		doc.Servers = openapi3.Servers{{URL: baseURL + f.basePath}}
		if relaxed {
			for _, ex := range specExceptions {
				for path, item := range doc.Paths.Map() {
					for method, op := range item.Operations() {
						if !ex.covers(method, path) {
							continue
						}
						if err := ex.relax(op); err != nil {
							t.Fatalf("exception %s, %s %s: %v", ex.Name, method, path, err)
						}
					}
				}
			}
		}
		r, err := legacy.NewRouter(doc)
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		rs = append(rs, r.(*legacy.Router))
		set.docs[doc] = f.name
	}
	set.router = rs
	return set
}

// genericStatuses may be answered by any operation without the spec listing them (rate
// limits, gateway faults, JSM's experimental-API precondition): their bodies are validated
// where an operation documents the status, and otherwise only counted.
var genericStatuses = map[int]bool{412: true, 429: true, 500: true, 502: true, 503: true}

// errNotDocumented marks a generic status the operation does not document.
var errNotDocumented = errors.New("status not documented by the operation")

// exchange is one request (absolute URL) with the answer it got, as recorded.
type exchange struct {
	req     *http.Request
	reqBody []byte
	status  int
	header  http.Header
	body    []byte
}

func (x exchange) String() string {
	return fmt.Sprintf("%s %s -> %d", x.req.Method, x.req.URL.RequestURI(), x.status)
}

func (set *specSet) route(req *http.Request) (*routers.Route, map[string]string, error) {
	_, route, params, err := set.router.FindRoute(req)
	if err != nil {
		return nil, nil, fmt.Errorf("no spec documents %s %s: %w", req.Method, req.URL.Path, err)
	}
	return route, params, nil
}

// checkAuth accepts what each security scheme asks for: HTTP basic (Jira, JSM) or a bearer
// token (the admin APIs). idsync uses no OAuth.
func checkAuth(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	h := in.RequestValidationInput.Request.Header.Get("Authorization")
	ss := in.SecurityScheme
	switch {
	case ss.Type == "http" && strings.EqualFold(ss.Scheme, "basic") && strings.HasPrefix(h, "Basic "):
	case ss.Type == "http" && strings.EqualFold(ss.Scheme, "bearer") && strings.HasPrefix(h, "Bearer "):
	default:
		return fmt.Errorf("security scheme %s (%s %s) not met", in.SecuritySchemeName, ss.Type, ss.Scheme)
	}
	return nil
}

func (set *specSet) requestInput(x exchange, auth bool) (*openapi3filter.RequestValidationInput, error) {
	route, params, err := set.route(x.req)
	if err != nil {
		return nil, err
	}
	req := x.req.Clone(context.Background())
	// Validation reads the body more than once (security, then the body), through GetBody:
	// both must give the recorded body.
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(x.reqBody)), nil }
	req.Body, _ = req.GetBody()
	req.ContentLength = int64(len(x.reqBody))
	opts := &openapi3filter.Options{MultiError: true, RejectWhenRequestBodyNotSpecified: true}
	if auth {
		opts.AuthenticationFunc = checkAuth
	} else {
		opts.AuthenticationFunc = openapi3filter.NoopAuthenticationFunc
	}
	return &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}, nil
}

// validateRequest checks path, query, headers the spec defines, security and body. Beyond
// the spec's own check (which an anonymous alternative, {}, satisfies by itself), the request
// must meet one of the schemes the operation names, and carry the opt-in header of an
// experimental operation.
func (set *specSet) validateRequest(x exchange) error {
	in, err := set.requestInput(x, true)
	if err != nil {
		return err
	}
	if len(x.reqBody) == 0 {
		in.Request.Body, in.Request.GetBody = http.NoBody, nil
	}
	return errors.Join(openapi3filter.ValidateRequest(context.Background(), in), authenticated(in), optedIn(in))
}

// optedIn requires X-ExperimentalApi: opt-in on a JSM operation the spec marks
// x-experimental: the JSM narrative says such operations are not processed without it. (The
// platform spec marks some operations experimental too, group/bulk for one, but asks for no
// header.)
func optedIn(in *openapi3filter.RequestValidationInput) error {
	exp, _ := in.Route.Operation.Extensions["x-experimental"].(bool)
	if !exp || !strings.HasPrefix(in.Route.Path, "/rest/servicedeskapi/") {
		return nil
	}
	if !strings.EqualFold(in.Request.Header.Get("X-ExperimentalApi"), "opt-in") {
		return errors.New("experimental operation without X-ExperimentalApi: opt-in")
	}
	return nil
}

// authenticated reports an error unless the request meets a named (not anonymous) security
// requirement of its operation.
func authenticated(in *openapi3filter.RequestValidationInput) error {
	reqs := in.Route.Operation.Security
	if reqs == nil {
		reqs = &in.Route.Spec.Security
	}
	var tried []string
	for _, req := range *reqs {
		for name := range req {
			ref := in.Route.Spec.Components.SecuritySchemes[name]
			if ref == nil || ref.Value == nil {
				continue
			}
			tried = append(tried, name)
			if checkAuth(context.Background(), &openapi3filter.AuthenticationInput{RequestValidationInput: in,
				SecuritySchemeName: name, SecurityScheme: ref.Value}) == nil {
				return nil
			}
		}
	}
	return fmt.Errorf("authenticates with none of the operation's security schemes %v", tried)
}

// validateResponse checks the status (documented, or generic) and the body and headers the
// spec defines for it.
func (set *specSet) validateResponse(x exchange) error {
	in, err := set.requestInput(x, false)
	if err != nil {
		return err
	}
	responses := in.Route.Operation.Responses
	if responses.Status(x.status) == nil && responses.Default() == nil && genericStatuses[x.status] {
		return errNotDocumented
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: x.status, Header: x.header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}}
	out.SetBodyBytes(bytes.Clone(x.body))
	return openapi3filter.ValidateResponse(context.Background(), out)
}

// checker validates exchanges against the published specs and, for the listed exceptions
// only, against the relaxed ones, and remembers which exceptions were needed.
type checker struct {
	strict, relaxed *specSet
	needed          map[string]int // exception name -> exchanges that needed it
	failures        []string
}

func newChecker(t *testing.T, baseURL string) *checker {
	return &checker{strict: loadSpecs(t, baseURL, false), relaxed: loadSpecs(t, baseURL, true), needed: map[string]int{}}
}

func (c *checker) exception(route *routers.Route, side string) *specException {
	for i := range specExceptions {
		ex := &specExceptions[i]
		if ex.Side == side && ex.covers(route.Method, route.Path) {
			return ex
		}
	}
	return nil
}

// verdict is what check found.
type verdict int

const (
	passed       verdict = iota // valid against the published spec
	excepted                    // valid only with a listed exception
	undocumented                // a generic status the operation does not document
	failed                      // invalid (recorded in failures)
)

// check validates one side of x: against the published spec, then, for an operation a
// listed exception covers, against the relaxed spec. A failure is recorded in failures.
func (c *checker) check(x exchange, side string) verdict {
	validate := func(set *specSet) error {
		if side == "request" {
			return set.validateRequest(x)
		}
		return set.validateResponse(x)
	}
	err := validate(c.strict)
	switch {
	case err == nil:
		return passed
	case errors.Is(err, errNotDocumented):
		return undocumented
	}
	shown := err
	if route, _, rerr := c.strict.route(x.req); rerr == nil {
		if ex := c.exception(route, side); ex != nil {
			rerr := validate(c.relaxed)
			if rerr == nil {
				c.needed[ex.Name]++
				return excepted
			}
			shown = fmt.Errorf("%w (also with exception %s)", rerr, ex.Name)
		}
	}
	body := x.body
	if side == "request" {
		body = x.reqBody
	}
	c.failures = append(c.failures, fmt.Sprintf("%s %s: %v\nbody: %.400s", x, side, shown, body))
	return failed
}
