package simulation

import "time"

// The oracle is what the IdP says, kept apart from idsync's code: every person with their
// status and groups as the history made them, each email and userName they ever had (all
// unique, so any of them names one person), and a timeline of what a pass could have read
// (views) and what pushes said since. Invariants I2 and I4 judge Jira against it.

type status int

const (
	active status = iota
	disabled
	gone
)

func (s status) String() string {
	return [...]string{"active", "disabled", "gone"}[s]
}

// --- timeline ----------------------------------------------------------------------------

// view is what a complete pull at At would have listed: each person's status (people not
// listed are gone).
type view struct {
	At     time.Time
	Pass   int
	Status map[string]status
	Groups map[string]map[string]bool
}

// statement is one push: what the IdP said about a person at At.
type statement struct {
	At     time.Time
	Person string
	Status status
}

// timeline keeps the views of full passes and the pushes, for I4's "a source said active in
// that pass's data".
type timeline struct {
	views []view
	// certain is the index of the newest view whose read no fault or race touched: idsync
	// must have read it completely, so no older view can stand in for a later pass.
	certain int
	pushes  []statement
}

func (m *model) view(at time.Time, pass int) view {
	v := view{At: at, Pass: pass, Status: make(map[string]status, len(m.people)), Groups: make(map[string]map[string]bool, len(m.people))}
	for id, p := range m.people {
		v.Status[id] = p.Status
		g := make(map[string]bool, len(p.Groups))
		for k := range p.Groups {
			g[k] = true
		}
		v.Groups[id] = g
	}
	return v
}

// addView records the view a full pass reads; certain says no fault or race touched its read.
func (t *timeline) addView(v view, certain bool) {
	t.views = append(t.views, v)
	if certain {
		t.certain = len(t.views) - 1
	}
}

func (t *timeline) push(s statement) { t.pushes = append(t.pushes, s) }

// mayBeActive reports whether some data a pass could be working from says the person is
// active: a view from the newest certain one on (the pass's own read included), with the
// pushes newer than it laid over. A pass reads either its own pull or the last complete one
// (which is never older than the newest certain view), and the pushes newer than that.
func (t *timeline) mayBeActive(id string) bool {
	if len(t.views) == 0 {
		return t.lastPush(id, time.Time{}) == active
	}
	for i := max(t.certain, 0); i < len(t.views); i++ {
		v := t.views[i]
		st, listed := v.Status[id]
		if !listed {
			st = gone
		}
		if ps := t.lastPush(id, v.At); ps >= 0 {
			st = ps
		}
		if st == active {
			return true
		}
	}
	return false
}

// lastPush is the status the newest push about id after since said (-1 when none).
func (t *timeline) lastPush(id string, since time.Time) status {
	st := status(-1)
	for _, s := range t.pushes {
		if s.Person == id && s.At.After(since) {
			st = s.Status
		}
	}
	return st
}

// explicitDeprovision reports whether data a pass could be working from deprovisions the
// person explicitly: a push that deleted them or set active:false, or a pull that listed them
// disabled (with no newer push saying otherwise). A pass that must not act on anyone's
// absence may still act on that, as the IdP said it about that very person; being missing
// from a pull is not explicit.
func (t *timeline) explicitDeprovision(id string) bool {
	if st := t.lastPush(id, time.Time{}); st == disabled || st == gone {
		return true
	}
	for i := max(t.certain, 0); i < len(t.views); i++ {
		v := t.views[i]
		st, listed := v.Status[id]
		if ps := t.lastPush(id, v.At); ps >= 0 {
			st, listed = ps, true
		}
		if listed && st == disabled {
			return true
		}
	}
	return false
}
