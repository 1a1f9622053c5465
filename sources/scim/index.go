package scim

import (
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/idsync/idsync/internal/logging"
)

// The index: every live resource of a source in memory, with its name lookups and the
// groups each user is in, loaded from the store at start and updated after each stored write.
// Reads and filters are answered from it.

// entry is one resource in the index. Entries are immutable once indexed: a write replaces
// the entry, so a reader holding one sees a consistent resource.
type entry struct {
	id  string
	rec record
	// view is the resource with id and meta, as filters and renders see it.
	view map[string]any
	// rendered caches the full JSON answer (users: with groups); reset when it changes.
	rendered atomic.Pointer[[]byte]
}

// load fills the index of s from the store. Records that cannot be read are reported by
// the Source (Snapshot fails, so no pass deactivates anyone because of them) and logged;
// the rest is served.
func (h *Handler) load(s *source) error {
	for _, rt := range []*resourceType{userType, groupType} {
		rs, err := h.opts.Store.SCIMResources(s.name, rt.Name)
		if err != nil {
			return fmt.Errorf("scim listener: loading %s resources of source %s: %w", rt.Name, s.name, err)
		}
		var buckets map[string][]Resource
		if rt == groupType {
			rs, buckets = splitGroupRecords(rs)
		}
		for _, r := range rs {
			rec, err := decodeRecord(rt, r.Data)
			if err == nil && rec.Buckets > 0 {
				var members []any
				if members, err = assembleMembers(r.ID, buckets[r.ID]); err == nil {
					setOrDelete(rec.Resource, "members", nonEmptyList(dedupeByValue(members)))
				}
			}
			if err != nil {
				msg := fmt.Sprintf("%s %s: %v", rt.Name, r.ID, err)
				s.loadErrs = append(s.loadErrs, msg)
				h.log.Error().Str(logging.FieldSource, s.name).Msg("unreadable stored SCIM resource: " + msg)
				continue
			}
			e := h.newEntry(s, rt, r.ID, rec)
			switch {
			case rt == groupType:
				s.groups[r.ID] = e
			case rec.Deleted != nil:
				s.tombs[r.ID] = e
			default:
				s.users[r.ID] = e
			}
		}
	}
	// Creation order serves lists; ids break ties.
	s.userOrder = sortedIDs(s.users)
	s.groupOrder = sortedIDs(s.groups)
	for _, id := range s.userOrder {
		e := s.users[id]
		s.userByName[strings.ToLower(userName(e.rec.Resource))] = id
	}
	for _, id := range s.groupOrder {
		e := s.groups[id]
		s.groupByName[strings.ToLower(displayName(e.rec.Resource))] = id
		for _, m := range memberIDs(e.rec.Resource) {
			if _, live := s.users[m]; !live {
				s.stale[id] = true
				continue
			}
			s.addMemberOf(m, id)
		}
	}
	h.log.Info().Str(logging.FieldSource, s.name).Int("users", len(s.users)).Int("groups", len(s.groups)).
		Int("tombstones", len(s.tombs)).Msg("SCIM resources loaded")
	return nil
}

// sortedIDs orders ids by creation time, then id.
func sortedIDs(m map[string]*entry) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		a, b := m[ids[i]], m[ids[j]]
		if !a.rec.Created.Equal(b.rec.Created) {
			return a.rec.Created.Before(b.rec.Created)
		}
		return ids[i] < ids[j]
	})
	return ids
}

// addMemberOf and removeMemberOf maintain the groups of each user. Call with s.mu held.
func (s *source) addMemberOf(userID, groupID string) {
	set := s.memberOf[userID]
	if set == nil {
		set = map[string]struct{}{}
		s.memberOf[userID] = set
	}
	set[groupID] = struct{}{}
}

func (s *source) removeMemberOf(userID, groupID string) {
	if set := s.memberOf[userID]; set != nil {
		delete(set, groupID)
		if len(set) == 0 {
			delete(s.memberOf, userID)
		}
	}
}

// newEntry builds the indexed form of a stored record: its view carries id and meta.
func (h *Handler) newEntry(s *source, rt *resourceType, id string, rec record) *entry {
	view := make(map[string]any, len(rec.Resource)+2)
	for k, v := range rec.Resource {
		view[k] = v
	}
	view["id"] = id
	view["meta"] = map[string]any{
		"resourceType": rt.Name,
		"created":      rec.Created.UTC().Format(time.RFC3339Nano),
		"lastModified": rec.Modified.UTC().Format(time.RFC3339Nano),
		"location":     h.location(s.name, strings.TrimPrefix(rt.Endpoint, "/")+"/"+id),
		"version":      etag(rec.Version),
	}
	return &entry{id: id, rec: rec, view: view}
}

// userName and displayName are the unique names users and groups are indexed by.
func userName(res map[string]any) string { s, _ := res["userName"].(string); return s }

func displayName(res map[string]any) string { s, _ := res["displayName"].(string); return s }

// memberIDs lists the ids of a group's members.
func memberIDs(res map[string]any) []string {
	var ids []string
	for _, el := range elements(res["members"]) {
		if m, ok := el.(map[string]any); ok {
			if v, ok := m["value"].(string); ok && v != "" {
				ids = append(ids, v)
			}
		}
	}
	return ids
}

// table is the live resources of one type, by id. Call with s.mu held.
func (s *source) table(rt *resourceType) map[string]*entry {
	if rt == userType {
		return s.users
	}
	return s.groups
}

// order is the ids of one type in creation order; it may hold ids since deleted.
func (s *source) order(rt *resourceType) []string {
	if rt == userType {
		return s.userOrder
	}
	return s.groupOrder
}

// index puts a written resource into the index; diff, when known, spares recomputing a
// group's member changes. Call with s.mu held.
func (h *Handler) index(s *source, rt *resourceType, id string, old *entry, rec record, diff *memberDiff) *entry {
	e := h.newEntry(s, rt, id, rec)
	if rt == userType {
		if old != nil {
			if k := strings.ToLower(userName(old.rec.Resource)); s.userByName[k] == id {
				delete(s.userByName, k)
			}
		} else {
			s.userOrder = append(s.userOrder, id)
		}
		s.userByName[strings.ToLower(userName(rec.Resource))] = id
		s.users[id] = e
		if old != nil && (displayName(old.rec.Resource) != displayName(rec.Resource) || userName(old.rec.Resource) != userName(rec.Resource)) {
			s.invalidateGroupsOf(id) // their renders show this user's display
		}
		return e
	}
	if old != nil {
		if k := strings.ToLower(displayName(old.rec.Resource)); s.groupByName[k] == id {
			delete(s.groupByName, k)
		}
	} else {
		s.groupOrder = append(s.groupOrder, id)
	}
	s.groupByName[strings.ToLower(displayName(rec.Resource))] = id
	s.groups[id] = e
	if diff == nil {
		delete(s.stale, id) // the general path dropped deleted members
	}
	renamed := old != nil && displayName(old.rec.Resource) != displayName(rec.Resource)
	if diff != nil && !renamed {
		for _, m := range diff.added {
			s.addMemberOf(m, id)
			s.invalidateUser(m)
		}
		for _, m := range diff.removed {
			s.removeMemberOf(m, id)
			s.invalidateUser(m)
		}
		return e
	}
	oldMembers := map[string]bool{}
	if old != nil {
		for _, m := range memberIDs(old.rec.Resource) {
			oldMembers[m] = true
		}
	}
	newMembers := map[string]bool{}
	for _, m := range memberIDs(rec.Resource) {
		newMembers[m] = true
		if !oldMembers[m] || renamed {
			s.addMemberOf(m, id)
			s.invalidateUser(m)
		}
	}
	for m := range oldMembers {
		if !newMembers[m] {
			s.removeMemberOf(m, id)
			s.invalidateUser(m)
		}
	}
	return e
}

// invalidateUser and invalidateGroupsOf drop cached renders that another resource's write
// makes stale: a user's render lists its groups, a group's hides deleted members. Call
// with s.mu held.
func (s *source) invalidateUser(id string) {
	if u := s.users[id]; u != nil {
		u.rendered.Store(nil)
	}
}

func (s *source) invalidateGroupsOf(userID string) {
	for gid := range s.memberOf[userID] {
		if g := s.groups[gid]; g != nil {
			g.rendered.Store(nil)
		}
	}
}

// tombstone moves a deleted user out of the live index. Call with s.mu held.
func (h *Handler) tombstone(s *source, old *entry, rec record) {
	id := old.id
	delete(s.users, id)
	if k := strings.ToLower(userName(old.rec.Resource)); s.userByName[k] == id {
		delete(s.userByName, k)
	}
	s.invalidateGroupsOf(id)
	delete(s.memberOf, id)
	s.tombs[id] = h.newEntry(s, userType, id, rec)
	s.userOrder = compact(s.userOrder, s.users)
}

// unindexGroup removes a deleted group. Call with s.mu held.
func (h *Handler) unindexGroup(s *source, old *entry) {
	id := old.id
	delete(s.groups, id)
	delete(s.stale, id)
	if k := strings.ToLower(displayName(old.rec.Resource)); s.groupByName[k] == id {
		delete(s.groupByName, k)
	}
	for _, m := range memberIDs(old.rec.Resource) {
		s.removeMemberOf(m, id)
		s.invalidateUser(m)
	}
	s.groupOrder = compact(s.groupOrder, s.groups)
}

// compact drops ids no longer in table once they are a good share of the order.
func compact(order []string, table map[string]*entry) []string {
	if len(order) < 2*len(table)+64 {
		return order
	}
	out := make([]string, 0, len(table))
	for _, id := range order {
		if _, ok := table[id]; ok {
			out = append(out, id)
		}
	}
	return out
}
