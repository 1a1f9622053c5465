package scim

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// Answers: SCIM errors and JSON bodies, ETags, and resources rendered as JSON (with the
// groups of a user, cached until it changes).

const contentType = "application/scim+json"

// writeError answers with a SCIM error body (RFC 7644 section 3.12).
func writeError(w http.ResponseWriter, e *Error) {
	body := map[string]any{
		"schemas": []string{schemaError},
		"status":  strconv.Itoa(e.Status),
		"detail":  e.Detail,
	}
	if e.ScimType != "" {
		body["scimType"] = e.ScimType
	}
	writeJSON(w, e.Status, body)
}

// writeJSON answers with v as application/scim+json.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	writeRaw(w, status, b)
}

// writeRaw answers with JSON already encoded.
func writeRaw(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// notFound is the answer about an id the source does not have.
func notFound(rt *resourceType, id string) *Error {
	return &Error{Status: http.StatusNotFound, Detail: fmt.Sprintf("%s %s not found", rt.Name, id)}
}

// etag is the weak ETag of a resource version, also its meta.version.
func etag(v uint64) string { return `W/"` + strconv.FormatUint(v, 10) + `"` }

// matchETag reports whether an If-Match / If-None-Match header names the current version.
// Weak and strong forms compare equal; "*" matches anything.
func matchETag(header string, version uint64) bool {
	want := strconv.FormatUint(version, 10)
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" {
			return true
		}
		t = strings.TrimPrefix(t, "W/")
		t = strings.Trim(t, `"`)
		if t == want {
			return true
		}
	}
	return false
}

// render returns the full JSON of an entry (users with their groups), cached.
func (h *Handler) render(s *source, rt *resourceType, e *entry) []byte {
	if b := e.rendered.Load(); b != nil {
		return *b
	}
	b, err := json.Marshal(h.fullView(s, rt, e))
	if err != nil {
		b = []byte(`{}`)
	}
	e.rendered.Store(&b)
	return b
}

// fullView is the entry's view plus, for users, the groups they are in, and for groups each
// member's display (RFC 7643 section 2.4: read-only, the member's displayName, else its
// userName), as IdPs' provisioning logs show it. Members deleted since the group was written
// are not shown. Call with s.mu held.
func (h *Handler) fullView(s *source, rt *resourceType, e *entry) map[string]any {
	if rt != userType {
		els := elements(e.rec.Resource["members"])
		if len(els) == 0 {
			return e.view
		}
		live := make([]any, 0, len(els))
		for _, el := range els {
			m, _ := el.(map[string]any)
			v, _ := m["value"].(string)
			u, ok := s.users[v]
			if !ok {
				continue
			}
			mv := shallow(m)
			if d := cmp.Or(displayName(u.rec.Resource), userName(u.rec.Resource)); d != "" {
				mv["display"] = d
			}
			live = append(live, mv)
		}
		v := shallow(e.view)
		setOrDelete(v, "members", nonEmptyList(live))
		return v
	}
	gids := s.memberOf[e.id]
	if len(gids) == 0 {
		return e.view
	}
	v := shallow(e.view)
	groups := make([]any, 0, len(gids))
	for _, gid := range sortedKeys(gids) {
		g := s.groups[gid]
		if g == nil {
			continue
		}
		groups = append(groups, map[string]any{
			"value": gid, "display": displayName(g.rec.Resource), "type": "direct",
			"$ref": h.location(s.name, "Groups/"+gid),
		})
	}
	if len(groups) > 0 {
		v["groups"] = groups
	}
	return v
}

// shallow copies a map's top level.
func shallow(m map[string]any) map[string]any {
	out := make(map[string]any, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// sortedKeys returns a set's members, sorted.
func sortedKeys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
