package jiratest

import (
	"slices"
	"sort"
	"strings"
)

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
