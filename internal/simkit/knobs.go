// Package simkit holds what the identity provider simulators (sources/miniorange/miniorangetest
// and sources/google/googletest) share: latency with jitter, a token-bucket rate limit, a
// seeded random error rate, per-endpoint call counters, and answers that break the
// connection. Each simulator keeps its own wire format (error bodies, content type, how a
// throttled request is answered) and its own injected-fault kinds; simkit carries no API
// knowledge.
package simkit

import (
	"context"
	"maps"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Knobs are a simulator's shared knobs and counters. All methods are safe for concurrent use.
type Knobs struct {
	mu        sync.Mutex
	rng       *rand.Rand
	latency   time.Duration
	jitter    time.Duration
	limiter   *rate.Limiter
	errorRate float64
	errorCode int
	calls     map[string]int
	throttled int
	injected  int
}

// NewKnobs returns knobs with no latency, no rate limit and no random errors. Their random
// draws (jitter, random errors, Rand) follow the PCG stream (seed, stream), so a simulator
// built with the same seed draws the same sequence.
func NewKnobs(seed, stream uint64) *Knobs {
	return &Knobs{rng: rand.New(rand.NewPCG(seed, stream)), calls: map[string]int{}}
}

// SetLatency delays every answer by fixed plus a uniform [0, jitter).
func (k *Knobs) SetLatency(fixed, jitter time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.latency, k.jitter = fixed, jitter
}

// Delay waits the latency (with a jitter draw); it reports false when ctx ended first (the
// client went away).
func (k *Knobs) Delay(ctx context.Context) bool {
	k.mu.Lock()
	d := k.latency
	if k.jitter > 0 {
		d += time.Duration(k.rng.Int64N(int64(k.jitter)))
	}
	k.mu.Unlock()
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// SetRateLimit sets a token bucket of rps requests per second with room for burst (at least
// 1) at once; rps <= 0 turns the limit off.
func (k *Knobs) SetRateLimit(rps float64, burst int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if rps <= 0 {
		k.limiter = nil
		return
	}
	k.limiter = rate.NewLimiter(rate.Limit(rps), max(burst, 1))
}

// Limiter is the rate limit's bucket, nil when there is none. The simulator decides how a
// request beyond it is answered, and counts it with AddThrottled.
func (k *Knobs) Limiter() *rate.Limiter {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.limiter
}

// SetErrorRate makes a seeded fraction of the requests that ask RandomError fail with status
// (0: 503).
func (k *Knobs) SetErrorRate(fraction float64, status int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.errorRate, k.errorCode = fraction, status
}

// RandomError draws whether this request fails at random, and with which status; a failure
// counts as injected.
func (k *Knobs) RandomError() (status int, fail bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.errorRate <= 0 || k.rng.Float64() >= k.errorRate {
		return 0, false
	}
	k.injected++
	if k.errorCode == 0 {
		return http.StatusServiceUnavailable, true
	}
	return k.errorCode, true
}

// Rand calls fn with the knobs' random source, for other seeded draws of the simulator (they
// then interleave with jitter and random errors in one reproducible sequence).
func (k *Knobs) Rand(fn func(*rand.Rand)) {
	k.mu.Lock()
	defer k.mu.Unlock()
	fn(k.rng)
}

// Count counts one request served by endpoint.
func (k *Knobs) Count(endpoint string) {
	k.mu.Lock()
	k.calls[endpoint]++
	k.mu.Unlock()
}

// Calls returns a copy of the per-endpoint counts.
func (k *Knobs) Calls() map[string]int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return maps.Clone(k.calls)
}

// TotalCalls sums the counts of every endpoint but those in except.
func (k *Knobs) TotalCalls(except ...string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
outer:
	for ep, v := range k.calls {
		for _, x := range except {
			if ep == x {
				continue outer
			}
		}
		n += v
	}
	return n
}

// AddThrottled counts a request answered as beyond a rate limit.
func (k *Knobs) AddThrottled() {
	k.mu.Lock()
	k.throttled++
	k.mu.Unlock()
}

// Throttled returns how many requests were answered as beyond a rate limit.
func (k *Knobs) Throttled() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.throttled
}

// AddInjected counts an injected fault served.
func (k *Knobs) AddInjected() {
	k.mu.Lock()
	k.injected++
	k.mu.Unlock()
}

// Injected returns how many injected faults and random errors were served.
func (k *Knobs) Injected() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.injected
}

// ResetCounters zeroes the call, throttled and injected counters.
func (k *Knobs) ResetCounters() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.calls, k.throttled, k.injected = map[string]int{}, 0, 0
}
