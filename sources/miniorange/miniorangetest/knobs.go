package miniorangetest

import (
	"encoding/json"
	"net/http"
	"time"
)

// FaultKind is what an injected fault does to the page it hits.
type FaultKind int

// Fault kinds.
const (
	// FaultStatus answers an HTTP error (Status, default 500) with a miniOrange error body.
	FaultStatus FaultKind = iota
	// FaultBodyError answers HTTP 200 with {"status": "ERROR"}.
	FaultBodyError
	// FaultReset drops the connection without an answer.
	FaultReset
	// FaultTruncate sends half the body, then closes the connection.
	FaultTruncate
	// FaultTotalSkew serves the page with totalCount off by Delta: the listing disagrees
	// with its count.
	FaultTotalSkew
	// FaultShift serves the page one item early, as if a user had been inserted before it
	// (the last item of the previous page comes again).
	FaultShift
	// FaultHireAfter serves the page, then hires Delta (at least 1) users: the total changes
	// mid-read.
	FaultHireAfter
)

// AnyPage makes a fault match every page of its listing.
const AnyPage = -1

// Fault is one injected failure of a paged listing. googletest has a Fault of the same build:
// each simulator keeps its own, as what places a fault (a group and a startIndex page here, a
// path key and a token page there) and what it does are the API's; simkit.FaultList holds and
// fires both.
type Fault struct {
	Kind FaultKind
	// Endpoint is the listing's path (PathUsersList, PathGroupsList, PathGroupMembers).
	Endpoint string
	// Group restricts a PathGroupMembers fault to one group ("" = any group).
	Group string
	// Page is the 0-based page index, counted in units of the batch cap: page k is every
	// request whose startIndex is in [k*cap, (k+1)*cap). AnyPage matches every request.
	Page int
	// Times is how often the fault fires; 0 means every time.
	Times  int
	Status int
	Delta  int
}

// AddFault injects f. fired reports how often it has fired so far: a fault on a page no read
// reaches never does.
func (s *Sim) AddFault(f Fault) (fired func() int) { return s.faults.Add(f, f.Times) }

// ClearFaults removes every injected fault and the random error rate.
func (s *Sim) ClearFaults() {
	s.faults.Clear()
	s.knobs.SetErrorRate(0, 0)
}

// SetErrorRate makes a seeded fraction of authenticated requests fail with status (default 503).
func (s *Sim) SetErrorRate(fraction float64, status int) { s.knobs.SetErrorRate(fraction, status) }

// SetLatency delays every answer by fixed plus a uniform [0, jitter).
func (s *Sim) SetLatency(fixed, jitter time.Duration) { s.knobs.SetLatency(fixed, jitter) }

// SetRateLimit answers 429 with Retry-After beyond rps requests per second (burst at once).
// rps <= 0 turns the limit off.
func (s *Sim) SetRateLimit(rps float64, burst int) { s.knobs.SetRateLimit(rps, burst) }

// SetBatchCap sets the most items one page returns.
func (s *Sim) SetBatchCap(n int) {
	s.kmu.Lock()
	defer s.kmu.Unlock()
	if n <= 0 {
		n = DefaultBatchCap
	}
	s.batchCap = n
}

// UserHook rewrites one user record as the simulator answers it. endpoint is PathUsersList
// or PathUserGet; user is the record as a JSON object (id, username, email, firstName,
// lastName, phone, groups, customAttributes, and the state as "status" in users/list or
// "userStatus" in users/get) that the hook may change in place: delete a field, rename it,
// give it a value the contract does not know. The call's own status and message of users/get
// are added after the hook. Hooks may run concurrently and must not call the Sim.
type UserHook func(endpoint, userName string, user map[string]any)

// SetUserHook makes every users/list page and users/get answer pass each user record through
// fn, to act out a tenant whose records differ from the assumed contract (a user without a
// status, a renamed field). nil removes the hook.
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

// hooked returns a user's record (the encoded js) as the hook rewrites it.
func hooked(fn UserHook, endpoint, userName string, js []byte) []byte {
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil {
		return js
	}
	fn(endpoint, userName, m)
	b, err := json.Marshal(m)
	if err != nil {
		return js
	}
	return b
}

// SetClockSkew shifts the server clock by d (the client's timestamps then look stale).
func (s *Sim) SetClockSkew(d time.Duration) {
	s.kmu.Lock()
	defer s.kmu.Unlock()
	s.skew = d
}

// SetAPIKey replaces the API key (a key regenerated in the admin console): from now on
// requests signed with the old key are rejected. Empty restores DefaultAPIKey.
func (s *Sim) SetAPIKey(key string) {
	if key == "" {
		key = DefaultAPIKey
	}
	s.kmu.Lock()
	defer s.kmu.Unlock()
	s.apiKey = key
}

// SetTimestampWindow sets how far a request's Timestamp may be from the server clock.
func (s *Sim) SetTimestampWindow(d time.Duration) {
	s.kmu.Lock()
	defer s.kmu.Unlock()
	s.window = d
}

// Calls returns the requests served per endpoint path, 429s excluded.
func (s *Sim) Calls() map[string]int { return s.knobs.Calls() }

// TotalCalls is the sum of Calls.
func (s *Sim) TotalCalls() int { return s.knobs.TotalCalls() }

// Throttled returns how many requests were answered 429.
func (s *Sim) Throttled() int { return s.knobs.Throttled() }

// Reset zeroes the call and 429 counters.
func (s *Sim) Reset() { s.knobs.ResetCounters() }

// pageFault returns the fault that hits this page, if any, and counts it as fired.
func (s *Sim) pageFault(endpoint, groupName string, req request) *Fault {
	if req.StartIndex == nil || *req.StartIndex < 0 {
		return nil
	}
	s.kmu.Lock()
	page := *req.StartIndex / s.batchCap
	s.kmu.Unlock()
	f, ok := s.faults.Fire(func(f *Fault) bool {
		return f.Endpoint == endpoint && (f.Group == "" || f.Group == groupName) && (f.Page == AnyPage || f.Page == page)
	})
	if !ok {
		return nil
	}
	return &f
}

// randomFault fails a seeded fraction of requests; it reports whether it answered.
func (s *Sim) randomFault(w http.ResponseWriter) bool {
	code, fail := s.knobs.RandomError()
	if !fail {
		return false
	}
	writeJSON(w, code, errorBody{"ERROR", "Service temporarily unavailable"})
	return true
}

func (f *Fault) totalDelta() int {
	if f == nil || f.Kind != FaultTotalSkew {
		return 0
	}
	return f.Delta
}

func (f *Fault) shift(start, end int) (int, int) {
	if f == nil || f.Kind != FaultShift || start == 0 {
		return start, end
	}
	return start - 1, end - 1
}
