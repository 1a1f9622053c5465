package reconcile_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/idsync/idsync/reconcile"
)

func cacheFixture() *reconcile.LiveCache {
	live := reconcile.Live{
		Accounts: []reconcile.Account{{AccountID: "a1", Active: true}, {AccountID: "a2", Active: true}},
		Groups: []reconcile.LiveGroup{
			{ID: "g1", Name: "engineering", Members: []string{"a1", "a2"}, MembersRead: true},
			{ID: "g2", Name: "unmanaged"},
		},
		ServiceDesks: []reconcile.LiveDesk{{ID: "10", Key: "DEMO", Customers: []string{"a2"}}},
	}
	return reconcile.NewLiveCache(live, reconcile.Scope{Groups: []string{"engineering"}, ServiceDesks: []string{"DEMO"}})
}

func TestLiveCacheApply(t *testing.T) {
	c := cacheFixture()
	c.Apply(reconcile.Change{Kind: reconcile.KindCreateGroup, Group: &reconcile.GroupRef{Name: "sales"}}, reconcile.Result{GroupID: "g3"})
	c.Apply(reconcile.Change{Kind: reconcile.KindCreateUser, Email: "n@example.com"}, reconcile.Result{AccountID: "a3", Groups: []reconcile.GroupRef{{ID: "g1", Name: "engineering"}}})
	c.Apply(reconcile.Change{Kind: reconcile.KindAddMember, AccountID: "a3", Group: &reconcile.GroupRef{Name: "sales"}}, reconcile.Result{})
	c.Apply(reconcile.Change{Kind: reconcile.KindRemoveMember, AccountID: "a1", Group: &reconcile.GroupRef{ID: "g1", Name: "engineering"}}, reconcile.Result{})
	c.Apply(reconcile.Change{Kind: reconcile.KindRemoveCustomer, AccountID: "a2", ServiceDesk: "10"}, reconcile.Result{})
	c.Apply(reconcile.Change{Kind: reconcile.KindDeactivateUser, AccountID: "a2"}, reconcile.Result{})
	l := c.Live()
	want := map[string][]string{"engineering": {"a2", "a3"}, "sales": {"a3"}}
	for _, g := range l.Groups {
		if w, ok := want[g.Name]; ok && !slices.Equal(g.Members, w) {
			t.Errorf("%s members %v, want %v", g.Name, g.Members, w)
		}
	}
	if len(l.Groups) != 3 || len(l.Accounts) != 3 || len(l.ServiceDesks[0].Customers) != 0 {
		t.Fatalf("cache after patches: %+v", l)
	}
	if d := c.Dirty(); !slices.Equal(d, []string{"a2"}) {
		t.Errorf("dirty %v: a deactivation's effect is not patched, its account must be re-read", d)
	}
	if why := c.Covers(reconcile.Scope{Groups: []string{"Sales", "engineering"}}); why != "" {
		t.Errorf("a group created since the full read is not covered: %s", why)
	}
	if why := c.Covers(reconcile.Scope{Groups: []string{"marketing"}}); why == "" {
		t.Error("a group the full read did not read is covered")
	}
	// An adopted group's members are unknown: it is no longer covered.
	c.Apply(reconcile.Change{Kind: reconcile.KindCreateGroup, Group: &reconcile.GroupRef{Name: "ops"}}, reconcile.Result{GroupID: "g9", Adopted: true})
	if c.Covers(reconcile.Scope{Groups: []string{"ops"}}) == "" {
		t.Error("an adopted group is taken as read")
	}
}

func TestLiveCacheMerge(t *testing.T) {
	c := cacheFixture()
	// a1 was removed from engineering by hand and became a customer; a2 was deleted.
	fresh := reconcile.Live{
		Accounts:     []reconcile.Account{{AccountID: "a1", Active: false}},
		Groups:       []reconcile.LiveGroup{{ID: "g1", Name: "engineering", Members: []string{}, MembersRead: true}},
		ServiceDesks: []reconcile.LiveDesk{{ID: "10", Key: "DEMO", Customers: []string{"a1"}}},
	}
	if err := c.Merge(fresh, []string{"a1", "a2"}); err != nil {
		t.Fatal(err)
	}
	l := c.Live()
	if len(l.Accounts) != 1 || l.Accounts[0].Active || len(l.Groups[0].Members) != 0 || !slices.Equal(l.ServiceDesks[0].Customers, []string{"a1"}) {
		t.Fatalf("after merge: %+v", l)
	}
	// A group that grants product access and that the cache does not know: a gap.
	before := c.Live()
	gap := reconcile.Live{Accounts: []reconcile.Account{{AccountID: "a1"}},
		Groups: []reconcile.LiveGroup{{ID: "g7", Name: "jira-users-legacy", Members: []string{"a1"}, MembersRead: true, ProductAccess: true}}}
	if err := c.Merge(gap, []string{"a1"}); !errors.Is(err, reconcile.ErrCacheGap) {
		t.Fatalf("merge over an unknown product group: %v, want ErrCacheGap", err)
	}
	if len(c.Live().Accounts) != len(before.Accounts) {
		t.Fatal("a merge that found a gap changed the cache")
	}
}

func TestTouched(t *testing.T) {
	c := reconcile.Changes{
		CreateUsers: []reconcile.Change{{Kind: reconcile.KindCreateUser, Email: "n@example.com"}},
		AddMembers:  []reconcile.Change{{Kind: reconcile.KindAddMember, AccountID: "a1"}, {Kind: reconcile.KindAddMember, AccountID: "a1"}},
		UpdateUsers: []reconcile.Change{{Kind: reconcile.KindUpdateUser, AccountID: "a2", Unsupported: "needs admin_api"}},
	}
	acc, emails := reconcile.Touched(c)
	if !slices.Equal(acc, []string{"a1"}) || !slices.Equal(emails, []string{"n@example.com"}) {
		t.Fatalf("Touched = %v, %v", acc, emails)
	}
}

func TestReadCosts(t *testing.T) {
	c := cacheFixture()
	// 4 fixed + 1 user page + 1 group page + 1 member page (engineering) + the desk list and
	// its one customer page.
	if got := c.FullReadCost(); got != 9 {
		t.Errorf("FullReadCost = %d, want 9", got)
	}
	// 3 fixed + an account (record, groups, the desk) + an email (search, then the same).
	if got := reconcile.TargetedReadCost(1, 1, reconcile.Scope{ServiceDesks: []string{"DEMO"}}); got != 10 {
		t.Errorf("TargetedReadCost = %d, want 10", got)
	}
}

func TestMarkUnlisted(t *testing.T) {
	c := cacheFixture()
	live := c.Live()
	live.Accounts = append(live.Accounts, reconcile.Account{AccountID: "a3", Active: true})
	c = reconcile.NewLiveCache(live, reconcile.Scope{Groups: []string{"engineering"}})
	// a1 is listed in engineering; a3 is in no listing (hidden by the search index); a9 is
	// not an account the cache holds.
	c.MarkUnlisted([]string{"a1", "a3", "a9"})
	if d := c.Dirty(); !slices.Equal(d, []string{"a3"}) {
		t.Fatalf("dirty %v, want [a3]", d)
	}
}
