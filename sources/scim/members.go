package scim

import (
	"encoding/json"
	"strings"

	"github.com/idsync/idsync/sources/scim/filter"
)

// IdPs change group membership one PATCH at a time, on groups that may hold many thousand
// members. The general PATCH path copies, re-validates and compares the whole group; the
// member fast path below touches only the members named by the request, so a member change
// costs little more than the store write.

// memberFastPath applies ops to a group by memberPatch, and checks the members it adds.
// ok is false, and the general path applies ops, for users, for ops memberPatch does not
// take, and for a stale group (one still listing a deleted user; the general path drops
// such members). isMember, when set, says whether old has a member (memberPatchWith).
func (s *source) memberFastPath(rt *resourceType, id string, old *entry, ops []patchOp, isMember func(foldedID string) bool) (res map[string]any, diff *memberDiff, ok bool, err *Error) {
	if rt != groupType {
		return nil, nil, false, nil
	}
	s.mu.RLock()
	stale := s.stale[id]
	s.mu.RUnlock()
	if stale {
		return nil, nil, false, nil
	}
	res, d, ok, err := memberPatchWith(old.rec.Resource, ops, isMember)
	if !ok {
		return nil, nil, false, nil
	}
	if err == nil {
		err = s.checkAdded(d.added)
	}
	return res, &d, true, err
}

// memberDiff is what a member PATCH changed.
type memberDiff struct {
	added, removed []string // member ids
}

// memberStep is one member PATCH operation: members to add, or (lower-cased) ids to remove.
type memberStep struct {
	add    []any
	remove map[string]bool
}

// memberSteps reads ops as member steps, in order: ok is false at the first op that is not
// a member addition or removal, err is set (ok true) at the first one whose value is invalid.
func memberSteps(ops []patchOp) (steps []memberStep, ok bool, err *Error) {
	steps = make([]memberStep, 0, len(ops))
	membersAttr := groupSchema.attr("members")
	for _, op := range ops {
		path := strings.TrimSpace(op.Path)
		switch {
		case op.Op == "add" && strings.EqualFold(path, "members") && op.HasValue:
			nv, nerr := normalizeValue(membersAttr, op.Value, "members")
			if nerr != nil {
				return nil, true, nerr
			}
			steps = append(steps, memberStep{add: elements(nv)})
		case op.Op == "remove" && strings.EqualFold(path, "members") && op.HasValue:
			nv, nerr := normalizeValue(membersAttr, op.Value, "members")
			if nerr != nil {
				return nil, true, nerr
			}
			rm := map[string]bool{}
			for _, el := range elements(nv) {
				m, _ := el.(map[string]any)
				if v, _ := m["value"].(string); v != "" {
					rm[foldID(v)] = true
				}
			}
			steps = append(steps, memberStep{remove: rm})
		case op.Op == "remove" && path != "":
			id, isValueEq := memberValueFilter(path)
			if !isValueEq {
				return nil, false, nil
			}
			steps = append(steps, memberStep{remove: map[string]bool{foldID(id): true}})
		default:
			return nil, false, nil
		}
	}
	return steps, true, nil
}

// memberPatch applies ops when every one of them is a member addition ("add" with path
// "members") or removal ("remove" with path members[value eq "id"], or path "members" and
// a value list). ok is false for anything else, and the caller takes the general path.
// res shares unchanged members with old, which is never modified.
func memberPatch(old map[string]any, ops []patchOp) (res map[string]any, diff memberDiff, ok bool, err *Error) {
	return memberPatchWith(old, ops, nil)
}

// memberIndex is the set of the folded member ids of list for a bulk request, nil for a
// typical one: membership is then looked up by scanning for its few ids, as a map of a large
// group costs more than a few scans.
func memberIndex(list []any, steps []memberStep) map[string]bool {
	nvals := 0
	for _, st := range steps {
		nvals += len(st.add) + len(st.remove)
	}
	if nvals <= 8 {
		return nil
	}
	present := make(map[string]bool, len(list))
	for _, el := range list {
		if v := memberValue(el); v != "" {
			present[foldID(v)] = true
		}
	}
	return present
}

// memberPatchWith is memberPatch where isMember, when set, says whether old has a member
// (by lower-cased id): an addition is then checked without scanning old's list, which for a
// large group is most of the cost of a member PATCH. Removals still scan, as they rebuild
// the list anyway.
func memberPatchWith(old map[string]any, ops []patchOp, isMember func(foldedID string) bool) (res map[string]any, diff memberDiff, ok bool, err *Error) {
	steps, ok, err := memberSteps(ops)
	if !ok || err != nil {
		return nil, memberDiff{}, ok, err
	}
	list := elements(old["members"])
	present := memberIndex(list, steps)
	cur := list
	copied := false
	var net netChanges
	has := func(v string) bool {
		if present != nil {
			return present[v]
		}
		for _, el := range cur {
			if foldID(memberValue(el)) == v {
				return true
			}
		}
		return false
	}
	// local records what this patch changed, in front of isMember (which describes old).
	var local map[string]bool
	hasAdded := has
	if isMember != nil && present == nil {
		local = map[string]bool{}
		hasAdded = func(v string) bool {
			if in, ok := local[v]; ok {
				return in
			}
			return isMember(v)
		}
	}
	for _, st := range steps {
		for _, el := range st.add {
			v := memberValue(el)
			if v == "" {
				return nil, memberDiff{}, true, badRequest(errInvalidValue, "a member to add has no value (the member's id)")
			}
			if hasAdded(foldID(v)) {
				continue
			}
			if local != nil {
				local[foldID(v)] = true
			}
			if !copied {
				cur = append(make([]any, 0, len(list)+len(st.add)), list...)
				copied = true
			}
			cur = append(cur, el)
			if present != nil {
				present[foldID(v)] = true
			}
			net.note(v, true)
		}
		if len(st.remove) == 0 {
			continue
		}
		hit := false
		for v := range st.remove {
			if has(v) {
				hit = true
				break
			}
		}
		if !hit {
			continue // removing a non-member succeeds and changes nothing
		}
		keep := make([]any, 0, len(cur))
		for _, el := range cur {
			v := memberValue(el)
			if st.remove[foldID(v)] {
				if present != nil {
					delete(present, foldID(v))
				}
				if local != nil {
					local[foldID(v)] = false
				}
				net.note(v, false)
				continue
			}
			keep = append(keep, el)
		}
		cur, copied = keep, true
	}
	if !copied {
		return old, memberDiff{}, true, nil
	}
	res = shallow(old)
	setOrDelete(res, "members", nonEmptyList(cur))
	return res, net.diff(), true, nil
}

// netChanges turns a sequence of member additions and removals into the net change: a
// member removed and added again (or added and removed) within it is in neither list.
// Additions are only of absent members and removals only of present ones, so the first
// change of a member says whether it was there before.
type netChanges struct {
	order   []string // lower-cased ids, in the order first changed
	changes map[string]*netChange
}

type netChange struct {
	id           string
	was, present bool
}

func (n *netChanges) note(id string, present bool) {
	k := foldID(id)
	c := n.changes[k]
	if c == nil {
		if n.changes == nil {
			n.changes = map[string]*netChange{}
		}
		c = &netChange{id: id, was: !present}
		n.changes[k] = c
		n.order = append(n.order, k)
	}
	c.present = present
}

func (n *netChanges) diff() memberDiff {
	var d memberDiff
	for _, k := range n.order {
		switch c := n.changes[k]; {
		case c.present && !c.was:
			d.added = append(d.added, c.id)
		case !c.present && c.was:
			d.removed = append(d.removed, c.id)
		}
	}
	return d
}

func memberValue(el any) string {
	m, _ := el.(map[string]any)
	v, _ := m["value"].(string)
	return v
}

// memberValueFilter recognizes members[value eq "id"].
func memberValueFilter(path string) (string, bool) {
	p, err := filter.ParsePath(path)
	if err != nil || p.Filter == nil || p.Sub != "" || p.Attr.URI != "" || p.Attr.Sub != "" || !strings.EqualFold(p.Attr.Name, "members") {
		return "", false
	}
	x, ok := p.Filter.(*filter.AttrExpr)
	if !ok || x.Op != filter.OpEq || x.Path.URI != "" || x.Path.Sub != "" || !strings.EqualFold(x.Path.Name, "value") {
		return "", false
	}
	v, ok := x.Value.(string)
	return v, ok
}

// checkAdded verifies that newly added members are live users of this source.
func (s *source) checkAdded(ids []string) *Error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, v := range ids {
		if _, ok := s.users[v]; ok {
			continue
		}
		if _, isGroup := s.groups[v]; isGroup {
			return badRequest(errInvalidValue, "member %s is a group; nested groups are not supported", v)
		}
		return badRequest(errInvalidValue, "no user with id %q in this source", v)
	}
	return nil
}

// appendMembersJSON appends a normalized members list as JSON, fast: members hold only the
// string sub-attributes $ref, display, type and value, written in sorted key order as
// encoding/json would. ok is false for anything else.
func appendMembersJSON(b []byte, list []any) ([]byte, bool) {
	keys := [...]string{"$ref", "display", "type", "value"}
	b = append(b, '[')
	for i, el := range list {
		m, isMap := el.(map[string]any)
		if !isMap {
			return nil, false
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		n := 0
		for _, k := range keys {
			v, has := m[k]
			if !has {
				continue
			}
			s, isStr := v.(string)
			if !isStr {
				return nil, false
			}
			if n > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONString(b, s)
			n++
		}
		if n != len(m) {
			return nil, false // an attribute this encoder does not know
		}
		b = append(b, '}')
	}
	return append(b, ']'), true
}

// appendJSONString writes s as encoding/json does (which escapes <, > and &).
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
