package jiratest

import (
	"fmt"
	"strings"
)

// Product access: which groups grant it, who holds it and the licensed seats it uses, and
// the organization directory's suspension, which takes it away while keeping the groups.

// LegacyAccessGroup is a product-access group beyond the role's default group, as real sites
// often keep from an older setup. LegacyAccessSeed gives the default site's jira-software role
// this second group; it is not part of DefaultSeed, whose figures (groups, reads per pass)
// other packages count. The demo, the sink's deactivation tests and the suspend rows of the
// reliability fault matrix load it.
const LegacyAccessGroup = "jira-software-admins-legacy"

// LegacyAccessSeed extends the jira-software role with LegacyAccessGroup (see Role).
func LegacyAccessSeed() Seed {
	return Seed{Roles: []Role{{Key: "jira-software", Groups: []string{LegacyAccessGroup}}}}
}

// usable reports whether the account can use the site: active and not suspended. Jira
// reports it as User.active.
func (a *account) usable() bool { return a.active && !a.suspended }

// productGroups is the set of group names (lower-case) that grant product access.
func (st *site) productGroups() map[string]bool {
	out := map[string]bool{}
	for _, r := range st.roles {
		for _, g := range r.Groups {
			out[strings.ToLower(g)] = true
		}
	}
	return out
}

// hasAccess reports whether a has product access: in a group that grants it, and not
// suspended.
func (st *site) hasAccess(a *account) bool {
	return !a.suspended && st.inProductGroup(a)
}

// inProductGroup reports whether a is in a group that grants product access.
func (st *site) inProductGroup(a *account) bool {
	for name := range st.productGroups() {
		if g := st.groupByName(name); g != nil && g.members.has(a.id) {
			return true
		}
	}
	return false
}

// licensed counts active on-site accounts holding product access (suspended ones use no
// licence).
func (st *site) licensed() int {
	seen := map[string]bool{}
	for name := range st.productGroups() {
		g := st.groupByName(name)
		if g == nil {
			continue
		}
		for id := range g.members.m {
			if a := st.accounts[id]; a != nil && a.usable() && a.onSite && a.typ == TypeAtlassian {
				seen[id] = true
			}
		}
	}
	return len(seen)
}

// SetSuspended suspends or restores an account's access in the organization's directory, as
// an admin does by hand in the admin console ("remove access", "restore access").
func (s *Sim) SetSuspended(accountID string, suspended bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.st.accounts[accountID]
	if a == nil {
		return fmt.Errorf("no account %s", accountID)
	}
	if a.typ != TypeAtlassian {
		return fmt.Errorf("account %s is a %s account, in no directory", accountID, a.typ)
	}
	if suspended && !a.suspended {
		a.suspensions++
	}
	a.suspended = suspended
	return nil
}
