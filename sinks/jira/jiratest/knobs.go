package jiratest

import "time"

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
