// Package clock is idsync's one notion of time that tests can replace: pacing, Retry-After
// windows, backoff and the simulators' rate limits all read a Clock, so a scaled or virtual
// clock can drive a client and a simulator together and keep them in agreement.
package clock

import (
	"context"
	"time"
)

// Clock tells the time and waits.
type Clock interface {
	Now() time.Time
	// Sleep waits d or until ctx is done, whichever comes first; it returns ctx.Err() in the
	// latter case.
	Sleep(ctx context.Context, d time.Duration) error
}

// Real is wall-clock time.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// Sleep waits d of real time, or until ctx is done.
func (Real) Sleep(ctx context.Context, d time.Duration) error { return Wait(ctx, d) }

// Wait waits d of real time, or until ctx is done (then it returns ctx.Err()).
func Wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
