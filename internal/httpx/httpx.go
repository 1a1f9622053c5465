// Package httpx holds the outbound HTTP plumbing the pull sources share: a transport that
// paces and counts every attempt, go-retryablehttp policies that honour Retry-After, and a
// bounded body reader.
package httpx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"golang.org/x/time/rate"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/metrics"
)

// Transport applies a token bucket to every attempt (retries included) and counts each one
// in idsync_api_requests_total and idsync_ratelimit_wait_seconds_total.
type Transport struct {
	Next    http.RoundTripper // http.DefaultTransport when nil
	Limiter *rate.Limiter     // nil: no pacing
	Metrics *metrics.Metrics
	Target  string
	// Endpoint turns a path into a bounded metric label (the path itself when nil).
	Endpoint func(path string) string
}

// RoundTrip waits for the limiter, sends, and counts.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.Limiter != nil {
		start := time.Now()
		if err := t.Limiter.Wait(req.Context()); err != nil {
			return nil, fmt.Errorf("waiting for the rate limiter: %w", err)
		}
		t.Metrics.RateLimitWaited(t.Target, time.Since(start))
	}
	next := t.Next
	if next == nil {
		next = http.DefaultTransport
	}
	start := time.Now()
	resp, err := next.RoundTrip(req)
	code := 0
	if resp != nil {
		code = resp.StatusCode
	}
	label := req.URL.Path
	if t.Endpoint != nil {
		label = t.Endpoint(label)
	}
	t.Metrics.APIRequest(t.Target, label, req.Method, code, time.Since(start))
	return resp, err
}

// CheckRetry retries what go-retryablehttp deems transient (connection errors, 429, 5xx but
// 501), and never an error matching one of stop (an oversized answer, say).
func CheckRetry(stop ...error) retryablehttp.CheckRetry {
	return func(ctx context.Context, resp *http.Response, err error) (bool, error) {
		for _, s := range stop {
			if errors.Is(err, s) {
				return false, err
			}
		}
		return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
	}
}

// Backoff honours Retry-After on 429 and 503 (capped at maxRetryAfter, and counted as a
// rate-limit wait of target) and otherwise waits exponentially with jitter, so parallel
// readers do not retry in step.
func Backoff(target string, m *metrics.Metrics, maxRetryAfter time.Duration) retryablehttp.Backoff {
	return func(lo, hi time.Duration, attempt int, resp *http.Response) time.Duration {
		if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
			if d, ok := RetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
				d = min(d, maxRetryAfter)
				m.RateLimitWaited(target, d)
				return d
			}
		}
		d := retryablehttp.DefaultBackoff(lo, hi, attempt, nil)
		if d > 0 {
			d = d/2 + rand.N(d/2+1)
		}
		return d
	}
}

// RetryAfter reads a Retry-After value: delta-seconds or an HTTP date.
func RetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// ErrTooLarge is returned by ReadBody for an answer over its limit.
var ErrTooLarge = errors.New("answer too large")

// ReadBody reads at most limit bytes, sized from the Content-Length hint, and fails with
// ErrTooLarge beyond that.
func ReadBody(r io.Reader, length, limit int64) ([]byte, error) {
	buf := bytes.NewBuffer(make([]byte, 0, min(max(length, 0), limit)+bytes.MinRead+1))
	if _, err := buf.ReadFrom(io.LimitReader(r, limit+1)); err != nil {
		return nil, err
	}
	if int64(buf.Len()) > limit {
		return nil, fmt.Errorf("%w (over %d bytes)", ErrTooLarge, limit)
	}
	return buf.Bytes(), nil
}

// Retry is a pull source's retry policy; zero fields take the defaults.
type Retry struct {
	Max           int           // retries after the first attempt (default 4)
	WaitMin       time.Duration // exponential backoff bounds (default 500ms and 30s)
	WaitMax       time.Duration
	MaxRetryAfter time.Duration // the longest wait one Retry-After may impose (default 2m)
}

// Default retry policy.
const (
	DefaultRetryMax      = 4
	DefaultWaitMin       = 500 * time.Millisecond
	DefaultWaitMax       = 30 * time.Second
	DefaultMaxRetryAfter = 2 * time.Minute
)

// WithDefaults fills the zero fields.
func (r Retry) WithDefaults() Retry {
	if r.Max <= 0 {
		r.Max = DefaultRetryMax
	}
	if r.WaitMin <= 0 {
		r.WaitMin = DefaultWaitMin
	}
	if r.WaitMax <= 0 {
		r.WaitMax = DefaultWaitMax
	}
	if r.MaxRetryAfter <= 0 {
		r.MaxRetryAfter = DefaultMaxRetryAfter
	}
	return r
}

// Limiter is the token bucket of a rate_limit block (nil when requests_per_second is 0); a
// missing burst allows one second's worth of requests.
func Limiter(rl configs.RateLimit) *rate.Limiter {
	if rl.RequestsPerSecond <= 0 {
		return nil
	}
	burst := rl.Burst
	if burst <= 0 {
		burst = max(1, int(rl.RequestsPerSecond))
	}
	return rate.NewLimiter(rate.Limit(rl.RequestsPerSecond), burst)
}

// Redact replaces every non-empty secret in s with configs.Redacted, so an API answer that
// echoes a credential can be quoted in an error or a log line.
func Redact(s string, secrets ...string) string {
	for _, v := range secrets {
		if v != "" {
			s = strings.ReplaceAll(s, v, configs.Redacted)
		}
	}
	return s
}

// CheckBaseURL checks a pull source's base_url: an absolute http(s) URL with a host. kind
// and name say which source, in the error.
func CheckBaseURL(kind, name, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s source %q: base_url %q is not an http(s) URL", kind, name, raw)
	}
	return nil
}
