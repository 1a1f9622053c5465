package jira

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/idsync/idsync/internal/httpx"
	"golang.org/x/time/rate"
)

// Adaptive pacing, which nothing else in idsync does: a token bucket per endpoint class that
// halves on throttling and recovers slowly, the Retry-After window no request may enter early,
// and the gate every request passes through on its way out.

type pacer struct {
	mu           sync.Mutex
	lim          *rate.Limiter // nil: unlimited
	base         float64
	cur          float64
	blockedUntil time.Time
	lastCut      time.Time
	lastRaise    time.Time
	// ceiling caps recovery after a 429 (0: none), until lastCut+ceilingTTL.
	ceiling float64
	// baseBurst is the configured burst; a 429 shrinks the bucket's burst with its rate (a
	// burst larger than the site's sends a wave of requests into every reopened window).
	baseBurst int
}

// setRate sets the limiter's rate and scales its burst with it.
func (p *pacer) setRate(now time.Time, r float64) {
	p.cur = r
	p.lim.SetLimitAt(now, rate.Limit(r))
	if p.base > 0 && p.baseBurst > 0 {
		p.lim.SetBurstAt(now, max(1, int(math.Round(float64(p.baseBurst)*math.Min(1, r/p.base)))))
	}
}

// jitter returns d scaled by a random factor in [lo, hi).
func (c *client) jitter(d time.Duration, lo, hi float64) time.Duration {
	c.mu.Lock()
	f := lo + c.rng.Float64()*(hi-lo)
	c.mu.Unlock()
	return time.Duration(float64(d) * f)
}

func backoff(attempt int, base time.Duration) time.Duration {
	d := base << max(0, attempt-1)
	if d > backoffCap || d <= 0 {
		d = backoffCap
	}
	return d
}

// retryWait is how long to wait after a 429 or 503: Retry-After (seconds) as the minimum,
// else until X-RateLimit-Reset, else the exponential backoff. The bool says whether the server
// named the wait.
func (c *client) retryWait(resp *http.Response, attempt int, now time.Time) (time.Duration, bool) {
	if d, ok := httpx.RetryAfter(resp.Header.Get("Retry-After"), now); ok {
		return c.jitter(d, 1.0, 1.3), true
	}
	if rs := resp.Header.Get("X-RateLimit-Reset"); rs != "" {
		if t, ok := parseReset(rs); ok && t.After(now) {
			return min(c.jitter(t.Sub(now), 1.0, 1.3), maxResetWait), true
		}
	}
	base := faultBackoffBase
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		base = rateBackoffBase
	}
	return c.jitter(backoff(attempt, base), 0.7, 1.3), false
}

func parseReset(v string) (time.Time, bool) {
	for _, layout := range []string{"2006-01-02T15:04Z", time.RFC3339, "2006-01-02T15:04:05Z"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// gate is the transport that paces requests: per-request backoff, the class's Retry-After
// window, its token bucket and the concurrency bound, then metrics and budget bookkeeping.
type gate struct {
	c    *client
	next http.RoundTripper
}

func (g *gate) RoundTrip(req *http.Request) (*http.Response, error) {
	c := g.c
	ctx := req.Context()
	cs := callOf(ctx)
	if cs == nil {
		return nil, errors.New("jira: request without call state")
	}
	cs.attempt++
	start := c.clock.Now()
	if cs.delay > 0 {
		if err := c.clock.Sleep(ctx, cs.delay); err != nil {
			return nil, err
		}
		cs.delay = 0
	}
	if err := c.admit(ctx, cs.class); err != nil {
		return nil, err
	}
	c.metrics.RateLimitWaited(cs.target, c.clock.Now().Sub(start))

	actx, cancel := context.WithTimeout(ctx, c.timeout)
	// Waiting for a connection can take long enough for another request's 429 to open a
	// window meanwhile; the last check runs when the connection is in hand, just before the
	// request is written.
	actx = httptrace.WithClientTrace(actx, &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) {
		_ = c.waitWindow(actx, cs.class)
	}})
	sent := c.clock.Now()
	resp, err := g.next.RoundTrip(req.WithContext(actx))
	took := c.clock.Now().Sub(sent)
	if err != nil {
		cancel()
		<-c.sem
		c.metrics.APIRequest(cs.target, cs.endpoint, req.Method, 0, took)
		return nil, err
	}
	c.metrics.APIRequest(cs.target, cs.endpoint, req.Method, resp.StatusCode, took)
	c.observe(cs, resp)
	resp.Body = &releaser{ReadCloser: resp.Body, done: func() { cancel(); <-c.sem }}
	return resp, nil
}

// waitWindow waits while the class is inside a Retry-After window.
func (c *client) waitWindow(ctx context.Context, cl class) error {
	p := c.pacers[cl]
	for {
		now := c.clock.Now()
		p.mu.Lock()
		until := p.blockedUntil
		p.mu.Unlock()
		if !now.Before(until) {
			return nil
		}
		if err := c.clock.Sleep(ctx, until.Sub(now)); err != nil {
			return err
		}
	}
}

// admit waits until the class may send: outside any Retry-After window, with a token, and
// under the concurrency bound.
func (c *client) admit(ctx context.Context, cl class) error {
	p := c.pacers[cl]
	for {
		if err := c.waitWindow(ctx, cl); err != nil {
			return err
		}
		now := c.clock.Now()
		p.mu.Lock()
		lim := p.lim
		var r *rate.Reservation
		if lim != nil {
			r = lim.ReserveN(now, 1)
		}
		p.mu.Unlock()
		if r != nil {
			if d := r.DelayFrom(now); d > 0 {
				if err := c.clock.Sleep(ctx, d); err != nil {
					r.CancelAt(c.clock.Now())
					return err
				}
			}
		}
		select {
		case c.sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		// A 429 may have opened a window while this request waited for its token.
		now = c.clock.Now()
		p.mu.Lock()
		blocked := now.Before(p.blockedUntil)
		p.mu.Unlock()
		if !blocked {
			return nil
		}
		<-c.sem
	}
}

// observe records budget headers, opens a Retry-After window on 429 (and on 503 that names
// one), halves the class's rate after a 429 and lets it recover on success.
func (c *client) observe(cs *call, resp *http.Response) {
	now := c.clock.Now()
	h := resp.Header
	c.mu.Lock()
	if v := h.Get("X-RateLimit-Limit"); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			c.budget.Limit = n
			c.budget.Updated = now
		}
	}
	if v := h.Get("X-RateLimit-Remaining"); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			c.budget.Remaining = n
			c.budget.Updated = now
		}
	}
	if v := h.Get("X-RateLimit-Reset"); v != "" {
		if t, ok := parseReset(v); ok {
			c.budget.Reset = t
		}
	}
	if h.Get("X-RateLimit-Limit") != "" || h.Get("X-RateLimit-Remaining") != "" {
		c.budget.NearLimit = strings.EqualFold(h.Get("X-RateLimit-NearLimit"), "true")
	}
	if v := h.Get("RateLimit-Reason"); v != "" {
		c.budget.Reason = v
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		c.budget.Throttled++
	}
	c.mu.Unlock()

	p := c.pacers[cs.class]
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		wait, named := c.retryWait(resp, cs.attempt, now)
		if resp.StatusCode == http.StatusServiceUnavailable && !named {
			return
		}
		c.mu.Lock()
		c.budget.RetryAfter = wait
		c.mu.Unlock()
		until := now.Add(wait)
		pacers := []*pacer{p}
		// A tenant-wide quota stops every class, not only the one that hit it.
		if r := strings.ToLower(h.Get("RateLimit-Reason")); strings.Contains(r, "tenant") || strings.Contains(r, "global") || strings.Contains(r, "quota") {
			pacers = c.pacers[:]
		}
		for _, q := range pacers {
			q.mu.Lock()
			if until.After(q.blockedUntil) {
				q.blockedUntil = until
			}
			if resp.StatusCode == http.StatusTooManyRequests && now.Sub(q.lastCut) > wait {
				if q.lim == nil {
					// Unlimited by config, but Jira says otherwise: start pacing at the
					// limit it announced (or 1/s) and grow from there.
					q.cur = 1
					if n, err := strconv.Atoi(h.Get("X-RateLimit-Limit")); err == nil && n > 0 {
						q.cur = float64(n)
					}
					q.lim = rate.NewLimiter(rate.Limit(q.cur), 1)
				} else {
					q.ceiling = q.cur * ceilingShare
					q.setRate(now, math.Max(q.cur/2, math.Min(minRate, q.base)))
				}
				q.lastCut, q.lastRaise = now, now
			}
			q.mu.Unlock()
		}
		c.log.Debug().Str("class", cs.class.String()).Str("endpoint", cs.endpoint).Int("status", resp.StatusCode).
			Dur("wait", wait).Msg("rate limited; pausing class")
	default:
		if resp.StatusCode < 400 {
			p.recover(now)
		}
	}
}

// recover raises a throttled rate additively: by a tenth of the configured rate per second
// (of the current rate when the config is unlimited, dropping the limiter once it is high),
// up to the ceiling the last 429 set while it lasts.
func (p *pacer) recover(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	top := p.base
	if p.ceiling > 0 && now.Sub(p.lastCut) < ceilingTTL {
		top = math.Min(top, math.Max(p.ceiling, math.Min(minRate, p.base)))
	}
	if p.lim == nil || (p.base > 0 && p.cur >= top) {
		return
	}
	el := now.Sub(p.lastRaise).Seconds()
	if el <= 0 {
		return
	}
	p.lastRaise = now
	if p.base > 0 {
		p.setRate(now, math.Min(top, p.cur+p.base*recoverFraction*el))
		return
	}
	p.cur += math.Max(p.cur, 1) * recoverFraction * el
	if p.cur > unlimitedAgain {
		p.lim = nil
		return
	}
	p.lim.SetLimitAt(now, rate.Limit(p.cur))
}

type releaser struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (r *releaser) Close() error {
	err := r.ReadCloser.Close()
	r.once.Do(r.done)
	return err
}
