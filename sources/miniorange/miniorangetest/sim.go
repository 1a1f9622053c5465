// Package miniorangetest is an in-memory miniOrange admin REST API for tests, `idsync demo`,
// `idsync sim` and `idsync bench`, in the spirit of net/http/httptest.
//
// It serves exactly the documented endpoints (users/get, users/search, get-timestamp) and the
// list contract idsync assumes (users/list, groups/list, groups/members; see docs/setup-miniorange.md: no
// public source documents them). It checks what the real service checks: the Customer-Key,
// the SHA-512 Authorization hash and the Timestamp window, and answers errors the miniOrange
// way ({"status": "ERROR", "message": ...}). Knobs cover latency, a batch cap smaller than
// asked, rate limits (429 + Retry-After), clock skew, injected faults and user records that
// differ from the contract (SetUserHook); every mutation and knob is safe while serving.
package miniorangetest

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/idsync/idsync/internal/simkit"
)

// Simulator defaults (see DESIGN "Simulator defaults").
const (
	DefaultCustomerKey     = "100001"
	DefaultAPIKey          = "sim-mo-api-key"
	DefaultBatchCap        = 200
	DefaultTimestampWindow = 2 * time.Minute
	// DefaultAddr is where `idsync sim` serves the simulator.
	DefaultAddr = "127.0.0.1:18082"
)

// Endpoint paths the simulator serves (the defaults of sources[].miniorange.endpoints).
const (
	PathUsersList    = "/moas/api/admin/users/list"
	PathGroupsList   = "/moas/api/admin/groups/list"
	PathGroupMembers = "/moas/api/admin/groups/members"
	PathUserGet      = "/moas/api/admin/users/get"
	PathUserSearch   = "/moas/api/admin/users/search"
	PathTimestamp    = "/moas/rest/mobile/get-timestamp"
)

// maxBody caps request bodies; real requests are a few hundred bytes.
const maxBody = 1 << 20

// Options configure a simulator. Zero values take the defaults.
type Options struct {
	CustomerKey string
	APIKey      string
	// Org is the initial directory; nil loads DefaultOrg(). Use &Org{} for an empty one.
	Org *Org
	// BatchCap is the most items one page returns, whatever batchSize asks (default 200).
	BatchCap int
	// TimestampWindow is how far the Timestamp header may be from the server clock.
	TimestampWindow time.Duration
	// Now is the server clock (default time.Now); SetClockSkew shifts it.
	Now func() time.Time
	// RequireAPIKeyHeader rejects calls without the Api-Key header (some tenants' group API).
	RequireAPIKeyHeader bool
	// ErrorsAsOK answers every application error (auth included) with HTTP 200 and the error
	// in the body, as some miniOrange endpoints do, so clients must read the body's status.
	ErrorsAsOK bool
	// Seed drives jitter, random faults and generated hires.
	Seed int64
	// Latency and Jitter delay every answer by Latency plus a uniform [0, Jitter).
	Latency time.Duration
	Jitter  time.Duration
}

// Sim is the simulator. Create it with New.
type Sim struct {
	customerKey string
	now         func() time.Time
	requireKey  bool
	errorsAsOK  bool

	mu     sync.RWMutex // guards the directory below
	users  []*user      // listing order
	byName map[string]*user
	byID   map[string]*user
	groups []*group // listing order; groups[0] is DEFAULT
	byGrp  map[string]*group
	nextID int
	hireN  int

	// knobs are latency, the rate limit, random errors, the seeded random source and the
	// call counters; faults are the injected ones (AddFault).
	knobs  *simkit.Knobs
	faults simkit.FaultList[Fault]

	kmu      sync.Mutex // guards the knobs below
	apiKey   string
	batchCap int
	window   time.Duration
	skew     time.Duration
	userHook UserHook
}

// New builds a simulator loaded with opts.Org.
func New(opts Options) *Sim {
	s := &Sim{
		customerKey: opts.CustomerKey,
		apiKey:      opts.APIKey,
		now:         opts.Now,
		requireKey:  opts.RequireAPIKeyHeader,
		errorsAsOK:  opts.ErrorsAsOK,
		knobs:       simkit.NewKnobs(uint64(opts.Seed), 0x73696d),
		batchCap:    opts.BatchCap,
		window:      opts.TimestampWindow,
		nextID:      9000000,
	}
	s.knobs.SetLatency(opts.Latency, opts.Jitter)
	if s.customerKey == "" {
		s.customerKey = DefaultCustomerKey
	}
	if s.apiKey == "" {
		s.apiKey = DefaultAPIKey
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.batchCap <= 0 {
		s.batchCap = DefaultBatchCap
	}
	if s.window <= 0 {
		s.window = DefaultTimestampWindow
	}
	org := opts.Org
	if org == nil {
		o := DefaultOrg()
		org = &o
	}
	s.load(*org)
	return s
}

// TB is the part of testing.TB NewServer needs.
type TB interface {
	Helper()
	Cleanup(func())
}

// Server is a simulator listening on a loopback httptest server.
type Server struct {
	*Sim
	URL string
	srv *httptest.Server
}

// NewServer starts a simulator on 127.0.0.1 and closes it when the test ends.
func NewServer(t TB, opts Options) *Server {
	t.Helper()
	s := New(opts)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return &Server{Sim: s, URL: srv.URL, srv: srv}
}

// Close stops the server early (tests that need the port gone).
func (s *Server) Close() { s.srv.Close() }

// Handler serves the API.
func (s *Sim) Handler() http.Handler { return http.HandlerFunc(s.serve) }
