// Package googletest is an in-memory Google Workspace Admin SDK Directory API for tests and
// benches, in the spirit of net/http/httptest: the endpoints idsync's google source uses
// (users.list, users.get, groups.list, members.list) and the OAuth 2.0 token endpoint a
// service account exchanges its signed JWT at.
//
// It is faithful to the discovery document of admin/directory/v1 (testdata/admin-api.json;
// a test checks every route and query parameter served against it, and that every answer
// decodes into its schemas): pageToken paging with documented maximums (users 500, groups and
// members 200), customer (my_customer or the customer id) or domain, a subset of the search
// query syntax, includeDerivedMembership, Google's error bodies. It checks what Google checks:
// the JWT's RS256 signature, issuer, audience and lifetime, that the impersonated subject is
// an admin, that domain-wide delegation grants every scope asked for, and that each call's
// access token carries a scope of that method.
//
// Knobs cover latency, page caps below the documented ones, throttling (429 with
// Retry-After, or 403 rateLimitExceeded / userRateLimitExceeded as the Admin SDK answers
// quota overruns), injected faults (5xx, connection resets, truncated bodies), user records
// rewritten on the way out (SetUserHook: a missing suspended field, say), and call counters.
// Every mutation and knob is safe while serving.
package googletest

import (
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/idsync/idsync/internal/simkit"
)

// Simulator defaults.
const (
	DefaultDomain     = "example.com"
	DefaultCustomerID = "C01d5yncx"
	DefaultAdminEmail = "admin@example.com"
	// DefaultAddr is where a standalone simulator would listen (next to the other two).
	DefaultAddr = "127.0.0.1:18083"
	// DefaultRetryAfter is the Retry-After of 429 answers.
	DefaultRetryAfter = time.Second
)

// Paths the simulator serves.
const (
	PathToken  = "/token"
	PathPrefix = "/admin/directory/v1/"
	PathUsers  = PathPrefix + "users"
	PathGroups = PathPrefix + "groups"
)

// Endpoints (method names of the discovery document) for faults and counters.
const (
	EndpointUsersList   = "users.list"
	EndpointUsersGet    = "users.get"
	EndpointGroupsList  = "groups.list"
	EndpointMembersList = "members.list"
	EndpointToken       = "token"
)

// Documented page caps (maxResults maximums).
const (
	CapUsers   = 500
	CapGroups  = 200
	CapMembers = 200
)

// Scopes accepted per method (the discovery document's scopes of each method).
var methodScopes = map[string][]string{
	EndpointUsersList:   {"https://www.googleapis.com/auth/admin.directory.user", "https://www.googleapis.com/auth/admin.directory.user.readonly"},
	EndpointUsersGet:    {"https://www.googleapis.com/auth/admin.directory.user", "https://www.googleapis.com/auth/admin.directory.user.readonly"},
	EndpointGroupsList:  {"https://www.googleapis.com/auth/admin.directory.group", "https://www.googleapis.com/auth/admin.directory.group.readonly"},
	EndpointMembersList: {"https://www.googleapis.com/auth/admin.directory.group", "https://www.googleapis.com/auth/admin.directory.group.member", "https://www.googleapis.com/auth/admin.directory.group.member.readonly", "https://www.googleapis.com/auth/admin.directory.group.readonly"},
}

// standardParams are the discovery document's parameters of every method.
var standardParams = []string{"$.xgafv", "access_token", "alt", "callback", "fields", "key", "oauth_token", "prettyPrint", "quotaUser", "uploadType", "upload_protocol"}

// methodParams are the query parameters each method takes besides the standard ones.
var methodParams = map[string][]string{
	EndpointUsersList:   {"customFieldMask", "customer", "domain", "event", "maxResults", "orderBy", "pageToken", "projection", "query", "showDeleted", "sortOrder", "viewType"},
	EndpointUsersGet:    {"customFieldMask", "projection", "viewType"},
	EndpointGroupsList:  {"customer", "domain", "maxResults", "orderBy", "pageToken", "query", "sortOrder", "userKey"},
	EndpointMembersList: {"includeDerivedMembership", "maxResults", "pageToken", "roles"},
}

// ServedParams lists the query parameters the simulator accepts per endpoint (the
// discovery test checks them against the document).
func ServedParams() map[string][]string {
	out := map[string][]string{}
	for k, v := range methodParams {
		out[k] = append(slices.Clone(v), standardParams...)
	}
	return out
}

// Options configure a simulator. Zero values take the defaults.
type Options struct {
	// Org is the initial directory; nil loads DefaultOrg(). Use &Org{} for an empty one.
	Org        *Org
	Domain     string
	CustomerID string
	// Admins are the users a service account may impersonate (default DefaultAdminEmail).
	Admins []string
	// Granted are the scopes domain-wide delegation grants (default ReadOnlyScopes).
	Granted     []string
	ClientEmail string
	// PublicKey verifies assertions (default TestKey's).
	PublicKey *rsa.PublicKey
	// Caps below the documented maximums (0: the documented one).
	UsersCap, GroupsCap, MembersCap int
	Latency, Jitter                 time.Duration
	RetryAfter                      time.Duration
	Seed                            int64
	// Now is the server clock (default time.Now).
	Now func() time.Time
}

// Sim is the simulator. Create it with New.
type Sim struct {
	domain      string
	customerID  string
	clientEmail string
	now         func() time.Time

	mu      sync.RWMutex // guards the directory
	users   []*user
	byKey   map[string]*user // id, primary email and aliases (lower case)
	groups  []*group
	byGroup map[string]*group // id and email (lower case)
	nextID  int

	// knobs are latency, the rate limit, random errors and the call counters; faults are
	// the injected ones (AddFault).
	knobs  *simkit.Knobs
	faults simkit.FaultList[Fault]

	kmu         sync.Mutex // guards the knobs and tokens below
	pub         *rsa.PublicKey
	admins      []string
	granted     []string
	tokenURL    string
	tokens      map[string]grant
	lastSubject string
	lastScopes  []string
	caps        map[string]int
	retryAfter  time.Duration
	throttle    Throttle
	userHook    UserHook
}

type user struct {
	User
	deleted bool
}

type group struct {
	id, email, name, desc string
	members               []memberRef
}

// memberRef is one direct member: a user, a group, or the whole account.
type memberRef struct {
	u        *user
	g        *group
	customer bool
}

// New builds a simulator loaded with opts.Org.
func New(opts Options) *Sim {
	s := &Sim{
		domain: opts.Domain, customerID: opts.CustomerID, clientEmail: opts.ClientEmail, now: opts.Now,
		pub: opts.PublicKey, admins: opts.Admins, granted: opts.Granted,
		tokens: map[string]grant{}, knobs: simkit.NewKnobs(uint64(opts.Seed), 0x676f), retryAfter: opts.RetryAfter,
		caps:   map[string]int{EndpointUsersList: opts.UsersCap, EndpointGroupsList: opts.GroupsCap, EndpointMembersList: opts.MembersCap},
		nextID: 5000000,
	}
	if s.domain == "" {
		s.domain = DefaultDomain
	}
	if s.customerID == "" {
		s.customerID = DefaultCustomerID
	}
	if s.clientEmail == "" {
		s.clientEmail = DefaultClientEmail
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.pub == nil {
		s.pub = &TestKey().PublicKey
	}
	if len(s.admins) == 0 {
		s.admins = []string{DefaultAdminEmail}
	}
	if s.granted == nil {
		s.granted = slices.Clone(ReadOnlyScopes)
	}
	if s.retryAfter <= 0 {
		s.retryAfter = DefaultRetryAfter
	}
	s.knobs.SetLatency(opts.Latency, opts.Jitter)
	org := opts.Org
	if org == nil {
		o := DefaultOrg()
		org = &o
	}
	s.load(*org)
	return s
}

func (s *Sim) newID(prefix string) string {
	s.nextID++
	return prefix + strconv.Itoa(s.nextID)
}

func (s *Sim) load(org Org) {
	s.byKey = map[string]*user{}
	s.byGroup = map[string]*group{}
	for _, g := range org.Groups {
		_, _ = s.addGroup(g)
	}
	for _, u := range org.Users {
		_ = s.addUser(u)
	}
	for _, g := range org.Groups {
		for _, m := range g.Members {
			_ = s.addMember(g.Email, m)
		}
	}
}

// addUser inserts u; caller holds mu (or is load).
func (s *Sim) addUser(u User) error {
	u.PrimaryEmail = strings.TrimSpace(u.PrimaryEmail)
	if u.PrimaryEmail == "" {
		return fmt.Errorf("googletest: user without a primary email")
	}
	if u.ID == "" {
		u.ID = s.newID("1")
	}
	if u.OrgUnitPath == "" {
		u.OrgUnitPath = "/"
	}
	keys := append([]string{u.ID, u.PrimaryEmail}, u.Aliases...)
	for _, k := range keys {
		if s.byKey[strings.ToLower(k)] != nil || s.byGroup[strings.ToLower(k)] != nil {
			return fmt.Errorf("googletest: %q is taken", k)
		}
	}
	nu := &user{User: u}
	nu.Aliases = slices.Clone(u.Aliases)
	s.users = append(s.users, nu)
	for _, k := range keys {
		s.byKey[strings.ToLower(k)] = nu
	}
	return nil
}

func (s *Sim) addGroup(g Group) (*group, error) {
	if g.Email == "" {
		return nil, fmt.Errorf("googletest: group without an email")
	}
	if g.ID == "" {
		g.ID = s.newID("0")
	}
	for _, k := range []string{g.ID, g.Email} {
		if s.byGroup[strings.ToLower(k)] != nil || s.byKey[strings.ToLower(k)] != nil {
			return nil, fmt.Errorf("googletest: %q is taken", k)
		}
	}
	ng := &group{id: g.ID, email: g.Email, name: g.Name, desc: g.Description}
	s.groups = append(s.groups, ng)
	s.byGroup[strings.ToLower(g.ID)] = ng
	s.byGroup[strings.ToLower(g.Email)] = ng
	return ng, nil
}

// addMember makes member (a user's or group's email or id, or CustomerMember) a direct
// member of groupKey; caller holds mu.
func (s *Sim) addMember(groupKey, member string) error {
	g := s.byGroup[strings.ToLower(groupKey)]
	if g == nil {
		return fmt.Errorf("googletest: no group %q", groupKey)
	}
	var ref memberRef
	switch {
	case member == CustomerMember:
		ref.customer = true
	case s.byKey[strings.ToLower(member)] != nil && !s.byKey[strings.ToLower(member)].deleted:
		ref.u = s.byKey[strings.ToLower(member)]
	case s.byGroup[strings.ToLower(member)] != nil:
		ref.g = s.byGroup[strings.ToLower(member)]
	default:
		return fmt.Errorf("googletest: no user or group %q", member)
	}
	for _, m := range g.members {
		if m == ref {
			return nil
		}
	}
	g.members = append(g.members, ref)
	return nil
}

// TB is the part of testing.TB NewServer needs.
type TB interface {
	Helper()
	Cleanup(func())
	TempDir() string
	Fatalf(format string, args ...any)
}

// Server is a simulator listening on a loopback httptest server.
type Server struct {
	*Sim
	URL string
	srv *httptest.Server
	t   TB
}

// NewServer starts a simulator on 127.0.0.1 and closes it when the test ends.
func NewServer(t TB, opts Options) *Server {
	t.Helper()
	s := New(opts)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	s.SetTokenURL(srv.URL + PathToken)
	return &Server{Sim: s, URL: srv.URL, srv: srv, t: t}
}

// Close stops the server early (tests that need the port gone).
func (s *Server) Close() { s.srv.Close() }

// CredentialsFile writes a service account key file whose token_uri is this server's token
// endpoint into a temporary folder (mode 0600) and returns its path.
func (s *Server) CredentialsFile() string {
	s.t.Helper()
	p := filepath.Join(s.t.TempDir(), "service-account.json")
	if err := os.WriteFile(p, ServiceAccountJSON(s.URL+PathToken), 0o600); err != nil {
		s.t.Fatalf("googletest: writing the credentials file: %v", err)
	}
	return p
}

// SetTokenURL is the audience assertions must name (the token endpoint's full URL). Empty
// accepts any URL ending in /token.
func (s *Sim) SetTokenURL(u string) {
	s.kmu.Lock()
	s.tokenURL = u
	s.kmu.Unlock()
}

// Handler serves the API and the token endpoint.
func (s *Sim) Handler() http.Handler { return http.HandlerFunc(s.serve) }

// route names the endpoint of a path and its path keys.
func route(path string) (endpoint, key string) {
	if path == PathToken {
		return EndpointToken, ""
	}
	rest, ok := strings.CutPrefix(path, PathPrefix)
	if !ok {
		return "", ""
	}
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) == 1 && parts[0] == "users":
		return EndpointUsersList, ""
	case len(parts) == 2 && parts[0] == "users" && parts[1] != "":
		return EndpointUsersGet, parts[1]
	case len(parts) == 1 && parts[0] == "groups":
		return EndpointGroupsList, ""
	case len(parts) == 3 && parts[0] == "groups" && parts[1] != "" && parts[2] == "members":
		return EndpointMembersList, parts[1]
	}
	return "", ""
}

func (s *Sim) serve(w http.ResponseWriter, r *http.Request) {
	ep, key := route(r.URL.Path)
	if ep == "" {
		s.count("other")
		apiError(w, http.StatusNotFound, "notFound", "global", "Not Found")
		return
	}
	if !s.knobs.Delay(r.Context()) { // the client went away
		return
	}
	if s.throttled429(w, ep) {
		return
	}
	s.count(ep)
	if ep == EndpointToken {
		s.serveToken(w, r)
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		apiError(w, http.StatusMethodNotAllowed, "httpMethodNotAllowed", "global", "Method Not Allowed")
		return
	}
	q := r.URL.Query()
	for p := range q {
		if !slices.Contains(methodParams[ep], p) && !slices.Contains(standardParams, p) {
			apiError(w, http.StatusBadRequest, "invalidParameter", "global", "Invalid JSON payload received. Unknown name \""+p+"\": Cannot bind query parameter.")
			return
		}
	}
	if alt := q.Get("alt"); alt != "" && alt != "json" {
		apiError(w, http.StatusBadRequest, "invalidParameter", "global", "Invalid value for alt")
		return
	}
	if code, msg, ok := s.authorize(r, methodScopes[ep]); !ok {
		reason := "authError"
		if code == http.StatusForbidden {
			reason = "insufficientPermissions"
		}
		apiError(w, code, reason, "global", msg)
		return
	}
	if s.randomFault(w) {
		return
	}
	var k reply
	switch ep {
	case EndpointUsersList:
		k = s.usersList(q)
	case EndpointUsersGet:
		k = s.usersGet(key)
	case EndpointGroupsList:
		k = s.groupsList(q)
	case EndpointMembersList:
		k = s.membersList(key, q)
	}
	s.answer(w, ep, key, k)
}

// reply is one computed answer before faults: a status and a JSON body, and the page it is.
type reply struct {
	code int
	body []byte
	page int
}

// answer sends a computed answer, unless a fault of that page says otherwise.
func (s *Sim) answer(w http.ResponseWriter, ep, pathKey string, a reply) {
	if a.code == http.StatusOK {
		if f := s.pageFault(ep, pathKey, a.page); f != nil {
			s.inject(w, f, a.body)
			return
		}
	}
	writeRaw(w, a.code, a.body)
}

func (s *Sim) count(ep string) { s.knobs.Count(ep) }

// contentType is the Content-Type of every answer, errors included.
const contentType = "application/json; charset=UTF-8"

func writeJSON(w http.ResponseWriter, code int, v any) { simkit.WriteJSON(w, contentType, code, v) }

func writeRaw(w http.ResponseWriter, code int, b []byte) { simkit.WriteRaw(w, contentType, code, b) }

// errorBody is Google's JSON error.
func errorBody(code int, reason, domain, msg string) []byte {
	status := map[int]string{400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
		405: "METHOD_NOT_ALLOWED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 502: "UNAVAILABLE", 503: "UNAVAILABLE"}[code]
	b, _ := json.Marshal(map[string]any{"error": map[string]any{
		"code": code, "message": msg, "status": status,
		"errors": []map[string]string{{"message": msg, "domain": domain, "reason": reason}},
	}})
	return b
}

func apiError(w http.ResponseWriter, code int, reason, domain, msg string) {
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/"`)
	}
	writeRaw(w, code, errorBody(code, reason, domain, msg))
}

func badRequest(msg string) reply {
	return reply{code: http.StatusBadRequest, body: errorBody(http.StatusBadRequest, "invalid", "global", msg)}
}

func notFound(what string) reply {
	return reply{code: http.StatusNotFound, body: errorBody(http.StatusNotFound, "notFound", "global", "Resource Not Found: "+what)}
}

// pageToken encodes a position in one listing; the listing's identity is part of it, so a
// token of another listing is refused.
func pageToken(listing string, offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(listing + "\x00" + strconv.Itoa(offset)))
}

func readPageToken(listing, tok string) (int, bool) {
	if tok == "" {
		return 0, true
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, false
	}
	l, off, ok := strings.Cut(string(b), "\x00")
	if !ok || l != listing {
		return 0, false
	}
	n, err := strconv.Atoi(off)
	return n, err == nil && n >= 0
}

// pageOf cuts one page out of n items: maxResults (default def, at most max), the
// simulator's cap for the endpoint, the page token. It returns the range, the next token and
// the page index (offset / page size) faults are matched against.
func (s *Sim) pageOf(ep, listing string, q map[string][]string, n, def, maxAllowed int) (lo, hi int, next string, page int, bad *reply) {
	size := def
	if v := first(q, "maxResults"); v != "" {
		m, err := strconv.Atoi(v)
		if err != nil || m < 1 || m > maxAllowed {
			k := badRequest(fmt.Sprintf("Invalid value '%s'. Values must be within the range: [1, %d]", v, maxAllowed))
			return 0, 0, "", 0, &k
		}
		size = m
	}
	s.kmu.Lock()
	if c := s.caps[ep]; c > 0 {
		size = min(size, c)
	}
	s.kmu.Unlock()
	off, ok := readPageToken(listing, first(q, "pageToken"))
	if !ok {
		k := badRequest("Invalid Input: pageToken")
		return 0, 0, "", 0, &k
	}
	lo, hi = min(off, n), min(off+size, n)
	if hi < n {
		next = pageToken(listing, hi)
	}
	return lo, hi, next, off / size, nil
}

func first(q map[string][]string, k string) string {
	if v := q[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}
