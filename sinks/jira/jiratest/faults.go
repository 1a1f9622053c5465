package jiratest

import (
	"net/http"
	"time"

	"github.com/idsync/idsync/internal/simkit"
)

// Fault is one kind of injected failure.
type Fault string

// Fault kinds.
const (
	Fault500        Fault = "500"         // 500 with a Jira error body, request not processed
	Fault502        Fault = "502"         // 502 from the "proxy", not processed
	Fault503        Fault = "503"         // 503 with Retry-After, not processed
	FaultReset      Fault = "reset"       // connection reset before processing
	FaultResetAfter Fault = "reset-after" // processed, then the connection is reset (outcome unknown)
	FaultSlow       Fault = "slow"        // processed after Faults.SlowDelay
	FaultTruncate   Fault = "truncate"    // processed, body cut short
)

// AllFaults lists every fault kind.
var AllFaults = []Fault{Fault500, Fault502, Fault503, FaultReset, FaultResetAfter, FaultSlow, FaultTruncate}

// Faults injects failures at random: each request matching Endpoints (all when empty) fails
// with probability Rate, with a kind drawn uniformly from Kinds (all when empty).
type Faults struct {
	Rate      float64
	Kinds     []Fault
	Endpoints []string // "METHOD /template"
	// SlowDelay is the delay of FaultSlow (default 2 s).
	SlowDelay time.Duration
	// RetryAfter of a 503 (default: Options.RetryAfter).
	RetryAfter time.Duration
}

// MembershipFault makes POST and DELETE /rest/api/3/group/user of one group fail, every
// time, until the faults are replaced (SetMembershipFaults): the request is answered with
// Status and a Jira error body (and Retry-After for 429 and 503), and nothing changes. It
// acts after authentication, rate limits and the group lookup (an unknown group still
// answers 404), before the account is looked at; faults of Options.Faults and InjectFault
// come first. Tests use it for a group whose members idsync cannot change (403, as for an
// IdP-managed group) or that keeps failing (500).
type MembershipFault struct {
	// Group is the group's groupId, or its name (case-insensitive).
	Group string
	// Method is "DELETE" (removals), "POST" (adds) or "" (both).
	Method string
	// Status is the answer, for example 403 or 500; 0 disables the fault.
	Status int
}

type forcedFault struct {
	kind     Fault
	endpoint string // "" matches any
}

// resetConn closes the client connection abruptly (RST), as a dying proxy would; flush
// first sends what was written (a truncated body), else nothing at all reaches the client.
func resetConn(w http.ResponseWriter, flush bool) {
	if f, ok := w.(http.Flusher); ok && flush {
		f.Flush()
	}
	_ = simkit.ResetConn(w) // when w cannot be taken over, the empty answer goes out
}

func (s *Sim) pickFault(key string, k Options) Fault {
	s.knob.Lock()
	defer s.knob.Unlock()
	for i, f := range s.queue {
		if f.endpoint == "" || f.endpoint == key {
			s.queue = append(s.queue[:i], s.queue[i+1:]...)
			return f.kind
		}
	}
	f := k.Faults
	if f.Rate <= 0 {
		return ""
	}
	if len(f.Endpoints) > 0 {
		match := false
		for _, e := range f.Endpoints {
			if e == key {
				match = true
			}
		}
		if !match {
			return ""
		}
	}
	if s.rng.Float64() >= f.Rate {
		return ""
	}
	kinds := f.Kinds
	if len(kinds) == 0 {
		kinds = AllFaults
	}
	return kinds[s.rng.IntN(len(kinds))]
}
