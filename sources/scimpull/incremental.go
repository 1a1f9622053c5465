package scimpull

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/idsync/idsync/reconcile"
)

// Incremental reads. Between full reads the runner asks for incremental ones
// (reconcile.IsFullRead). When this source holds a complete read from earlier in this
// process and the server's /ServiceProviderConfig says filter.supported, it reads:
//
//  1. the users and the groups (with members) whose meta.lastModified is later than the
//     start of its last complete read, less skewMargin;
//  2. then every user id and every group id (attributes=id), which finds the deleted ones:
//     a filter cannot show what is gone, and a leaver must not keep access until the next
//     full read;
//  3. then, one by one, any listed id it neither holds nor got from the filter (created
//     while it read, or a change the filter missed), up to maxFetch.
//
// and merges them into what it holds: a deleted user or group is dropped (and removed from
// the member lists and groups attributes that still name it), a changed one replaced, a new
// one added. The merged directory passes the checks a full read passes (Unknown means no,
// unique names, members that exist) or the read fails and what the source holds stays as it
// was; the next read is then full.
//
// Memberships: a full read takes the union of the groups' member lists and the users' groups
// attribute. In a merged directory they may come from different reads; a group's member list
// read later than a user decides that user's membership in it (a member removed from a group
// bumps the group's lastModified, not necessarily the user's), unless the group was sent
// without a members attribute, which says nothing.
//
// A server that rejects the filter or the id listing (400, except tooMany, or 501) makes the
// source read in full for the rest of the process, with one warning. A server whose
// meta.lastModified does not move on some change is read right by the next full read only.

// skewMargin is how far before the start of the last complete read an incremental read
// looks. The filter compares the server's lastModified stamps with a time taken from this
// host's clock, so the margin covers the difference between the two clocks, and the time a
// server may take between stamping a change and showing it in its listings (a slow
// transaction, a replica or search index that lags). Reading a few minutes again costs
// little: only what changed in them.
const skewMargin = 5 * time.Minute

// maxFetch bounds how many listed ids one incremental read fetches one by one; beyond it the
// read fails (and the next one is full).
const maxFetch = 100

// maxIDPage caps the count of an id listing's pages.
const maxIDPage = 1000

// errReadInFull says a read must be full: asked for, or an incremental one cannot be made.
var errReadInFull = errors.New("read in full")

// incremental is what a Source keeps between reads. It is used under Source.readMu.
type incremental struct {
	// configured is set once /ServiceProviderConfig was read; off once incremental reads
	// are out for the rest of the process.
	configured, off bool
	// idPage is the count asked for in the user id listing.
	idPage int
	// fullNext makes the next read full (set after a failed read).
	fullNext bool
	// held is the last complete read; nil before one, and while off.
	held *held
}

// held is a complete read: the resources as the server sent them, in listing order, each
// with the generation of the read that got it.
type held struct {
	start  time.Time // when the read that completed it started
	gen    int
	users  []heldUser
	groups []heldGroup
}

type heldUser struct {
	u   scimUser
	gen int
}

type heldGroup struct {
	g   scimGroup
	gen int
}

// heldFull records a full read that started at start, unless incremental reads are off.
func (in *incremental) heldFull(users []scimUser, groups []scimGroup, start time.Time) {
	in.fullNext = false
	if in.off {
		return
	}
	gen := 1
	if in.held != nil {
		gen = in.held.gen + 1
	}
	h := &held{start: start, gen: gen, users: make([]heldUser, len(users)), groups: make([]heldGroup, len(groups))}
	for i, u := range users {
		h.users[i] = heldUser{u, gen}
	}
	for i, g := range groups {
		h.groups[i] = heldGroup{g, gen}
	}
	in.held = h
}

// failed notes a failed read: the next one is full.
func (in *incremental) failed() { in.fullNext = true }

// generations says which read each user and group of a merged directory comes from,
// parallel to the slices given to assemble.
type generations struct{ users, groups []int }

// groupDecides reports whether group gi's member list decides whether user ui is in it: the
// group was read later than the user, and had a members attribute.
func (g *generations) groupDecides(ui, gi int, hasMembers bool) bool {
	return g != nil && hasMembers && g.groups[gi] > g.users[ui]
}

// spConfig is the part of /ServiceProviderConfig this source reads.
type spConfig struct {
	Filter *struct {
		Supported  flexBool   `json:"supported"`
		MaxResults flexString `json:"maxResults"`
	} `json:"filter"`
}

// idOnly is a resource of an id listing.
type idOnly struct {
	ID flexString `json:"id"`
}

// readIncremental makes an incremental read when ctx asks for one and the source can; it
// returns errReadInFull when the read must be full instead.
func (s *Source) readIncremental(ctx context.Context, start time.Time) (reconcile.Directory, error) {
	in := &s.inc
	if reconcile.IsFullRead(ctx) || in.off || in.held == nil || in.fullNext {
		return reconcile.Directory{}, errReadInFull
	}
	if !in.configured {
		if err := s.configure(ctx); err != nil {
			return reconcile.Directory{}, err
		}
		if in.off {
			return reconcile.Directory{}, errReadInFull
		}
	}
	dir, h, err := s.readChanges(ctx, start)
	var se *Error
	switch {
	case errors.As(err, &se) && rejected(se):
		s.log.Warn().Err(err).Msg("the SCIM server refused a request of an incremental read (meta.lastModified filter, or attributes=id); every read of this source is full from now on")
		in.off, in.held = true, nil
		return reconcile.Directory{}, errReadInFull
	case errors.As(err, &se) && se.HTTPStatus == http.StatusBadRequest && se.SCIMType == "tooMany":
		s.log.Info().Err(err).Msg("the SCIM server finds too many changes for a filter; reading in full")
		return reconcile.Directory{}, errReadInFull
	case err != nil:
		in.failed()
		return reconcile.Directory{}, err
	}
	in.held = h
	return dir, nil
}

// rejected reports whether an answer says the server does not take a request of an
// incremental read at all (rather than failing it this time).
func rejected(se *Error) bool {
	return (se.HTTPStatus == http.StatusBadRequest && se.SCIMType != "tooMany") || se.HTTPStatus == http.StatusNotImplemented
}

// configure reads /ServiceProviderConfig once: incremental reads need filter.supported. A
// server without the endpoint, or without filtering, is read in full from then on; one that
// fails to answer is asked again at the next incremental read, and this one is full.
func (s *Source) configure(ctx context.Context) error {
	in := &s.inc
	var spc spConfig
	err := s.c.get(ctx, "/ServiceProviderConfig", "", &spc)
	var se *Error
	switch {
	case errors.As(err, &se) && (se.HTTPStatus == http.StatusNotFound || se.HTTPStatus == http.StatusMethodNotAllowed || rejected(se)):
		s.log.Warn().Err(err).Msg("the SCIM server has no /ServiceProviderConfig to say it supports filtering; every read of this source is full")
		in.configured, in.off, in.held = true, true, nil
		return nil
	case err != nil:
		s.log.Debug().Err(err).Msg("reading /ServiceProviderConfig failed; this read is full")
		return errReadInFull
	case spc.Filter == nil || !spc.Filter.Supported.value:
		s.log.Info().Msg("the SCIM server does not support filtering (ServiceProviderConfig filter.supported); every read of this source is full")
		in.configured, in.off, in.held = true, true, nil
		return nil
	}
	in.configured = true
	in.idPage = s.pageSize
	// The user id listing's resources are tiny: its pages may be as large as the server
	// allows.
	if m, err := strconv.Atoi(string(spc.Filter.MaxResults)); err == nil && m > in.idPage {
		in.idPage = min(m, maxIDPage)
	}
	return nil
}

// readChanges reads what changed since the held read and merges it. It changes nothing in s.
func (s *Source) readChanges(ctx context.Context, start time.Time) (reconcile.Directory, *held, error) {
	h := s.inc.held
	since := h.start.Add(-skewMargin).UTC().Truncate(time.Second).Format(time.RFC3339)
	q := url.Values{}
	q.Set("filter", `meta.lastModified gt "`+since+`"`)
	filter := q.Encode()

	var (
		users    []scimUser
		groups   []scimGroup
		userIDs  []idOnly
		groupIDs []idOnly
	)
	// The filtered reads first, then the id listings: a resource deleted while the filtered
	// reads ran is then seen as deleted.
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		users, err = readAll(gctx, s.c, "users modified since "+since, "/Users", filter, s.pageSize, s.maxObjects, func(u scimUser) string { return string(u.ID) })
		return err
	})
	g.Go(func() (err error) {
		groups, err = readAll(gctx, s.c, "groups modified since "+since, "/Groups", filter, s.pageSize, s.maxObjects, func(g scimGroup) string { return string(g.ID) })
		return err
	})
	if err := g.Wait(); err != nil {
		return reconcile.Directory{}, nil, err
	}
	g, gctx = errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		userIDs, err = readAll(gctx, s.c, "user ids", "/Users", "attributes=id", s.inc.idPage, s.maxObjects, func(r idOnly) string { return string(r.ID) })
		return err
	})
	g.Go(func() (err error) {
		// Groups keep page_size: a server that ignores attributes sends their members.
		groupIDs, err = readAll(gctx, s.c, "group ids", "/Groups", "attributes=id", s.pageSize, s.maxObjects, func(r idOnly) string { return string(r.ID) })
		return err
	})
	if err := g.Wait(); err != nil {
		return reconcile.Directory{}, nil, err
	}

	gen := h.gen + 1
	m := merge{gen: gen}
	m.users(h.users, users, userIDs)
	m.groups(h.groups, groups, groupIDs)
	if n := len(m.missingUsers) + len(m.missingGroups); n > maxFetch {
		return reconcile.Directory{}, nil, fmt.Errorf("%w: %d resources are listed by id but were neither held nor returned by the meta.lastModified filter (at most %d are fetched one by one), e.g. %s: the server's filter may miss changes",
			ErrIncomplete, n, maxFetch, describeIDs(append(m.missingUsers[:len(m.missingUsers):len(m.missingUsers)], m.missingGroups...)))
	}
	for _, id := range m.missingUsers {
		var u scimUser
		found, err := s.fetch(ctx, "/Users/", id, &u)
		if err != nil {
			return reconcile.Directory{}, nil, err
		}
		if found {
			if string(u.ID) != id {
				return reconcile.Directory{}, nil, fmt.Errorf("%w: GET /Users/%s answered user %q", ErrIncomplete, id, string(u.ID))
			}
			m.out.users = append(m.out.users, heldUser{u, gen})
		} else {
			m.goneUsers[id] = true
		}
	}
	for _, id := range m.missingGroups {
		var gr scimGroup
		found, err := s.fetch(ctx, "/Groups/", id, &gr)
		if err != nil {
			return reconcile.Directory{}, nil, err
		}
		if found {
			if string(gr.ID) != id {
				return reconcile.Directory{}, nil, fmt.Errorf("%w: GET /Groups/%s answered group %q", ErrIncomplete, id, string(gr.ID))
			}
			m.out.groups = append(m.out.groups, heldGroup{gr, gen})
		} else {
			m.goneGroups[id] = true
		}
	}
	m.dropGone()

	us := make([]scimUser, len(m.out.users))
	gs := make([]scimGroup, len(m.out.groups))
	gens := &generations{users: make([]int, len(us)), groups: make([]int, len(gs))}
	for i, x := range m.out.users {
		us[i], gens.users[i] = x.u, x.gen
	}
	for i, x := range m.out.groups {
		gs[i], gens.groups[i] = x.g, x.gen
	}
	dir, err := s.assemble(us, gs, gens)
	if err != nil {
		return reconcile.Directory{}, nil, err
	}
	m.out.start, m.out.gen = start, gen
	s.log.Debug().Str("since", since).Int("users_changed", len(users)).Int("groups_changed", len(groups)).
		Int("users_deleted", m.deletedUsers).Int("groups_deleted", m.deletedGroups).
		Int("fetched", len(m.missingUsers)+len(m.missingGroups)).Msg("SCIM changes merged")
	return dir, &m.out, nil
}

// fetch GETs one resource; found is false when the server answers 404 (it is gone).
func (s *Source) fetch(ctx context.Context, prefix, id string, out any) (found bool, err error) {
	err = s.c.get(ctx, prefix+url.PathEscape(id), "", out)
	var se *Error
	if errors.As(err, &se) && se.HTTPStatus == http.StatusNotFound {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("fetching %s%s: %w", prefix, id, err)
	}
	reconcile.ReportReadProgress(ctx, 1, 1)
	return true, nil
}

// merge builds a new held read from an old one and what an incremental read got. It copies
// what it changes: the old held read stays as it was.
type merge struct {
	gen int
	out held
	// goneUsers and goneGroups are the ids known to be deleted: held or returned by the
	// filter, but not listed by id (or 404 when fetched).
	goneUsers, goneGroups       map[string]bool
	missingUsers, missingGroups []string // listed by id, neither held nor changed
	deletedUsers, deletedGroups int      // held ones found deleted
}

func (m *merge) users(old []heldUser, changed []scimUser, listed []idOnly) {
	r := mergeByID(old, changed, listed,
		func(x heldUser) string { return string(x.u.ID) },
		func(u scimUser) string { return string(u.ID) },
		func(u scimUser) heldUser { return heldUser{u, m.gen} })
	m.out.users, m.goneUsers, m.deletedUsers, m.missingUsers = r.kept, r.gone, r.deleted, r.missing
}

func (m *merge) groups(old []heldGroup, changed []scimGroup, listed []idOnly) {
	r := mergeByID(old, changed, listed,
		func(x heldGroup) string { return string(x.g.ID) },
		func(g scimGroup) string { return string(g.ID) },
		func(g scimGroup) heldGroup { return heldGroup{g, m.gen} })
	m.out.groups, m.goneGroups, m.deletedGroups, m.missingGroups = r.kept, r.gone, r.deleted, r.missing
}

// merged is one resource type after an incremental read.
type merged[H any] struct {
	kept    []H
	gone    map[string]bool // ids deleted since the last read (held or changed in between)
	deleted int             // held ones found deleted
	missing []string        // listed by id, neither held nor changed
}

// mergeByID lays the changed resources over the held ones: a held resource whose id the
// id-only listing no longer has is gone, a changed one replaces the held one of its id (or is
// new), and an id listed but neither held nor changed is missing (to fetch).
func mergeByID[H, R any](old []H, changed []R, listed []idOnly, heldID func(H) string, id func(R) string, fresh func(R) H) merged[H] {
	live := idSet(listed)
	out := merged[H]{gone: map[string]bool{}, kept: make([]H, 0, len(listed))}
	byID := make(map[string]R, len(changed))
	for _, r := range changed {
		byID[id(r)] = r
	}
	seen := make(map[string]bool, len(old)+len(changed))
	for _, x := range old {
		k := heldID(x)
		seen[k] = true
		switch r, ok := byID[k]; {
		case !live[k]:
			out.gone[k] = true
			out.deleted++
		case ok:
			out.kept = append(out.kept, fresh(r))
		default:
			out.kept = append(out.kept, x)
		}
	}
	for _, r := range changed {
		k := id(r)
		switch {
		case seen[k]:
		case !live[k]:
			out.gone[k] = true // created and deleted since the last read
		default:
			out.kept = append(out.kept, fresh(r))
		}
		seen[k] = true
	}
	for _, r := range listed {
		if k := string(r.ID); !seen[k] {
			out.missing = append(out.missing, k)
		}
	}
	return out
}

// dropGone removes deleted users from member lists and deleted groups from users' groups
// attributes, copying each resource it changes.
func (m *merge) dropGone() {
	if len(m.goneUsers) > 0 {
		for i, x := range m.out.groups {
			if kept, changed := withoutRefs(x.g.members(), m.goneUsers); changed {
				x.g.Members = &kept
				m.out.groups[i] = x
			}
		}
	}
	if len(m.goneGroups) > 0 {
		for i, x := range m.out.users {
			if x.u.Groups == nil {
				continue
			}
			if kept, changed := withoutRefs(*x.u.Groups, m.goneGroups); changed {
				x.u.Groups = &kept
				m.out.users[i] = x
			}
		}
	}
}

// withoutRefs returns refs without those naming an id in gone; changed is false (and refs
// returned as is) when none does.
func withoutRefs(refs []ref, gone map[string]bool) (kept []ref, changed bool) {
	for i, r := range refs {
		if gone[string(r.Value)] {
			kept = append(make([]ref, 0, len(refs)-1), refs[:i]...)
			for _, r := range refs[i+1:] {
				if !gone[string(r.Value)] {
					kept = append(kept, r)
				}
			}
			return kept, true
		}
	}
	return refs, false
}

func idSet(list []idOnly) map[string]bool {
	out := make(map[string]bool, len(list))
	for _, r := range list {
		out[string(r.ID)] = true
	}
	return out
}

// describeIDs names up to maxNamed ids for an error message.
func describeIDs(ids []string) string {
	if len(ids) <= maxNamed {
		return strings.Join(ids, ", ")
	}
	return strings.Join(ids[:maxNamed], ", ") + fmt.Sprintf(" and %d more", len(ids)-maxNamed)
}
