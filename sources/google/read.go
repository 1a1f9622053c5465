package google

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"golang.org/x/sync/errgroup"

	"github.com/idsync/idsync/reconcile"
)

// Member types of members.list.
const (
	memberUser     = "USER"
	memberGroup    = "GROUP"
	memberCustomer = "CUSTOMER" // every user of the account
)

// reader is one Snapshot or User read.
type reader struct {
	s     *Source
	pages atomic.Int64
}

// listedUser is a user with the state its raw record gave.
type listedUser struct {
	user
	state userState
	why   string
}

// group is what the source keeps of a Google group.
type group struct {
	id, email, name, description string
}

// member is one entry of a member listing.
type member struct {
	id, email, typ string
}

// pager walks one pageToken listing: it bounds the items by max_objects, refuses a page
// token it has seen (a server looping) and a run of empty pages, and counts pages.
type pager struct {
	ctx    context.Context // carries the pass's read progress reporter
	r      *reader
	what   string
	seen   map[string]bool
	items  int
	empty  int
	number int
}

func (r *reader) pager(ctx context.Context, what string) *pager {
	return &pager{ctx: ctx, r: r, what: what, seen: map[string]bool{}}
}

// next records a page of n items and its next token; it returns whether to go on.
func (p *pager) next(n int, token string) (bool, error) {
	p.number++
	p.r.pages.Add(1)
	reconcile.ReportReadProgress(p.ctx, 1, n)
	p.items += n
	if p.items > p.r.s.maxObjects {
		return false, fmt.Errorf("%w: %s: more than max_objects (%d) items: a directory larger than this source is configured for (raise sources[].max_objects if it is real)",
			ErrIncomplete, p.what, p.r.s.maxObjects)
	}
	if n == 0 {
		p.empty++
	} else {
		p.empty = 0
	}
	if token == "" {
		return false, nil
	}
	if p.seen[token] {
		return false, fmt.Errorf("%w: %s: page %d repeats a page token: the listing loops", ErrIncomplete, p.what, p.number)
	}
	if p.empty > maxEmptyPages {
		return false, fmt.Errorf("%w: %s: %d empty pages in a row, each with a next page token", ErrIncomplete, p.what, p.empty)
	}
	p.seen[token] = true
	return true, nil
}

func (p *pager) fail(err error) error {
	return fmt.Errorf("%s: page %d: %w", p.what, p.number+1, p.r.s.explain(err))
}

// scope sets customer or domain on a listing.
func (s *Source) scope(setCustomer, setDomain func(string)) {
	if s.cfg.Domain != "" {
		setDomain(s.cfg.Domain)
		return
	}
	setCustomer(s.cfg.Customer)
}

// listUsers reads users.list whole; each user carries the state its raw record gives.
func (r *reader) listUsers(ctx context.Context) ([]listedUser, error) {
	s := r.s
	p := r.pager(ctx, "users listing")
	var out []listedUser
	ids := map[string]bool{}
	token := ""
	for {
		call := s.svc.Users.List().MaxResults(int64(s.pageSize))
		s.scope(func(v string) { call.Customer(v) }, func(v string) { call.Domain(v) })
		if s.cfg.UserQuery != "" {
			call.Query(s.cfg.UserQuery)
		}
		if token != "" {
			call.PageToken(token)
		}
		c := &capture{}
		page, err := call.Context(withCapture(ctx, c)).Do()
		if err != nil {
			return nil, p.fail(err)
		}
		recs, err := usersStatus(c.body)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: page %d: %w", ErrIncomplete, p.what, p.number+1, err)
		}
		if len(recs) != len(page.Users) {
			return nil, fmt.Errorf("%w: %s: page %d: %w", ErrIncomplete, p.what, p.number+1, errStatusMismatch)
		}
		if out == nil {
			out = make([]listedUser, 0, min(len(page.Users), maxPrealloc))
		}
		for i, u := range page.Users {
			if recs[i].ID != u.Id {
				return nil, fmt.Errorf("%w: %s: page %d: %w", ErrIncomplete, p.what, p.number+1, errStatusMismatch)
			}
			if u.Id != "" {
				if ids[u.Id] {
					return nil, fmt.Errorf("%w: %s: user id %q listed twice (a page shifted during the read)", ErrIncomplete, p.what, u.Id)
				}
				ids[u.Id] = true
			}
			st, why := recs[i].state()
			out = append(out, listedUser{user: slimUser(u), state: st, why: why})
		}
		more, err := p.next(len(page.Users), page.NextPageToken)
		if err != nil || !more {
			return out, err
		}
		token = page.NextPageToken
	}
}

// maxPrealloc caps the room a listing reserves up front.
const maxPrealloc = 4096

// listGroups reads groups.list whole: the source's scope and query, or with userKey the
// groups that user (or group) is a direct member of.
func (r *reader) listGroups(ctx context.Context, userKey string) ([]group, error) {
	s := r.s
	what := "groups listing"
	if userKey != "" {
		what = fmt.Sprintf("groups of %q", userKey)
	}
	p := r.pager(ctx, what)
	var out []group
	ids := map[string]bool{}
	token := ""
	for {
		call := s.svc.Groups.List().MaxResults(s.smallPage())
		if userKey != "" {
			call.UserKey(userKey)
		} else {
			s.scope(func(v string) { call.Customer(v) }, func(v string) { call.Domain(v) })
			if s.cfg.GroupQuery != "" {
				call.Query(s.cfg.GroupQuery)
			}
		}
		if token != "" {
			call.PageToken(token)
		}
		page, err := call.Context(ctx).Do()
		if err != nil {
			return nil, p.fail(err)
		}
		for _, g := range page.Groups {
			if g.Id == "" {
				return nil, fmt.Errorf("%w: %s: group %q has no id", ErrIncomplete, what, g.Email)
			}
			if ids[g.Id] {
				return nil, fmt.Errorf("%w: %s: group id %q listed twice (a page shifted during the read)", ErrIncomplete, what, g.Id)
			}
			ids[g.Id] = true
			out = append(out, group{id: g.Id, email: g.Email, name: g.Name, description: g.Description})
		}
		more, err := p.next(len(page.Groups), page.NextPageToken)
		if err != nil || !more {
			return out, err
		}
		token = page.NextPageToken
	}
}

// listMembers reads members.list of one group whole.
func (r *reader) listMembers(ctx context.Context, key, label string) ([]member, error) {
	s := r.s
	p := r.pager(ctx, fmt.Sprintf("members of group %q", label))
	var out []member
	seen := map[string]bool{}
	token := ""
	for {
		call := s.svc.Members.List(key).MaxResults(s.smallPage())
		if s.cfg.NestedGroups {
			call.IncludeDerivedMembership(true)
		}
		if token != "" {
			call.PageToken(token)
		}
		page, err := call.Context(ctx).Do()
		if err != nil {
			return nil, p.fail(err)
		}
		for _, m := range page.Members {
			k := m.Id
			if k == "" {
				k = strings.ToLower(m.Email)
			}
			if k != "" {
				if seen[k] {
					return nil, fmt.Errorf("%w: %s: member %q listed twice (a page shifted during the read)", ErrIncomplete, p.what, firstNonEmpty(m.Email, m.Id))
				}
				seen[k] = true
			}
			out = append(out, member{id: m.Id, email: m.Email, typ: strings.ToUpper(m.Type)})
		}
		more, err := p.next(len(page.Members), page.NextPageToken)
		if err != nil || !more {
			return out, err
		}
		token = page.NextPageToken
	}
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// snapshot reads the users and groups listings at the same time, every listed group's
// members (up to Concurrency listings at once), then, when idsync expands nested groups,
// the members of groups outside the listing that sit inside listed ones.
func (r *reader) snapshot(ctx context.Context) (reconcile.Directory, error) {
	s := r.s
	g, gctx := errgroup.WithContext(ctx)
	var (
		users   []listedUser
		groups  []group
		members lockedSet[string, []member]
	)
	g.Go(func() (err error) {
		users, err = r.listUsers(gctx)
		return err
	})
	g.Go(func() error {
		gs, err := r.listGroups(gctx, "")
		if err != nil {
			return err
		}
		groups = gs
		return r.readMembers(gctx, g, gs, &members)
	})
	if err := g.Wait(); err != nil {
		return reconcile.Directory{}, err
	}
	if !s.cfg.NestedGroups {
		if err := r.readNested(ctx, groups, &members); err != nil {
			return reconcile.Directory{}, err
		}
	}
	return s.assemble(users, groups, members.m)
}

// readMembers starts one member listing per group on g, at most Concurrency under way.
func (r *reader) readMembers(ctx context.Context, g *errgroup.Group, gs []group, out *lockedSet[string, []member]) error {
	sem := make(chan struct{}, r.s.concurrency)
	for _, gr := range gs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		g.Go(func() error {
			defer func() { <-sem }()
			ms, err := r.listMembers(ctx, gr.id, firstNonEmpty(gr.email, gr.name, gr.id))
			if err != nil {
				return err
			}
			out.put(gr.id, ms)
			return nil
		})
	}
	return nil
}

// readNested reads the members of groups that are members of groups already read but were
// not listed themselves (outside group_query or the domain), level by level, until every
// nested group is read. Each group is read once, so cycles end; max_objects bounds how many.
func (r *reader) readNested(ctx context.Context, listed []group, members *lockedSet[string, []member]) error {
	extra := 0
	for round := 0; ; round++ {
		var todo []group
		queued := map[string]bool{}
		for _, ms := range members.m {
			for _, m := range ms {
				if m.typ != memberGroup || m.id == "" || queued[m.id] {
					continue
				}
				if _, read := members.m[m.id]; read {
					continue
				}
				queued[m.id] = true
				todo = append(todo, group{id: m.id, email: m.email})
			}
		}
		if len(todo) == 0 {
			if extra > 0 {
				r.s.log.Debug().Int("groups", extra).Int("rounds", round).Msg("read nested groups outside the groups listing")
			}
			return nil
		}
		extra += len(todo)
		if extra > r.s.maxObjects {
			return fmt.Errorf("%w: nested groups: more than max_objects (%d) groups outside the listing", ErrIncomplete, r.s.maxObjects)
		}
		g, gctx := errgroup.WithContext(ctx)
		if err := r.readMembers(gctx, g, todo, members); err != nil {
			_ = g.Wait()
			return err
		}
		if err := g.Wait(); err != nil {
			return err
		}
	}
}

// assemble checks the listings and converts them to the model.
func (s *Source) assemble(users []listedUser, groups []group, members map[string][]member) (reconcile.Directory, error) {
	byID := make(map[string]int, len(users))
	byEmail := make(map[string]int, len(users))
	for i, u := range users {
		if u.id != "" {
			byID[u.id] = i
		}
		if u.primaryEmail != "" {
			le := strings.ToLower(u.primaryEmail)
			if _, dup := byEmail[le]; dup {
				return reconcile.Directory{}, fmt.Errorf("%w: users listing: primary email %q listed twice", ErrIncomplete, u.primaryEmail)
			}
			byEmail[le] = i
		}
	}
	names := make(map[string]string, len(groups)) // name -> group id
	dir := reconcile.Directory{Source: s.name, Users: make([]reconcile.User, 0, len(users)), Groups: make([]reconcile.Group, 0, len(groups))}
	for _, g := range groups {
		name := s.groupName(g.name, g.email)
		if strings.TrimSpace(name) == "" {
			return reconcile.Directory{}, fmt.Errorf("%w: groups listing: group %q has neither a name nor an email", ErrIncomplete, g.id)
		}
		if other, dup := names[name]; dup {
			return reconcile.Directory{}, fmt.Errorf("%w: groups listing: groups %q and %q are both named %q, so group mappings would be ambiguous (set group_name: email)",
				ErrIncomplete, other, g.id, name)
		}
		names[name] = g.id
		dir.Groups = append(dir.Groups, reconcile.Group{Key: g.id, Name: name, Description: g.description})
	}

	memberOf := make([][]string, len(users))
	unknown := 0
	for _, g := range groups {
		name := s.groupName(g.name, g.email)
		seen := map[int]bool{}
		add := func(i int) {
			if !seen[i] {
				seen[i] = true
				memberOf[i] = append(memberOf[i], name)
			}
		}
		s.walkMembers(g.id, members, func(m member) {
			switch m.typ {
			case memberCustomer:
				for i := range users {
					add(i)
				}
				return
			case memberGroup:
				return
			}
			i, ok := byID[m.id]
			if !ok && m.id == "" {
				i, ok = byEmail[strings.ToLower(m.email)]
			}
			if !ok {
				// Outside the users listing: an external address, a user user_query leaves
				// out, or a user created after the listing was read (the next pass has them).
				unknown++
				return
			}
			add(i)
		})
	}
	if unknown > 0 {
		s.log.Debug().Int("members", unknown).Msg("group members that are not listed users are not synced")
	}

	var bad []string
	nBad := 0
	for i, u := range users {
		if u.id == "" {
			s.log.Warn().Int("position", i).Str("email", u.primaryEmail).Msg("Google user without an id skipped")
			continue
		}
		if u.state == stateUnknown {
			if nBad < maxNamed {
				bad = append(bad, fmt.Sprintf("%q (%s)", truncate(firstNonEmpty(u.primaryEmail, "id "+u.id), 80), u.why))
			}
			nBad++
			continue
		}
		if nBad > 0 {
			continue // the read fails: converting the rest would be wasted
		}
		ru := s.convertUser(u.user, u.state == stateActive)
		ru.Groups = sortedUnique(memberOf[i])
		dir.Users = append(dir.Users, ru)
	}
	if nBad > 0 {
		more := ""
		if nBad > len(bad) {
			more = fmt.Sprintf(" and %d more", nBad-len(bad))
		}
		return reconcile.Directory{}, fmt.Errorf("%w: users listing: %d of %d user records have no known state (suspended and archived), and a user whose status is missing or unknown is never taken as active: %s%s",
			ErrIncomplete, nBad, len(users), strings.Join(bad, ", "), more)
	}
	return dir, nil
}

// walkMembers calls fn for every member of group id: its own, and when idsync expands nested
// groups, those of every group inside it, each group visited once (cycles end).
func (s *Source) walkMembers(id string, members map[string][]member, fn func(member)) {
	if s.cfg.NestedGroups {
		for _, m := range members[id] {
			fn(m)
		}
		return
	}
	visited := map[string]bool{id: true}
	queue := []string{id}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, m := range members[cur] {
			fn(m)
			if m.typ == memberGroup && m.id != "" && !visited[m.id] {
				visited[m.id] = true
				queue = append(queue, m.id)
			}
		}
	}
}

// userGroups is the groups of one user in the source's scope: direct ones and every group
// above them, each group asked once.
func (r *reader) userGroups(ctx context.Context, userID string) ([]string, error) {
	s := r.s
	var scope []group
	var direct []group
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		scope, err = r.listGroups(gctx, "")
		return err
	})
	g.Go(func() (err error) {
		direct, err = r.listGroups(gctx, userID)
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	inScope := make(map[string]group, len(scope))
	for _, gr := range scope {
		inScope[gr.id] = gr
	}
	visited := map[string]bool{}
	var out []string
	level := direct
	for len(level) > 0 {
		var next []group
		for _, gr := range level {
			if visited[gr.id] {
				continue
			}
			visited[gr.id] = true
			if len(visited) > s.maxObjects {
				return nil, fmt.Errorf("%w: more than max_objects (%d) groups above the user", ErrIncomplete, s.maxObjects)
			}
			if sg, ok := inScope[gr.id]; ok {
				out = append(out, s.groupName(sg.name, sg.email))
			}
			parents, err := r.listGroups(ctx, firstNonEmpty(gr.email, gr.id))
			if err != nil {
				return nil, err
			}
			next = append(next, parents...)
		}
		level = next
	}
	return sortedUnique(out), nil
}

// truncate cuts s to n bytes for messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
