package daemon

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// The next scheduled pass of an "@every" schedule is the cron's next tick: asking again a
// moment later gives the same time, not "now + interval" again.
func TestNextScheduledPassHoldsStill(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	sc := newScheduler(t.Context(), zerolog.Nop(), func(context.Context) {}, nil)
	sc.now = clock.now
	if err := sc.set("@every 1h", 0); err != nil {
		t.Fatal(err)
	}
	defer sc.stop()
	first := sc.next()
	clock.add(7 * time.Second)
	second := sc.next()
	if first.IsZero() || !first.Equal(second) {
		t.Fatalf("next scheduled pass moved between two calls: %s then %s", first, second)
	}
	if until := time.Until(first); until <= 0 || until > time.Hour {
		t.Errorf("next scheduled pass %s is not within the coming hour", first)
	}
	// A cron spec too: its next tick is a whole minute.
	if err := sc.set("*/5 * * * *", 0); err != nil {
		t.Fatal(err)
	}
	if n := sc.next(); n.Second() != 0 || n.Minute()%5 != 0 || !n.Equal(sc.next()) {
		t.Errorf("next tick of */5 * * * *: %s", n)
	}
}
