package simulation

import (
	"fmt"
	"sort"
	"strings"

	"github.com/idsync/idsync/sinks/jira/jiratest"
)

// productGroups are the groups that grant product access on every simulated site (the two
// roles' groups), lower-cased.
var productGroups = map[string]bool{defaultGroup: true, serviceDeskGroup: true}

// jiraState is the Jira site between two passes.
type jiraState struct {
	Accounts map[string]jiratest.Account
	Members  map[string]map[string]bool // lower group name -> accountIds
	GroupID  map[string]string          // lower group name -> groupId
}

func snapshotJira(s *jiratest.Sim) jiraState {
	st := jiraState{Accounts: map[string]jiratest.Account{}, Members: map[string]map[string]bool{}, GroupID: map[string]string{}}
	for _, a := range s.Accounts() {
		st.Accounts[a.AccountID] = a
	}
	for _, g := range s.Groups() {
		name := strings.ToLower(g.Name)
		m := make(map[string]bool, len(g.Members))
		for _, id := range g.Members {
			m[id] = true
		}
		st.Members[name] = m
		st.GroupID[name] = g.ID
	}
	return st
}

func (st jiraState) member(group, acc string) bool { return st.Members[strings.ToLower(group)][acc] }

// hasAccess reports whether an account can use a product: on the site, active, and in a
// product-access group.
func (st jiraState) hasAccess(acc string) bool {
	a, ok := st.Accounts[acc]
	if !ok || !a.OnSite || !a.Active {
		return false
	}
	for g := range productGroups {
		if st.member(g, acc) {
			return true
		}
	}
	return false
}

// groupsOf lists the groups an account is in (lower names, sorted).
func (st jiraState) groupsOf(acc string) []string {
	var out []string
	for g, m := range st.Members {
		if m[acc] {
			out = append(out, g)
		}
	}
	sort.Strings(out)
	return out
}

// endState is the site as I6 compares it, in terms that are the same in every run of a
// history: each person by userName (an active one: their account's groups but those that left
// management, name and email; anyone else: only whether they still hold access), each account
// no source knows by email.
func (r *run) endState() map[string]string {
	st := snapshotJira(r.w.jira)
	out := map[string]string{}
	byPerson := map[string][]string{}
	for id := range st.Accounts {
		if pid := r.w.dir.person(id); pid != "" {
			byPerson[pid] = append(byPerson[pid], id)
		}
	}
	managed, managedNow := r.managedEver, r.params.managedGroups()
	for _, pid := range r.m.order {
		p := r.m.people[pid]
		key := "person " + p.UserName
		if p.Status != active {
			var held []string
			for _, acc := range byPerson[pid] {
				if st.hasAccess(acc) {
					held = append(held, "access via "+acc)
				}
				for _, g := range st.groupsOf(acc) {
					// The locked group keeps whoever was in it when they left, which
					// depends on how far the adds got before: not compared.
					if managed[g] && st.Accounts[acc].OnSite && !strings.EqualFold(g, r.h.Locked) {
						held = append(held, "managed group "+g)
					}
				}
			}
			sort.Strings(held)
			out[key] = p.Status.String() + " " + strings.Join(held, ",")
			continue
		}
		a, ok := r.w.jira.AccountByEmail(p.Email)
		if !ok || !a.OnSite {
			out[key] = "active, no account on the site"
			continue
		}
		// A group the mapping stopped managing keeps whatever adds reached it before: whether
		// one did depends on how far a faulty pass got, and idsync leaves it alone since.
		var groups []string
		for _, g := range st.groupsOf(a.AccountID) {
			if !managed[strings.ToLower(g)] || managedNow[strings.ToLower(g)] {
				groups = append(groups, g)
			}
		}
		out[key] = fmt.Sprintf("active groups=%v name=%q email=%s access=%v", groups, a.DisplayName,
			strings.ToLower(a.Email), st.hasAccess(a.AccountID))
	}
	for id, a := range st.Accounts {
		if why := r.w.dir.protectedWhy(id); why != "" {
			k := "account " + strings.ToLower(a.Email)
			if a.Email == "" {
				k = "account " + id
			}
			out[k] = fmt.Sprintf("%s onSite=%v active=%v groups=%v", a.AccountType, a.OnSite, a.Active, st.groupsOf(id))
		}
	}
	return out
}

// diffStates lists how got differs from want (at most limit lines).
func diffStates(want, got map[string]string, limit int) []string {
	keys := map[string]bool{}
	for k := range want {
		keys[k] = true
	}
	for k := range got {
		keys[k] = true
	}
	var out []string
	for _, k := range sortedKeys(keys) {
		if w, g := want[k], got[k]; w != g {
			if len(out) == limit {
				out = append(out, "...")
				break
			}
			out = append(out, fmt.Sprintf("%s: fault-free %q, with faults %q", k, w, g))
		}
	}
	return out
}
