package scim

import (
	"fmt"
	"net/http"

	"github.com/idsync/idsync/internal/logging"
)

// Group commit of updates to one resource. IdPs assign a large group by sending one member
// PATCH per person, many at once; stored one by one, each waits for the last to be synced to
// disk, and a group takes no more member changes per second than the disk takes syncs.
//
// Instead, an update that finds another update of the same resource being stored joins that
// resource's queue. When the store answers, the updater that led it hands the queue to the
// first update waiting, which applies every queued update in arrival order to the resource
// as the earlier ones left it, each with its own checks (If-Match, validation, uniqueness),
// version and answer, and stores the result in one transaction. Every update is answered
// only once that transaction is on disk, or with 500 when the store refused it: a 2xx still
// means durable. Updates that the batch could not apply (400, 404, 409, 412) change nothing
// and are answered like any other.

// maxCoalesced bounds the updates stored in one transaction; more wait for the next.
const maxCoalesced = 256

// pendingUpdate is one PUT or PATCH waiting in its resource's queue.
type pendingUpdate struct {
	body    map[string]any
	ifMatch string
	patch   bool
	// wake is closed once the update is answered (entry or err set), or when it is to lead
	// the next commit of its queue (lead set).
	wake chan struct{}
	lead bool
	// The answer: the resource as this update left it, or the error.
	entry *entry
	err   *Error
}

// updateQueue holds the updates of one resource waiting for the commit in progress. It is in
// source.queues from its first update until a commit finds it empty.
type updateQueue struct {
	key     string
	pending []*pendingUpdate
}

// update answers PUT (patch false) and PATCH of one resource.
func (h *Handler) update(w http.ResponseWriter, r *http.Request, s *source, rt *resourceType, id string, patch bool) {
	// The body is read before joining the queue, so a slow client delays no other writer.
	body, ok := h.acceptWrite(w, r, s, true)
	if !ok {
		return
	}
	u := &pendingUpdate{body: body, ifMatch: r.Header.Get("If-Match"), patch: patch, wake: make(chan struct{})}
	h.enqueueUpdate(s, rt, id, u)
	if u.err != nil {
		writeError(w, u.err)
		return
	}
	h.answerUpdate(w, r, s, rt, u.entry, patch)
}

// enqueueUpdate returns once u is answered: it commits u itself when no update of the
// resource is being stored, else it waits for the commit in progress to hand over.
func (h *Handler) enqueueUpdate(s *source, rt *resourceType, id string, u *pendingUpdate) {
	key := rt.Name + "/" + id
	s.qmu.Lock()
	q, busy := s.queues[key]
	if !busy {
		q = &updateQueue{key: key}
		s.queues[key] = q
	}
	q.pending = append(q.pending, u)
	s.qmu.Unlock()
	if busy {
		<-u.wake
		if !u.lead {
			return
		}
	}
	// u is first in the queue: this commit answers it.
	h.commitQueued(s, rt, id, q)
}

// commitQueued applies and stores the queued updates of one resource under its stripe lock,
// answers them, and hands the queue to the first update that arrived meanwhile.
func (h *Handler) commitQueued(s *source, rt *resourceType, id string, q *updateQueue) {
	lock := s.stripe(rt, id)
	lock.Lock()
	s.qmu.Lock()
	n := min(len(q.pending), maxCoalesced)
	batch := q.pending[:n:n]
	q.pending = q.pending[n:]
	s.qmu.Unlock()
	h.applyUpdates(s, rt, id, batch)
	lock.Unlock()

	s.qmu.Lock()
	var next *pendingUpdate
	if len(q.pending) == 0 {
		delete(s.queues, q.key)
	} else {
		next = q.pending[0]
	}
	s.qmu.Unlock()
	for _, u := range batch {
		if !u.lead { // a leader's wake was closed to hand it the queue
			close(u.wake)
		}
	}
	if next != nil {
		next.lead = true
		close(next.wake)
	}
}

// appliedUpdate is one update of a batch that changed the resource.
type appliedUpdate struct {
	u    *pendingUpdate
	old  *entry // the resource before it
	diff *memberDiff
}

// applyUpdates applies batch, in order, to resource id and stores the outcome in one write,
// setting each update's answer. Call with the resource's stripe lock held.
func (h *Handler) applyUpdates(s *source, rt *resourceType, id string, batch []*pendingUpdate) {
	s.mu.RLock()
	base := s.table(rt)[id]
	s.mu.RUnlock()
	if base == nil {
		for _, u := range batch {
			u.err = notFound(rt, id)
		}
		return
	}
	cur := base
	baseKey := nameKey(rt, base.rec.Resource)
	var (
		applied  []appliedUpdate
		reserved []string // names this batch reserved (step 2 of the write protocol)
		first    = -1     // index in batch of the first update applied
		members  = s.memberOracle(rt, id)
	)
	for i, u := range batch {
		if u.ifMatch != "" && !matchETag(u.ifMatch, cur.rec.Version) {
			u.err = &Error{Status: http.StatusPreconditionFailed, Detail: fmt.Sprintf("%s %s has changed: its version is %s", rt.Name, id, etag(cur.rec.Version))}
			continue
		}
		res, diff, changed, rerr := s.revise(rt, id, cur, u.body, u.patch, members.isMember())
		if rerr != nil {
			u.err = rerr
			continue
		}
		if !changed {
			// Nothing changes: no write, no version bump, no trigger.
			u.entry = cur
			continue
		}
		if key := nameKey(rt, res); key != baseKey && !contains(reserved, key) {
			if !s.reserve(key, id) {
				u.err = uniquenessError(rt, res)
				continue
			}
			reserved = append(reserved, key)
		}
		rec := record{Version: cur.rec.Version + 1, Created: cur.rec.Created, Modified: h.now().UTC(), Resource: res}
		applied = append(applied, appliedUpdate{u: u, old: cur, diff: diff})
		members.note(diff)
		if first < 0 {
			first = i
		}
		cur = h.newEntry(s, rt, id, rec)
		u.entry = cur
	}
	if len(applied) == 0 {
		return
	}
	diff := combineDiffs(applied)
	final := cur.rec
	if err := h.store(s, rt, id, &base.rec, &final, diff); err != nil {
		s.mu.Lock()
		for _, k := range reserved {
			s.unreserve(k)
		}
		s.mu.Unlock()
		h.log.Error().Err(err).Str(logging.FieldSource, s.name).Int("updates", len(applied)).Msg("SCIM update not stored")
		// What the updates from the first applied one on saw was never stored: each answers
		// 500, even one that changed nothing or failed a check against that state.
		for _, u := range batch[first:] {
			u.entry, u.err = nil, errNotStored
		}
		return
	}
	s.mu.Lock()
	for _, k := range reserved {
		s.unreserve(k)
	}
	e := h.index(s, rt, id, base, final, diff)
	s.mu.Unlock()
	for _, u := range batch {
		if u.entry == cur {
			u.entry = e // the indexed entry, whose render is cached for later reads
		}
	}
	for _, a := range applied {
		res := a.u.entry.rec.Resource
		h.touch(s, rt, a.old.rec.Resource, res, a.diff)
		h.logWrite(s, rt, "updated", id, res)
	}
}

// memberOracle says whether a group has a member as a batch applies its updates, without
// scanning the member list: the index (memberOf) knows the stored group, and changed holds
// what the batch's updates changed since. Used under the group's stripe lock, when the
// index's memberOf of every live user matches the group's member list (a stale group takes
// the general path and never asks). Members are the listener's own user ids, lower-case
// UUIDs, so a lower-cased id is the id memberOf is keyed by.
type memberOracle struct {
	s       *source
	gid     string
	changed map[string]bool
	off     bool // an update took the general path: membership is no longer tracked
}

// memberOracle returns the oracle of group id; nil (no oracle) for users.
func (s *source) memberOracle(rt *resourceType, id string) *memberOracle {
	if rt != groupType {
		return nil
	}
	return &memberOracle{s: s, gid: id, changed: map[string]bool{}}
}

// isMember is the oracle's question, or nil when it cannot answer (the list is scanned).
func (o *memberOracle) isMember() func(foldedID string) bool {
	if o == nil || o.off {
		return nil
	}
	return func(v string) bool {
		if in, ok := o.changed[v]; ok {
			return in
		}
		o.s.mu.RLock()
		_, in := o.s.memberOf[v][o.gid]
		o.s.mu.RUnlock()
		return in
	}
}

// note records what an applied update changed.
func (o *memberOracle) note(diff *memberDiff) {
	if o == nil {
		return
	}
	if diff == nil {
		o.off = true
		return
	}
	for _, m := range diff.added {
		o.changed[foldID(m)] = true
	}
	for _, m := range diff.removed {
		o.changed[foldID(m)] = false
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// combineDiffs is the member change of a batch of updates as a whole, or nil when one of
// them took the general path (which recomputes membership from the whole list). A member
// added and removed again within the batch is in neither list.
func combineDiffs(applied []appliedUpdate) *memberDiff {
	if len(applied) == 1 {
		return applied[0].diff
	}
	var net netChanges
	for _, a := range applied {
		if a.diff == nil {
			return nil
		}
		for _, m := range a.diff.added {
			net.note(m, true)
		}
		for _, m := range a.diff.removed {
			net.note(m, false)
		}
	}
	d := net.diff()
	return &d
}
