package scim

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/idsync/idsync/internal/logging"
	"github.com/idsync/idsync/reconcile"
)

// Source reads what one push source's IdP pushed, as the source's desired state.
type Source struct {
	name string
	h    *Handler
}

var (
	_ reconcile.Source     = (*Source)(nil)
	_ reconcile.UserSource = (*Source)(nil)
)

// NewSource returns the reconcile.Source (also a reconcile.UserSource) of push source name.
func NewSource(name string, h *Handler) reconcile.Source {
	return &Source{name: name, h: h}
}

// Name implements reconcile.Source.
func (src *Source) Name() string { return src.name }

func (src *Source) source() (*source, error) {
	if src.h == nil {
		return nil, fmt.Errorf("scim source %s: no listener", src.name)
	}
	s := src.h.sources[src.name]
	if s == nil {
		return nil, fmt.Errorf("scim source %s: not served by the SCIM listener (push not enabled?)", src.name)
	}
	if len(s.loadErrs) > 0 {
		// Without every stored resource the directory would miss users, and a pass would
		// take them for gone.
		return nil, fmt.Errorf("scim source %s: %d stored resources could not be read (first: %s)", src.name, len(s.loadErrs), s.loadErrs[0])
	}
	return s, nil
}

// Snapshot returns every pushed user and group. Users the IdP deleted are included as
// inactive (Modified = deletion time) until TombstoneRetention passes, unless a live user
// took their userName again. Expired tombstones are purged from the store here.
func (src *Source) Snapshot(ctx context.Context) (reconcile.Directory, error) {
	if err := ctx.Err(); err != nil {
		return reconcile.Directory{}, err
	}
	s, err := src.source()
	if err != nil {
		return reconcile.Directory{}, err
	}
	src.h.purge(s)
	dir := reconcile.Directory{Source: src.name, Users: []reconcile.User{}, Groups: []reconcile.Group{}}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, id := range s.userOrder {
		if e := s.users[id]; e != nil {
			dir.Users = append(dir.Users, s.toUser(e))
		}
	}
	// The newest tombstone per userName, only when no live user has that name.
	newest := map[string]*entry{}
	for _, t := range s.tombs {
		k := strings.ToLower(userName(t.rec.Resource))
		if _, live := s.userByName[k]; live {
			continue
		}
		if cur := newest[k]; cur == nil || t.rec.Deleted.After(*cur.rec.Deleted) {
			newest[k] = t
		}
	}
	tombs := make([]*entry, 0, len(newest))
	for _, t := range newest {
		tombs = append(tombs, t)
	}
	sort.Slice(tombs, func(i, j int) bool { return tombs[i].id < tombs[j].id })
	for _, t := range tombs {
		dir.Users = append(dir.Users, s.toUser(t))
	}
	for _, id := range s.groupOrder {
		if g := s.groups[id]; g != nil {
			dir.Groups = append(dir.Groups, reconcile.Group{Key: id, Name: displayName(g.rec.Resource)})
		}
	}
	return dir, nil
}

// User implements reconcile.UserSource: the live user with that userName, else the newest
// tombstone with it (as inactive), else an error wrapping reconcile.ErrUserNotFound.
func (src *Source) User(ctx context.Context, name string) (reconcile.User, error) {
	if err := ctx.Err(); err != nil {
		return reconcile.User{}, err
	}
	s, err := src.source()
	if err != nil {
		return reconcile.User{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	k := strings.ToLower(name)
	if id, ok := s.userByName[k]; ok {
		return s.toUser(s.users[id]), nil
	}
	var best *entry
	for _, t := range s.tombs {
		if strings.ToLower(userName(t.rec.Resource)) == k && (best == nil || t.rec.Deleted.After(*best.rec.Deleted)) {
			best = t
		}
	}
	if best != nil {
		return s.toUser(best), nil
	}
	return reconcile.User{}, fmt.Errorf("scim source %s: user %q: %w", src.name, name, reconcile.ErrUserNotFound)
}

// toUser converts an indexed user. Call with s.mu held.
func (s *source) toUser(e *entry) reconcile.User {
	res := e.rec.Resource
	u := reconcile.User{
		Key:         e.id,
		UserName:    userName(res),
		Email:       pickEmail(res),
		DisplayName: displayName(res),
		Active:      true,
		Modified:    e.rec.Modified,
	}
	if name, ok := res["name"].(map[string]any); ok {
		u.GivenName, _ = name["givenName"].(string)
		u.FamilyName, _ = name["familyName"].(string)
		if u.DisplayName == "" {
			u.DisplayName, _ = name["formatted"].(string)
		}
	}
	// A user pushed without "active" is active; "active": false deprovisions.
	if a, ok := res["active"].(bool); ok {
		u.Active = a
	}
	attrs := map[string]string{}
	for _, k := range []string{"externalId", "title", "userType", "nickName", "locale", "preferredLanguage", "timezone"} {
		if v, ok := res[k].(string); ok && v != "" {
			attrs[k] = v
		}
	}
	if ent, ok := res[SchemaEnterprise].(map[string]any); ok {
		for _, k := range []string{"employeeNumber", "costCenter", "organization", "division", "department"} {
			if v, ok := ent[k].(string); ok && v != "" {
				attrs[k] = v
			}
		}
		if m, ok := ent["manager"].(map[string]any); ok {
			if v, ok := m["value"].(string); ok && v != "" {
				attrs["manager"] = v
			}
		}
	}
	if len(attrs) > 0 {
		u.Attributes = attrs
	}
	if e.rec.Deleted != nil {
		u.Active = false
		u.Modified = *e.rec.Deleted
		return u
	}
	for gid := range s.memberOf[e.id] {
		if g := s.groups[gid]; g != nil {
			u.Groups = append(u.Groups, displayName(g.rec.Resource))
		}
	}
	sort.Strings(u.Groups)
	return u
}

// pickEmail chooses the primary email, else the work one, else the first.
func pickEmail(res map[string]any) string {
	var work, first string
	for _, el := range elements(res["emails"]) {
		m, _ := el.(map[string]any)
		v, _ := m["value"].(string)
		if v == "" {
			continue
		}
		if m["primary"] == true {
			return v
		}
		if t, _ := m["type"].(string); work == "" && strings.EqualFold(t, "work") {
			work = v
		}
		if first == "" {
			first = v
		}
	}
	if work != "" {
		return work
	}
	return first
}

// purge deletes tombstones older than the retention from the store and the index. A
// failed delete is logged and retried on the next purge.
func (h *Handler) purge(s *source) {
	cutoff := h.now().Add(-h.opts.TombstoneRetention)
	s.mu.RLock()
	var expired []string
	for id, t := range s.tombs {
		if t.rec.Deleted.Before(cutoff) {
			expired = append(expired, id)
		}
	}
	s.mu.RUnlock()
	for _, id := range expired {
		lock := s.stripe(userType, id)
		lock.Lock()
		if err := h.opts.Store.DeleteSCIM(s.name, TypeUser, id); err != nil {
			lock.Unlock()
			h.log.Warn().Err(err).Str(logging.FieldSource, s.name).Str("id", id).Msg("purging an expired SCIM tombstone failed; will retry")
			continue
		}
		s.mu.Lock()
		delete(s.tombs, id)
		s.mu.Unlock()
		lock.Unlock()
	}
}

// Purge removes tombstones older than the retention of every source now, as Snapshot does.
func (h *Handler) Purge() {
	for _, s := range h.sources {
		h.purge(s)
	}
}
