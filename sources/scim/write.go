package scim

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"sync"

	"github.com/idsync/idsync/internal/logging"
)

// Writes follow one protocol so that concurrent clients are both safe and fast:
//
//  1. writes to one resource are serialized by its stripe lock, held to the end;
//  2. under s.mu the new state is checked against the index (uniqueness, members) and the
//     new name is reserved, so a concurrent write cannot take it meanwhile;
//  3. the record is written to the store without holding s.mu (the store batches
//     concurrent writers into one transaction), and only then
//  4. the index is updated and the answer sent. A store failure changes nothing.
//
// Updates (PUT and PATCH) of one resource that arrive while an earlier one is being stored
// are applied in order and stored together, in one transaction (groupcommit.go): a group
// many clients add members to at once costs one disk sync per batch, not per member.

var errClosed = &Error{Status: http.StatusServiceUnavailable, Detail: "the SCIM listener is shutting down; retry later"}

// errNotStored answers a write the store refused: nothing was changed.
var errNotStored = &Error{Status: http.StatusInternalServerError, Detail: "the resource could not be stored durably; nothing was changed, retry later"}

// storeFailed logs a write the store refused and answers 500: nothing was changed.
func (h *Handler) storeFailed(w http.ResponseWriter, s *source, what string, err error) {
	h.log.Error().Err(err).Str(logging.FieldSource, s.name).Msg("SCIM " + what + " not stored")
	writeError(w, errNotStored)
}

// stripe is the lock that serializes writes to one resource (step 1 above).
func (s *source) stripe(rt *resourceType, id string) *sync.Mutex {
	f := fnv.New32a()
	_, _ = f.Write([]byte(id))
	if rt == userType {
		return &s.userStripes[f.Sum32()%uint32(len(s.userStripes))]
	}
	return &s.groupStripes[f.Sum32()%uint32(len(s.groupStripes))]
}

// newID returns a random (version 4) UUID, the id of a created resource.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// readBody reads a write request's body within the size cap, checking its content type,
// and logs it (secrets redacted) at debug level.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request, s *source) (map[string]any, *Error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/scim+json" && mt != "application/json") {
			return nil, &Error{Status: http.StatusUnsupportedMediaType, Detail: fmt.Sprintf("content type %q is not supported; send application/scim+json or application/json", ct)}
		}
	}
	if r.ContentLength > h.opts.MaxBodyBytes {
		return nil, &Error{Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("the request body is larger than %d bytes", h.opts.MaxBodyBytes)}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &Error{Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("the request body is larger than %d bytes", h.opts.MaxBodyBytes)}
		}
		return nil, badRequest(errInvalidSyntax, "reading the request body: %v", err)
	}
	m, derr := decodeBody(body)
	if ev := h.log.Debug(); ev.Enabled() {
		ev = ev.Str(logging.FieldSource, s.name).Str("method", r.Method).Str("path", r.URL.Path)
		if derr == nil {
			if b, err := json.Marshal(redact(m)); err == nil {
				ev = ev.RawJSON("body", b)
			}
		} else {
			ev = ev.Int("body_bytes", len(body)).Str("error", derr.Detail)
		}
		ev.Msg("SCIM request body")
	}
	return m, derr
}

// nameKey is the reservation key of a resource's unique name.
func nameKey(rt *resourceType, res map[string]any) string {
	if rt == userType {
		return "u:" + strings.ToLower(userName(res))
	}
	return "g:" + strings.ToLower(displayName(res))
}

// conflict reports whether key is taken by another resource or reserved. Call with s.mu held.
func (s *source) conflict(key, selfID string) bool {
	if s.reserved[key] > 0 {
		return true
	}
	name := key[2:]
	var id string
	var ok bool
	if strings.HasPrefix(key, "u:") {
		id, ok = s.userByName[name]
	} else {
		id, ok = s.groupByName[name]
	}
	return ok && id != selfID
}

func uniquenessError(rt *resourceType, res map[string]any) *Error {
	if rt == userType {
		return &Error{Status: http.StatusConflict, ScimType: errUniqueness, Detail: fmt.Sprintf("userName %q is already taken (userName is unique, case-insensitively)", userName(res))}
	}
	return &Error{Status: http.StatusConflict, ScimType: errUniqueness, Detail: fmt.Sprintf("a group named %q already exists (displayName is unique, case-insensitively)", displayName(res))}
}

// checkMembers verifies that every member of a group is a live user of this source. A
// member the group already had (old) whose user has since been deleted is dropped rather
// than refused, so IdPs that echo a group's member list can still write it.
func (s *source) checkMembers(res, old map[string]any) *Error {
	had := map[string]bool{}
	for _, id := range memberIDs(old) {
		had[id] = true
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	list := elements(res["members"])
	keep := list[:0:0]
	for i, el := range list {
		m, _ := el.(map[string]any)
		v, _ := m["value"].(string)
		if v == "" {
			return badRequest(errInvalidValue, "members[%d] has no value (the member's id)", i)
		}
		if t, ok := m["type"].(string); ok && t != "" && !strings.EqualFold(t, "User") {
			return badRequest(errInvalidValue, "members[%d] has type %q; only users can be members (nested groups are not supported)", i, t)
		}
		if _, ok := s.users[v]; !ok {
			if had[v] {
				continue
			}
			if _, isGroup := s.groups[v]; isGroup {
				return badRequest(errInvalidValue, "members[%d]: %s is a group; nested groups are not supported", i, v)
			}
			return badRequest(errInvalidValue, "members[%d]: no user with id %q in this source", i, v)
		}
		keep = append(keep, el)
	}
	if len(keep) != len(list) {
		setOrDelete(res, "members", nonEmptyList(keep))
	}
	return nil
}

func (h *Handler) put(s *source, rt *resourceType, id string, rec record) error {
	data, err := encodeRecord(rec)
	if err != nil {
		return err
	}
	if err := h.opts.Store.PutSCIM(Resource{Source: s.name, Type: rt.Name, ID: id, Data: data}); err != nil {
		return fmt.Errorf("storing %s %s of source %s: %w", rt.Name, id, s.name, err)
	}
	return nil
}

// store writes a user, or a group in its layout (buckets.go).
func (h *Handler) store(s *source, rt *resourceType, id string, old, rec *record, diff *memberDiff) error {
	if rt == groupType {
		return h.putGroup(s, id, old, rec, diff)
	}
	return h.put(s, rt, id, *rec)
}

// acceptWrite begins every write: after Close it answers 503, and it reads the request body
// when the write has one (POST, PUT, PATCH). It answers errors itself; ok is false when the
// request is done.
func (h *Handler) acceptWrite(w http.ResponseWriter, r *http.Request, s *source, withBody bool) (body map[string]any, ok bool) {
	if h.closed.Load() {
		writeError(w, errClosed)
		return nil, false
	}
	if !withBody {
		return nil, true
	}
	body, berr := h.readBody(w, r, s)
	if berr != nil {
		writeError(w, berr)
		return nil, false
	}
	return body, true
}

// target is the resource a DELETE removes, as openWrite found it.
type target struct {
	old  *entry      // the resource before the write
	lock *sync.Mutex // the resource's stripe lock, held; the caller unlocks it when done
}

// openWrite opens a DELETE of resource id: acceptWrite, then the resource's stripe lock, the
// resource as this source's index has it (404 when it has none, which is also what an id of
// another source gets) and the If-Match precondition (412). It answers errors itself; when
// ok, the caller holds t.lock. (PUT and PATCH go through update, groupcommit.go.)
func (h *Handler) openWrite(w http.ResponseWriter, r *http.Request, s *source, rt *resourceType, id string) (t target, ok bool) {
	if _, ok := h.acceptWrite(w, r, s, false); !ok {
		return target{}, false
	}
	lock := s.stripe(rt, id)
	lock.Lock()
	s.mu.RLock()
	old := s.table(rt)[id]
	s.mu.RUnlock()
	var werr *Error
	if old == nil {
		werr = notFound(rt, id)
	} else if im := r.Header.Get("If-Match"); im != "" && !matchETag(im, old.rec.Version) {
		werr = &Error{Status: http.StatusPreconditionFailed, Detail: fmt.Sprintf("%s %s has changed: its version is %s", rt.Name, id, etag(old.rec.Version))}
	}
	if werr != nil {
		writeError(w, werr)
		lock.Unlock()
		return target{}, false
	}
	return target{old: old, lock: lock}, true
}

func (h *Handler) create(w http.ResponseWriter, r *http.Request, s *source, rt *resourceType) {
	body, ok := h.acceptWrite(w, r, s, true)
	if !ok {
		return
	}
	res, nerr := normalize(rt, body)
	if nerr != nil {
		writeError(w, nerr)
		return
	}
	if rt == groupType {
		if err := s.checkMembers(res, nil); err != nil {
			writeError(w, err)
			return
		}
	}
	key := nameKey(rt, res)
	if !s.reserve(key, "") {
		writeError(w, uniquenessError(rt, res))
		return
	}

	now := h.now().UTC()
	id := newID()
	rec := record{Version: 1, Created: now, Modified: now, Resource: res}
	if err := h.store(s, rt, id, nil, &rec, nil); err != nil {
		s.release(key)
		h.storeFailed(w, s, "create", err)
		return
	}
	s.mu.Lock()
	s.unreserve(key)
	e := h.index(s, rt, id, nil, rec, nil)
	b := h.render(s, rt, e)
	s.mu.Unlock()
	h.touch(s, rt, nil, res, nil)
	h.logWrite(s, rt, "created", id, res)

	w.Header().Set("Location", e.view["meta"].(map[string]any)["location"].(string))
	w.Header().Set("ETag", etag(rec.Version))
	writeRaw(w, http.StatusCreated, b)
}

// reserve holds key for a write in flight (step 2 above), unless another resource than
// selfID has or holds it.
func (s *source) reserve(key, selfID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conflict(key, selfID) {
		return false
	}
	s.reserved[key]++
	return true
}

// release drops one reservation of key.
func (s *source) release(key string) {
	s.mu.Lock()
	s.unreserve(key)
	s.mu.Unlock()
}

// unreserve drops one reservation of key. Call with s.mu held.
func (s *source) unreserve(key string) {
	s.reserved[key]--
	if s.reserved[key] <= 0 {
		delete(s.reserved, key)
	}
}

// revise computes what a PUT (body is the new resource) or a PATCH (body holds the
// operations) makes of old, and checks a group's members. diff is set when the member fast
// path (members.go) applied; changed is false when the write would change nothing.
// isMember, when set, says whether old has a member (memberPatchWith).
func (s *source) revise(rt *resourceType, id string, old *entry, body map[string]any, patch bool, isMember func(foldedID string) bool) (res map[string]any, diff *memberDiff, changed bool, err *Error) {
	if patch {
		ops, perr := parsePatch(body)
		if perr != nil {
			return nil, nil, false, perr
		}
		if fres, d, ok, ferr := s.memberFastPath(rt, id, old, ops, isMember); ok {
			if ferr != nil {
				return nil, nil, false, ferr
			}
			return fres, d, len(d.added)+len(d.removed) > 0, nil
		}
		res, err = applyPatch(rt, old.rec.Resource, id, ops)
	} else {
		if v, ok := getFold(body, "id"); ok && v != nil && v != any(id) {
			return nil, nil, false, badRequest(errMutability, "id is read-only: the body's id %v differs from %s", v, id)
		}
		res, err = normalize(rt, body)
	}
	if err != nil {
		return nil, nil, false, err
	}
	if rt == groupType {
		if merr := s.checkMembers(res, old.rec.Resource); merr != nil {
			return nil, nil, false, merr
		}
	}
	return res, nil, !reflect.DeepEqual(res, old.rec.Resource), nil
}

// answerUpdate answers a PUT with the resource, a user PATCH with the resource, and a group
// PATCH with 204 unless attributes were asked for (RFC 7644 3.5.2 allows either; a large
// group is costly to send back on every member change).
func (h *Handler) answerUpdate(w http.ResponseWriter, r *http.Request, s *source, rt *resourceType, e *entry, patch bool) {
	w.Header().Set("ETag", etag(e.rec.Version))
	q := r.URL.Query()
	if patch && rt == groupType && q.Get("attributes") == "" && q.Get("excludedAttributes") == "" {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	proj, perr := parseProjection(q, rt)
	if perr != nil {
		proj = projection{}
	}
	s.mu.RLock()
	var b []byte
	if proj.empty() {
		b = h.render(s, rt, e)
	} else {
		b = mustJSON(proj.apply(h.fullView(s, rt, e)))
	}
	s.mu.RUnlock()
	writeRaw(w, http.StatusOK, b)
}

func (h *Handler) delete(w http.ResponseWriter, r *http.Request, s *source, rt *resourceType, id string) {
	t, ok := h.openWrite(w, r, s, rt, id)
	if !ok {
		return
	}
	defer t.lock.Unlock()
	old := t.old
	now := h.now().UTC()
	if rt == userType {
		rec := old.rec
		rec.Version++
		rec.Modified = now
		rec.Deleted = &now
		if err := h.put(s, rt, id, rec); err != nil {
			h.storeFailed(w, s, "delete", err)
			return
		}
		s.mu.Lock()
		gids := sortedKeys(s.memberOf[id])
		h.tombstone(s, old, rec)
		s.mu.Unlock()
		h.leaveGroups(s, id, gids)
	} else {
		if err := h.deleteGroup(s, id, old.rec); err != nil {
			h.storeFailed(w, s, "delete", err)
			return
		}
		s.mu.Lock()
		h.unindexGroup(s, old)
		s.mu.Unlock()
	}
	h.touch(s, rt, old.rec.Resource, nil, nil)
	h.logWrite(s, rt, "deleted", id, old.rec.Resource)
	w.WriteHeader(http.StatusNoContent)
}

// leaveGroups removes a deleted user from the groups it was in, as RFC 7643 expects of a
// service provider. It is best effort: a group that cannot be written keeps the id, which
// reads hide and the group's next write drops (checkMembers).
func (h *Handler) leaveGroups(s *source, userID string, gids []string) {
	for _, gid := range gids {
		lock := s.stripe(groupType, gid)
		lock.Lock()
		s.mu.RLock()
		old := s.groups[gid]
		s.mu.RUnlock()
		if old == nil {
			lock.Unlock()
			continue
		}
		res, _ := deepCopy(old.rec.Resource).(map[string]any)
		var keep []any
		for _, el := range elements(res["members"]) {
			if m, _ := el.(map[string]any); m["value"] != userID {
				keep = append(keep, el)
			}
		}
		setOrDelete(res, "members", nonEmptyList(keep))
		rec := record{Version: old.rec.Version + 1, Created: old.rec.Created, Modified: h.now().UTC(), Resource: res}
		if err := h.putGroup(s, gid, &old.rec, &rec, &memberDiff{removed: []string{userID}}); err != nil {
			s.mu.Lock()
			s.stale[gid] = true
			s.mu.Unlock()
			h.log.Warn().Err(err).Str(logging.FieldSource, s.name).Str("group", gid).Msg("removing a deleted user from a group failed; reads hide it")
			lock.Unlock()
			continue
		}
		s.mu.Lock()
		h.index(s, groupType, gid, old, rec, &memberDiff{removed: []string{userID}})
		s.mu.Unlock()
		lock.Unlock()
	}
}

// logWrite records each stored write at info level: what an IdP pushed is an audit fact.
func (h *Handler) logWrite(s *source, rt *resourceType, what, id string, res map[string]any) {
	ev := h.log.Info().Str(logging.FieldSource, s.name).Str("type", rt.Name).Str("id", id)
	if rt == userType {
		ev = ev.Str(logging.FieldUser, userName(res))
		if a, ok := res["active"].(bool); ok {
			ev = ev.Bool("active", a)
		}
	} else {
		ev = ev.Str("group", displayName(res)).Int("members", len(elements(res["members"])))
	}
	ev.Msg("SCIM " + strings.ToLower(rt.Name) + " " + what)
}
