package scimpull

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
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
const target = "scimpull"

// maxAnswer caps one response body.
const maxAnswer = 64 << 20

// Error is a SCIM error answer (RFC 7644 section 3.12) or any other non-2xx answer.
type Error struct {
	Endpoint   string
	HTTPStatus int
	// SCIMType is the RFC 7644 error keyword (invalidFilter, tooMany, ...), if given.
	SCIMType string
	Detail   string
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "scim %s: HTTP %d", e.Endpoint, e.HTTPStatus)
	if e.SCIMType != "" {
		fmt.Fprintf(&b, " (%s)", e.SCIMType)
	}
	if e.Detail != "" {
		fmt.Fprintf(&b, ": %s", e.Detail)
	}
	if e.HTTPStatus == http.StatusUnauthorized || e.HTTPStatus == http.StatusForbidden {
		b.WriteString("; check the source's bearer token")
	}
	return b.String()
}

// scimError is the wire form; status is a string in the RFC but some servers send a number.
type scimError struct {
	Status   json.RawMessage `json:"status"`
	SCIMType string          `json:"scimType"`
	Detail   string          `json:"detail"`
	Message  string          `json:"message"` // non-SCIM gateways
}

// bearer is the token requests carry and the one it last replaced, kept only so that text
// echoing it is still scrubbed. SetToken swaps them as one value.
type bearer struct{ cur, prev string }

type client struct {
	base    string
	tokens  atomic.Pointer[bearer]
	tokMu   sync.Mutex // serialises setToken, so no replaced token is lost
	http    *retryablehttp.Client
	std     *http.Client
	log     zerolog.Logger
	metrics *metrics.Metrics
	backoff retryablehttp.Backoff // honours Retry-After, else exponential with jitter
}

type clientOptions struct {
	base          string
	token         string
	httpClient    *http.Client
	timeout       time.Duration
	limiter       *rate.Limiter
	metrics       *metrics.Metrics
	log           zerolog.Logger
	retryMax      int
	retryWaitMin  time.Duration
	retryWaitMax  time.Duration
	maxRetryAfter time.Duration
}

func newClient(o clientOptions) *client {
	hc := *o.httpClient // a copy: wrapping the transport leaves the caller's client alone
	next := hc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	hc.Transport = &httpx.Transport{Next: next, Limiter: o.limiter, Metrics: o.metrics, Target: target, Endpoint: endpointLabel}
	if o.timeout > 0 {
		hc.Timeout = o.timeout
	}
	c := &client{
		base:    strings.TrimRight(o.base, "/"),
		std:     &hc,
		log:     o.log,
		metrics: o.metrics,
		backoff: httpx.Backoff(target, o.metrics, o.maxRetryAfter),
	}
	c.tokens.Store(&bearer{cur: o.token})
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
				c.log.Debug().Str("endpoint", r.URL.Path).Int("attempt", attempt+1).Msg("retrying SCIM request")
			}
		},
	}
	return c
}

// endpointLabel keeps metric cardinality bounded: /Groups/{id} counts as /Groups/{id}.
func endpointLabel(path string) string {
	for _, res := range []string{"/Users", "/Groups"} {
		if i := strings.LastIndex(path, res); i >= 0 {
			if rest := path[i+len(res):]; rest == "" {
				return res
			}
			return res + "/{id}"
		}
	}
	return path
}

// get fetches base+path?query and decodes a 2xx answer into out.
func (c *client) get(ctx context.Context, path, query string, out any) error {
	u := c.base + path
	if query != "" {
		u += "?" + query
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Accept", "application/scim+json, application/json")
	// One load: the request and its retries carry one token even while SetToken swaps it.
	tok := c.tokens.Load()
	req.Header.Set("Authorization", "Bearer "+tok.cur)
	var body []byte
	read := false
	// Reading inside the handler makes a body cut mid-way a retryable failure.
	req.SetResponseHandler(func(resp *http.Response) error {
		b, err := httpx.ReadBody(resp.Body, resp.ContentLength, maxAnswer)
		if err != nil {
			return err
		}
		body, read = b, true
		return nil
	})
	resp, err := c.http.Do(req)
	if resp != nil {
		defer func() { _ = resp.Body.Close() }()
	}
	if err != nil {
		return fmt.Errorf("calling scim %s: %w", path, err)
	}
	if !read {
		if body, err = httpx.ReadBody(resp.Body, resp.ContentLength, maxAnswer); err != nil {
			return fmt.Errorf("reading scim %s answer: %w", path, err)
		}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return c.errorFrom(path, resp.StatusCode, body, tok)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decoding scim %s answer (Content-Type %q): %w", path, resp.Header.Get("Content-Type"), err)
	}
	return nil
}

// errorFrom builds the error of a non-2xx answer to a request that carried used.
func (c *client) errorFrom(path string, code int, body []byte, used *bearer) *Error {
	e := &Error{Endpoint: path, HTTPStatus: code}
	var se scimError
	if json.Unmarshal(body, &se) == nil {
		e.SCIMType, e.Detail = se.SCIMType, se.Detail
		if e.Detail == "" {
			e.Detail = se.Message
		}
		e.Detail = c.scrub(e.Detail, used)
	} else {
		// Scrubbed before the cut, so that a token across it leaves no part behind.
		b := c.scrub(strings.TrimSpace(string(body)), used)
		if len(b) > 200 {
			b = b[:200] + "..."
		}
		e.Detail = b
	}
	return e
}

// scrub keeps out of errors the tokens a request used and those in force now, each with the
// one it replaced, and bounds their length.
func (c *client) scrub(s string, used *bearer) string {
	cur := c.tokens.Load()
	s = httpx.Redact(s, used.cur, used.prev, cur.cur, cur.prev)
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// setToken makes the requests sent from now on carry token.
func (c *client) setToken(token string) {
	c.tokMu.Lock()
	defer c.tokMu.Unlock()
	if old := c.tokens.Load(); token != old.cur {
		c.tokens.Store(&bearer{cur: token, prev: old.cur})
	}
}
