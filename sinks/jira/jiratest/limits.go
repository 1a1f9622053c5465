package jiratest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"net/http"
	"sort"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Rate-limit reasons sent in RateLimit-Reason. The site-wide bucket stands for a tenant quota,
// so a client knows to pause every endpoint rather than one.
const (
	ReasonBurst  = "jira-burst-based"
	ReasonTenant = "jira-quota-tenant-based"
)

// limiter holds the token buckets per credential and bucket name, the windows during which a
// throttled credential+bucket is refused ("If you reissue the request before the retry period
// expires, the request will fail and return the same or longer Retry-After period"), and the
// requests that were throttled, so a repeat of one of them before its window ends counts as an
// early retry.
type limiter struct {
	mu      sync.Mutex
	buckets map[string]*bucket
	repeats map[string]time.Time // request identity -> end of its Retry-After window
	early   int64
}

type bucket struct {
	lim          *rate.Limiter
	limit        Limit
	blockedUntil time.Time // virtual time
	issuedReal   time.Time // real time of the 429 that opened the window
}

type denial struct {
	retryAfter time.Duration
	limit      int
	reason     string
}

func newLimiter() *limiter {
	return &limiter{buckets: map[string]*bucket{}, repeats: map[string]time.Time{}}
}

func (l *limiter) reset() {
	l.mu.Lock()
	l.buckets = map[string]*bucket{}
	l.repeats = map[string]time.Time{}
	l.mu.Unlock()
}

type namedLimit struct {
	name   string
	limit  Limit
	reason string
}

// applicable lists the buckets a request draws from, widest first.
func applicable(k Options, method, template, key string) []namedLimit {
	var out []namedLimit
	if k.Rate.RPS > 0 {
		out = append(out, namedLimit{"site", k.Rate, ReasonTenant})
	}
	if userSearchTemplates[template] && k.UserSearchLimit.RPS > 0 {
		out = append(out, namedLimit{"user-search", k.UserSearchLimit, ReasonBurst})
	}
	el := k.EndpointLimit
	if l, ok := k.Limits[key]; ok {
		el = l
	}
	if el.RPS > 0 {
		out = append(out, namedLimit{key, el, ReasonBurst})
	}
	return out
}

func (l *limiter) get(cred string, n namedLimit, now time.Time) *bucket {
	id := cred + "|" + n.name
	b := l.buckets[id]
	if b == nil || b.limit != n.limit {
		burst := n.limit.Burst
		if burst < 1 {
			burst = 1
		}
		b = &bucket{lim: rate.NewLimiter(rate.Limit(n.limit.RPS), burst), limit: n.limit}
		// Start full, as a fresh bucket does.
		b.lim.AllowN(now, 0)
		l.buckets[id] = b
	}
	return b
}

// check takes a token from every bucket the request draws from, or returns why not.
func (l *limiter) check(k Options, cred, method, template, key, identity string, now, realNow time.Time) *denial {
	names := applicable(k, method, template, key)
	if len(names) == 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, n := range names {
		b := l.get(cred, n, now)
		if now.Before(b.blockedUntil) {
			repeat := now.Before(l.repeats[identity])
			if repeat || realNow.Sub(b.issuedReal) >= k.EarlyGrace {
				// An early retry: answer with the same or a longer window, as Jira does.
				l.early++
				if until := now.Add(k.RetryAfter); until.After(b.blockedUntil) {
					b.blockedUntil = until
				}
			}
			l.repeats[identity] = b.blockedUntil
			return &denial{retryAfter: b.blockedUntil.Sub(now), limit: limitHeader(n.limit), reason: n.reason}
		}
	}
	var taken []*rate.Reservation
	for _, n := range names {
		b := l.get(cred, n, now)
		r := b.lim.ReserveN(now, 1)
		if !r.OK() || r.DelayFrom(now) > 0 {
			r.CancelAt(now)
			for _, t := range taken {
				t.CancelAt(now)
			}
			b.blockedUntil = now.Add(k.RetryAfter)
			b.issuedReal = realNow
			l.repeats[identity] = b.blockedUntil
			l.prune(now)
			return &denial{retryAfter: k.RetryAfter, limit: limitHeader(n.limit), reason: n.reason}
		}
		taken = append(taken, r)
	}
	return nil
}

// headers adds the budget headers of the tightest bucket to a served response.
func (l *limiter) headers(h http.Header, k Options, cred, method, template, key string, now time.Time) {
	names := applicable(k, method, template, key)
	if len(names) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	best, bestRem := namedLimit{}, math.MaxInt
	for _, n := range names {
		rem := int(l.get(cred, n, now).lim.TokensAt(now))
		if rem < bestRem {
			best, bestRem = n, rem
		}
	}
	if bestRem < 0 {
		bestRem = 0
	}
	lim := limitHeader(best.limit)
	h.Set("X-RateLimit-Limit", fmt.Sprint(lim))
	h.Set("X-RateLimit-Remaining", fmt.Sprint(bestRem))
	if float64(bestRem) < 0.2*float64(max(lim, best.limit.Burst)) {
		h.Set("X-RateLimit-NearLimit", "true")
	}
}

func limitHeader(l Limit) int {
	return max(1, int(math.Round(l.RPS)))
}

func (l *limiter) prune(now time.Time) {
	if len(l.repeats) < 4096 {
		return
	}
	for id, until := range l.repeats {
		if !now.Before(until) {
			delete(l.repeats, id)
		}
	}
}

func (l *limiter) earlyRetries() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.early
}

// requestIdentity names a request so that its repeat can be recognised.
func requestIdentity(cred string, r *http.Request, body []byte) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n", cred, r.Method, r.URL.RequestURI())
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// --- counters ------------------------------------------------------------------------------

// Call is one (endpoint, method, status) counter key. Status 0 is a connection reset before
// any answer.
type Call struct {
	Method   string
	Endpoint string
	Status   int
}

type counters struct {
	mu        sync.Mutex
	calls     map[Call]int64
	reads     int64
	writes    int64
	throttled int64
	started   int64
}

func newCounters() *counters { return &counters{calls: map[Call]int64{}} }

// start counts a request as it arrives, before anything reads the knobs for it.
func (c *counters) start() {
	c.mu.Lock()
	c.started++
	c.mu.Unlock()
}

func (c *counters) count(method, template string, status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[Call{Method: method, Endpoint: template, Status: status}]++
	switch {
	case status == http.StatusTooManyRequests:
		c.throttled++
	case method == http.MethodGet || method == http.MethodHead:
		c.reads++
	default:
		c.writes++
	}
}

// Calls returns a copy of every counter.
func (s *Sim) Calls() map[Call]int64 {
	s.ctr.mu.Lock()
	defer s.ctr.mu.Unlock()
	out := make(map[Call]int64, len(s.ctr.calls))
	for k, v := range s.ctr.calls {
		out[k] = v
	}
	return out
}

// CallCount sums the calls of one method and endpoint template, any status.
func (s *Sim) CallCount(method, endpoint string) int64 {
	s.ctr.mu.Lock()
	defer s.ctr.mu.Unlock()
	var n int64
	for k, v := range s.ctr.calls {
		if k.Method == method && k.Endpoint == endpoint {
			n += v
		}
	}
	return n
}

// CallList renders the counters sorted, for logs and failure messages.
func (s *Sim) CallList() []string {
	calls := s.Calls()
	out := make([]string, 0, len(calls))
	for k, v := range calls {
		out = append(out, fmt.Sprintf("%s %s %d: %d", k.Method, k.Endpoint, k.Status, v))
	}
	sort.Strings(out)
	return out
}

// Reads counts GET requests served, 429s excluded.
func (s *Sim) Reads() int64 {
	s.ctr.mu.Lock()
	defer s.ctr.mu.Unlock()
	return s.ctr.reads
}

// Writes counts non-GET requests served, 429s excluded.
func (s *Sim) Writes() int64 {
	s.ctr.mu.Lock()
	defer s.ctr.mu.Unlock()
	return s.ctr.writes
}

// Throttled counts 429 answers.
func (s *Sim) Throttled() int64 {
	s.ctr.mu.Lock()
	defer s.ctr.mu.Unlock()
	return s.ctr.throttled
}

// Started counts the requests the simulator has begun to serve, answered yet or not. A
// request counts on arrival, before its knobs (latency, limits, faults) are read: once Started
// has grown past its value read after a Set* call, a request served with the new knobs is
// under way.
func (s *Sim) Started() int64 {
	s.ctr.mu.Lock()
	defer s.ctr.mu.Unlock()
	return s.ctr.started
}

// EarlyRetries counts requests that arrived while their credential and bucket were inside a
// Retry-After window they had been given (see Options.EarlyGrace).
func (s *Sim) EarlyRetries() int64 { return s.lim.earlyRetries() }

// Reset zeroes the counters and the rate-limit state (buckets start full again).
func (s *Sim) Reset() {
	s.ctr.mu.Lock()
	s.ctr.calls = map[Call]int64{}
	s.ctr.reads, s.ctr.writes, s.ctr.throttled, s.ctr.started = 0, 0, 0, 0
	s.ctr.mu.Unlock()
	s.lim.mu.Lock()
	s.lim.buckets = map[string]*bucket{}
	s.lim.repeats = map[string]time.Time{}
	s.lim.early = 0
	s.lim.mu.Unlock()
}
