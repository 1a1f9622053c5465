package google

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/idsync/idsync/internal/httpx"
	"github.com/idsync/idsync/internal/metrics"
)

// target labels this source's outbound requests in idsync_api_requests_total.
const target = "google"

// maxAnswer caps one response body. A users.list page of 500 users is about 1 MiB.
const maxAnswer = 64 << 20

// directoryPrefix is where every Directory API path starts, under the base URL.
const directoryPrefix = "/admin/directory/v1/"

// transport sits under the official client (and under the JWT token exchange): it paces and
// counts every attempt (httpx.Transport), bounds the requests in flight, retries what is
// transient (connection errors, 5xx, 429, 403 rateLimitExceeded/userRateLimitExceeded, a
// body cut mid-way) with httpx's backoff that honours Retry-After, and reads every answer
// whole before the client sees it. A request whose context carries a *capture gets the raw
// body of the answer the client decodes: the source reads the fields the client's structs
// cannot tell apart from absent (see status.go).
type transport struct {
	rc       *retryablehttp.Client
	std      *http.Client
	metrics  *metrics.Metrics
	inflight chan struct{}
	log      zerolog.Logger
}

type transportOptions struct {
	next          http.RoundTripper
	limiter       *rate.Limiter
	metrics       *metrics.Metrics
	log           zerolog.Logger
	timeout       time.Duration
	concurrency   int
	retryMax      int
	retryWaitMin  time.Duration
	retryWaitMax  time.Duration
	maxRetryAfter time.Duration
}

func newTransport(o transportOptions) *transport {
	std := &http.Client{
		Transport: &httpx.Transport{Next: o.next, Limiter: o.limiter, Metrics: o.metrics, Target: target, Endpoint: endpointLabel},
		Timeout:   o.timeout,
	}
	t := &transport{std: std, metrics: o.metrics, inflight: make(chan struct{}, max(o.concurrency, 1)), log: o.log}
	t.rc = &retryablehttp.Client{
		HTTPClient:   std,
		RetryWaitMin: o.retryWaitMin,
		RetryWaitMax: o.retryWaitMax,
		RetryMax:     o.retryMax,
		CheckRetry:   t.checkRetry,
		Backoff:      t.backoff(httpx.Backoff(target, o.metrics, o.maxRetryAfter)),
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
		RequestLogHook: func(_ retryablehttp.Logger, r *http.Request, attempt int) {
			if attempt > 0 {
				t.log.Debug().Str("endpoint", endpointLabel(r.URL.Path)).Int("attempt", attempt+1).Msg("retrying Google request")
			}
		},
	}
	return t
}

// capture receives the raw body of the answer the client decodes.
type capture struct {
	body []byte
}

type captureKey struct{}

func withCapture(ctx context.Context, c *capture) context.Context {
	return context.WithValue(ctx, captureKey{}, c)
}

// RoundTrip sends req with retries and hands back the final answer, read whole.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	rreq, err := retryablehttp.FromRequest(req)
	if err != nil {
		return nil, err
	}
	var body []byte
	read := false
	// Reading inside the handler makes a body cut mid-way a retryable failure.
	rreq.SetResponseHandler(func(resp *http.Response) error {
		b, err := httpx.ReadBody(resp.Body, resp.ContentLength, maxAnswer)
		if err != nil {
			return err
		}
		body, read = b, true
		return nil
	})
	select {
	case t.inflight <- struct{}{}:
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
	resp, err := t.rc.Do(rreq)
	<-t.inflight
	if err != nil {
		if resp != nil {
			_ = resp.Body.Close()
		}
		return nil, err
	}
	if !read {
		// retries ran out on a retryable status: the handler never ran
		body, err = httpx.ReadBody(resp.Body, resp.ContentLength, maxAnswer)
		_ = resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("reading the answer: %w", err)
		}
	} else {
		_ = resp.Body.Close()
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	if c, ok := req.Context().Value(captureKey{}).(*capture); ok {
		c.body = body
	}
	return resp, nil
}

// checkRetry retries what go-retryablehttp deems transient and the Admin SDK's throttling
// answers: 403 with reason rateLimitExceeded or userRateLimitExceeded (the Directory API's
// usual way of saying "slow down") besides 429. An oversized answer is never retried.
func (t *transport) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if errors.Is(err, httpx.ErrTooLarge) {
		return false, err
	}
	if err == nil && resp != nil && resp.StatusCode == http.StatusForbidden {
		b, rerr := httpx.ReadBody(resp.Body, resp.ContentLength, maxAnswer)
		_ = resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(b))
		if rerr != nil {
			return ctx.Err() == nil, nil // cut mid-way: try again
		}
		if RateLimited(http.StatusForbidden, b) {
			if t.metrics != nil {
				t.metrics.Throttled.WithLabelValues(target).Inc()
			}
			return ctx.Err() == nil, nil
		}
		return false, nil
	}
	return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
}

// backoff wraps httpx's: a throttling answer without Retry-After (403 rate limits, a bare
// 429) waits exponentially, and the wait counts as a rate-limit wait like Retry-After's.
func (t *transport) backoff(base retryablehttp.Backoff) retryablehttp.Backoff {
	return func(lo, hi time.Duration, attempt int, resp *http.Response) time.Duration {
		if resp == nil {
			return base(lo, hi, attempt, nil)
		}
		_, hasRA := httpx.RetryAfter(resp.Header.Get("Retry-After"), time.Now())
		throttled := resp.StatusCode == http.StatusForbidden || (resp.StatusCode == http.StatusTooManyRequests && !hasRA)
		if !throttled {
			return base(lo, hi, attempt, resp)
		}
		d := base(lo, hi, attempt, nil)
		t.metrics.RateLimitWaited(target, d)
		return d
	}
}

// googleError is the Admin SDK's error body.
type googleError struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
		Errors  []struct {
			Domain string `json:"domain"`
			Reason string `json:"reason"`
		} `json:"errors"`
		Details []struct {
			Reason string `json:"reason"`
		} `json:"details"`
	} `json:"error"`
}

// RateLimited reports whether an answer is the Admin SDK asking the client to slow down:
// 429, or 403 whose error reason is rateLimitExceeded or userRateLimitExceeded (or whose
// status is RESOURCE_EXHAUSTED / detail reason RATE_LIMIT_EXCEEDED, the newer wording).
// Other 403s (no delegation, no privilege, daily quota spent) are not.
func RateLimited(code int, body []byte) bool {
	if code == http.StatusTooManyRequests {
		return true
	}
	if code != http.StatusForbidden {
		return false
	}
	var ge googleError
	if json.Unmarshal(body, &ge) != nil {
		return false
	}
	for _, e := range ge.Error.Errors {
		if e.Reason == "rateLimitExceeded" || e.Reason == "userRateLimitExceeded" {
			return true
		}
	}
	for _, d := range ge.Error.Details {
		if d.Reason == "RATE_LIMIT_EXCEEDED" {
			return true
		}
	}
	return ge.Error.Status == "RESOURCE_EXHAUSTED"
}

// endpointLabel keeps metric cardinality bounded: keys in paths become {userKey} and
// {groupKey}; anything outside the Directory API (the OAuth token endpoint) is "token".
func endpointLabel(path string) string {
	i := strings.Index(path, directoryPrefix)
	if i < 0 {
		return "token"
	}
	rest := strings.Split(strings.TrimSuffix(path[i+len(directoryPrefix):], "/"), "/")
	switch {
	case len(rest) == 1 && (rest[0] == "users" || rest[0] == "groups"):
		return directoryPrefix + rest[0]
	case len(rest) == 2 && rest[0] == "users":
		return directoryPrefix + "users/{userKey}"
	case len(rest) == 2 && rest[0] == "groups":
		return directoryPrefix + "groups/{groupKey}"
	case len(rest) == 3 && rest[0] == "groups" && rest[2] == "members":
		return directoryPrefix + "groups/{groupKey}/members"
	}
	return directoryPrefix + "other"
}
