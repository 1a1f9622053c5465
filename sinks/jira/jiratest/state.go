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

// Seed is data to load into the site.
type Seed struct {
	Groups []SeedGroup
	Roles  []Role
	Users  []User
	Desks  []Desk
	Orgs   []Org
}

// SeedGroup is a group to create; AccessType is "", AccessSiteAdmin or AccessAdmin (product
// access comes from Roles).
type SeedGroup struct {
	Name       string
	AccessType string
}

// Role is a product (ApplicationRole). Groups are every group that grants the product's
// access; DefaultGroups are the ones POST /rest/api/3/user puts a new account into. As in
// Jira, a default group is always also one of Groups: a default group missing from Groups is
// added to it, so a seed may list only the groups beyond the defaults in Groups.
//
// A seed Role whose Key is already a role of the site (the default seed's jira-software, for
// example) extends that role instead of adding a second one: its Groups and DefaultGroups are
// added to the role's, and a non-empty Name replaces the role's. So Options.Data can give the
// default product more access groups than its default group, as real sites often have:
//
//	Data: jiratest.Seed{Roles: []jiratest.Role{{Key: "jira-software",
//		Groups: []string{"jira-software-admins-legacy", "engineering-access"}}}}
//
// serves /rest/api/3/applicationrole with defaultGroups [jira-software-users] and groups
// [jira-software-users, jira-software-admins-legacy, engineering-access]. Every group of a
// role grants product access: group/bulk?accessType=user and ?applicationKey=, the
// licensed-seat count and GET /user?expand=applicationRoles all go by Groups.
type Role struct {
	Key           string
	Name          string
	Groups        []string
	DefaultGroups []string
}

// User is an account to seed. AccountID is generated when empty. Groups are group names.
type User struct {
	AccountID   string
	Type        string // atlassian (default), app or customer
	Email       string
	DisplayName string
	HideEmail   bool
	Inactive    bool
	Groups      []string
}

// Desk is a service desk. ID and ProjectID are generated when empty. Customers are accountIds.
type Desk struct {
	ID         string
	ProjectID  string
	Key        string
	Name       string
	OpenAccess bool // removing customers then fails with 400, as in JSM
	Customers  []string
}

// Org is a JSM organization; Members are accountIds.
type Org struct {
	Name    string
	Members []string
}

// Seeded account ids of the default site.
const (
	SiteAdminID = "712020:00000000-0000-4000-8000-00000000ad01"
	AppID       = "557058:00000000-0000-4000-8000-0000000a9901"
)

// DefaultSeed is the site `idsync sim`, demo and tests start from: a site admin (adminEmail),
// an app account, the product-access group jira-software-users and the service desk DEMO.
func DefaultSeed(adminEmail string) Seed {
	return Seed{
		Groups: []SeedGroup{
			{Name: "site-admins", AccessType: AccessSiteAdmin},
			{Name: "jira-admins", AccessType: AccessAdmin},
			{Name: "jira-software-users"},
		},
		Roles: []Role{{
			Key: "jira-software", Name: "Jira Software",
			Groups: []string{"jira-software-users"}, DefaultGroups: []string{"jira-software-users"},
		}},
		Users: []User{
			{AccountID: SiteAdminID, Email: adminEmail, DisplayName: "Site Admin",
				Groups: []string{"site-admins", "jira-admins", "jira-software-users"}},
			{AccountID: AppID, Type: TypeApp, Email: "", DisplayName: "Automation for Jira"},
		},
		Desks: []Desk{{ID: "1", ProjectID: "10000", Key: "DEMO", Name: "Demo service project"}},
	}
}

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

func (s *Sim) mustSeed(sd Seed) {
	if err := s.LoadSeed(sd); err != nil {
		panic("jiratest: bad seed: " + err.Error())
	}
}

// LoadSeed adds sd to the site.
func (s *Sim) LoadSeed(sd Seed) error {
	for _, g := range sd.Groups {
		if _, err := s.AddGroup(g.Name, g.AccessType); err != nil {
			return err
		}
	}
	s.mu.Lock()
	for _, r := range sd.Roles {
		if err := s.st.addRole(r); err != nil {
			s.mu.Unlock()
			return err
		}
	}
	s.mu.Unlock()
	for _, u := range sd.Users {
		if _, err := s.AddUser(u); err != nil {
			return err
		}
	}
	for _, d := range sd.Desks {
		if _, err := s.AddDesk(d); err != nil {
			return err
		}
	}
	for _, o := range sd.Orgs {
		id := s.AddOrg(o.Name)
		for _, m := range o.Members {
			if err := s.AddOrgMember(id, m); err != nil {
				return err
			}
		}
	}
	return nil
}

// AddUser creates an account (indexed at once, as if it had existed for long) and puts it in
// its groups, creating missing groups. It returns the accountId.
func (s *Sim) AddUser(u User) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	typ := u.Type
	if typ == "" {
		typ = TypeAtlassian
	}
	a := &account{id: u.AccountID, typ: typ, email: u.Email, displayName: u.DisplayName,
		hideEmail: u.HideEmail, active: !u.Inactive, onSite: true}
	if typ == TypeApp {
		a.appType = "service"
	}
	if a.displayName == "" {
		a.displayName = localPart(u.Email)
	}
	a.nickname = a.displayName
	if err := s.st.addAccount(a); err != nil {
		return "", err
	}
	for _, name := range u.Groups {
		g := s.st.groupByName(name)
		if g == nil {
			var err error
			if g, err = s.st.addGroup(name, ""); err != nil {
				return "", err
			}
		}
		g.members.add(a.id)
	}
	return a.id, nil
}

// AddGroup creates a group and returns its id.
func (s *Sim) AddGroup(name, accessType string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.st.addGroup(name, accessType)
	if err != nil {
		return "", err
	}
	return g.id, nil
}

// AddMember puts an account into a group (by name).
func (s *Sim) AddMember(groupName, accountID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.st.groupByName(groupName)
	if g == nil {
		return fmt.Errorf("no group %q", groupName)
	}
	if s.st.accounts[accountID] == nil {
		return fmt.Errorf("no account %s", accountID)
	}
	g.members.add(accountID)
	return nil
}

// AddDesk creates a service desk and returns its id.
func (s *Sim) AddDesk(d Desk) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d.Key == "" {
		return "", errors.New("desk needs a project key")
	}
	if s.st.resolveDesk(d.Key) != nil {
		return "", fmt.Errorf("desk %s exists", d.Key)
	}
	if d.ID == "" {
		d.ID = strconv.Itoa(s.st.nextDesk)
	}
	if n, err := strconv.Atoi(d.ID); err == nil && n >= s.st.nextDesk {
		s.st.nextDesk = n + 1
	}
	if d.ProjectID == "" {
		d.ProjectID = strconv.Itoa(10000 + len(s.st.desks))
	}
	if d.Name == "" {
		d.Name = d.Key
	}
	dk := &desk{id: d.ID, projectID: d.ProjectID, key: d.Key, name: d.Name, openAccess: d.OpenAccess, customers: newSet()}
	for _, c := range d.Customers {
		dk.customers.add(c)
	}
	s.st.desks = append(s.st.desks, dk)
	return dk.id, nil
}

// AddDeskCustomer grants an account customer access to a desk (id or key).
func (s *Sim) AddDeskCustomer(deskRef, accountID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.st.resolveDesk(deskRef)
	if d == nil {
		return fmt.Errorf("no desk %q", deskRef)
	}
	d.customers.add(accountID)
	return nil
}

// AddOrg creates (or finds) an organization by name and returns its id.
func (s *Sim) AddOrg(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.createOrg(name).id
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

// AddOrgMember adds an account to an organization (by id).
func (s *Sim) AddOrgMember(orgID, accountID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.st.orgByID(orgID)
	if o == nil {
		return fmt.Errorf("no organization %s", orgID)
	}
	o.members.add(accountID)
	return nil
}

// SetEmailHidden sets an account's email-privacy flag.
func (s *Sim) SetEmailHidden(accountID string, hidden bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.st.accounts[accountID]
	if a == nil {
		return fmt.Errorf("no account %s", accountID)
	}
	a.hideEmail = hidden
	return nil
}

// SetActive sets an account's lifecycle state (as the admin API would).
func (s *Sim) SetActive(accountID string, active bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.st.accounts[accountID]
	if a == nil {
		return fmt.Errorf("no account %s", accountID)
	}
	a.active = active
	return nil
}

// --- inspection ----------------------------------------------------------------------------

// Account is an account as tests inspect it.
type Account struct {
	AccountID   string
	AccountType string
	Email       string
	DisplayName string
	HideEmail   bool
	// Active is the account's lifecycle state (admin-api disable clears it); Suspended is the
	// organization directory's suspension. Jira reports User.active as Active && !Suspended.
	Active    bool
	Suspended bool
	// Suspensions counts the times the account was suspended (a repeated suspend of a
	// suspended account does not count).
	Suspensions int
	OnSite      bool
	Groups      []string // names, sorted
}

// GroupInfo is a group with its members (accountIds, sorted).
type GroupInfo struct {
	ID         string
	Name       string
	AccessType string
	Members    []string
}

// DeskInfo is a desk with its customers (accountIds, sorted).
type DeskInfo struct {
	ID        string
	ProjectID string
	Key       string
	Name      string
	Customers []string
}

// OrgInfo is an organization with its members.
type OrgInfo struct {
	ID      string
	Name    string
	Members []string
}

func (st *site) export(a *account) Account {
	out := Account{AccountID: a.id, AccountType: a.typ, Email: a.email, DisplayName: a.displayName,
		HideEmail: a.hideEmail, Active: a.active, Suspended: a.suspended, Suspensions: a.suspensions, OnSite: a.onSite}
	for _, gid := range st.groupSeq {
		if g := st.groups[gid]; g.members.has(a.id) {
			out.Groups = append(out.Groups, g.name)
		}
	}
	sort.Strings(out.Groups)
	return out
}

// Accounts returns every account, on-site or not, in creation order.
func (s *Sim) Accounts() []Account {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Account, 0, len(s.st.order))
	for _, id := range s.st.order {
		out = append(out, s.st.export(s.st.accounts[id]))
	}
	return out
}

// Account returns one account by id.
func (s *Sim) Account(id string) (Account, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	a := s.st.accounts[id]
	if a == nil {
		return Account{}, false
	}
	return s.st.export(a), true
}

// AccountByEmail returns the account holding email (case-insensitive).
func (s *Sim) AccountByEmail(email string) (Account, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.st.byEmail[strings.ToLower(email)]
	if !ok {
		return Account{}, false
	}
	return s.st.export(s.st.accounts[id]), true
}

// Groups returns every group in creation order.
func (s *Sim) Groups() []GroupInfo {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]GroupInfo, 0, len(s.st.groupSeq))
	for _, id := range s.st.groupSeq {
		g := s.st.groups[id]
		out = append(out, GroupInfo{ID: g.id, Name: g.name, AccessType: g.accessType, Members: slices.Clone(g.members.list())})
	}
	return out
}

// Group returns one group by name (case-insensitive).
func (s *Sim) Group(name string) (GroupInfo, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	g := s.st.groupByName(name)
	if g == nil {
		return GroupInfo{}, false
	}
	return GroupInfo{ID: g.id, Name: g.name, AccessType: g.accessType, Members: slices.Clone(g.members.list())}, true
}

// Desks returns every service desk.
func (s *Sim) Desks() []DeskInfo {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]DeskInfo, 0, len(s.st.desks))
	for _, d := range s.st.desks {
		out = append(out, DeskInfo{ID: d.id, ProjectID: d.projectID, Key: d.key, Name: d.name, Customers: slices.Clone(d.customers.list())})
	}
	return out
}

// Desk returns one desk by id or project key.
func (s *Sim) Desk(ref string) (DeskInfo, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d := s.st.resolveDesk(ref)
	if d == nil {
		return DeskInfo{}, false
	}
	return DeskInfo{ID: d.id, ProjectID: d.projectID, Key: d.key, Name: d.name, Customers: slices.Clone(d.customers.list())}, true
}

// Orgs returns every organization.
func (s *Sim) Orgs() []OrgInfo {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]OrgInfo, 0, len(s.st.orgs))
	for _, o := range s.st.orgs {
		out = append(out, OrgInfo{ID: o.id, Name: o.name, Members: slices.Clone(o.members.list())})
	}
	return out
}

// DuplicateEmails lists emails held by more than one account (must always be empty: a client
// that creates twice shows up here).
func (s *Sim) DuplicateEmails() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	seen := map[string]int{}
	for _, a := range s.st.accounts {
		if a.email != "" {
			seen[strings.ToLower(a.email)]++
		}
	}
	var out []string
	for e, n := range seen {
		if n > 1 {
			out = append(out, e)
		}
	}
	sort.Strings(out)
	return out
}

// DuplicateGroupNames lists group names held by more than one group (must always be empty).
func (s *Sim) DuplicateGroupNames() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	seen := map[string]int{}
	for _, g := range s.st.groups {
		seen[strings.ToLower(g.name)]++
	}
	var out []string
	for n, c := range seen {
		if c > 1 {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

func localPart(email string) string {
	if i := strings.IndexByte(email, '@'); i > 0 {
		return email[:i]
	}
	return email
}
