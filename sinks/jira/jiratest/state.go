package jiratest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Account types (User.accountType).
const (
	TypeAtlassian = "atlassian"
	TypeApp       = "app"
	TypeCustomer  = "customer"
)

// Group access types, as group/bulk?accessType= filters them.
const (
	AccessSiteAdmin = "site-admin"
	AccessAdmin     = "admin"
	AccessUser      = "user"
)

type account struct {
	id, typ, appType string
	email            string
	displayName      string
	nickname         string
	hideEmail        bool
	active           bool
	onSite           bool      // false once DELETE /rest/api/3/user removed it from the site
	created          time.Time // zero for seeded accounts (always indexed)
	// suspended is the organization directory's suspension ("remove access" in the admin
	// console): the account keeps its groups but has no product access while it lasts.
	suspended   bool
	suspensions int // times the account went from active to suspended
}

type set struct {
	m       map[string]struct{}
	sorted  []string // nil when stale
	cacheMu sync.Mutex
}

func newSet() *set { return &set{m: map[string]struct{}{}} }

func (s *set) add(id string) bool {
	if _, ok := s.m[id]; ok {
		return false
	}
	s.m[id] = struct{}{}
	s.sorted = nil
	return true
}

func (s *set) remove(id string) bool {
	if _, ok := s.m[id]; !ok {
		return false
	}
	delete(s.m, id)
	s.sorted = nil
	return true
}

func (s *set) has(id string) bool { _, ok := s.m[id]; return ok }

// list returns the ids sorted, cached until the next change (pages of big groups stay cheap).
//
// Readers call it under the simulator's read lock, so several may build the cache at once:
// cacheMu keeps that safe (writers hold the write lock, so add and remove need no more).
func (s *set) list() []string {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	if s.sorted == nil {
		s.sorted = make([]string, 0, len(s.m))
		for id := range s.m {
			s.sorted = append(s.sorted, id)
		}
		sort.Strings(s.sorted)
	}
	return s.sorted
}

type group struct {
	id, name   string
	accessType string
	members    *set
}

type desk struct {
	id, projectID, key, name string
	openAccess               bool
	customers                *set
}

type org struct {
	id      string
	name    string
	members *set
}

// site is the data of one simulated Jira site. Callers hold Sim.mu.
type site struct {
	rng   *rand.Rand
	clock Clock
	lag   time.Duration

	accounts  map[string]*account
	order     []string          // accountIds in creation order (users/search order)
	byEmail   map[string]string // lower-case email -> accountId (Atlassian accounts persist off-site)
	groups    map[string]*group
	groupSeq  []string          // groupIds in creation order
	groupName map[string]string // lower-case name -> groupId
	roles     []*Role
	desks     []*desk
	orgs      []*org
	nextDesk  int
	nextOrg   int
	// orgID is the Atlassian organization of the site; dirs are its user directories, the
	// first holding every Atlassian account (orgapi.go).
	orgID string
	dirs  []*directory
}

func newSite(rng *rand.Rand, clock Clock, lag time.Duration) *site {
	return &site{
		rng: rng, clock: clock, lag: lag,
		accounts: map[string]*account{}, byEmail: map[string]string{},
		groups: map[string]*group{}, groupName: map[string]string{},
		nextDesk: 1, nextOrg: 1,
		orgID: DefaultOrgID, dirs: []*directory{{id: DefaultDirectoryID, name: DefaultDirectoryName}},
	}
}

func (st *site) uuid() string {
	a, b := st.rng.Uint64(), st.rng.Uint64()
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", a>>32, (a>>16)&0xffff, a&0xfff, (b>>48)&0x3fff|0x8000, b&0xffffffffffff)
}

func (st *site) newAccountID(typ string) string {
	switch typ {
	case TypeCustomer:
		return fmt.Sprintf("qm:%s:%024x", st.uuid(), st.rng.Uint64())
	case TypeApp:
		return "557058:" + st.uuid()
	}
	return "712020:" + st.uuid()
}

// indexed reports whether listings (users/search, user/search, group/member) see a.
func (st *site) indexed(a *account, now time.Time) bool {
	return a.created.IsZero() || !now.Before(a.created.Add(st.lag))
}

func (st *site) addAccount(a *account) error {
	if a.id == "" {
		a.id = st.newAccountID(a.typ)
	}
	if _, ok := st.accounts[a.id]; ok {
		return fmt.Errorf("account %s exists", a.id)
	}
	if a.email != "" {
		if _, ok := st.byEmail[strings.ToLower(a.email)]; ok {
			return fmt.Errorf("an account with email %s exists", a.email)
		}
		st.byEmail[strings.ToLower(a.email)] = a.id
	}
	st.accounts[a.id] = a
	st.order = append(st.order, a.id)
	return nil
}

func (st *site) addGroup(name, access string) (*group, error) {
	if strings.TrimSpace(name) == "" {
		return nil, errors.New("group name is empty")
	}
	if _, ok := st.groupName[strings.ToLower(name)]; ok {
		return nil, fmt.Errorf("group %q exists", name)
	}
	g := &group{id: st.uuid(), name: name, accessType: access, members: newSet()}
	st.groups[g.id] = g
	st.groupSeq = append(st.groupSeq, g.id)
	st.groupName[strings.ToLower(name)] = g.id
	return g, nil
}

func (st *site) groupByName(name string) *group {
	if id, ok := st.groupName[strings.ToLower(name)]; ok {
		return st.groups[id]
	}
	return nil
}

// addRole adds r, or extends the role of the same key (see Role), creating missing groups.
func (st *site) addRole(r Role) error {
	if strings.TrimSpace(r.Key) == "" {
		return errors.New("role key is empty")
	}
	for _, g := range slices.Concat(r.Groups, r.DefaultGroups) {
		if st.groupByName(g) == nil {
			if _, err := st.addGroup(g, ""); err != nil {
				return err
			}
		}
	}
	role := st.role(r.Key)
	if role == nil {
		role = &Role{Key: r.Key}
		st.roles = append(st.roles, role)
	}
	if r.Name != "" {
		role.Name = r.Name
	}
	role.DefaultGroups = appendNew(role.DefaultGroups, r.DefaultGroups...)
	role.Groups = appendNew(role.Groups, slices.Concat(r.Groups, role.DefaultGroups)...)
	return nil
}

// role returns the role of key, or nil.
func (st *site) role(key string) *Role {
	for _, r := range st.roles {
		if r.Key == key {
			return r
		}
	}
	return nil
}

// appendNew appends the names not already in list (case-insensitive), keeping order.
func appendNew(list []string, names ...string) []string {
	out := slices.Clone(list)
	for _, n := range names {
		if !slices.ContainsFunc(out, func(x string) bool { return strings.EqualFold(x, n) }) {
			out = append(out, n)
		}
	}
	return out
}

func (st *site) resolveDesk(ref string) *desk {
	kind, val, ok := strings.Cut(ref, ":")
	if !ok {
		kind, val = "", ref
	}
	for _, d := range st.desks {
		switch kind {
		case "projectKey":
			if strings.EqualFold(d.key, val) {
				return d
			}
		case "projectId":
			if d.projectID == val {
				return d
			}
		case "serviceDeskId":
			if d.id == val {
				return d
			}
		case "":
			if d.id == val || strings.EqualFold(d.key, val) {
				return d
			}
		}
	}
	return nil
}

func (st *site) orgByID(id string) *org {
	for _, o := range st.orgs {
		if o.id == id {
			return o
		}
	}
	return nil
}

func (st *site) orgByName(name string) *org {
	for _, o := range st.orgs {
		if strings.EqualFold(o.name, name) {
			return o
		}
	}
	return nil
}

func (st *site) createOrg(name string) *org {
	if o := st.orgByName(name); o != nil {
		return o
	}
	o := &org{id: strconv.Itoa(st.nextOrg), name: name, members: newSet()}
	st.nextOrg++
	st.orgs = append(st.orgs, o)
	return o
}
