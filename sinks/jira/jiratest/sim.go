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
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
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

// Sim is the simulated site. All methods are safe for concurrent use.
type Sim struct {
	email string
	clock Clock

	mu    sync.RWMutex // guards the site data (state*.go)
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
