package ldap

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
)

// maxNamed caps how many records one error message names.
const maxNamed = 5

// rawUser is one user entry as read.
type rawUser struct {
	dn, canon                                    string
	key, userName, email, given, family, display string
	extra                                        map[string]string
	memberOf                                     []string // raw group DNs (membership memberOf)
}

// rawGroup is one group entry as read.
type rawGroup struct {
	dn, canon, key, name string
	members              []string // raw DNs (member, uniqueMember)
	memberUIDs           []string // user names (memberUid)
	memberOf             []string // raw DNs of the groups it is a member of (memberOf)
	// rangeNext is the first value index of an Active Directory ranged attribute still to
	// read ("" when the entry holds all its members).
	rangeNext string
}

func (s *Source) userAttrs(st settings) []string {
	a := s.cfg.Attributes
	out := []string{st.id, st.userName, a.Email, a.GivenName, a.FamilyName, a.DisplayName}
	out = append(out, a.Extra...)
	if s.cfg.Membership == configs.LDAPMembershipMemberOf {
		out = append(out, "memberOf")
	}
	return dedupFold(out)
}

func (s *Source) groupAttrs(st settings) []string {
	out := []string{st.id, s.cfg.Attributes.GroupName}
	switch s.cfg.Membership {
	case configs.LDAPMembershipMember:
		out = append(out, "member", "uniqueMember")
	case configs.LDAPMembershipMemberUID:
		out = append(out, "memberUid")
	case configs.LDAPMembershipMemberOf:
		if s.cfg.NestedGroups {
			out = append(out, "memberOf")
		}
	}
	return dedupFold(out)
}

func dedupFold(in []string) []string {
	out := make([]string, 0, len(in))
	for _, x := range in {
		if x != "" && !slices.ContainsFunc(out, func(y string) bool { return strings.EqualFold(x, y) }) {
			out = append(out, x)
		}
	}
	return out
}

// first returns the first value of attr (case-insensitive name), binary-safe for the id.
func first(e *goldap.Entry, attr string) string {
	if v := e.GetEqualFoldAttributeValues(attr); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (s *Source) readUser(st settings, e *goldap.Entry) (rawUser, error) {
	canon, err := canonDN(e.DN)
	if err != nil {
		return rawUser{}, fmt.Errorf("%w: users: entry DN %q: %v", ErrIncomplete, e.DN, err)
	}
	a := s.cfg.Attributes
	u := rawUser{
		dn: e.DN, canon: canon,
		key:      idText(st.id, e.GetEqualFoldRawAttributeValue(st.id)),
		userName: strings.TrimSpace(first(e, st.userName)),
		email:    strings.TrimSpace(first(e, a.Email)),
		given:    strings.TrimSpace(first(e, a.GivenName)),
		family:   strings.TrimSpace(first(e, a.FamilyName)),
		display:  strings.TrimSpace(first(e, a.DisplayName)),
	}
	for _, x := range a.Extra {
		if v := strings.TrimSpace(first(e, x)); v != "" {
			if u.extra == nil {
				u.extra = map[string]string{}
			}
			u.extra[x] = v
		}
	}
	if s.cfg.Membership == configs.LDAPMembershipMemberOf {
		u.memberOf = e.GetEqualFoldAttributeValues("memberOf")
	}
	return u, nil
}

func (s *Source) readGroup(st settings, e *goldap.Entry) (rawGroup, error) {
	canon, err := canonDN(e.DN)
	if err != nil {
		return rawGroup{}, fmt.Errorf("%w: groups: entry DN %q: %v", ErrIncomplete, e.DN, err)
	}
	g := rawGroup{
		dn: e.DN, canon: canon,
		key:  idText(st.id, e.GetEqualFoldRawAttributeValue(st.id)),
		name: strings.TrimSpace(first(e, s.cfg.Attributes.GroupName)),
	}
	switch s.cfg.Membership {
	case configs.LDAPMembershipMember:
		vals, next, err := rangedValues(e, "member")
		if err != nil {
			return rawGroup{}, fmt.Errorf("%w: group %q: %v", ErrIncomplete, e.DN, err)
		}
		g.members, g.rangeNext = vals, next
		g.members = append(g.members, e.GetEqualFoldAttributeValues("uniqueMember")...)
	case configs.LDAPMembershipMemberUID:
		g.memberUIDs = e.GetEqualFoldAttributeValues("memberUid")
	case configs.LDAPMembershipMemberOf:
		g.memberOf = e.GetEqualFoldAttributeValues("memberOf")
	}
	if g.key == "" {
		g.key = canon
	}
	return g, nil
}

var canonEscaper = strings.NewReplacer(`\`, `\\`, `,`, `\,`, `+`, `\+`, `=`, `\=`)

// assemble checks the listings against each other and converts them to the model: groups
// (named, names unique), users (keyed, keys and userNames unique), then memberships, nested
// groups expanded when nested_groups is on.
func (s *Source) assemble(users []rawUser, disabled map[string]bool, groups []rawGroup) (reconcile.Directory, error) {
	gIdx, dirGroups, err := s.indexGroups(groups)
	if err != nil {
		return reconcile.Directory{}, err
	}
	ux, err := s.indexUsers(users)
	if err != nil {
		return reconcile.Directory{}, err
	}
	ms, err := s.memberships(users, groups, ux, gIdx)
	if err != nil {
		return reconcile.Directory{}, err
	}
	var up func(int) []int
	inCycle := 0
	if s.cfg.NestedGroups {
		up = ancestors(ms.parents, &inCycle)
	}
	dir := reconcile.Directory{Source: s.name, Users: make([]reconcile.User, 0, len(users)), Groups: dirGroups}
	for i, u := range users {
		dir.Users = append(dir.Users, s.convert(u, !disabled[u.canon], groupNames(groups, ms.direct[i], up)))
	}
	ev := s.log.Debug()
	if ev.Enabled() {
		ev.Int("members_not_listed", ms.ignored).Int("nested_group_members", ms.nestedRefs).Bool("nested_groups", s.cfg.NestedGroups).
			Int("groups_in_cycles", inCycle).Msg("memberships read")
	}
	if inCycle > 0 {
		s.log.Info().Int("groups", inCycle).Msg("nested groups form a cycle; each group's members belong to every group of the cycle once")
	}
	return dir, nil
}

// indexGroups indexes the named groups by canonical DN and converts them. A group without a
// name, or two groups of one name (case-insensitive), fail the read: mappings would miss
// or confuse them.
func (s *Source) indexGroups(groups []rawGroup) (map[string]int, []reconcile.Group, error) {
	gIdx := make(map[string]int, len(groups))
	gNames := make(map[string]string, len(groups))
	out := make([]reconcile.Group, 0, len(groups))
	var noName []string
	for i, g := range groups {
		if g.name == "" {
			if len(noName) < maxNamed {
				noName = append(noName, fmt.Sprintf("%q", truncate(g.dn, 120)))
			}
			continue
		}
		if other, dup := gNames[strings.ToLower(g.name)]; dup {
			return nil, nil, fmt.Errorf("%w: groups: %q and %q are both named %q (%s); group mappings would be ambiguous: narrow group_filter or base_dn",
				ErrIncomplete, truncate(other, 120), truncate(g.dn, 120), g.name, s.cfg.Attributes.GroupName)
		}
		gNames[strings.ToLower(g.name)] = g.dn
		gIdx[g.canon] = i
		out = append(out, reconcile.Group{Key: g.key, Name: g.name})
	}
	if len(noName) > 0 {
		return nil, nil, fmt.Errorf("%w: groups without a %s attribute: %s", ErrIncomplete, s.cfg.Attributes.GroupName, strings.Join(noName, ", "))
	}
	return gIdx, out, nil
}

// userIndex finds users by canonical DN and by lower-cased userName.
type userIndex struct {
	byDN, byName map[string]int
}

// indexUsers indexes the users. A user without a key, or two users with one key or one
// userName, fail the read: idsync links people by them.
func (s *Source) indexUsers(users []rawUser) (userIndex, error) {
	ux := userIndex{byDN: make(map[string]int, len(users)), byName: make(map[string]int, len(users))}
	keys := make(map[string]int, len(users))
	var noKey []string
	nNoKey := 0
	st := s.settings()
	for i, u := range users {
		ux.byDN[u.canon] = i
		if u.key == "" {
			if len(noKey) < maxNamed {
				noKey = append(noKey, fmt.Sprintf("%q", truncate(u.dn, 120)))
			}
			nNoKey++
			continue
		}
		if j, dup := keys[u.key]; dup {
			return userIndex{}, fmt.Errorf("%w: users: %q and %q have the same %s %q", ErrIncomplete, truncate(users[j].dn, 120), truncate(u.dn, 120), st.id, u.key)
		}
		keys[u.key] = i
		if u.userName == "" {
			continue
		}
		ln := strings.ToLower(u.userName)
		if j, dup := ux.byName[ln]; dup {
			return userIndex{}, fmt.Errorf("%w: users: %q and %q have the same %s %q", ErrIncomplete, truncate(users[j].dn, 120), truncate(u.dn, 120), st.userName, u.userName)
		}
		ux.byName[ln] = i
	}
	if nNoKey > 0 {
		more := ""
		if nNoKey > len(noKey) {
			more = fmt.Sprintf(" and %d more", nNoKey-len(noKey))
		}
		return userIndex{}, fmt.Errorf("%w: users: %d of %d entries have no %s attribute, the key idsync links people by (check attributes.id): %s%s",
			ErrIncomplete, nNoKey, len(users), st.id, strings.Join(noKey, ", "), more)
	}
	return ux, nil
}

// membershipGraph is who is in what, by index into the listings: each user's direct groups,
// each group's direct parent groups, and counts for the log.
type membershipGraph struct {
	direct  [][]int // user -> groups
	parents [][]int // group -> groups it is a member of
	// ignored counts member values that name nothing listed; nestedRefs group-in-group ones.
	ignored, nestedRefs int
}

// memberships resolves the configured membership attribute (member, memberUid or memberOf)
// against the listings. A value that should be a DN and is not fails the read.
func (s *Source) memberships(users []rawUser, groups []rawGroup, ux userIndex, gIdx map[string]int) (membershipGraph, error) {
	ms := membershipGraph{direct: make([][]int, len(users)), parents: make([][]int, len(groups))}
	badDN := 0
	switch s.cfg.Membership {
	case configs.LDAPMembershipMember:
		for gi, g := range groups {
			for _, m := range canonAll(g.members, &badDN) {
				if ui, ok := ux.byDN[m]; ok {
					ms.direct[ui] = append(ms.direct[ui], gi)
				} else if ci, ok := gIdx[m]; ok {
					ms.parents[ci] = append(ms.parents[ci], gi)
					ms.nestedRefs++
				} else {
					ms.ignored++
				}
			}
		}
	case configs.LDAPMembershipMemberUID:
		for gi, g := range groups {
			for _, m := range g.memberUIDs {
				if ui, ok := ux.byName[strings.ToLower(strings.TrimSpace(m))]; ok {
					ms.direct[ui] = append(ms.direct[ui], gi)
				} else {
					ms.ignored++
				}
			}
		}
	case configs.LDAPMembershipMemberOf:
		for ui, u := range users {
			for _, m := range canonAll(u.memberOf, &badDN) {
				if gi, ok := gIdx[m]; ok {
					ms.direct[ui] = append(ms.direct[ui], gi)
				} else {
					ms.ignored++
				}
			}
		}
		for ci, g := range groups {
			for _, m := range canonAll(g.memberOf, &badDN) {
				if pi, ok := gIdx[m]; ok {
					ms.parents[ci] = append(ms.parents[ci], pi)
					ms.nestedRefs++
				}
			}
		}
	}
	if badDN > 0 {
		return membershipGraph{}, fmt.Errorf("%w: %d membership values are not DNs", ErrIncomplete, badDN)
	}
	return ms, nil
}

// groupNames are the sorted names of a user's direct groups and, with up, every group they
// sit in; each once, unnamed groups left out.
func groupNames(groups []rawGroup, direct []int, up func(int) []int) []string {
	seen := make(map[int]bool, len(direct))
	var names []string
	add := func(gi int) {
		if !seen[gi] && groups[gi].name != "" {
			seen[gi] = true
			names = append(names, groups[gi].name)
		}
	}
	for _, gi := range direct {
		add(gi)
		if up != nil {
			for _, p := range up(gi) {
				add(p)
			}
		}
	}
	sort.Strings(names)
	return names
}

// ancestors returns a function giving every group a group is nested in (its parents, their
// parents, ...), without the group itself unless a cycle leads back to it. Each walk keeps a
// visited set, so cycles end; results are memoised. inCycle receives how many groups lie on
// a cycle.
func ancestors(parents [][]int, inCycle *int) func(int) []int {
	memo := make([][]int, len(parents))
	done := make([]bool, len(parents))
	for g := range parents {
		if len(parents[g]) == 0 {
			done[g] = true
		}
	}
	walk := func(g int) []int {
		if done[g] {
			return memo[g]
		}
		seen := map[int]bool{}
		queue := slices.Clone(parents[g])
		var out []int
		for len(queue) > 0 {
			p := queue[0]
			queue = queue[1:]
			if seen[p] {
				continue
			}
			seen[p] = true
			out = append(out, p)
			if done[p] {
				for _, q := range memo[p] {
					if !seen[q] {
						seen[q] = true
						out = append(out, q)
					}
				}
				continue
			}
			queue = append(queue, parents[p]...)
		}
		if seen[g] {
			*inCycle++
		}
		memo[g], done[g] = out, true
		return out
	}
	for g := range parents {
		walk(g)
	}
	return walk
}

// convert builds the model's user.
func (s *Source) convert(u rawUser, active bool, groups []string) reconcile.User {
	out := reconcile.User{
		Key:        u.key,
		UserName:   u.userName,
		Email:      u.email,
		GivenName:  u.given,
		FamilyName: u.family,
		Active:     active,
		Groups:     groups,
	}
	switch {
	case u.display != "":
		out.DisplayName = u.display
	case strings.TrimSpace(u.given+" "+u.family) != "":
		out.DisplayName = strings.TrimSpace(u.given + " " + u.family)
	default:
		out.DisplayName = u.userName
	}
	out.Attributes = make(map[string]string, len(u.extra)+1)
	out.Attributes["dn"] = u.dn
	for k, v := range u.extra {
		out.Attributes[k] = v
	}
	return out
}

// groupsByMemberUID returns the posixGroups whose memberUid names userName. memberUid
// compares case-exactly on most servers (caseExactIA5Match), while usernames compare
// case-blind: every group is read and matched as Snapshot does.
func (s *Source) groupsByMemberUID(ctx context.Context, c *conn, st settings, userName string) ([]rawGroup, error) {
	var found []rawGroup
	_, err := c.run(ctx, search{
		what: "groups", base: s.cfg.BaseDN, scope: goldap.ScopeWholeSubtree, filter: st.groupFilter,
		attrs: s.groupAttrs(st), limit: s.maxObjects,
		each: func(e *goldap.Entry) error {
			g, err := s.readGroup(st, e)
			if err != nil {
				return err
			}
			if slices.ContainsFunc(g.memberUIDs, func(m string) bool { return strings.EqualFold(strings.TrimSpace(m), userName) }) {
				found = append(found, g)
			}
			return nil
		},
	})
	return found, err
}

// userGroups finds one user's groups for User: the same memberships Snapshot computes.
func (s *Source) userGroups(ctx context.Context, c *conn, st settings, u rawUser) ([]string, error) {
	var found []rawGroup
	// Names (and, to walk up, memberOf) only: member lists can be long.
	attrs := []string{st.id, s.cfg.Attributes.GroupName}
	if s.cfg.Membership == configs.LDAPMembershipMemberOf {
		attrs = append(attrs, "memberOf")
	}
	attrs = dedupFold(attrs)
	find := func(filter string) ([]rawGroup, error) {
		var out []rawGroup
		_, err := c.run(ctx, search{
			what: "groups of the user", base: s.cfg.BaseDN, scope: goldap.ScopeWholeSubtree,
			filter: "(&" + st.groupFilter + filter + ")", attrs: attrs, limit: s.maxObjects,
			each: func(e *goldap.Entry) error {
				g, err := s.readGroup(st, e)
				if err == nil {
					out = append(out, g)
				}
				return err
			},
		})
		return out, err
	}
	memberFilter := func(dn string) string {
		v := goldap.EscapeFilter(dn)
		return "(|(member=" + v + ")(uniqueMember=" + v + "))"
	}
	var err error
	switch {
	case s.cfg.Membership == configs.LDAPMembershipMemberUID:
		found, err = s.groupsByMemberUID(ctx, c, st, u.userName)
	case st.ad && s.cfg.NestedGroups:
		// Active Directory walks the chain itself (memberOf is member's back link, so the
		// answer is the same in both modes).
		found, err = find(inChainFilter(u.dn))
	case s.cfg.Membership == configs.LDAPMembershipMember:
		found, err = find(memberFilter(u.dn))
		if err == nil && s.cfg.NestedGroups {
			found, err = s.walkUp(found, func(g rawGroup) ([]rawGroup, error) { return find(memberFilter(g.dn)) })
		}
	default: // memberOf
		base, berr := canonDN(s.cfg.BaseDN)
		if berr != nil {
			return nil, berr
		}
		byDN := func(dns []string) ([]rawGroup, error) {
			var out []rawGroup
			for _, dn := range dns {
				if c, err := canonDN(dn); err != nil || (c != base && !strings.HasSuffix(c, ","+base)) {
					continue // outside base_dn: Snapshot does not list it either
				}
				_, err := c.run(ctx, search{
					what: "group", base: dn, scope: goldap.ScopeBaseObject, filter: st.groupFilter,
					attrs: attrs, limit: 1,
					each: func(e *goldap.Entry) error {
						g, err := s.readGroup(st, e)
						if err == nil {
							out = append(out, g)
						}
						return err
					},
				})
				if goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
					continue // a dangling memberOf value: not a group in scope
				}
				if err != nil {
					return nil, err
				}
			}
			return out, nil
		}
		found, err = byDN(u.memberOf)
		if err == nil && s.cfg.NestedGroups {
			found, err = s.walkUp(found, func(g rawGroup) ([]rawGroup, error) { return byDN(g.memberOf) })
		}
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, g := range found {
		if g.name != "" && !slices.Contains(names, g.name) {
			names = append(names, g.name)
		}
	}
	return names, nil
}

// inChainFilter matches the groups dn is a member of, directly or through nested groups, on
// Active Directory (LDAP_MATCHING_RULE_IN_CHAIN).
func inChainFilter(dn string) string {
	return "(member:" + oidInChain + ":=" + goldap.EscapeFilter(dn) + ")"
}

// walkUp adds to groups every group they are nested in, breadth first; a visited set cuts
// cycles and max_objects bounds the walk.
func (s *Source) walkUp(groups []rawGroup, parentsOf func(rawGroup) ([]rawGroup, error)) ([]rawGroup, error) {
	seen := make(map[string]bool, len(groups))
	for _, g := range groups {
		seen[g.canon] = true
	}
	queue := slices.Clone(groups)
	for len(queue) > 0 {
		if len(groups) > s.maxObjects {
			return nil, fmt.Errorf("%w: more than max_objects (%d) groups", ErrIncomplete, s.maxObjects)
		}
		g := queue[0]
		queue = queue[1:]
		ps, err := parentsOf(g)
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			if !seen[p.canon] {
				seen[p.canon] = true
				groups = append(groups, p)
				queue = append(queue, p)
			}
		}
	}
	return groups, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
