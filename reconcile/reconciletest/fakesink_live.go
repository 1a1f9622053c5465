package reconciletest

import (
	"context"
	"slices"
	"strings"

	"github.com/idsync/idsync/reconcile"
)

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
