package reconcile

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// LiveCache is Jira's state between full reads (DESIGN "Full and incremental reads of Jira"):
// what the last full read saw, patched with the outcome of every write applied since, and with
// the accounts whose state after a write is not known exactly marked dirty, to be read again
// before the next plan that relies on them.
//
// It is only ever as good as the writes it is told about: a pass with a failed item or an
// unknown outcome must drop it (the next pass reads in full), and hand-made changes in Jira
// are seen at the next full read.
type LiveCache struct {
	live Live
	// scope is what the full read read members of: lower group names and ids, desks and
	// organizations (lower). A later scope outside it needs a full read.
	groupsRead, desksRead, orgsRead map[string]bool
	dirty                           map[string]bool

	// Indexes, kept in step with live: groups are only ever appended; accounts are
	// re-indexed after Merge; member sets are built for a group when first patched.
	groupByID, groupByName map[string]int
	accByID                map[string]int
	members                map[int]map[string]bool
}

// NewLiveCache keeps l, the result of a full read of scope. The cache owns l from then on.
func NewLiveCache(l Live, scope Scope) *LiveCache {
	c := &LiveCache{live: l, groupsRead: map[string]bool{}, desksRead: map[string]bool{}, orgsRead: map[string]bool{}, dirty: map[string]bool{}}
	for _, n := range scope.Groups {
		c.groupsRead[lower(n)] = true
	}
	for _, id := range scope.GroupIDs {
		c.groupsRead[id] = true
	}
	for _, g := range l.Groups {
		if g.MembersRead {
			c.groupsRead[lower(g.Name)], c.groupsRead[g.ID] = true, true
		}
	}
	for _, d := range scope.ServiceDesks {
		c.desksRead[lower(d)] = true
	}
	for _, d := range l.ServiceDesks {
		c.desksRead[lower(d.Key)], c.desksRead[lower(d.ID)] = true, true
	}
	for _, o := range scope.Organizations {
		c.orgsRead[lower(o)] = true
	}
	c.groupByID, c.groupByName = make(map[string]int, len(l.Groups)), make(map[string]int, len(l.Groups))
	for i, g := range l.Groups {
		c.indexGroup(i, g)
	}
	c.indexAccounts()
	return c
}

func (c *LiveCache) indexGroup(i int, g LiveGroup) {
	c.groupByID[g.ID] = i
	if _, dup := c.groupByName[lower(g.Name)]; !dup {
		c.groupByName[lower(g.Name)] = i
	}
}

func (c *LiveCache) indexAccounts() {
	c.accByID = make(map[string]int, len(c.live.Accounts))
	for i, a := range c.live.Accounts {
		c.accByID[a.AccountID] = i
	}
	c.members = map[int]map[string]bool{}
}

// memberSet returns the member set of group i, built on first use.
func (c *LiveCache) memberSet(i int) map[string]bool {
	if m, ok := c.members[i]; ok {
		return m
	}
	m := make(map[string]bool, len(c.live.Groups[i].Members))
	for _, a := range c.live.Groups[i].Members {
		m[a] = true
	}
	c.members[i] = m
	return m
}

// Live returns the cached state. Callers must not change it (the planner copies what it
// sorts).
func (c *LiveCache) Live() Live { return c.live }

// Covers reports whether every part of scope was read by the full read this cache holds (or
// created since): a pass whose scope grew (a new mapping, a reload) needs a full read.
func (c *LiveCache) Covers(s Scope) string {
	for _, n := range s.Groups {
		if !c.groupsRead[lower(n)] {
			return "group " + n + " was not read in full"
		}
	}
	for _, id := range s.GroupIDs {
		if !c.groupsRead[id] {
			return "group " + id + " was not read in full"
		}
	}
	for _, d := range s.ServiceDesks {
		if !c.desksRead[lower(d)] {
			return "service desk " + d + " was not read in full"
		}
	}
	for _, o := range s.Organizations {
		if !c.orgsRead[lower(o)] {
			return "organization " + o + " was not read in full"
		}
	}
	return ""
}

// Dirty returns the accounts to read again before the next plan, sorted.
func (c *LiveCache) Dirty() []string {
	out := make([]string, 0, len(c.dirty))
	for id := range c.dirty {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// Uncached returns the ids the cache holds no account for (created or linked since the last
// full read, in a way no patch recorded).
func (c *LiveCache) Uncached(ids []string) []string {
	var out []string
	for _, id := range ids {
		if _, ok := c.accByID[id]; !ok {
			out = append(out, id)
		}
	}
	return out
}

// MarkUnlisted marks dirty every account of ids that no member listing the cache holds
// shows. Jira's search index may hide an account created moments ago from every listing
// (its memberships included) while GET /user already shows it: such an account, read one
// by one, would otherwise be taken as in no group until the next full read.
func (c *LiveCache) MarkUnlisted(ids []string) {
	listed := map[string]bool{}
	for _, g := range c.live.Groups {
		if g.MembersRead {
			for _, m := range g.Members {
				listed[m] = true
			}
		}
	}
	for _, id := range ids {
		if _, have := c.accByID[id]; have && !listed[id] {
			c.dirty[id] = true
		}
	}
}

// MarkDirty marks accounts to read again before the next plan.
func (c *LiveCache) MarkDirty(ids ...string) {
	for _, id := range ids {
		if id != "" {
			c.dirty[id] = true
		}
	}
}

// Apply patches the cache with a change Jira applied (ItemOK) and its result. What a write
// did exactly to an account's state (deactivation, reactivation, profile updates, an adopted
// account) is not patched: the account is marked dirty instead.
func (c *LiveCache) Apply(ch Change, res Result) {
	acc := cmp.Or(res.AccountID, ch.AccountID)
	switch ch.Kind {
	case KindCreateGroup:
		id := cmp.Or(res.GroupID, groupID(ch.Group))
		if res.Adopted || id == "" {
			// Its members are unknown: only a full read may say.
			delete(c.groupsRead, lower(ch.Group.Name))
			return
		}
		if c.groupIndex(id, ch.Group.Name) < 0 {
			g := LiveGroup{ID: id, Name: ch.Group.Name, Members: []string{}, MembersRead: true}
			c.live.Groups = append(c.live.Groups, g)
			c.indexGroup(len(c.live.Groups)-1, g)
		}
		c.groupsRead[lower(ch.Group.Name)], c.groupsRead[id] = true, true
	case KindCreateUser, KindCreateCustomer:
		if res.Adopted || acc == "" {
			c.MarkDirty(acc)
			return
		}
		typ := AccountAtlassian
		if ch.Kind == KindCreateCustomer {
			typ = AccountCustomer
		}
		if _, ok := c.accByID[acc]; !ok {
			c.live.Accounts = append(c.live.Accounts, Account{AccountID: acc, AccountType: typ, Email: ch.Email, DisplayName: ch.DisplayName, Active: true})
			c.accByID[acc] = len(c.live.Accounts) - 1
		}
		for _, g := range res.Groups {
			c.addMember(g.ID, g.Name, acc)
		}
		if ch.Kind == KindCreateCustomer && ch.ServiceDesk != "" {
			c.setCustomer(ch.ServiceDesk, acc, true)
		}
	case KindAddMember, KindRemoveMember:
		g := groupRef(ch.Group)
		if ch.Kind == KindAddMember {
			c.addMember(g.ID, g.Name, acc)
		} else {
			c.removeMember(g.ID, g.Name, acc)
		}
	case KindAddCustomer, KindRemoveCustomer:
		c.setCustomer(ch.ServiceDesk, acc, ch.Kind == KindAddCustomer)
	case KindAddOrganizationMember, KindRemoveOrganizationMember:
		c.setOrgMember(cmp.Or(res.OrganizationID, ch.OrganizationID), ch.Organization, acc, ch.Kind == KindAddOrganizationMember)
	default: // deactivate, reactivate, update
		c.MarkDirty(acc)
	}
}

// ErrCacheGap is returned by Merge when a fresh read shows a part of Jira the cache has no
// record of (a group, desk or organization created by hand): only a full read may fill it.
var ErrCacheGap = errors.New("the fresh read shows what the last full read did not")

// Merge lays a targeted read of accounts (fresh, read with Scope.Targeted for those accounts
// and for emails) over the cache: each account read, or asked for and not found, replaces
// what the cache knew of it: its record, and its membership of every group, desk and
// organization the cache read in full. The accounts are no longer dirty.
func (c *LiveCache) Merge(fresh Live, accounts []string) error {
	ids := make(map[string]bool, len(accounts)+len(fresh.Accounts))
	for _, id := range accounts {
		ids[id] = true
	}
	for _, a := range fresh.Accounts {
		ids[a.AccountID] = true
	}
	// Check before changing anything: a gap leaves the cache as it was.
	for _, g := range fresh.Groups {
		if !slices.ContainsFunc(g.Members, func(m string) bool { return ids[m] }) {
			continue
		}
		if i := c.groupIndex(g.ID, g.Name); i >= 0 && c.live.Groups[i].MembersRead {
			continue
		}
		if g.ProductAccess || g.Admin || c.groupsRead[lower(g.Name)] {
			return fmt.Errorf("group %s: %w", g.Name, ErrCacheGap)
		}
	}
	for _, d := range fresh.ServiceDesks {
		if c.deskIndex(d.ID) < 0 && c.deskIndex(d.Key) < 0 {
			return fmt.Errorf("service desk %s: %w", cmp.Or(d.Key, d.ID), ErrCacheGap)
		}
	}
	for _, o := range fresh.Organizations {
		if c.orgIndex(o.ID, o.Name) < 0 && len(o.Members) > 0 {
			return fmt.Errorf("organization %s: %w", o.Name, ErrCacheGap)
		}
	}

	c.live.Accounts = slices.DeleteFunc(c.live.Accounts, func(a Account) bool { return ids[a.AccountID] })
	c.live.Accounts = append(c.live.Accounts, fresh.Accounts...)
	drop := func(ms []string) []string { return slices.DeleteFunc(ms, func(m string) bool { return ids[m] }) }
	for i := range c.live.Groups {
		if c.live.Groups[i].MembersRead {
			c.live.Groups[i].Members = drop(c.live.Groups[i].Members)
		}
	}
	for i := range c.live.ServiceDesks {
		c.live.ServiceDesks[i].Customers = drop(c.live.ServiceDesks[i].Customers)
	}
	for i := range c.live.Organizations {
		c.live.Organizations[i].Members = drop(c.live.Organizations[i].Members)
	}
	for _, g := range fresh.Groups {
		i := c.groupIndex(g.ID, g.Name)
		if i < 0 || !c.live.Groups[i].MembersRead {
			continue // a group nobody manages: its members are not cached
		}
		for _, m := range g.Members {
			if ids[m] {
				c.live.Groups[i].Members = append(c.live.Groups[i].Members, m)
			}
		}
	}
	for _, d := range fresh.ServiceDesks {
		i := c.deskIndex(d.ID)
		if i < 0 {
			i = c.deskIndex(d.Key)
		}
		for _, m := range d.Customers {
			if ids[m] {
				c.live.ServiceDesks[i].Customers = append(c.live.ServiceDesks[i].Customers, m)
			}
		}
	}
	for _, o := range fresh.Organizations {
		i := c.orgIndex(o.ID, o.Name)
		if i < 0 {
			continue // no members of ours in it (checked above)
		}
		for _, m := range o.Members {
			if ids[m] {
				c.live.Organizations[i].Members = append(c.live.Organizations[i].Members, m)
			}
		}
	}
	for id := range ids {
		delete(c.dirty, id)
	}
	c.indexAccounts()
	return nil
}

// Page sizes of Jira's listings, as DESIGN "Measurement" documents them: what FullReadCost
// and TargetedReadCost count pages by.
const (
	pageUsers   = 1000
	pageGroups  = 50
	pageMembers = 50
	pageJSM     = 50
)

func pages(n, size int) int { return max(1, (n+size-1)/size) }

// FullReadCost estimates the calls a full read of the cached part of Jira takes: the fixed
// lookups, the account and group listings, every member page of every group read in full,
// and the desks' customers and organizations' members.
func (c *LiveCache) FullReadCost() int {
	n := 4 + pages(len(c.live.Accounts), pageUsers) + pages(len(c.live.Groups), pageGroups)
	for _, g := range c.live.Groups {
		if g.MembersRead {
			n += pages(len(g.Members), pageMembers)
		}
	}
	if len(c.live.ServiceDesks) > 0 {
		n++
	}
	for _, d := range c.live.ServiceDesks {
		n += pages(len(d.Customers), pageJSM)
	}
	if len(c.live.Organizations) > 0 {
		n += pages(len(c.live.Organizations), pageJSM)
	}
	for _, o := range c.live.Organizations {
		n += pages(len(o.Members), pageJSM)
	}
	return n
}

// TargetedReadCost estimates the calls of a targeted read of accounts and emails over the
// desks and organizations of s: three fixed lookups, then per account its record and its
// groups (an email first searched), and its customer access and organization membership in
// each desk and organization.
func TargetedReadCost(accounts, emails int, s Scope) int {
	each := 2 + len(s.ServiceDesks) + len(s.Organizations)
	return 3 + accounts*each + emails*(each+1)
}

// Touched returns the accounts a plan writes to and the emails of the accounts it creates:
// what an incremental pass reads again just before writing, so that a stale record never
// causes a wrong write.
func Touched(c Changes) (accounts, emails []string) {
	seen := map[string]bool{}
	for _, k := range Kinds {
		for _, ch := range *c.List(k) {
			if ch.Unsupported != "" {
				continue
			}
			switch {
			case ch.AccountID != "":
				if !seen[ch.AccountID] {
					seen[ch.AccountID] = true
					accounts = append(accounts, ch.AccountID)
				}
			case (k == KindCreateUser || k == KindCreateCustomer) && ch.Email != "":
				if e := "mail:" + lower(ch.Email); !seen[e] {
					seen[e] = true
					emails = append(emails, ch.Email)
				}
			}
		}
	}
	return accounts, emails
}

func (c *LiveCache) addMember(id, name, acc string) {
	i := c.groupIndex(id, name)
	if i < 0 || !c.live.Groups[i].MembersRead || acc == "" {
		return
	}
	if set := c.memberSet(i); !set[acc] {
		set[acc] = true
		c.live.Groups[i].Members = append(c.live.Groups[i].Members, acc)
	}
}

func (c *LiveCache) removeMember(id, name, acc string) {
	if i := c.groupIndex(id, name); i >= 0 && c.memberSet(i)[acc] {
		delete(c.members[i], acc)
		c.live.Groups[i].Members = slices.DeleteFunc(c.live.Groups[i].Members, func(m string) bool { return m == acc })
	}
}

func (c *LiveCache) setCustomer(desk, acc string, in bool) {
	i := c.deskIndex(desk)
	if i < 0 || acc == "" {
		return
	}
	d := &c.live.ServiceDesks[i]
	d.Customers = slices.DeleteFunc(d.Customers, func(m string) bool { return m == acc })
	if in {
		d.Customers = append(d.Customers, acc)
	}
}

func (c *LiveCache) setOrgMember(id, name, acc string, in bool) {
	i := c.orgIndex(id, name)
	if i < 0 && in && id != "" {
		// Created by this very add: the pass knew it had no members.
		c.live.Organizations = append(c.live.Organizations, LiveOrg{ID: id, Name: name, Members: []string{}})
		c.orgsRead[lower(name)] = true
		i = len(c.live.Organizations) - 1
	}
	if i < 0 || acc == "" {
		return
	}
	o := &c.live.Organizations[i]
	o.Members = slices.DeleteFunc(o.Members, func(m string) bool { return m == acc })
	if in {
		o.Members = append(o.Members, acc)
	}
}

// Desks and organizations are few (tens): they are scanned.

func (c *LiveCache) groupIndex(id, name string) int {
	if id != "" {
		if i, ok := c.groupByID[id]; ok {
			return i
		}
		return -1
	}
	if i, ok := c.groupByName[lower(name)]; ok {
		return i
	}
	return -1
}

func (c *LiveCache) deskIndex(desk string) int {
	if desk == "" {
		return -1
	}
	return slices.IndexFunc(c.live.ServiceDesks, func(d LiveDesk) bool {
		return d.ID == desk || strings.EqualFold(d.Key, desk)
	})
}

func (c *LiveCache) orgIndex(id, name string) int {
	return slices.IndexFunc(c.live.Organizations, func(o LiveOrg) bool {
		return (id != "" && o.ID == id) || (id == "" && strings.EqualFold(o.Name, name))
	})
}

func groupID(g *GroupRef) string {
	if g == nil {
		return ""
	}
	return g.ID
}

func groupRef(g *GroupRef) GroupRef {
	if g == nil {
		return GroupRef{}
	}
	return *g
}
