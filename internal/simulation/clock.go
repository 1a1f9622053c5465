package simulation

import (
	"context"
	"sync"
	"time"
)

// Clock is the virtual time of one simulated world: idsync (Runner, Jira sink, SCIM
// listener, miniOrange signatures) and both simulators read it. Sleep returns at once and
// moves the clock on, so a Retry-After of a minute costs nothing; the driver moves it to a
// fixed grid point before every step, so how long the waits of one step add up to (the Jira
// client jitters them from a time-seeded source) never leaks into the next.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock starts a clock at start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now is the virtual time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Sleep moves the clock d on (ctx permitting) without waiting.
func (c *Clock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.Advance(d)
	return nil
}

// Advance moves the clock d on.
func (c *Clock) Advance(d time.Duration) {
	if d <= 0 {
		return
	}
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// AdvanceTo moves the clock to t unless it is already past it, and reports how far past t
// it was.
func (c *Clock) AdvanceTo(t time.Time) (over time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.now.After(t) {
		return c.now.Sub(t)
	}
	c.now = t
	return 0
}
