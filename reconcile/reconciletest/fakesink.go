// Package reconciletest holds in-memory fakes of reconcile's interfaces that behave like the
// real systems: FakeSink rejects what Jira rejects, MemStore keeps state like the bbolt store,
// FakeSource serves a directory. Other packages' tests reuse them.
package reconciletest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
)

// Errors the fake returns, wrapped with context.
var (
	ErrNotFound  = errors.New("not found")
	ErrNameInUse = errors.New("group name in use")
	ErrBadChange = errors.New("bad change")
)

type fgroup struct {
	id, name      string
	members       map[string]bool
	productAccess bool
	admin         bool
}

type fdesk struct {
	id, key, name string
	customers     map[string]bool
}

type forg struct {
	id, name string
	members  map[string]bool
}

// FakeSink is a validating in-memory Jira. Decisions where Jira's documented behaviour is
// a status code rather than a state change:
//   - creating a user whose email exists returns the existing account (Jira answers 201 for
//     an existing user with access) but counts a duplicate-create attempt;
//   - creating a customer whose email exists does the same (the Jira sink adopts on 409);
//   - creating a group whose name exists (any case) fails with ErrNameInUse (Jira: 400);
//   - touching an unknown account, group, desk or organization fails with ErrNotFound;
//   - adding an existing member, customer or organization member is a no-op success and so
//     is removing an absent one: the Sink contract asks the Jira sink to map Jira's answers
//     for these (400 "already a member" on group/user, 204 on JSM) to success.
type FakeSink struct {
	// Method is the deactivation method (remove-access when empty).
	Method string
	// CreateAddsTo are groups a created licensed account joins by itself, as Jira adds new
	// users to the product's default groups. Like the Jira sink, the create's Result.Groups
	// then names the groups it joined (with ids), unless HideCreateJoins is set; an adopted
	// existing account joins nothing.
	CreateAddsTo []string
	// HideCreateJoins leaves Result.Groups of creates empty, like a sink that does not know
	// which groups a create joins: the engine then sends the adds (no-ops here).
	HideCreateJoins bool
	// Fail, when set, is called before every Apply with the 1-based number of that call; a
	// non-nil error is returned and nothing changes.
	Fail func(c reconcile.Change, n int) error
	// FailLeave, when set, can fail one step of a remove-access deactivation: leaving group
	// (by name) for accountID. Like the Jira sink, the fake tries every other step.
	FailLeave func(accountID, group string) error
	// LiveFail, when set, can fail Live.
	LiveFail func(scope reconcile.Scope) error
	// AfterApply, when set, is called after every successful Apply (tests use it to cancel a
	// pass after k items).
	AfterApply func(c reconcile.Change, n int)
	// HideEmails makes Live report every account without its email, as Jira does for
	// people whose profile visibility hides it. Lookups by email (Scope.Emails, creates that
	// adopt) still find them, as Jira's user search does.
	HideEmails bool
	// Lagging, when set, marks accounts Jira's search index does not show yet (created
	// moments ago): Live leaves them out of the account listing (unless Scope.Accounts names
	// them: read by id, read-your-writes) and out of every group's member listing.
	Lagging func(accountID string) bool

	mu       sync.Mutex
	seq      int
	accounts map[string]*reconcile.Account
	accOrder []string
	groups   map[string]*fgroup
	grpOrder []string
	desks    map[string]*fdesk
	dskOrder []string
	orgs     map[string]*forg
	orgOrder []string

	applyCalls int
	liveCalls  int
	calls      map[reconcile.Kind]int
	duplicates int
	// redundantAdds counts group adds of existing members (a wasted write in Jira).
	redundantAdds int
	lastScope     reconcile.Scope
}

var _ reconcile.Sink = (*FakeSink)(nil)

// NewFakeSink returns an empty Jira.
func NewFakeSink() *FakeSink {
	return &FakeSink{
		accounts: map[string]*reconcile.Account{}, groups: map[string]*fgroup{},
		desks: map[string]*fdesk{}, orgs: map[string]*forg{}, calls: map[reconcile.Kind]int{},
	}
}

func (f *FakeSink) next(prefix string) string {
	f.seq++
	return fmt.Sprintf("%s%d", prefix, f.seq)
}

// AddAccount seeds an account (an id is made when AccountID is empty) and returns its id.
func (f *FakeSink) AddAccount(a reconcile.Account) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a.AccountType == "" {
		a.AccountType = reconcile.AccountAtlassian
	}
	if a.AccountID == "" {
		if a.AccountType == reconcile.AccountCustomer {
			a.AccountID = f.next("qm:")
		} else {
			a.AccountID = f.next("acc-")
		}
	}
	cp := a
	f.accounts[a.AccountID] = &cp
	f.accOrder = append(f.accOrder, a.AccountID)
	return a.AccountID
}

// AddGroup seeds a group and returns its id.
func (f *FakeSink) AddGroup(name string, productAccess bool) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addGroup(name, productAccess)
}

func (f *FakeSink) addGroup(name string, productAccess bool) string {
	id := f.next("grp-")
	f.groups[id] = &fgroup{id: id, name: name, members: map[string]bool{}, productAccess: productAccess}
	f.grpOrder = append(f.grpOrder, id)
	return id
}

// SetAdmin marks a group as one that grants admin rights (Jira's site-admin or admin access
// type): Live reports it with LiveGroup.Admin.
func (f *FakeSink) SetAdmin(groupName string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	g := f.groupByName(groupName)
	if g == nil {
		return fmt.Errorf("group %q: %w", groupName, ErrNotFound)
	}
	g.admin = true
	return nil
}

// AddToGroup seeds a membership.
func (f *FakeSink) AddToGroup(groupName, accountID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	g := f.groupByName(groupName)
	if g == nil {
		return fmt.Errorf("group %q: %w", groupName, ErrNotFound)
	}
	if f.accounts[accountID] == nil {
		return fmt.Errorf("account %q: %w", accountID, ErrNotFound)
	}
	g.members[accountID] = true
	return nil
}

// AddDesk seeds a service desk and returns its id.
func (f *FakeSink) AddDesk(key, name string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := fmt.Sprint(len(f.desks) + 1)
	f.desks[id] = &fdesk{id: id, key: key, name: name, customers: map[string]bool{}}
	f.dskOrder = append(f.dskOrder, id)
	return id
}

// AddCustomerTo seeds a desk customer.
func (f *FakeSink) AddCustomerTo(desk, accountID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.desk(desk)
	if d == nil || f.accounts[accountID] == nil {
		return fmt.Errorf("desk %q or account %q: %w", desk, accountID, ErrNotFound)
	}
	d.customers[accountID] = true
	return nil
}

// AddOrg seeds an organization and returns its id.
func (f *FakeSink) AddOrg(name string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addOrg(name)
}

func (f *FakeSink) addOrg(name string) string {
	id := f.next("org-")
	f.orgs[id] = &forg{id: id, name: name, members: map[string]bool{}}
	f.orgOrder = append(f.orgOrder, id)
	return id
}

func (f *FakeSink) groupByName(name string) *fgroup {
	for _, id := range f.grpOrder {
		if g := f.groups[id]; g != nil && strings.EqualFold(g.name, name) {
			return g
		}
	}
	return nil
}

func (f *FakeSink) desk(keyOrID string) *fdesk {
	if d := f.desks[keyOrID]; d != nil {
		return d
	}
	for _, id := range f.dskOrder {
		if d := f.desks[id]; strings.EqualFold(d.key, keyOrID) {
			return d
		}
	}
	return nil
}

func (f *FakeSink) orgByName(name string) *forg {
	for _, id := range f.orgOrder {
		if o := f.orgs[id]; o != nil && strings.EqualFold(o.name, name) {
			return o
		}
	}
	return nil
}

func (f *FakeSink) accountByEmail(email, typ string) *reconcile.Account {
	for _, id := range f.accOrder {
		a := f.accounts[id]
		if a != nil && a.AccountType == typ && a.Email != "" && strings.EqualFold(a.Email, email) {
			return a
		}
	}
	return nil
}

// Live returns the state in scope, as the Jira sink would.
func (f *FakeSink) Live(ctx context.Context, scope reconcile.Scope) (reconcile.Live, error) {
	if err := ctx.Err(); err != nil {
		return reconcile.Live{}, err
	}
	if f.LiveFail != nil {
		if err := f.LiveFail(scope); err != nil {
			return reconcile.Live{}, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.liveCalls++
	f.lastScope = scope
	var live reconcile.Live
	keep := func(id string) bool { return true }
	if scope.Targeted {
		want := map[string]bool{}
		for _, id := range scope.Accounts {
			want[id] = true
		}
		for _, e := range scope.Emails {
			for _, id := range f.accOrder {
				if a := f.accounts[id]; a != nil && a.Email != "" && strings.EqualFold(a.Email, e) {
					want[id] = true
				}
			}
		}
		keep = func(id string) bool { return want[id] }
	}
	lagging := func(string) bool { return false }
	if f.Lagging != nil {
		lagging = f.Lagging
	}
	byID := map[string]bool{}
	for _, id := range scope.Accounts {
		byID[id] = true
	}
	for _, id := range f.accOrder {
		if a := f.accounts[id]; a != nil && keep(id) && (!lagging(id) || byID[id]) {
			acc := *a
			if f.HideEmails {
				acc.Email = ""
			}
			live.Accounts = append(live.Accounts, acc)
		}
	}
	names := map[string]bool{}
	for _, n := range scope.Groups {
		names[strings.ToLower(n)] = true
	}
	ids := map[string]bool{}
	for _, id := range scope.GroupIDs {
		ids[id] = true
	}
	for _, id := range f.grpOrder {
		g := f.groups[id]
		lg := reconcile.LiveGroup{ID: g.id, Name: g.name, ProductAccess: g.productAccess, Admin: g.admin}
		// A targeted read, like the Jira sink's (which lists each account's groups), shows
		// the targeted accounts' membership of every group.
		if names[strings.ToLower(g.name)] || ids[g.id] || g.productAccess || scope.Targeted {
			lg.MembersRead = true
			lg.Members = []string{}
			for _, m := range sortedKeys(g.members) {
				if keep(m) && !lagging(m) {
					lg.Members = append(lg.Members, m)
				}
			}
		}
		live.Groups = append(live.Groups, lg)
	}
	for _, s := range scope.ServiceDesks {
		d := f.desk(s)
		if d == nil || slices.ContainsFunc(live.ServiceDesks, func(x reconcile.LiveDesk) bool { return x.ID == d.id }) {
			continue
		}
		ld := reconcile.LiveDesk{ID: d.id, Key: d.key, Name: d.name, Customers: []string{}}
		for _, m := range sortedKeys(d.customers) {
			if keep(m) {
				ld.Customers = append(ld.Customers, m)
			}
		}
		live.ServiceDesks = append(live.ServiceDesks, ld)
	}
	for _, s := range scope.Organizations {
		o := f.orgByName(s)
		if o == nil || slices.ContainsFunc(live.Organizations, func(x reconcile.LiveOrg) bool { return x.ID == o.id }) {
			continue
		}
		lo := reconcile.LiveOrg{ID: o.id, Name: o.name, Members: []string{}}
		for _, m := range sortedKeys(o.members) {
			if keep(m) {
				lo.Members = append(lo.Members, m)
			}
		}
		live.Organizations = append(live.Organizations, lo)
	}
	return live, nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Apply performs one change, validating it like Jira.
func (f *FakeSink) Apply(ctx context.Context, c reconcile.Change) (reconcile.Result, error) {
	if err := ctx.Err(); err != nil {
		return reconcile.Result{}, err
	}
	f.mu.Lock()
	f.applyCalls++
	n := f.applyCalls
	f.calls[c.Kind]++
	fail := f.Fail
	f.mu.Unlock()
	if fail != nil {
		if err := fail(c, n); err != nil {
			return reconcile.Result{}, err
		}
	}
	f.mu.Lock()
	res, err := f.apply(c)
	after := f.AfterApply
	f.mu.Unlock()
	if err == nil && after != nil {
		after(c, n)
	}
	return res, err
}

func (f *FakeSink) account(id string) (*reconcile.Account, error) {
	if id == "" {
		return nil, fmt.Errorf("no accountId: %w", ErrBadChange)
	}
	a := f.accounts[id]
	if a == nil {
		return nil, fmt.Errorf("account %s: %w", id, ErrNotFound)
	}
	return a, nil
}

func (f *FakeSink) group(ref *reconcile.GroupRef) (*fgroup, error) {
	if ref == nil || ref.ID == "" {
		return nil, fmt.Errorf("no groupId: %w", ErrBadChange)
	}
	g := f.groups[ref.ID]
	if g == nil {
		return nil, fmt.Errorf("group %s: %w", ref.ID, ErrNotFound)
	}
	return g, nil
}

func (f *FakeSink) apply(c reconcile.Change) (reconcile.Result, error) {
	var res reconcile.Result
	switch c.Kind {
	case reconcile.KindCreateGroup:
		if c.Group == nil || c.Group.Name == "" {
			return res, fmt.Errorf("create group without a name: %w", ErrBadChange)
		}
		if f.groupByName(c.Group.Name) != nil {
			return res, fmt.Errorf("creating group %q: %w", c.Group.Name, ErrNameInUse)
		}
		res.GroupID = f.addGroup(c.Group.Name, false)
	case reconcile.KindCreateUser, reconcile.KindCreateCustomer:
		typ, prefix := reconcile.AccountAtlassian, "acc-"
		if c.Kind == reconcile.KindCreateCustomer {
			typ, prefix = reconcile.AccountCustomer, "qm:"
		}
		if c.Email == "" {
			return res, fmt.Errorf("create without an email: %w", ErrBadChange)
		}
		if a := f.accountByEmail(c.Email, typ); a != nil {
			f.duplicates++
			return reconcile.Result{AccountID: a.AccountID, Adopted: true, Writes: 1}, nil
		}
		id := f.next(prefix)
		f.accounts[id] = &reconcile.Account{AccountID: id, AccountType: typ, Email: c.Email, DisplayName: c.DisplayName, Active: true}
		f.accOrder = append(f.accOrder, id)
		if typ == reconcile.AccountAtlassian {
			for _, g := range f.CreateAddsTo {
				if fg := f.groupByName(g); fg != nil {
					fg.members[id] = true
					if !f.HideCreateJoins {
						res.Groups = append(res.Groups, reconcile.GroupRef{ID: fg.id, Name: fg.name})
					}
				}
			}
		}
		res.AccountID, res.Writes = id, 1
	case reconcile.KindUpdateUser:
		if c.Unsupported != "" {
			return res, fmt.Errorf("unsupported update sent: %w", ErrBadChange)
		}
		a, err := f.account(c.AccountID)
		if err != nil {
			return res, err
		}
		for _, fc := range c.Fields {
			switch fc.Field {
			case "displayName":
				a.DisplayName = fc.New
			case "email":
				a.Email = fc.New
			default:
				return res, fmt.Errorf("field %q: %w", fc.Field, ErrBadChange)
			}
			res.Writes++
		}
	case reconcile.KindReactivateUser:
		a := f.accounts[c.AccountID]
		if a == nil {
			if f.method() != configs.DeactivateDelete || c.Email == "" {
				return res, fmt.Errorf("account %s: %w", c.AccountID, ErrNotFound)
			}
			id := f.next("acc-")
			a = &reconcile.Account{AccountID: id, AccountType: reconcile.AccountAtlassian, Email: c.Email, DisplayName: c.DisplayName}
			f.accounts[id] = a
			f.accOrder = append(f.accOrder, id)
		}
		a.Active = true
		for _, ref := range c.Groups {
			g := f.groups[ref.ID]
			if g == nil {
				g = f.groupByName(ref.Name)
			}
			if g == nil {
				return res, fmt.Errorf("group %q: %w", ref.Name, ErrNotFound)
			}
			if !g.members[a.AccountID] {
				g.members[a.AccountID] = true
				res.Groups = append(res.Groups, reconcile.GroupRef{ID: g.id, Name: g.name})
			}
		}
		res.AccountID, res.Method = a.AccountID, f.method()
	case reconcile.KindDeactivateUser:
		a, err := f.account(c.AccountID)
		if err != nil {
			return res, err
		}
		res.Method = f.method()
		switch res.Method {
		case configs.DeactivateRemoveAccess:
			var errs []error
			for _, ref := range c.Groups {
				g, err := f.group(&ref)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				if f.FailLeave != nil {
					if err := f.FailLeave(a.AccountID, g.name); err != nil {
						errs = append(errs, fmt.Errorf("leaving %s: %w", g.name, err))
						continue
					}
				}
				if g.members[a.AccountID] {
					delete(g.members, a.AccountID)
					res.Groups = append(res.Groups, reconcile.GroupRef{ID: g.id, Name: g.name})
					res.Writes++
				}
			}
			if err := errors.Join(errs...); err != nil {
				return res, err
			}
		case configs.DeactivateAdminAPI:
			a.Active = false
		case configs.DeactivateDelete:
			for _, g := range f.groups {
				delete(g.members, a.AccountID)
			}
			delete(f.accounts, a.AccountID)
			f.accOrder = slices.DeleteFunc(f.accOrder, func(id string) bool { return id == a.AccountID })
		}
	case reconcile.KindAddMember, reconcile.KindRemoveMember:
		g, err := f.group(c.Group)
		if err != nil {
			return res, err
		}
		if _, err := f.account(c.AccountID); err != nil {
			return res, err
		}
		if c.Kind == reconcile.KindAddMember {
			if g.members[c.AccountID] {
				f.redundantAdds++ // Jira: 400 "already a member", still a call
			}
			g.members[c.AccountID] = true
		} else {
			delete(g.members, c.AccountID)
		}
		res.Writes = 1
	case reconcile.KindAddCustomer, reconcile.KindRemoveCustomer:
		d := f.desk(c.ServiceDesk)
		if d == nil {
			return res, fmt.Errorf("service desk %q: %w", c.ServiceDesk, ErrNotFound)
		}
		if _, err := f.account(c.AccountID); err != nil {
			return res, err
		}
		if c.Kind == reconcile.KindAddCustomer {
			d.customers[c.AccountID] = true
		} else {
			delete(d.customers, c.AccountID)
		}
		res.Writes = 1
	case reconcile.KindAddOrganizationMember, reconcile.KindRemoveOrganizationMember:
		if _, err := f.account(c.AccountID); err != nil {
			return res, err
		}
		var o *forg
		if c.OrganizationID != "" {
			o = f.orgs[c.OrganizationID]
			if o == nil {
				return res, fmt.Errorf("organization %s: %w", c.OrganizationID, ErrNotFound)
			}
		} else if c.Kind == reconcile.KindAddOrganizationMember {
			// Like POST /organization: returns the existing organization of that name.
			if o = f.orgByName(c.Organization); o == nil {
				o = f.orgs[f.addOrg(c.Organization)]
			}
		} else {
			return res, fmt.Errorf("remove from organization without an id: %w", ErrBadChange)
		}
		if c.Kind == reconcile.KindAddOrganizationMember {
			o.members[c.AccountID] = true
		} else {
			delete(o.members, c.AccountID)
		}
		res.OrganizationID, res.Writes = o.id, 1
	default:
		return res, fmt.Errorf("kind %q: %w", c.Kind, ErrBadChange)
	}
	return res, nil
}

func (f *FakeSink) method() string {
	if f.Method == "" {
		return configs.DeactivateRemoveAccess
	}
	return f.Method
}

// ---- assertions ----

// Accounts returns every account, in creation order.
func (f *FakeSink) Accounts() []reconcile.Account {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]reconcile.Account, 0, len(f.accOrder))
	for _, id := range f.accOrder {
		out = append(out, *f.accounts[id])
	}
	return out
}

// AccountByEmail returns the atlassian (else customer) account with that email.
func (f *FakeSink) AccountByEmail(email string) (reconcile.Account, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.accountByEmail(email, reconcile.AccountAtlassian)
	if a == nil {
		a = f.accountByEmail(email, reconcile.AccountCustomer)
	}
	if a == nil {
		return reconcile.Account{}, false
	}
	return *a, true
}

// Groups returns every group name with its sorted member accountIds.
func (f *FakeSink) Groups() map[string][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string][]string{}
	for _, id := range f.grpOrder {
		g := f.groups[id]
		out[g.name] = sortedKeys(g.members)
	}
	return out
}

// GroupID returns the id of a group by name (any case).
func (f *FakeSink) GroupID(name string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if g := f.groupByName(name); g != nil {
		return g.id
	}
	return ""
}

// Members returns the sorted members of a group by name.
func (f *FakeSink) Members(group string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if g := f.groupByName(group); g != nil {
		return sortedKeys(g.members)
	}
	return nil
}

// Customers returns the sorted customers of a desk by key or id.
func (f *FakeSink) Customers(desk string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d := f.desk(desk); d != nil {
		return sortedKeys(d.customers)
	}
	return nil
}

// OrgMembers returns the sorted members of an organization by name.
func (f *FakeSink) OrgMembers(name string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if o := f.orgByName(name); o != nil {
		return sortedKeys(o.members)
	}
	return nil
}

// DuplicateCreates counts creates of accounts whose email already existed.
func (f *FakeSink) DuplicateCreates() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.duplicates
}

// RedundantAdds counts group adds of accounts that were members already: calls Jira answers
// 400 "already a member", wasted writes.
func (f *FakeSink) RedundantAdds() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.redundantAdds
}

// ApplyCalls counts Apply calls (all kinds); Calls counts them for one kind.
func (f *FakeSink) ApplyCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applyCalls
}

// Calls counts Apply calls of one kind.
func (f *FakeSink) Calls(k reconcile.Kind) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[k]
}

// LiveCalls counts Live calls; LastScope is the scope of the last one.
func (f *FakeSink) LiveCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.liveCalls
}

// LastScope is the scope of the last Live call.
func (f *FakeSink) LastScope() reconcile.Scope {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastScope
}

// SetActive flips an account's active flag (an admin deactivating it by hand).
func (f *FakeSink) SetActive(accountID string, active bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a := f.accounts[accountID]; a != nil {
		a.Active = active
	}
}

// RemoveFromGroup removes a membership by hand.
func (f *FakeSink) RemoveFromGroup(group, accountID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if g := f.groupByName(group); g != nil {
		delete(g.members, accountID)
	}
}

// Describe renders the whole state with accounts named by email, for comparing two fakes
// whose generated ids differ.
func (f *FakeSink) Describe() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	name := func(id string) string {
		if a := f.accounts[id]; a != nil {
			return a.AccountType + ":" + strings.ToLower(cmpOr(a.Email, id))
		}
		return "?" + id
	}
	var lines []string
	for _, id := range f.accOrder {
		a := f.accounts[id]
		lines = append(lines, fmt.Sprintf("account %s active=%v name=%q", name(id), a.Active, a.DisplayName))
	}
	for _, id := range f.grpOrder {
		g := f.groups[id]
		var ms []string
		for m := range g.members {
			ms = append(ms, name(m))
		}
		slices.Sort(ms)
		lines = append(lines, fmt.Sprintf("group %s: %s", strings.ToLower(g.name), strings.Join(ms, " ")))
	}
	for _, id := range f.dskOrder {
		d := f.desks[id]
		var ms []string
		for m := range d.customers {
			ms = append(ms, name(m))
		}
		slices.Sort(ms)
		lines = append(lines, fmt.Sprintf("desk %s: %s", d.key, strings.Join(ms, " ")))
	}
	for _, id := range f.orgOrder {
		o := f.orgs[id]
		var ms []string
		for m := range o.members {
			ms = append(ms, name(m))
		}
		slices.Sort(ms)
		lines = append(lines, fmt.Sprintf("org %s: %s", strings.ToLower(o.name), strings.Join(ms, " ")))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
