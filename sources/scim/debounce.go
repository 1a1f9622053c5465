package scim

import (
	"sort"
	"sync"
	"time"
)

// maxWaitWindows bounds how long a steady stream of writes can postpone the trigger: at the
// latest this many windows after the first pending write, OnChange runs anyway.
const maxWaitWindows = 10

// debouncer coalesces the writes of one source into one OnChange call per quiet window.
type debouncer struct {
	source    string
	window    time.Duration
	afterFunc func(time.Duration, func()) Timer
	now       func() time.Time
	fire      func(source string, users, groups []string)

	mu     sync.Mutex
	users  map[string]struct{}
	groups map[string]struct{}
	first  time.Time
	timer  Timer
	gen    uint64
	closed bool
	wg     sync.WaitGroup
}

func newDebouncer(source string, window time.Duration, afterFunc func(time.Duration, func()) Timer, now func() time.Time,
	fire func(string, []string, []string)) *debouncer {
	return &debouncer{source: source, window: window, afterFunc: afterFunc, now: now, fire: fire,
		users: map[string]struct{}{}, groups: map[string]struct{}{}}
}

// touch records names and (re)starts the quiet window.
func (d *debouncer) touch(users, groups []string) {
	if d.fire == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	for _, u := range users {
		if u != "" {
			d.users[u] = struct{}{}
		}
	}
	for _, g := range groups {
		if g != "" {
			d.groups[g] = struct{}{}
		}
	}
	now := d.now()
	if d.first.IsZero() {
		d.first = now
	}
	delay := d.window
	if deadline := d.first.Add(maxWaitWindows * d.window); now.Add(delay).After(deadline) {
		delay = max(deadline.Sub(now), 0)
	}
	if d.timer != nil {
		d.timer.Stop()
	}
	d.gen++
	gen := d.gen
	d.timer = d.afterFunc(delay, func() { d.flush(gen) })
}

// flush calls fire with what is pending, unless a later touch superseded this timer.
func (d *debouncer) flush(gen uint64) {
	d.mu.Lock()
	if gen != d.gen || d.closed {
		d.mu.Unlock()
		return
	}
	users, groups := d.take()
	// Added under mu while not closed, so close's Wait (after closed is set) sees it.
	d.wg.Add(1)
	d.mu.Unlock()
	defer d.wg.Done()
	if len(users)+len(groups) > 0 {
		d.fire(d.source, users, groups)
	}
}

// take empties the pending sets. Call with d.mu held.
func (d *debouncer) take() ([]string, []string) {
	users := make([]string, 0, len(d.users))
	for u := range d.users {
		users = append(users, u)
	}
	groups := make([]string, 0, len(d.groups))
	for g := range d.groups {
		groups = append(groups, g)
	}
	sort.Strings(users)
	sort.Strings(groups)
	clear(d.users)
	clear(d.groups)
	d.first = time.Time{}
	d.timer = nil
	return users, groups
}

// close stops the timer, fires what is pending at once, and waits for a fire in progress.
func (d *debouncer) close() {
	if d.fire == nil {
		return
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.closed = true
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
	}
	users, groups := d.take()
	d.mu.Unlock()
	if len(users)+len(groups) > 0 {
		d.fire(d.source, users, groups)
	}
	d.wg.Wait()
}

// touch reports a write to the debouncer: for users, the old and new userName; for groups,
// the old and new displayName plus the userNames of members added or removed (all members
// when the group was created, deleted or renamed).
func (h *Handler) touch(s *source, rt *resourceType, old, cur map[string]any, diff *memberDiff) {
	var users, groups []string
	if rt == userType {
		for _, res := range []map[string]any{old, cur} {
			if res != nil {
				users = append(users, userName(res))
			}
		}
		s.deb.touch(users, nil)
		return
	}
	for _, res := range []map[string]any{old, cur} {
		if res != nil {
			groups = append(groups, displayName(res))
		}
	}
	var changed []string
	if diff != nil {
		changed = append(append(changed, diff.added...), diff.removed...)
		h.touchMembers(s, changed, groups)
		return
	}
	oldM, curM := map[string]bool{}, map[string]bool{}
	if old != nil {
		for _, m := range memberIDs(old) {
			oldM[m] = true
		}
	}
	if cur != nil {
		for _, m := range memberIDs(cur) {
			curM[m] = true
		}
	}
	all := old == nil || cur == nil || displayName(old) != displayName(cur)
	for m := range oldM {
		if all || !curM[m] {
			changed = append(changed, m)
		}
	}
	for m := range curM {
		if all || !oldM[m] {
			changed = append(changed, m)
		}
	}
	h.touchMembers(s, changed, groups)
}

// touchMembers reports the userNames of member ids, and groups, to the debouncer.
func (h *Handler) touchMembers(s *source, ids, groups []string) {
	users := make([]string, 0, len(ids))
	s.mu.RLock()
	for _, m := range ids {
		if u := s.users[m]; u != nil {
			users = append(users, userName(u.rec.Resource))
		} else if t := s.tombs[m]; t != nil {
			users = append(users, userName(t.rec.Resource))
		}
	}
	s.mu.RUnlock()
	s.deb.touch(users, groups)
}
