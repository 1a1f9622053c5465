// Package jiratest is an in-memory Jira Cloud site, faithful to the documented REST APIs that
// idsync uses: the Jira platform API v3 (users, groups, memberships, application roles), the
// Jira Service Management servicedeskapi (service desks, customers, organizations), the
// Atlassian admin user-management API (profile, email, lifecycle) and the organization API's
// v2 directories (directories, users, suspend, restore under /admin), all on one listener so
// that sink.jira.admin_api.base_url can point at the same address.
//
// It rejects what the real APIs reject (wrong parameter names, missing products, duplicate
// groups, missing experimental header), answers with the documented status codes, page shapes,
// page-size caps and error bodies, and carries knobs for latency, token-bucket rate limits with
// the real 429 headers, injected faults, search-index lag and a licensed-seat limit. Counters
// report every call it served, so tests and benchmarks measure what a client really sent.
//
// Facts it models come from the vendored OpenAPI specs and reference/ATLASSIAN.md; where the
// documentation is silent (exact error wording, "already a member" answers, removing an
// account that is not in the group) the choice is noted on the handler.
package jiratest

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Defaults of the simulated site (DESIGN "Simulator defaults").
const (
	DefaultEmail     = "admin@example.com"
	DefaultAPIToken  = "sim-jira-token"
	DefaultOrgAPIKey = "sim-org-key"
	DefaultAddr      = "127.0.0.1:18081"
)

// Page-size caps of the real APIs (reference/ATLASSIAN.md §1 and §5).
const (
	CapUsersSearch = 1000 // GET /rest/api/3/users/search
	CapUserSearch  = 1000 // GET /rest/api/3/user/search ("up to the thousandth user")
	CapGroupMember = 50   // GET /rest/api/3/group/member ("between 1 and 50")
	CapGroupBulk   = 50   // GET /rest/api/3/group/bulk (undocumented maximum; echoed)
	CapJSM         = 50   // servicedeskapi pages
)

// Limit is a token bucket: RPS requests per second with room for Burst at once. Zero RPS means
// no limit.
type Limit struct {
	RPS   float64
	Burst int
}

// Caps are the page-size caps; zero fields take the real APIs' values.
type Caps struct {
	UsersSearch int
	UserSearch  int
	GroupMember int
	GroupBulk   int
	JSM         int
}

func (c Caps) withDefaults() Caps {
	def := func(v, d int) int {
		if v <= 0 {
			return d
		}
		return v
	}
	return Caps{
		UsersSearch: def(c.UsersSearch, CapUsersSearch),
		UserSearch:  def(c.UserSearch, CapUserSearch),
		GroupMember: def(c.GroupMember, CapGroupMember),
		GroupBulk:   def(c.GroupBulk, CapGroupBulk),
		JSM:         def(c.JSM, CapJSM),
	}
}

// Options configure a simulator. Every knob can also be changed at runtime with the Set*
// methods.
type Options struct {
	// Credentials: basic auth (Email + APIToken) for Jira and JSM, bearer OrgAPIKey for the
	// admin routes. Empty values take the defaults above; SetAPITokens and SetOrgAPIKeys
	// change what is accepted at run time (a rotation).
	Email     string
	APIToken  string
	OrgAPIKey string

	// Clock drives rate limits, Retry-After windows, index lag and latency; nil is real time.
	Clock Clock
	// Seed makes generated ids, latency jitter and random faults reproducible.
	Seed uint64

	// NoDefaultSeed starts the site empty instead of with the default site admin, app
	// account, product-access group jira-software-users and service desk DEMO.
	NoDefaultSeed bool
	// Data is added after the default seed.
	Data Seed
	// Seats caps licensed users (active accounts in a product-access group); 0 is unlimited.
	Seats int
	// HiddenEmailSearchable lets user/search?query= match the hidden email of a user (the
	// documentation does not say whether Jira does; the default is no).
	HiddenEmailSearchable bool
	// ExperimentalOptional accepts experimental JSM operations without X-ExperimentalApi
	// (the real API answers 412 without it).
	ExperimentalOptional bool

	// Latency is added to every response, plus a uniform random Jitter in [0, Jitter).
	Latency time.Duration
	Jitter  time.Duration

	// EndpointLimit is the default bucket of every method+path template; Limits overrides it
	// per "METHOD /template" (for example "POST /rest/api/3/group/user"); UserSearchLimit is
	// the bucket all user-search endpoints share; Rate caps the whole site (all endpoints, one
	// bucket). Buckets are kept per credential, as Jira keeps them per tenant and client.
	EndpointLimit   Limit
	Limits          map[string]Limit
	UserSearchLimit Limit
	Rate            Limit
	// RetryAfter is the wait a 429 announces (whole seconds, at least 1; default 1 s).
	RetryAfter time.Duration
	// EarlyGrace (real time, default 100 ms) is how long after a 429 other requests of the
	// same credential and bucket count as already in flight rather than as early retries.
	// A request repeating one that got the 429 counts as early at any time.
	EarlyGrace time.Duration

	// Faults injects errors at random; see also InjectFault.
	Faults Faults
	// MembershipFaults make membership changes of chosen groups fail; see MembershipFault
	// and SetMembershipFaults.
	MembershipFaults []MembershipFault
	// IndexLag hides accounts created through the API from users/search, user/search and
	// group/member listings for this long. GET /rest/api/3/user?accountId= reads its writes.
	IndexLag time.Duration
	// Caps override the page-size caps.
	Caps Caps

	// OnExchange, when set, is called with every request and response served (tests use it
	// to validate responses against the OpenAPI specs).
	OnExchange func(Exchange)
}

// Exchange is one request and the response the simulator gave it.
type Exchange struct {
	Method   string
	Template string // path template, e.g. /rest/api/3/group/member
	Request  *http.Request
	ReqBody  []byte
	Status   int
	Header   http.Header
	Body     []byte
}

// Fault is one kind of injected failure.
type Fault string

// Fault kinds.
const (
	Fault500        Fault = "500"         // 500 with a Jira error body, request not processed
	Fault502        Fault = "502"         // 502 from the "proxy", not processed
	Fault503        Fault = "503"         // 503 with Retry-After, not processed
	FaultReset      Fault = "reset"       // connection reset before processing
	FaultResetAfter Fault = "reset-after" // processed, then the connection is reset (outcome unknown)
	FaultSlow       Fault = "slow"        // processed after Faults.SlowDelay
	FaultTruncate   Fault = "truncate"    // processed, body cut short
)

// AllFaults lists every fault kind.
var AllFaults = []Fault{Fault500, Fault502, Fault503, FaultReset, FaultResetAfter, FaultSlow, FaultTruncate}

// Faults injects failures at random: each request matching Endpoints (all when empty) fails
// with probability Rate, with a kind drawn uniformly from Kinds (all when empty).
type Faults struct {
	Rate      float64
	Kinds     []Fault
	Endpoints []string // "METHOD /template"
	// SlowDelay is the delay of FaultSlow (default 2 s).
	SlowDelay time.Duration
	// RetryAfter of a 503 (default: Options.RetryAfter).
	RetryAfter time.Duration
}

// MembershipFault makes POST and DELETE /rest/api/3/group/user of one group fail, every
// time, until the faults are replaced (SetMembershipFaults): the request is answered with
// Status and a Jira error body (and Retry-After for 429 and 503), and nothing changes. It
// acts after authentication, rate limits and the group lookup (an unknown group still
// answers 404), before the account is looked at; faults of Options.Faults and InjectFault
// come first. Tests use it for a group whose members idsync cannot change (403, as for an
// IdP-managed group) or that keeps failing (500).
type MembershipFault struct {
	// Group is the group's groupId, or its name (case-insensitive).
	Group string
	// Method is "DELETE" (removals), "POST" (adds) or "" (both).
	Method string
	// Status is the answer, for example 403 or 500; 0 disables the fault.
	Status int
}

// Sim is the simulated site. All methods are safe for concurrent use.
type Sim struct {
	email string
	clock Clock

	mu    sync.RWMutex // guards the site data (state.go)
	st    *site
	knob  sync.Mutex // guards the knobs below
	opts  Options
	rng   *rand.Rand
	queue []forcedFault
	// tokens and orgKeys are the API tokens (of email) and org API keys accepted now.
	tokens, orgKeys []string

	lim *limiter
	ctr *counters
	mux *http.ServeMux
}

type forcedFault struct {
	kind     Fault
	endpoint string // "" matches any
}

// New builds a simulator with opts.
func New(opts Options) *Sim {
	s := &Sim{
		email:   nonEmpty(opts.Email, DefaultEmail),
		tokens:  []string{nonEmpty(opts.APIToken, DefaultAPIToken)},
		orgKeys: []string{nonEmpty(opts.OrgAPIKey, DefaultOrgAPIKey)},
		clock:   opts.Clock,
	}
	if s.clock == nil {
		s.clock = RealClock{}
	}
	opts.Caps = opts.Caps.withDefaults()
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = time.Second
	}
	if opts.EarlyGrace <= 0 {
		opts.EarlyGrace = 100 * time.Millisecond
	}
	s.opts = opts
	s.rng = rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15))
	s.st = newSite(rand.New(rand.NewPCG(opts.Seed+1, opts.Seed^0x5851f42d4c957f2d)), s.clock, opts.IndexLag)
	s.lim = newLimiter()
	s.ctr = newCounters()
	if !opts.NoDefaultSeed {
		s.mustSeed(DefaultSeed(s.email))
	}
	s.mustSeed(opts.Data)
	s.routes()
	return s
}

// NewServer starts a simulator on an httptest server (127.0.0.1) that is closed when the test
// ends.
func NewServer(t testing.TB, opts Options) (*Sim, *httptest.Server) {
	t.Helper()
	s := New(opts)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return s, srv
}

// Handler serves Jira, JSM and the admin routes.
func (s *Sim) Handler() http.Handler { return s.mux }

func nonEmpty(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

// --- knobs -------------------------------------------------------------------------------

// SetAPITokens replaces the API tokens accepted for the site's email. An Atlassian account
// may hold several tokens at once, as while a client moves from a retiring token to its
// successor; with none, every Jira and JSM request answers 401.
func (s *Sim) SetAPITokens(tokens ...string) {
	s.knob.Lock()
	s.tokens = append([]string(nil), tokens...)
	s.knob.Unlock()
}

// SetOrgAPIKeys replaces the organization API keys the admin routes accept (an organization
// may hold several); with none, every admin request answers 401.
func (s *Sim) SetOrgAPIKeys(keys ...string) {
	s.knob.Lock()
	s.orgKeys = append([]string(nil), keys...)
	s.knob.Unlock()
}

// SetLatency sets the fixed latency and random jitter of every response.
func (s *Sim) SetLatency(fixed, jitter time.Duration) {
	s.knob.Lock()
	s.opts.Latency, s.opts.Jitter = fixed, jitter
	s.knob.Unlock()
}

// SetEndpointLimit sets the default bucket of every endpoint.
func (s *Sim) SetEndpointLimit(l Limit) {
	s.knob.Lock()
	s.opts.EndpointLimit = l
	s.knob.Unlock()
	s.lim.reset()
}

// SetLimit sets the bucket of one "METHOD /template".
func (s *Sim) SetLimit(endpoint string, l Limit) {
	s.knob.Lock()
	if s.opts.Limits == nil {
		s.opts.Limits = map[string]Limit{}
	}
	s.opts.Limits[endpoint] = l
	s.knob.Unlock()
	s.lim.reset()
}

// SetUserSearchLimit sets the bucket shared by user-search endpoints.
func (s *Sim) SetUserSearchLimit(l Limit) {
	s.knob.Lock()
	s.opts.UserSearchLimit = l
	s.knob.Unlock()
	s.lim.reset()
}

// SetRate caps the whole site at l (one bucket across all endpoints).
func (s *Sim) SetRate(l Limit) {
	s.knob.Lock()
	s.opts.Rate = l
	s.knob.Unlock()
	s.lim.reset()
}

// SetRetryAfter sets the wait a 429 announces.
func (s *Sim) SetRetryAfter(d time.Duration) {
	if d <= 0 {
		d = time.Second
	}
	s.knob.Lock()
	s.opts.RetryAfter = d
	s.knob.Unlock()
}

// SetFaults replaces the random fault configuration.
func (s *Sim) SetFaults(f Faults) {
	s.knob.Lock()
	s.opts.Faults = f
	s.knob.Unlock()
}

// InjectFault makes the next n requests matching endpoint ("METHOD /template", or "" for
// any) fail with kind, before any random fault.
func (s *Sim) InjectFault(kind Fault, n int, endpoint string) {
	s.knob.Lock()
	for range n {
		s.queue = append(s.queue, forcedFault{kind: kind, endpoint: endpoint})
	}
	s.knob.Unlock()
}

// SetMembershipFaults replaces Options.MembershipFaults; with none, membership changes no
// longer fail.
func (s *Sim) SetMembershipFaults(faults ...MembershipFault) {
	s.knob.Lock()
	s.opts.MembershipFaults = append([]MembershipFault(nil), faults...)
	s.knob.Unlock()
}

// SetIndexLag sets the search-index lag for accounts created from now on.
func (s *Sim) SetIndexLag(d time.Duration) {
	s.mu.Lock()
	s.st.lag = d
	s.mu.Unlock()
}

// SetSeats sets the licensed-seat limit (0 is unlimited).
func (s *Sim) SetSeats(n int) {
	s.knob.Lock()
	s.opts.Seats = n
	s.knob.Unlock()
}

// SetHiddenEmailSearchable toggles whether user/search matches hidden emails.
func (s *Sim) SetHiddenEmailSearchable(v bool) {
	s.knob.Lock()
	s.opts.HiddenEmailSearchable = v
	s.knob.Unlock()
}

// SetExperimentalOptional toggles whether experimental JSM operations need their header.
func (s *Sim) SetExperimentalOptional(v bool) {
	s.knob.Lock()
	s.opts.ExperimentalOptional = v
	s.knob.Unlock()
}

func (s *Sim) knobs() Options {
	s.knob.Lock()
	defer s.knob.Unlock()
	o := s.opts
	return o
}

// --- routing and middleware ----------------------------------------------------------------

type family int

const (
	famJira family = iota
	famJSM
	famAdmin
	famOrg // the organization API (/admin/v1, /admin/v2): the org API key, Errors bodies
)

type handlerFunc func(w http.ResponseWriter, r *http.Request)

func (s *Sim) routes() {
	s.mux = http.NewServeMux()
	h := func(pattern string, fam family, fn handlerFunc) {
		s.mux.Handle(pattern, s.wrap(pattern, fam, fn))
	}
	// Jira platform.
	h("GET /rest/api/3/users/search", famJira, s.getAllUsers)
	h("GET /rest/api/3/users", famJira, s.getAllUsers)
	h("GET /rest/api/3/user/search", famJira, s.findUsers)
	h("GET /rest/api/3/user", famJira, s.getUser)
	h("POST /rest/api/3/user", famJira, s.createUser)
	h("DELETE /rest/api/3/user", famJira, s.removeUser)
	h("GET /rest/api/3/user/groups", famJira, s.getUserGroups)
	h("GET /rest/api/3/myself", famJira, s.myself)
	h("GET /rest/api/3/group/bulk", famJira, s.bulkGetGroups)
	h("POST /rest/api/3/group", famJira, s.createGroup)
	h("DELETE /rest/api/3/group", famJira, s.removeGroup)
	h("GET /rest/api/3/group/member", famJira, s.getGroupMembers)
	h("POST /rest/api/3/group/user", famJira, s.addUserToGroup)
	h("DELETE /rest/api/3/group/user", famJira, s.removeUserFromGroup)
	h("GET /rest/api/3/applicationrole", famJira, s.getApplicationRoles)
	// JSM.
	const sd = "/rest/servicedeskapi"
	h("POST "+sd+"/customer", famJSM, s.createCustomer)
	h("GET "+sd+"/servicedesk", famJSM, s.getServiceDesks)
	h("GET "+sd+"/servicedesk/{serviceDeskId}", famJSM, s.getServiceDesk)
	h("GET "+sd+"/servicedesk/{serviceDeskId}/customer", famJSM, s.getCustomers)
	h("POST "+sd+"/servicedesk/{serviceDeskId}/customer", famJSM, s.addCustomers)
	h("DELETE "+sd+"/servicedesk/{serviceDeskId}/customer", famJSM, s.removeCustomers)
	h("GET "+sd+"/organization", famJSM, s.getOrganizations)
	h("POST "+sd+"/organization", famJSM, s.createOrganization)
	h("GET "+sd+"/organization/{organizationId}/user", famJSM, s.getOrganizationUsers)
	h("POST "+sd+"/organization/{organizationId}/user", famJSM, s.addOrganizationUsers)
	h("DELETE "+sd+"/organization/{organizationId}/user", famJSM, s.removeOrganizationUsers)
	// Admin user management.
	h("GET /users/{account_id}/manage/profile", famAdmin, s.getProfile)
	h("PATCH /users/{account_id}/manage/profile", famAdmin, s.patchProfile)
	h("PUT /users/{account_id}/manage/email", famAdmin, s.putEmail)
	h("POST /users/{account_id}/manage/lifecycle/disable", famAdmin, s.disableUser)
	h("POST /users/{account_id}/manage/lifecycle/enable", famAdmin, s.enableUser)
	// Organization API, v2 directories (orgapi.go).
	const dirs = "/admin/v2/orgs/{orgId}/directories"
	h("GET "+dirs, famOrg, s.getDirectories)
	h("GET "+dirs+"/{directoryId}/users", famOrg, s.getDirectoryUsers)
	h("POST "+dirs+"/{directoryId}/users/{accountId}/suspend", famOrg, s.suspendUser)
	h("POST "+dirs+"/{directoryId}/users/{accountId}/restore", famOrg, s.restoreUser)
	s.mux.Handle("/", s.wrap("", famJira, func(w http.ResponseWriter, r *http.Request) {
		writeJira(w, http.StatusNotFound, "No API route matches "+r.Method+" "+r.URL.Path+".")
	}))
}

// userSearchTemplates share the tenant-wide user-search bucket.
var userSearchTemplates = map[string]bool{"/rest/api/3/user/search": true}

// maxRequestBody caps request bodies the simulator reads.
const maxRequestBody = 1 << 20

func (s *Sim) wrap(pattern string, fam family, fn handlerFunc) http.Handler {
	method, template, _ := strings.Cut(pattern, " ")
	if template == "" {
		template = "unknown"
	}
	routeKey := method + " " + template
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := routeKey
		if method == "" {
			key = r.Method + " unknown"
		}
		now := s.clock.Now()
		realNow := time.Now()
		var reqBody []byte
		if r.Body != nil {
			b, err := readAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
			if err != nil {
				writeFamily(w, fam, http.StatusBadRequest, "Request body could not be read: "+err.Error())
				return
			}
			reqBody = b
			r.Body = readCloser(b)
		}
		k := s.knobs()
		rec := httptest.NewRecorder()
		fault := Fault("")

		cred, ok := s.authenticate(r, fam)
		switch {
		case !ok:
			writeUnauthorized(rec, fam)
		default:
			if d := s.lim.check(k, cred, r.Method, template, key, requestIdentity(cred, r, reqBody), now, realNow); d != nil {
				writeThrottled(rec, fam, d, now)
				break
			}
			fault = s.pickFault(key, k)
			s.latency(r.Context(), k)
			switch fault {
			case Fault500:
				writeFamily(rec, fam, http.StatusInternalServerError, "Internal server error.")
			case Fault502:
				rec.Header().Set("Content-Type", "text/html")
				rec.WriteHeader(http.StatusBadGateway)
				_, _ = rec.WriteString("<html><body>502 Bad Gateway</body></html>")
			case Fault503:
				ra := k.Faults.RetryAfter
				if ra <= 0 {
					ra = k.RetryAfter
				}
				rec.Header().Set("Retry-After", fmt.Sprint(ceilSeconds(ra)))
				writeFamily(rec, fam, http.StatusServiceUnavailable, "Service temporarily unavailable.")
			case FaultReset:
			default:
				if fault == FaultSlow {
					d := k.Faults.SlowDelay
					if d <= 0 {
						d = 2 * time.Second
					}
					_ = s.clock.Sleep(r.Context(), d)
				}
				if k.Rate.RPS > 0 || k.EndpointLimit.RPS > 0 || len(k.Limits) > 0 || k.UserSearchLimit.RPS > 0 {
					s.lim.headers(rec.Header(), k, cred, r.Method, template, key, now)
				}
				fn(rec, r)
			}
		}

		status := rec.Code
		if fault == FaultReset {
			status = 0
		}
		s.ctr.count(r.Method, template, status)
		if k.OnExchange != nil && fault != FaultReset {
			k.OnExchange(Exchange{Method: r.Method, Template: template, Request: r, ReqBody: reqBody,
				Status: rec.Code, Header: rec.Header().Clone(), Body: rec.Body.Bytes()})
		}
		switch fault {
		case FaultReset, FaultResetAfter:
			resetConn(w, false)
			return
		case FaultTruncate:
			body := rec.Body.Bytes()
			copyHeader(w.Header(), rec.Header())
			w.Header().Set("Content-Length", fmt.Sprint(len(body)+16))
			w.WriteHeader(rec.Code)
			_, _ = w.Write(body[:len(body)/2])
			resetConn(w, true)
			return
		}
		copyHeader(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

func copyHeader(dst, src http.Header) {
	for k, v := range src {
		dst[k] = v
	}
}

// resetConn closes the client connection abruptly (RST), as a dying proxy would; flush
// first sends what was written (a truncated body), else nothing at all reaches the client.
func resetConn(w http.ResponseWriter, flush bool) {
	if f, ok := w.(http.Flusher); ok && flush {
		f.Flush()
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

func (s *Sim) latency(ctx context.Context, k Options) {
	d := k.Latency
	if k.Jitter > 0 {
		s.knob.Lock()
		d += time.Duration(s.rng.Int64N(int64(k.Jitter)))
		s.knob.Unlock()
	}
	if d > 0 {
		_ = s.clock.Sleep(ctx, d)
	}
}

func (s *Sim) pickFault(key string, k Options) Fault {
	s.knob.Lock()
	defer s.knob.Unlock()
	for i, f := range s.queue {
		if f.endpoint == "" || f.endpoint == key {
			s.queue = append(s.queue[:i], s.queue[i+1:]...)
			return f.kind
		}
	}
	f := k.Faults
	if f.Rate <= 0 {
		return ""
	}
	if len(f.Endpoints) > 0 {
		match := false
		for _, e := range f.Endpoints {
			if e == key {
				match = true
			}
		}
		if !match {
			return ""
		}
	}
	if s.rng.Float64() >= f.Rate {
		return ""
	}
	kinds := f.Kinds
	if len(kinds) == 0 {
		kinds = AllFaults
	}
	return kinds[s.rng.IntN(len(kinds))]
}

// authenticate checks basic auth (Jira, JSM) or the org API key (admin routes) and returns the
// credential that rate limits are kept for.
func (s *Sim) authenticate(r *http.Request, fam family) (string, bool) {
	h := r.Header.Get("Authorization")
	s.knob.Lock()
	tokens, orgKeys := s.tokens, s.orgKeys
	s.knob.Unlock()
	if fam == famAdmin || fam == famOrg {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || !oneOf(tok, orgKeys) {
			return "", false
		}
		return "org-key", true
	}
	enc, ok := strings.CutPrefix(h, "Basic ")
	if !ok {
		return "", false
	}
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return "", false
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok || !strings.EqualFold(user, s.email) || !oneOf(pass, tokens) {
		return "", false
	}
	return "basic:" + strings.ToLower(user), true
}

// oneOf compares secret with each accepted value in constant time.
func oneOf(secret string, accepted []string) bool {
	match := 0
	for _, a := range accepted {
		match |= subtle.ConstantTimeCompare([]byte(secret), []byte(a))
	}
	return match == 1
}

func writeUnauthorized(w http.ResponseWriter, fam family) {
	switch fam {
	case famAdmin:
		writeJSON(w, http.StatusUnauthorized, map[string]any{"key": "unauthorized"})
	case famOrg:
		writeOrgError(w, http.StatusUnauthorized, "UNAUTHORIZED", "The organization API key is missing or not valid.")
	default:
		w.Header().Set("WWW-Authenticate", `Basic realm="protected-area"`)
		writeFamily(w, fam, http.StatusUnauthorized, "Client must be authenticated to access this resource.")
	}
}

func writeThrottled(w http.ResponseWriter, fam family, d *denial, now time.Time) {
	h := w.Header()
	secs := ceilSeconds(d.retryAfter)
	h.Set("Retry-After", fmt.Sprint(secs))
	h.Set("X-RateLimit-Limit", fmt.Sprint(d.limit))
	h.Set("X-RateLimit-Remaining", "0")
	h.Set("X-RateLimit-Reset", now.Add(time.Duration(secs)*time.Second).UTC().Format("2006-01-02T15:04Z"))
	h.Set("RateLimit-Reason", d.reason)
	switch fam {
	case famAdmin:
		writeJSON(w, http.StatusTooManyRequests, map[string]any{"key": "tooManyRequests"})
	case famOrg:
		writeOrgError(w, http.StatusTooManyRequests, "RATE_LIMITED", "Too many API requests.")
	default:
		writeFamily(w, fam, http.StatusTooManyRequests, "Rate limit exceeded.")
	}
}

func ceilSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}

func readCloser(b []byte) *nopCloser { return &nopCloser{bytes.NewReader(b)} }

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }
