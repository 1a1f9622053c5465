package googletest

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/time/rate"
)

// FaultKind is what an injected fault does to the answer it hits.
type FaultKind int

// Fault kinds.
const (
	// FaultStatus answers an HTTP error (Status, default 500) with Google's error body.
	FaultStatus FaultKind = iota
	// FaultReset drops the connection without an answer.
	FaultReset
	// FaultTruncate sends half the body, then closes the connection.
	FaultTruncate
	// FaultRateLimit answers 403 with reason rateLimitExceeded.
	FaultRateLimit
	// FaultUserRateLimit answers 403 with reason userRateLimitExceeded.
	FaultUserRateLimit
	// FaultTooMany answers 429 with Retry-After.
	FaultTooMany
)

// AnyPage makes a fault match every page of its listing.
const AnyPage = -1

// Fault is one injected failure of an answer.
type Fault struct {
	Kind FaultKind
	// Endpoint is EndpointUsersList, EndpointUsersGet, EndpointGroupsList or
	// EndpointMembersList.
	Endpoint string
	// Key restricts the fault to one path key: the group of a members.list (its id or
	// email) or the user of a users.get ("" = any).
	Key string
	// Page is the 0-based page index (offset / page size); AnyPage matches every page.
	Page int
	// Times is how often the fault fires; 0 means every time.
	Times  int
	Status int

	fired int
}

// AddFault injects f.
func (s *Sim) AddFault(f Fault) {
	s.kmu.Lock()
	defer s.kmu.Unlock()
	s.faults = append(s.faults, &f)
}

// ClearFaults removes every injected fault, the random error rate and the rate limit.
func (s *Sim) ClearFaults() {
	s.kmu.Lock()
	defer s.kmu.Unlock()
	s.faults, s.errorRate, s.limiter = nil, 0, nil
}

// SetErrorRate makes a seeded fraction of authorised API requests fail with status
// (default 503).
func (s *Sim) SetErrorRate(fraction float64, status int) {
	s.kmu.Lock()
	defer s.kmu.Unlock()
	s.errorRate, s.errorCode = fraction, status
}

// SetLatency delays every answer by fixed plus a uniform [0, jitter).
func (s *Sim) SetLatency(fixed, jitter time.Duration) {
	s.kmu.Lock()
	defer s.kmu.Unlock()
	s.latency, s.jitter = fixed, jitter
}

// SetPageCaps sets the most items one page returns, below the documented maximums (0 keeps
// the documented one).
func (s *Sim) SetPageCaps(users, groups, members int) {
	s.kmu.Lock()
	defer s.kmu.Unlock()
	s.caps[EndpointUsersList], s.caps[EndpointGroupsList], s.caps[EndpointMembersList] = users, groups, members
}

// Throttle is how the rate limit answers a request beyond it.
type Throttle int

// Throttle answers.
const (
	// Throttle429 answers 429 Too Many Requests with Retry-After.
	Throttle429 Throttle = iota
	// Throttle403 answers 403 with reason rateLimitExceeded (no Retry-After), as the
	// Directory API does when a per-project quota is exceeded.
	Throttle403
	// Throttle403User answers 403 with reason userRateLimitExceeded.
	Throttle403User
)

// SetRateLimit throttles API requests beyond rps per second (burst at once) with answer t.
// rps <= 0 turns the limit off. The token endpoint is never throttled.
func (s *Sim) SetRateLimit(rps float64, burst int, t Throttle) {
	s.kmu.Lock()
	defer s.kmu.Unlock()
	s.throttle = t
	if rps <= 0 {
		s.limiter = nil
		return
	}
	s.limiter = rate.NewLimiter(rate.Limit(rps), max(burst, 1))
}

// UserHook rewrites one user record (a JSON object) as users.list and users.get answer it:
// delete a field, give it a value the API does not document. Hooks may run concurrently and
// must not call the Sim.
type UserHook func(primaryEmail string, record map[string]any)

// SetUserHook makes every user record pass through fn; nil removes the hook.
func (s *Sim) SetUserHook(fn UserHook) {
	s.kmu.Lock()
	defer s.kmu.Unlock()
	s.userHook = fn
}

func (s *Sim) hook() UserHook {
	s.kmu.Lock()
	defer s.kmu.Unlock()
	return s.userHook
}

// SetGranted replaces the scopes domain-wide delegation grants the client.
func (s *Sim) SetGranted(scopes []string) {
	s.kmu.Lock()
	defer s.kmu.Unlock()
	s.granted = append([]string(nil), scopes...)
}

// RevokeTokens forgets every issued access token (the next call gets 401).
func (s *Sim) RevokeTokens() {
	s.kmu.Lock()
	defer s.kmu.Unlock()
	s.tokens = map[string]grant{}
}

// LastAssertion is the subject and scopes of the last token request.
func (s *Sim) LastAssertion() (subject string, scopes []string) {
	s.kmu.Lock()
	defer s.kmu.Unlock()
	return s.lastSubject, append([]string(nil), s.lastScopes...)
}

// Calls returns the requests served per endpoint (EndpointUsersList, ..., EndpointToken),
// throttled ones excluded.
func (s *Sim) Calls() map[string]int {
	s.kmu.Lock()
	defer s.kmu.Unlock()
	out := make(map[string]int, len(s.calls))
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

// APICalls is the sum of Calls without the token endpoint.
func (s *Sim) APICalls() int {
	s.kmu.Lock()
	defer s.kmu.Unlock()
	n := 0
	for k, v := range s.calls {
		if k != EndpointToken {
			n += v
		}
	}
	return n
}

// Throttled returns how many requests the rate limit answered (429 or 403), and how many
// injected rate-limit faults fired.
func (s *Sim) Throttled() int {
	s.kmu.Lock()
	defer s.kmu.Unlock()
	return s.throttled
}

// Injected returns how many faults (injected faults and random errors) were served.
func (s *Sim) Injected() int {
	s.kmu.Lock()
	defer s.kmu.Unlock()
	return s.injected
}

// Reset zeroes the counters.
func (s *Sim) Reset() {
	s.kmu.Lock()
	defer s.kmu.Unlock()
	s.calls, s.throttled, s.injected = map[string]int{}, 0, 0
}

// throttled429 answers a request beyond the rate limit; it reports whether it answered.
func (s *Sim) throttled429(w http.ResponseWriter, ep string) bool {
	if ep == EndpointToken {
		return false
	}
	s.kmu.Lock()
	lim, t, ra := s.limiter, s.throttle, s.retryAfter
	hit := lim != nil && !lim.Allow()
	if hit {
		s.throttled++
	}
	s.kmu.Unlock()
	if !hit {
		return false
	}
	throttleAnswer(w, t, ra)
	return true
}

func throttleAnswer(w http.ResponseWriter, t Throttle, ra time.Duration) {
	switch t {
	case Throttle403:
		writeRaw(w, http.StatusForbidden, errorBody(http.StatusForbidden, "rateLimitExceeded", "usageLimits", "Rate Limit Exceeded"))
	case Throttle403User:
		writeRaw(w, http.StatusForbidden, errorBody(http.StatusForbidden, "userRateLimitExceeded", "usageLimits", "User Rate Limit Exceeded"))
	default:
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int((ra+time.Second-1)/time.Second))))
		writeRaw(w, http.StatusTooManyRequests, errorBody(http.StatusTooManyRequests, "rateLimitExceeded", "usageLimits", "Quota exceeded"))
	}
}

// randomFault fails a seeded fraction of requests; it reports whether it answered.
func (s *Sim) randomFault(w http.ResponseWriter) bool {
	s.kmu.Lock()
	hit := s.errorRate > 0 && s.rng.Float64() < s.errorRate
	code := s.errorCode
	if hit {
		s.injected++
	}
	s.kmu.Unlock()
	if !hit {
		return false
	}
	if code == 0 {
		code = http.StatusServiceUnavailable
	}
	writeRaw(w, code, errorBody(code, "backendError", "global", "Backend Error"))
	return true
}

// pageFault returns the fault that hits this answer, if any, and counts it as fired.
func (s *Sim) pageFault(ep, key string, page int) *Fault {
	s.kmu.Lock()
	defer s.kmu.Unlock()
	for _, f := range s.faults {
		if f.Endpoint != ep || (f.Key != "" && f.Key != key) {
			continue
		}
		if f.Page != AnyPage && f.Page != page {
			continue
		}
		if f.Times > 0 && f.fired >= f.Times {
			continue
		}
		f.fired++
		switch f.Kind {
		case FaultRateLimit, FaultUserRateLimit, FaultTooMany:
			s.throttled++
		default:
			s.injected++
		}
		c := *f
		return &c
	}
	return nil
}

// inject answers the request as the fault says; body is the answer it replaces.
func (s *Sim) inject(w http.ResponseWriter, f *Fault, body []byte) {
	switch f.Kind {
	case FaultRateLimit:
		throttleAnswer(w, Throttle403, 0)
	case FaultUserRateLimit:
		throttleAnswer(w, Throttle403User, 0)
	case FaultTooMany:
		s.kmu.Lock()
		ra := s.retryAfter
		s.kmu.Unlock()
		throttleAnswer(w, Throttle429, ra)
	case FaultReset:
		resetConn(w)
	case FaultTruncate:
		truncate(w, body)
	default:
		code := f.Status
		if code == 0 {
			code = http.StatusInternalServerError
		}
		writeRaw(w, code, errorBody(code, "backendError", "global", "Backend Error"))
	}
}

// resetConn drops the connection without an answer (RST).
func resetConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		writeRaw(w, http.StatusBadGateway, errorBody(http.StatusBadGateway, "backendError", "global", "connection reset"))
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// truncate sends an answer whose body stops half way, then closes the connection.
func truncate(w http.ResponseWriter, body []byte) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		writeRaw(w, http.StatusBadGateway, errorBody(http.StatusBadGateway, "backendError", "global", "truncated"))
		return
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return
	}
	_, _ = fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=UTF-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", len(body))
	_, _ = buf.Write(body[:len(body)/2])
	_ = buf.Flush()
	_ = conn.Close()
}
