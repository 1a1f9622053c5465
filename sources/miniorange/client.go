package miniorange

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/idsync/idsync/internal/httpx"
	"github.com/idsync/idsync/internal/metrics"
)

// target labels this source's outbound requests in idsync_api_requests_total.
const target = "miniorange"

// maxAnswer caps one response body. A page of 500 users is about 250 KiB; anything near this
// cap is not a miniOrange answer.
const maxAnswer = 64 << 20

var (
	// ErrAuth means miniOrange rejected the credentials even after the clock was corrected.
	ErrAuth = errors.New("miniorange: authentication failed")
)

// APIError is an error answer from miniOrange: an HTTP error status, or a body whose status
// is not SUCCESS. Message is the server's text, truncated, with the API key scrubbed.
type APIError struct {
	Endpoint   string
	HTTPStatus int
	// Status is the body's status field (ERROR, FAILED, ...), empty when the body had none.
	Status  string
	Message string
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "miniorange %s: HTTP %d", e.Endpoint, e.HTTPStatus)
	if e.Status != "" {
		fmt.Fprintf(&b, ", status %s", e.Status)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	return b.String()
}

// statusBody is the envelope every miniOrange answer carries.
type statusBody struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

// authFailureText matches the messages miniOrange uses for rejected credentials or a stale
// timestamp when it answers them with HTTP 200.
var authFailureText = regexp.MustCompile(`(?i)authenticat|unauthori[sz]ed|timestamp|signature|invalid (customer|api)[ -]?key|authorization hash`)

// signer holds the credentials and the server clock offset learned from get-timestamp.
type signer struct {
	customerKey string
	keys        atomic.Pointer[apiKeys]
	keysMu      sync.Mutex // serialises setAPIKey, so no replaced key is lost
	sendAPIKey  bool
	now         func() time.Time
	offsetMS    atomic.Int64  // server clock minus local clock
	generation  atomic.Uint64 // bumped at every clock correction
	syncMu      sync.Mutex
}

// apiKeys is the API key requests are signed with and the one it last replaced, kept only
// so that text echoing it is still scrubbed. SetAPIKey swaps them as one value.
type apiKeys struct{ cur, prev string }

func newSigner(customerKey, apiKey string, sendAPIKey bool, now func() time.Time) *signer {
	s := &signer{customerKey: customerKey, sendAPIKey: sendAPIKey, now: now}
	s.keys.Store(&apiKeys{cur: apiKey})
	return s
}

// sign sets the auth headers; it returns the clock generation the signature used. The
// Authorization hash and the Api-Key header come from one load of the key.
func (s *signer) sign(h http.Header) uint64 {
	gen := s.generation.Load()
	key := s.keys.Load().cur
	ts := strconv.FormatInt(s.now().UnixMilli()+s.offsetMS.Load(), 10)
	h.Set("Customer-Key", s.customerKey)
	h.Set("Timestamp", ts)
	h.Set("Authorization", Signature(s.customerKey, ts, key))
	if s.sendAPIKey {
		h.Set("Api-Key", key)
	}
	return gen
}

// setAPIKey signs the requests sent from now on with key; the clock offset stays.
func (s *signer) setAPIKey(key string) {
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	if old := s.keys.Load(); key != old.cur {
		s.keys.Store(&apiKeys{cur: key, prev: old.cur})
	}
}

// Signature is miniOrange's Authorization value: the lowercase hex SHA-512 of
// customerKey + timestamp (epoch milliseconds) + apiKey.
func Signature(customerKey, timestamp, apiKey string) string {
	sum := sha512.Sum512([]byte(customerKey + timestamp + apiKey))
	return hex.EncodeToString(sum[:])
}

// client calls the miniOrange admin API: signed POSTs, retries for transient failures,
// a token bucket, metrics, and one clock correction after an auth failure.
type client struct {
	base          string
	timestampPath string
	signer        *signer
	http          *retryablehttp.Client
	std           *http.Client
	log           zerolog.Logger
	metrics       *metrics.Metrics
	backoff       retryablehttp.Backoff // honours Retry-After, else exponential with jitter
	// inflight holds a token per request on the wire. Decoding happens after the token is
	// returned, so CPU work overlaps other requests' latency instead of adding to it.
	inflight chan struct{}
}

// clientOptions are the knobs New derives from config and Options.
type clientOptions struct {
	base          string
	timestampPath string
	customerKey   string
	apiKey        string
	sendAPIKey    bool
	now           func() time.Time
	httpClient    *http.Client
	timeout       time.Duration
	limiter       *rate.Limiter
	metrics       *metrics.Metrics
	log           zerolog.Logger
	retryMax      int
	retryWaitMin  time.Duration
	retryWaitMax  time.Duration
	maxRetryAfter time.Duration
	concurrency   int
}

func newClient(o clientOptions) *client {
	hc := *o.httpClient // a copy, so wrapping the transport leaves the caller's client alone
	next := hc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	hc.Transport = &httpx.Transport{Next: next, Limiter: o.limiter, Metrics: o.metrics, Target: target}
	if o.timeout > 0 {
		hc.Timeout = o.timeout
	}
	c := &client{
		base:          strings.TrimRight(o.base, "/"),
		timestampPath: o.timestampPath,
		signer:        newSigner(o.customerKey, o.apiKey, o.sendAPIKey, o.now),
		std:           &hc,
		log:           o.log,
		metrics:       o.metrics,
		backoff:       httpx.Backoff(target, o.metrics, o.maxRetryAfter),
		inflight:      make(chan struct{}, max(o.concurrency, 1)),
	}
	c.http = &retryablehttp.Client{
		HTTPClient:   &hc,
		RetryWaitMin: o.retryWaitMin,
		RetryWaitMax: o.retryWaitMax,
		RetryMax:     o.retryMax,
		CheckRetry:   httpx.CheckRetry(httpx.ErrTooLarge),
		Backoff:      c.backoff,
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
		RequestLogHook: func(_ retryablehttp.Logger, r *http.Request, attempt int) {
			if attempt > 0 {
				c.log.Debug().Str("endpoint", r.URL.Path).Int("attempt", attempt+1).Msg("retrying miniOrange request")
			}
		},
		// Every attempt carries a fresh timestamp: a Retry-After wait must not make the
		// signature stale.
		PrepareRetry: func(r *http.Request) error {
			if r.Header.Get("Customer-Key") != "" {
				c.signer.sign(r.Header)
			}
			return nil
		},
	}
	return c
}

// answer is one raw response.
type answer struct {
	code        int
	contentType string
	body        []byte
}

// post sends one request (with retries) and returns the raw answer.
func (c *client) post(ctx context.Context, path string, payload []byte, signed bool) (answer, error) {
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodPost, c.base+path, payload)
	if err != nil {
		return answer{}, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	var body []byte
	read := false
	// Reading inside the handler lets a body cut mid-way count as a transient failure.
	req.SetResponseHandler(func(resp *http.Response) error {
		b, err := httpx.ReadBody(resp.Body, resp.ContentLength, maxAnswer)
		if err != nil {
			return err
		}
		body, read = b, true
		return nil
	})
	select {
	case c.inflight <- struct{}{}:
	case <-ctx.Done():
		return answer{}, ctx.Err()
	}
	defer func() { <-c.inflight }()
	// Signed only once a slot is held: a request that queued behind others must not carry
	// a timestamp that aged while it waited.
	if signed {
		c.signer.sign(req.Header)
	}
	resp, err := c.http.Do(req)
	if resp != nil {
		defer func() { _ = resp.Body.Close() }()
	}
	if err != nil {
		return answer{}, err
	}
	if !read {
		// retries ran out on a retryable status: the handler never ran
		if body, err = httpx.ReadBody(resp.Body, resp.ContentLength, maxAnswer); err != nil {
			return answer{}, fmt.Errorf("reading answer: %w", err)
		}
	}
	return answer{code: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), body: body}, nil
}

// resulter is an answer type: it decodes itself and carries the envelope's status.
type resulter interface {
	decode([]byte) error
	result() statusBody
}

// call POSTs body to path and decodes a SUCCESS answer into out. An auth failure triggers
// one clock correction from the timestamp endpoint and one retry. Error answers come back
// as *APIError (wrapping ErrAuth for credentials that stay rejected).
func (c *client) call(ctx context.Context, path string, body any, out resulter) error {
	payload, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encoding request for %s: %w", path, err)
	}
	for attempt := 0; ; attempt++ {
		gen := c.signer.generation.Load()
		ans, err := c.post(ctx, path, payload, true)
		if err != nil {
			return fmt.Errorf("calling miniorange %s: %w", path, err)
		}
		// Pages are large: decode a 2xx answer once, straight into out.
		var st statusBody
		var decodeErr, jsonErr error
		ok2xx := ans.code >= 200 && ans.code <= 299
		if ok2xx {
			if decodeErr = out.decode(ans.body); decodeErr == nil {
				st = out.result()
			}
		}
		if !ok2xx || decodeErr != nil {
			jsonErr = json.Unmarshal(ans.body, &st)
		}
		if isAuthFailure(ans.code, st) {
			apiErr := c.apiError(path, ans, st)
			if attempt == 0 {
				c.log.Warn().Str("endpoint", path).Int("http_status", ans.code).Str("message", apiErr.Message).
					Msg("miniOrange rejected the request; correcting the clock from the server time and retrying once")
				if err := c.syncClock(ctx, gen); err != nil {
					return fmt.Errorf("%w (%v); correcting the clock failed: %w", ErrAuth, apiErr, err)
				}
				continue
			}
			return fmt.Errorf("%w: check customer_key, the API key and the host clock: %w", ErrAuth, apiErr)
		}
		if !ok2xx {
			return c.apiError(path, ans, st)
		}
		if jsonErr != nil {
			return fmt.Errorf("miniorange %s: answer is not JSON (HTTP %d, Content-Type %q): %q",
				path, ans.code, ans.contentType, snippet(ans.body, c.signer.keys.Load()))
		}
		if !strings.EqualFold(st.Status, "SUCCESS") {
			return c.apiError(path, ans, st)
		}
		if decodeErr != nil {
			return fmt.Errorf("decoding miniorange %s answer: %w", path, decodeErr)
		}
		return nil
	}
}

func isAuthFailure(code int, st statusBody) bool {
	if code == http.StatusUnauthorized || code == http.StatusForbidden {
		return true
	}
	s := strings.ToUpper(st.Status)
	return (s == "ERROR" || s == "FAILED") && authFailureText.MatchString(st.Message)
}

func (c *client) apiError(path string, ans answer, st statusBody) *APIError {
	msg := st.Message
	if msg == "" && st.Status == "" {
		msg = snippet(ans.body, c.signer.keys.Load())
	}
	return &APIError{Endpoint: path, HTTPStatus: ans.code, Status: st.Status, Message: scrub(msg, c.signer.keys.Load())}
}

// scrub keeps the API key, current and replaced, out of anything that reaches an error or a
// log, and bounds length. keys may be nil.
func scrub(s string, keys *apiKeys) string {
	if keys != nil {
		s = httpx.Redact(s, keys.cur, keys.prev)
	}
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// snippet is the start of a body for an error, scrubbed before it is cut so that a key
// across the cut leaves no part behind.
func snippet(b []byte, keys *apiKeys) string {
	const n = 200
	if limit := n + keys.maxLen(); len(b) > limit {
		b = b[:limit]
	}
	s := scrub(string(bytes.TrimSpace(b)), keys)
	if len(s) > n {
		s = s[:n]
	}
	return s
}

func (k *apiKeys) maxLen() int {
	if k == nil {
		return 0
	}
	return max(len(k.cur), len(k.prev))
}

// syncClock asks the server for its time and stores the offset. Calls that were signed
// before another goroutine corrected the clock just retry with the new offset.
func (c *client) syncClock(ctx context.Context, gen uint64) error {
	c.signer.syncMu.Lock()
	defer c.signer.syncMu.Unlock()
	if c.signer.generation.Load() != gen {
		return nil
	}
	t0 := c.signer.now()
	ans, err := c.post(ctx, c.timestampPath, nil, false)
	t1 := c.signer.now()
	if err != nil {
		return fmt.Errorf("calling miniorange %s: %w", c.timestampPath, err)
	}
	if ans.code < 200 || ans.code > 299 {
		return fmt.Errorf("miniorange %s: HTTP %d: %q", c.timestampPath, ans.code, snippet(ans.body, c.signer.keys.Load()))
	}
	server, err := parseServerTime(ans.body)
	if err != nil {
		return fmt.Errorf("miniorange %s: %w", c.timestampPath, err)
	}
	// The server read its clock somewhere between t0 and t1; the midpoint halves the error.
	local := (t0.UnixMilli() + t1.UnixMilli()) / 2
	offset := server - local
	c.signer.offsetMS.Store(offset)
	c.signer.generation.Add(1)
	c.log.Info().Dur("offset_ms", time.Duration(offset)*time.Millisecond).Msg("miniOrange clock offset corrected")
	return nil
}

// parseServerTime reads get-timestamp's answer: epoch milliseconds as plain text (what the
// public plugins read), or a JSON number, or an object holding one.
func parseServerTime(b []byte) (int64, error) {
	s := strings.Trim(strings.TrimSpace(string(b)), `"`)
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil && ms > 0 {
		return ms, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f > 0 {
		return int64(f), nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err == nil {
		for _, k := range []string{"timestamp", "currentTimeInMillis", "serverTime", "time"} {
			if ms, err := strconv.ParseInt(strings.Trim(string(obj[k]), `"`), 10, 64); err == nil && ms > 0 {
				return ms, nil
			}
		}
	}
	return 0, fmt.Errorf("answer is not epoch milliseconds: %q", snippet(b, nil))
}
