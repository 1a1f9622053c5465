package jira

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/idsync/idsync/internal/intern"
	"github.com/idsync/idsync/reconcile"
	"golang.org/x/sync/errgroup"
)

// Live reads the state in scope. A full read lists every account (users/search) and every
// group (group/bulk), reads members of the groups in scope and of the site-admin groups,
// flags product-access groups, admin groups (site-admin and admin access types) and site
// admins, and reads customers of the desks and members of the organizations in scope.
// Scope.Accounts the listing missed (search-index lag) are fetched one by one. A targeted
// read (Scope.Targeted) lists nothing in full: see liveTargeted.
//
// With deactivate: suspend, the first read also finds the organization's directory when
// admin_api.directory_id is unset (one call, then remembered; see Sink.directory).
//
// Besides the listings, a read makes three fixed lookups (one page each on a usual site):
// applicationrole (product access; skipped when sink.jira.product_access_groups is set),
// group/bulk?accessType=site-admin and group/bulk?accessType=admin. Jira marks none of these
// on the accounts or groups it lists, and the planner needs all of them: deactivation must
// know product access and site admins, and on-the-fly group import must never touch a group
// that grants admin rights or product access. Members of admin-type groups are not read.
func (s *Sink) Live(ctx context.Context, scope reconcile.Scope) (reconcile.Live, error) {
	if err := s.checkDirectory(ctx); err != nil {
		return reconcile.Live{}, err
	}
	if scope.Targeted {
		return s.liveTargeted(ctx, scope)
	}
	var (
		users       []apiUser
		groups      []apiGroup
		productKeys map[string]bool
		adminGroups []apiGroup
		adminAccess map[string]bool
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { users, err = s.c.listUsers(gctx); return })
	g.Go(func() (err error) { groups, err = s.c.listGroups(gctx, nil, s.conc); return })
	g.Go(func() (err error) { productKeys, err = s.productAccessGroups(gctx); return })
	g.Go(func() (err error) { adminGroups, err = s.siteAdminGroups(gctx); return })
	g.Go(func() (err error) { adminAccess, err = s.adminAccessGroups(gctx); return })
	if err := g.Wait(); err != nil {
		return reconcile.Live{}, err // the pass says "reading Jira"
	}

	live := reconcile.Live{}
	inScope := lowerSet(scope.Groups)
	idInScope := map[string]bool{}
	for _, id := range scope.GroupIDs {
		idInScope[id] = true
	}
	adminIDs := map[string]bool{}
	for _, ag := range adminGroups {
		adminIDs[ag.GroupID] = true
	}
	// One string per account across every group and the account list: a big site lists a
	// million memberships of a hundred thousand accounts, and a pass holds them all.
	var accountIDs intern.Strings
	var toRead []int
	for _, gr := range groups {
		s.learnGroup(gr.Name, gr.GroupID)
		lg := reconcile.LiveGroup{ID: gr.GroupID, Name: gr.Name, ProductAccess: productKeys[strings.ToLower(gr.Name)],
			Admin: adminIDs[gr.GroupID] || adminAccess[gr.GroupID]}
		// Members of product-access groups are read even when no mapping names them: a
		// remove-access deactivation must take the account out of every one of them.
		if inScope[strings.ToLower(gr.Name)] || idInScope[gr.GroupID] || adminIDs[gr.GroupID] || lg.ProductAccess {
			toRead = append(toRead, len(live.Groups))
		}
		live.Groups = append(live.Groups, lg)
	}
	if err := forEach(ctx, s.conc, toRead, func(ctx context.Context, i int) error {
		ms, err := s.c.groupMembers(ctx, live.Groups[i].ID, s.conc)
		if err != nil {
			return err
		}
		ids := make([]string, 0, len(ms))
		for _, m := range ms {
			ids = append(ids, accountIDs.Get(m.AccountID))
		}
		live.Groups[i].Members = dedupe(ids)
		live.Groups[i].MembersRead = true
		return nil
	}); err != nil {
		return reconcile.Live{}, fmt.Errorf("group members: %w", err)
	}

	siteAdmins := map[string]bool{}
	for _, lg := range live.Groups {
		if adminIDs[lg.ID] {
			for _, m := range lg.Members {
				siteAdmins[m] = true
			}
		}
	}
	seen := map[string]bool{}
	for _, u := range users {
		if seen[u.AccountID] || u.AccountID == "" {
			continue
		}
		seen[u.AccountID] = true
		a := account(u, siteAdmins)
		a.AccountID = accountIDs.Get(a.AccountID)
		live.Accounts = append(live.Accounts, a)
	}
	// Linked accounts the listing missed (search-index lag) are read one by one.
	var missing []string
	for _, id := range dedupe(scope.Accounts) {
		if !seen[id] {
			missing = append(missing, id)
		}
	}
	rescued, err := s.accountsByID(ctx, missing, siteAdmins)
	if err != nil {
		return reconcile.Live{}, err
	}
	live.Accounts = append(live.Accounts, rescued...)

	if live.ServiceDesks, err = s.liveDesks(ctx, scope, nil); err != nil {
		return reconcile.Live{}, err
	}
	if live.Organizations, err = s.liveOrgs(ctx, scope, nil); err != nil {
		return reconcile.Live{}, err
	}
	s.metrics.SinkRead("accounts", len(live.Accounts))
	s.metrics.SinkRead("groups", len(live.Groups))
	return live, nil
}

func account(u apiUser, siteAdmins map[string]bool) reconcile.Account {
	typ := u.AccountType
	if typ == "" {
		typ = reconcile.AccountAtlassian
	}
	return reconcile.Account{AccountID: u.AccountID, AccountType: typ, Email: u.EmailAddress,
		DisplayName: u.DisplayName, Active: u.Active, SiteAdmin: siteAdmins[u.AccountID]}
}

// accountsByID reads accounts one by one (GET /user reads its writes); accounts that no longer
// exist are left out.
func (s *Sink) accountsByID(ctx context.Context, ids []string, siteAdmins map[string]bool) ([]reconcile.Account, error) {
	out := make([]*reconcile.Account, len(ids))
	idx := make([]int, len(ids))
	for i := range idx {
		idx[i] = i
	}
	err := forEach(ctx, s.conc, idx, func(ctx context.Context, i int) error {
		u, err := s.c.getUser(ctx, ids[i])
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		a := account(u, siteAdmins)
		out[i] = &a
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading linked accounts: %w", err)
	}
	var accts []reconcile.Account
	for _, a := range out {
		if a != nil {
			accts = append(accts, *a)
		}
	}
	return accts, nil
}

// productAccessGroups returns the lower-case names of groups that grant product access:
// sink.jira.product_access_groups when set, else every group of every application role (not
// only the default groups: any of them grants access).
//
// The set is kept for remove-access deactivations (knownProductGroups); callers must not
// change it.
func (s *Sink) productAccessGroups(ctx context.Context) (map[string]bool, error) {
	out := map[string]bool{}
	if len(s.cfg.ProductAccessGroups) > 0 {
		for _, g := range s.cfg.ProductAccessGroups {
			out[strings.ToLower(g)] = true
		}
		s.mu.Lock()
		s.productKeys = out
		s.mu.Unlock()
		return out, nil
	}
	roles, err := s.c.appRoles(ctx)
	if err != nil {
		return nil, err
	}
	var joins []string
	for _, r := range roles {
		for _, g := range r.Groups {
			out[strings.ToLower(g)] = true
		}
		if slices.Contains(s.cfg.Products, r.Key) {
			joins = append(joins, r.DefaultGroups...)
		}
	}
	s.mu.Lock()
	s.createJoins = joins
	s.productKeys = out
	s.mu.Unlock()
	return out, nil
}

// createdIn lists the groups POST /user put a new account into (the products' default
// groups), with their ids where known, so the engine records them instead of adding again.
func (s *Sink) createdIn() []reconcile.GroupRef {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]reconcile.GroupRef, 0, len(s.createJoins))
	for _, name := range s.createJoins {
		out = append(out, reconcile.GroupRef{ID: s.groupIDs[strings.ToLower(name)], Name: name})
	}
	return out
}

func (s *Sink) siteAdminGroups(ctx context.Context) ([]apiGroup, error) {
	gs, err := s.c.listGroups(ctx, url.Values{"accessType": {"site-admin"}}, s.conc)
	if err != nil {
		return nil, fmt.Errorf("reading site-admin groups: %w", err)
	}
	return gs, nil
}

// adminAccessGroups returns the ids of the groups with the admin access type (Jira
// administrators). Site-admin groups are read apart (siteAdminGroups): their members mark
// site admins.
func (s *Sink) adminAccessGroups(ctx context.Context) (map[string]bool, error) {
	gs, err := s.c.listGroups(ctx, url.Values{"accessType": {"admin"}}, s.conc)
	if err != nil {
		return nil, fmt.Errorf("reading admin groups: %w", err)
	}
	ids := make(map[string]bool, len(gs))
	for _, g := range gs {
		ids[g.GroupID] = true
	}
	return ids, nil
}

// liveDesks reads the desks in scope with their customers. With only set (targeted reads),
// customers are looked up per account instead of listed in full.
func (s *Sink) liveDesks(ctx context.Context, scope reconcile.Scope, only []reconcile.Account) ([]reconcile.LiveDesk, error) {
	var desks []apiDesk
	for _, ref := range scope.ServiceDesks {
		d, err := s.desk(ctx, ref)
		if errors.Is(err, ErrNotFound) {
			s.log.Warn().Str("service_desk", ref).Msg("service desk in scope does not exist; skipping it")
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("resolving service desk %q: %w", ref, err)
		}
		if !containsDesk(desks, d.ID) {
			desks = append(desks, d)
		}
	}
	out := make([]reconcile.LiveDesk, len(desks))
	idx := make([]int, len(desks))
	for i := range idx {
		idx[i] = i
	}
	err := forEach(ctx, s.conc, idx, func(ctx context.Context, i int) error {
		d := desks[i]
		ld := reconcile.LiveDesk{ID: d.ID, Key: d.ProjectKey, Name: d.ProjectName, Customers: []string{}}
		if only == nil {
			cs, err := s.c.deskCustomers(ctx, d.ID, "")
			if err != nil {
				return err
			}
			for _, c := range cs {
				ld.Customers = append(ld.Customers, c.AccountID)
			}
		} else {
			for _, a := range only {
				q := a.Email
				if q == "" {
					q = a.DisplayName
				}
				if q == "" {
					continue
				}
				cs, err := s.c.deskCustomers(ctx, d.ID, q)
				if err != nil {
					return err
				}
				for _, c := range cs {
					if c.AccountID == a.AccountID {
						ld.Customers = append(ld.Customers, c.AccountID)
					}
				}
			}
		}
		ld.Customers = dedupe(ld.Customers)
		out[i] = ld
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading service desk customers: %w", err)
	}
	return out, nil
}

func containsDesk(ds []apiDesk, id string) bool {
	for _, d := range ds {
		if d.ID == id {
			return true
		}
	}
	return false
}

// liveOrgs reads the organizations in scope (by name) with their members. With only set, an
// organization's members are the given accounts that belong to it.
func (s *Sink) liveOrgs(ctx context.Context, scope reconcile.Scope, only []reconcile.Account) ([]reconcile.LiveOrg, error) {
	if len(scope.Organizations) == 0 {
		return nil, nil
	}
	all, err := s.c.listOrgs(ctx, "")
	if err != nil {
		return nil, err
	}
	want := lowerSet(scope.Organizations)
	var orgs []apiOrg
	for _, o := range all {
		if want[strings.ToLower(o.Name)] {
			orgs = append(orgs, o)
			s.mu.Lock()
			s.orgIDs[strings.ToLower(o.Name)] = o.ID
			s.mu.Unlock()
		}
	}
	out := make([]reconcile.LiveOrg, len(orgs))
	if only != nil {
		byID := map[string]int{}
		for i, o := range orgs {
			out[i] = reconcile.LiveOrg{ID: o.ID, Name: o.Name, Members: []string{}}
			byID[o.ID] = i
		}
		var mu sync.Mutex
		err := forEach(ctx, s.conc, only, func(ctx context.Context, a reconcile.Account) error {
			mine, err := s.c.listOrgs(ctx, a.AccountID)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			for _, o := range mine {
				if i, ok := byID[o.ID]; ok {
					out[i].Members = append(out[i].Members, a.AccountID)
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("reading organization memberships: %w", err)
		}
		return out, nil
	}
	idx := make([]int, len(orgs))
	for i := range idx {
		idx[i] = i
	}
	err = forEach(ctx, s.conc, idx, func(ctx context.Context, i int) error {
		ms, err := s.c.orgMembers(ctx, orgs[i].ID)
		if err != nil {
			return err
		}
		ids := make([]string, 0, len(ms))
		for _, m := range ms {
			ids = append(ids, m.AccountID)
		}
		out[i] = reconcile.LiveOrg{ID: orgs[i].ID, Name: orgs[i].Name, Members: dedupe(ids)}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading organization members: %w", err)
	}
	return out, nil
}

// liveTargeted reads only what a one-user or push-triggered pass needs: the accounts of
// Scope.Accounts (by id) and Scope.Emails (user search, exact match on the email; hidden emails
// do not match), their groups (per-user group listing; LiveGroup.Members holds only these
// accounts), the groups in scope by name, and desk customers and organization members for these
// accounts only. The fixed lookups of a full read (product access, site-admin and admin
// groups) are made too, concurrently with the rest: a group's flags are never guessed or
// remembered from an earlier read, since a group may have been given admin rights since.
func (s *Sink) liveTargeted(ctx context.Context, scope reconcile.Scope) (reconcile.Live, error) {
	var (
		productKeys map[string]bool
		adminGroups []apiGroup
		adminAccess map[string]bool
		named       []apiGroup
		byEmail     [][]apiUser
	)
	emails := dedupeFold(scope.Emails)
	byEmail = make([][]apiUser, len(emails))
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { productKeys, err = s.productAccessGroups(gctx); return })
	g.Go(func() (err error) { adminGroups, err = s.siteAdminGroups(gctx); return })
	g.Go(func() (err error) { adminAccess, err = s.adminAccessGroups(gctx); return })
	if len(scope.Groups) > 0 {
		g.Go(func() (err error) { named, err = s.c.groupsByName(gctx, dedupeFold(scope.Groups), s.conc); return })
	}
	for i, e := range emails {
		g.Go(func() (err error) { byEmail[i], err = s.c.findByEmail(gctx, e); return })
	}
	if err := g.Wait(); err != nil {
		return reconcile.Live{}, fmt.Errorf("targeted lookups: %w", err)
	}
	adminIDs := map[string]bool{}
	for _, ag := range adminGroups {
		adminIDs[ag.GroupID] = true
	}

	accounts, err := s.accountsByID(ctx, dedupe(scope.Accounts), nil)
	if err != nil {
		return reconcile.Live{}, err
	}
	seen := map[string]bool{}
	for _, a := range accounts {
		seen[a.AccountID] = true
	}
	for _, us := range byEmail {
		for _, u := range us {
			if !seen[u.AccountID] {
				seen[u.AccountID] = true
				accounts = append(accounts, account(u, nil))
			}
		}
	}

	groups := map[string]*reconcile.LiveGroup{}
	var order []string
	addGroup := func(id, name string) *reconcile.LiveGroup {
		if lg, ok := groups[id]; ok {
			return lg
		}
		s.learnGroup(name, id)
		lg := &reconcile.LiveGroup{ID: id, Name: name, Members: []string{}, MembersRead: true,
			ProductAccess: productKeys[strings.ToLower(name)], Admin: adminIDs[id] || adminAccess[id]}
		groups[id] = lg
		order = append(order, id)
		return lg
	}
	for _, gr := range named {
		addGroup(gr.GroupID, gr.Name)
	}
	memberOf := make([][]apiGroup, len(accounts))
	idx := make([]int, len(accounts))
	for i := range idx {
		idx[i] = i
	}
	if err := forEach(ctx, s.conc, idx, func(ctx context.Context, i int) error {
		gs, err := s.c.userGroups(ctx, accounts[i].AccountID)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		memberOf[i] = gs
		return err
	}); err != nil {
		return reconcile.Live{}, fmt.Errorf("reading group memberships: %w", err)
	}
	for i, gs := range memberOf {
		for _, gr := range gs {
			lg := addGroup(gr.GroupID, gr.Name)
			lg.Members = append(lg.Members, accounts[i].AccountID)
			if adminIDs[gr.GroupID] {
				accounts[i].SiteAdmin = true
			}
		}
	}
	live := reconcile.Live{Accounts: accounts}
	sort.Strings(order)
	for _, id := range order {
		live.Groups = append(live.Groups, *groups[id])
	}
	if live.ServiceDesks, err = s.liveDesks(ctx, scope, nonNilAccounts(accounts)); err != nil {
		return reconcile.Live{}, err
	}
	if live.Organizations, err = s.liveOrgs(ctx, scope, nonNilAccounts(accounts)); err != nil {
		return reconcile.Live{}, err
	}
	return live, nil
}

func nonNilAccounts(a []reconcile.Account) []reconcile.Account {
	if a == nil {
		return []reconcile.Account{}
	}
	return a
}

func lowerSet(names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[strings.ToLower(n)] = true
	}
	return m
}

func dedupe(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if id != "" && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

func dedupeFold(names []string) []string {
	seen := make(map[string]bool, len(names))
	out := make([]string, 0, len(names))
	for _, n := range names {
		k := strings.ToLower(strings.TrimSpace(n))
		if k != "" && !seen[k] {
			seen[k] = true
			out = append(out, strings.TrimSpace(n))
		}
	}
	return out
}
