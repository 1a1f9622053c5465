package reconciletest

import (
	"fmt"
	"slices"
	"strings"

	"github.com/idsync/idsync/reconcile"
)

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
