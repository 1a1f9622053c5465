package simulation

import (
	"sync"
	"time"

	"github.com/idsync/idsync/sources/scim"
)

// timers replaces the SCIM listener's debounce timers: nothing fires on its own; the driver
// fires what is pending when it wants the targeted passes of the pushes so far.
type timers struct {
	mu      sync.Mutex
	pending []*timer
}

type timer struct {
	mu      sync.Mutex
	f       func()
	stopped bool
}

func (t *timer) Stop() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

func (ts *timers) afterFunc(_ time.Duration, f func()) scim.Timer {
	t := &timer{f: f}
	ts.mu.Lock()
	ts.pending = append(ts.pending, t)
	ts.mu.Unlock()
	return t
}

// fire runs every pending timer that was not stopped, in the order they were set.
func (ts *timers) fire() {
	ts.mu.Lock()
	p := ts.pending
	ts.pending = nil
	ts.mu.Unlock()
	for _, t := range p {
		if t.Stop() {
			t.f()
		}
	}
}
