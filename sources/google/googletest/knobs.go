package googletest

import (
	"net/http"
	"strconv"
	"time"

	"github.com/idsync/idsync/internal/simkit"
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

// Fault is one injected failure of an answer. miniorangetest has a Fault of the same build:
// each simulator keeps its own, as what places a fault (a path key and a token page here, a
// group and a startIndex page there) and what it does are the API's; simkit.FaultList holds
// and fires both.
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
}

// AddFault injects f. fired reports how often it has fired so far: a fault on a page no read
// reaches never does.
func (s *Sim) AddFault(f Fault) (fired func() int) { return s.faults.Add(f, f.Times) }

// ClearFaults removes every injected fault, the random error rate and the rate limit.
func (s *Sim) ClearFaults() {
	s.faults.Clear()
	s.knobs.SetErrorRate(0, 0)
	s.knobs.SetRateLimit(0, 0)
}

// SetErrorRate makes a seeded fraction of authorised API requests fail with status
// (default 503).
func (s *Sim) SetErrorRate(fraction float64, status int) { s.knobs.SetErrorRate(fraction, status) }

// SetLatency delays every answer by fixed plus a uniform [0, jitter).
func (s *Sim) SetLatency(fixed, jitter time.Duration) { s.knobs.SetLatency(fixed, jitter) }

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
	s.throttle = t
	s.kmu.Unlock()
	s.knobs.SetRateLimit(rps, burst)
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
func (s *Sim) Calls() map[string]int { return s.knobs.Calls() }

// APICalls is the sum of Calls without the token endpoint.
func (s *Sim) APICalls() int { return s.knobs.TotalCalls(EndpointToken) }

// Throttled returns how many requests the rate limit answered (429 or 403), and how many
// injected rate-limit faults fired.
func (s *Sim) Throttled() int { return s.knobs.Throttled() }

// Injected returns how many faults (injected faults and random errors) were served.
func (s *Sim) Injected() int { return s.knobs.Injected() }

// Reset zeroes the counters.
func (s *Sim) Reset() { s.knobs.ResetCounters() }

// throttled429 answers a request beyond the rate limit; it reports whether it answered.
func (s *Sim) throttled429(w http.ResponseWriter, ep string) bool {
	if ep == EndpointToken {
		return false
	}
	lim := s.knobs.Limiter()
	if lim == nil || lim.Allow() {
		return false
	}
	s.knobs.AddThrottled()
	s.kmu.Lock()
	t, ra := s.throttle, s.retryAfter
	s.kmu.Unlock()
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
	code, fail := s.knobs.RandomError()
	if !fail {
		return false
	}
	writeRaw(w, code, errorBody(code, "backendError", "global", "Backend Error"))
	return true
}

// pageFault returns the fault that hits this answer, if any, and counts it as fired.
func (s *Sim) pageFault(ep, key string, page int) *Fault {
	f, ok := s.faults.Fire(func(f *Fault) bool {
		return f.Endpoint == ep && (f.Key == "" || f.Key == key) && (f.Page == AnyPage || f.Page == page)
	})
	if !ok {
		return nil
	}
	switch f.Kind {
	case FaultRateLimit, FaultUserRateLimit, FaultTooMany:
		s.knobs.AddThrottled()
	default:
		s.knobs.AddInjected()
	}
	return &f
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
	if !simkit.ResetConn(w) {
		writeRaw(w, http.StatusBadGateway, errorBody(http.StatusBadGateway, "backendError", "global", "connection reset"))
	}
}

// truncate sends an answer whose body stops half way, then closes the connection.
func truncate(w http.ResponseWriter, body []byte) {
	if !simkit.Truncate(w, contentType, body) {
		writeRaw(w, http.StatusBadGateway, errorBody(http.StatusBadGateway, "backendError", "global", "truncated"))
	}
}
