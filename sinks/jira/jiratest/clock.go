package jiratest

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/idsync/idsync/internal/clock"
)

// Clock is the simulator's sense of time: rate-limit buckets, Retry-After windows, index lag
// and latency all read it. It is the sink's Clock too (internal/clock), so one value (for
// example a ScaledClock) can drive both sides of a test and keep them in agreement.
type Clock = clock.Clock

// RealClock is wall-clock time.
type RealClock = clock.Real

// ScaledClock runs virtual time Factor times faster than real time: with Factor 100 a
// Retry-After of one second passes in 10 ms of real time. It is monotonic and safe for
// concurrent use, so a client and the simulator sharing one see the same ordering of events,
// and "never before Retry-After" means the same thing on both sides.
type ScaledClock struct {
	factor float64
	origin time.Time // virtual time at start
	start  time.Time // real time at start
	mu     sync.Mutex
}

// NewScaledClock starts a clock at the current wall time that runs factor times faster.
// A factor <= 0 means 1.
func NewScaledClock(factor float64) *ScaledClock {
	if factor <= 0 {
		factor = 1
	}
	now := time.Now()
	return &ScaledClock{factor: factor, origin: now, start: now}
}

// Now returns the virtual time.
func (c *ScaledClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	real := time.Since(c.start)
	return c.origin.Add(time.Duration(float64(real) * c.factor))
}

// Sleep waits d of virtual time.
func (c *ScaledClock) Sleep(ctx context.Context, d time.Duration) error {
	// Round up so that after Sleep(d) returns, Now() has moved by at least d.
	return clock.Wait(ctx, time.Duration(math.Ceil(float64(d)/c.factor)))
}

// Factor is how much faster than real time the clock runs.
func (c *ScaledClock) Factor() float64 { return c.factor }
