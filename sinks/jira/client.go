package jira

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/clock"
	"github.com/idsync/idsync/internal/httpx"
	"github.com/idsync/idsync/internal/metrics"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"
)

// Clock is the client's time: pacing, Retry-After and backoff all wait on it, so tests can
// run them on a scaled or fake clock instead of waiting real seconds.
type Clock = clock.Clock

// Targets as the idsync_api_requests_total{target} label names them.
const (
	TargetJira  = "jira"
	TargetJSM   = "jsm"
	TargetAdmin = "admin"
)

// class is an endpoint class with its own token bucket and Retry-After window. Jira's burst
// limits are per endpoint and method; reads, writes, the tenant-wide user-search limit and the
// admin API are paced separately so that a throttled write never stalls the reads.
type class int

const (
	classRead class = iota
	classWrite
	classSearch
	classAdmin
	numClasses
)

func (c class) String() string {
	return [...]string{"read", "write", "user-search", "admin"}[c]
}

// Retry policy (Atlassian's recommended backoff for 429 without Retry-After: start 5 s,
// double, cap 30 s, jitter x0.7-1.3, 4 retries). Other transient failures (5xx, resets) start
// at 1 s.
const (
	maxRetries       = 4
	rateBackoffBase  = 5 * time.Second
	faultBackoffBase = time.Second
	backoffCap       = 30 * time.Second
	// maxResetWait bounds a wait derived from X-RateLimit-Reset alone.
	maxResetWait = 2 * time.Minute
	// maxBody bounds a response body (a users/search page of 1000 users is ~0.5 MiB).
	maxBody = 32 << 20
	// recoverFraction is the share of the configured rate regained per second after a 429
	// halved it (additive increase: from half to full in five seconds).
	recoverFraction = 0.1
	// minRate is the floor a throttled bucket is halved down to.
	minRate = 0.5
	// unlimitedAgain is the learnt rate above which an unlimited class stops pacing again.
	unlimitedAgain = 1000
	// ceilingShare and ceilingTTL: after a 429 a class recovers only to this share of the
	// rate that was throttled, for this long, so a site whose real limit is below the
	// configured rate is not hit again every few seconds; then it may probe back up.
	ceilingShare = 0.9
	ceilingTTL   = 10 * time.Minute
)

// Budget is the last-known rate-limit state the API reported (X-RateLimit-* and Retry-After).
// The daemon may persist it so a restart does not start by bursting into a throttled tenant.
type Budget struct {
	Limit      int           `json:"limit,omitempty"`
	Remaining  int           `json:"remaining,omitempty"`
	NearLimit  bool          `json:"nearLimit,omitempty"`
	Reset      time.Time     `json:"reset,omitempty"`
	Reason     string        `json:"reason,omitempty"`
	RetryAfter time.Duration `json:"retryAfter,omitempty"`
	// Throttled counts 429 answers this sink received.
	Throttled int64     `json:"throttled"`
	Updated   time.Time `json:"updated,omitempty"`
}

// credentials are what requests authenticate with. SetCredentials swaps them as one value,
// so a request reads the token and the org key of one pair. prevToken and prevOrgKey are the
// values last replaced, kept only so that error text echoing them is still scrubbed.
type credentials struct {
	token, orgKey         string
	prevToken, prevOrgKey string
}

// scrub replaces every secret the credentials know, current and previous, in s.
func (cr *credentials) scrub(s string) string {
	return httpx.Redact(s, cr.token, cr.orgKey, cr.prevToken, cr.prevOrgKey)
}

// client is the HTTP layer: authentication, pacing, Retry-After, retries, metrics.
type client struct {
	base      *url.URL
	adminBase *url.URL
	email     string
	creds     atomic.Pointer[credentials]
	credsMu   sync.Mutex // serialises setCredentials, so no replaced value is lost
	userAgent string
	clock     Clock
	metrics   *metrics.Metrics
	log       zerolog.Logger
	timeout   time.Duration

	rc     *retryablehttp.Client
	pacers [numClasses]*pacer
	sem    chan struct{}

	mu     sync.Mutex
	budget Budget
	rng    *rand.Rand
}

type callKey struct{}

// call is the state of one logical request across its attempts, carried in the context so
// the transport, CheckRetry and the response handler share it.
type call struct {
	class      class
	target     string
	endpoint   string
	idempotent bool
	attempt    int
	delay      time.Duration // wait before the next attempt
	body       []byte
	bodyRead   bool
}

func callOf(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	return c
}

func newClient(cfg configs.JiraConfig, opts Options, token, orgKey string) (*client, error) {
	base, err := parseBase(cfg.BaseURL, "sink.jira.base_url")
	if err != nil {
		return nil, err
	}
	c := &client{
		base: base, email: cfg.Email,
		userAgent: "idsync/" + nonEmpty(opts.Version, "dev"),
		clock:     opts.Clock, metrics: opts.Metrics, log: opts.Logger,
		timeout: cfg.Timeout,
		rng:     rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x6a09e667f3bcc909)),
	}
	c.creds.Store(&credentials{token: token, orgKey: orgKey})
	if c.clock == nil {
		c.clock = clock.Real{}
	}
	if c.timeout <= 0 {
		c.timeout = 60 * time.Second
	}
	if cfg.AdminAPI != nil && cfg.AdminAPI.BaseURL != "" {
		if c.adminBase, err = parseBase(cfg.AdminAPI.BaseURL, "sink.jira.admin_api.base_url"); err != nil {
			return nil, err
		}
	}
	rl := cfg.RateLimit
	conc := rl.Concurrency
	if conc <= 0 {
		conc = 4
	}
	c.sem = make(chan struct{}, conc)
	now := c.clock.Now()
	for i := range c.pacers {
		p := &pacer{base: rl.RequestsPerSecond, cur: rl.RequestsPerSecond, lastRaise: now}
		if rl.RequestsPerSecond > 0 {
			burst := rl.Burst
			if burst < 1 {
				burst = 1
			}
			p.lim = rate.NewLimiter(rate.Limit(rl.RequestsPerSecond), burst)
			p.baseBurst = burst
		}
		c.pacers[i] = p
	}
	hc := opts.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		// Keep one idle connection per worker: re-dialling between requests costs latency
		// and, under a rate limit, lets requests reach Jira later than they were paced.
		tr.MaxIdleConnsPerHost = conc
		hc = &http.Client{Transport: tr}
	}
	inner := hc.Transport
	if inner == nil {
		inner = http.DefaultTransport
	}
	gated := *hc
	// The client-wide Timeout would also count time spent waiting for Retry-After; each
	// attempt gets its own deadline in the gate instead.
	gated.Timeout = 0
	gated.Transport = &gate{c: c, next: inner}
	c.rc = &retryablehttp.Client{
		HTTPClient:   &gated,
		Logger:       nil,
		RetryWaitMin: 0,
		RetryWaitMax: 0,
		RetryMax:     maxRetries,
		CheckRetry:   c.checkRetry,
		// Waiting happens in the gate on the injectable clock (so a Retry-After also holds
		// back every other request of the class); retryablehttp itself must not sleep.
		Backoff:      func(_, _ time.Duration, _ int, _ *http.Response) time.Duration { return 0 },
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}
	return c, nil
}

func parseBase(raw, field string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s %q: want an absolute http(s) URL", field, raw)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%s: credentials in the URL are not allowed", field)
	}
	return u, nil
}

func nonEmpty(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

// checkRetry decides whether an attempt is retried, and records how long to wait first.
// 429 was not processed, so any request may be re-sent after its wait; 503 likewise. Other
// transient failures (5xx, resets, truncated bodies, the users/search 409 timeout) are retried
// only for idempotent requests: a create whose outcome is unknown is checked by the caller
// before it is sent again.
func (c *client) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	cs := callOf(ctx)
	if cs == nil {
		return false, nil
	}
	if cs.attempt > maxRetries {
		return false, nil
	}
	if err != nil {
		if !cs.idempotent {
			return false, nil
		}
		cs.delay = c.jitter(backoff(cs.attempt, faultBackoffBase), 0.7, 1.3)
		return true, nil
	}
	switch s := resp.StatusCode; {
	case s == http.StatusTooManyRequests:
		return true, nil // the gate has set the class window already
	case s == http.StatusServiceUnavailable:
		if d, named := c.retryWait(resp, cs.attempt, c.clock.Now()); !named {
			cs.delay = d
		}
		return true, nil
	case s >= 500 || s == http.StatusConflict && cs.endpoint == epUsersSearch:
		if !cs.idempotent {
			return false, nil
		}
		cs.delay, _ = c.retryWait(resp, cs.attempt, c.clock.Now())
		return true, nil
	}
	return false, nil
}

// request is one API call.
type request struct {
	method     string
	target     string // TargetJira | TargetJSM | TargetAdmin
	endpoint   string // path template for metrics and errors
	path       string // escaped path
	query      url.Values
	body       any
	class      class
	idempotent bool
	// experimental sends X-ExperimentalApi: opt-in.
	experimental bool
	// ok lists the success statuses; empty means any 2xx.
	ok []int
}

// do sends r and returns the status and body of a success, or an error: an *APIError for a
// non-success answer, an error wrapping ErrTransient for a transport failure.
func (c *client) do(ctx context.Context, r request) (int, []byte, error) {
	base := c.base
	if r.target == TargetAdmin {
		if c.adminBase == nil {
			return 0, nil, fmt.Errorf("%s %s: %w (needs sink.jira.admin_api)", r.method, r.endpoint, ErrUnsupported)
		}
		base = c.adminBase
	}
	u := *base
	u.Path = strings.TrimRight(base.Path, "/") + r.path
	u.RawPath = ""
	if enc := strings.TrimRight(base.EscapedPath(), "/") + r.path; enc != u.Path {
		u.RawPath = enc
	}
	if len(r.query) > 0 {
		u.RawQuery = r.query.Encode()
	}
	var body any
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return 0, nil, fmt.Errorf("%s %s: encoding body: %w", r.method, r.endpoint, err)
		}
		body = b
	}
	cs := &call{class: r.class, target: r.target, endpoint: r.endpoint,
		idempotent: r.idempotent || r.method == http.MethodGet || r.method == http.MethodDelete || r.method == http.MethodPut}
	ctx = context.WithValue(ctx, callKey{}, cs)
	req, err := retryablehttp.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: building request: %w", r.method, r.endpoint, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.experimental {
		req.Header.Set("X-ExperimentalApi", "opt-in")
	}
	// One load: the request, and its retries, authenticate with one pair even while
	// SetCredentials swaps it.
	cr := c.creds.Load()
	if r.target == TargetAdmin {
		req.Header.Set("Authorization", "Bearer "+cr.orgKey)
	} else {
		req.SetBasicAuth(c.email, cr.token)
	}
	req.SetResponseHandler(func(resp *http.Response) error {
		b, err := readBody(resp)
		if err != nil {
			return fmt.Errorf("reading response body: %w", err)
		}
		cs.body, cs.bodyRead = b, true
		return nil
	})
	resp, err := c.rc.Do(req)
	if err != nil {
		if resp != nil {
			_ = resp.Body.Close()
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return 0, nil, fmt.Errorf("%s %s: %w", r.method, r.endpoint, ctxErr)
		}
		// The transport error may carry the URL, which holds ids but never credentials.
		return 0, nil, fmt.Errorf("%s %s: %w: %w", r.method, r.endpoint, ErrTransient, err)
	}
	defer resp.Body.Close()
	b := cs.body
	if !cs.bodyRead {
		if b, err = readBody(resp); err != nil {
			return 0, nil, fmt.Errorf("%s %s: %w: reading response body: %w", r.method, r.endpoint, ErrTransient, err)
		}
	}
	if success(resp.StatusCode, r.ok) {
		return resp.StatusCode, b, nil
	}
	// Scrubbed before parsing, so that a message cut to length keeps no part of a secret,
	// and after, for a secret the server wrote with JSON escapes.
	e := parseError(r.method, r.endpoint, resp.StatusCode, []byte(c.scrub(string(b), cr)))
	e.RetryAfter = resp.Header.Get("Retry-After")
	for i, m := range e.Messages {
		e.Messages[i] = c.scrub(m, cr)
	}
	return resp.StatusCode, nil, e
}

// scrub keeps out of s the credentials a request used and those in force now (each with the
// values they replaced), in case a server echoes them.
func (c *client) scrub(s string, used *credentials) string {
	s = used.scrub(s)
	if cur := c.creds.Load(); cur != used {
		s = cur.scrub(s)
	}
	return s
}

// setCredentials installs token and orgKey for the requests sent from now on. An unchanged
// value keeps the previous one it replaced earlier.
func (c *client) setCredentials(token, orgKey string) {
	c.credsMu.Lock()
	defer c.credsMu.Unlock()
	old := c.creds.Load()
	next := *old
	if token != old.token {
		next.token, next.prevToken = token, old.token
	}
	if orgKey != old.orgKey {
		next.orgKey, next.prevOrgKey = orgKey, old.orgKey
	}
	if next != *old {
		c.creds.Store(&next)
	}
}

func success(status int, ok []int) bool {
	if len(ok) == 0 {
		return status >= 200 && status < 300
	}
	for _, s := range ok {
		if s == status {
			return true
		}
	}
	return false
}

// readBody reads an answer of at most maxBody bytes (httpx.ReadBody, shared with the sources).
func readBody(resp *http.Response) ([]byte, error) {
	return httpx.ReadBody(resp.Body, resp.ContentLength, maxBody)
}

// getJSON sends a GET and decodes the body into v.
func (c *client) getJSON(ctx context.Context, r request, v any) error {
	r.method = http.MethodGet
	_, b, err := c.do(ctx, r)
	if err != nil {
		return err
	}
	return decode(r, b, v)
}

func decode(r request, b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s %s: %w: decoding body: %v", r.method, r.endpoint, ErrBadResponse, err)
	}
	return nil
}

func (c *client) snapshotBudget() Budget {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.budget
}
