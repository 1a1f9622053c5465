package reconcile_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
)

func ch(k reconcile.Kind, account string) reconcile.Change {
	c := reconcile.Change{Kind: k, Source: "corp", UserKey: "k-" + account, UserName: account, AccountID: account, Reason: "test"}
	switch k {
	case reconcile.KindAddMember, reconcile.KindRemoveMember, reconcile.KindCreateGroup:
		c.Group = &reconcile.GroupRef{ID: "g1", Name: "eng"}
	case reconcile.KindAddCustomer, reconcile.KindRemoveCustomer:
		c.ServiceDesk = "10"
	case reconcile.KindAddOrganizationMember, reconcile.KindRemoveOrganizationMember:
		c.Organization, c.OrganizationID = "Acme", "o1"
	}
	return c
}

func plan(items ...reconcile.Change) reconcile.Changes {
	var c reconcile.Changes
	for _, it := range items {
		l := c.List(it.Kind)
		*l = append(*l, it)
	}
	return c
}

func kinds(c reconcile.Changes) map[reconcile.Kind]int {
	m := map[reconcile.Kind]int{}
	for _, k := range reconcile.Kinds {
		if n := len(*c.List(k)); n > 0 {
			m[k] = n
		}
	}
	return m
}

func TestPolicyGuard(t *testing.T) {
	all := plan(ch(reconcile.KindCreateUser, ""), ch(reconcile.KindUpdateUser, "a"), ch(reconcile.KindAddMember, "a"),
		ch(reconcile.KindReactivateUser, "b"), ch(reconcile.KindAddMember, "b"),
		ch(reconcile.KindRemoveMember, "a"), ch(reconcile.KindDeactivateUser, "c"))
	cases := []struct {
		policy string
		kept   map[reconcile.Kind]int
		held   int
	}{
		{"sync keeps everything", map[reconcile.Kind]int{"create_user": 1, "update_user": 1, "add_member": 2, "reactivate_user": 1, "remove_member": 1, "deactivate_user": 1}, 0},
		{"upsert-only drops removals and deactivations", map[reconcile.Kind]int{"create_user": 1, "update_user": 1, "add_member": 2, "reactivate_user": 1}, 2},
		{"create-only keeps creates and adds, not adds of a dropped reactivation", map[reconcile.Kind]int{"create_user": 1, "add_member": 1}, 5},
		{"bogus policy is treated as upsert-only", map[reconcile.Kind]int{"create_user": 1, "update_user": 1, "add_member": 2, "reactivate_user": 1}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.policy, func(t *testing.T) {
			out, held := reconcile.PolicyGuard(all, strings.Fields(tc.policy)[0])
			if got := kinds(out); !equalCounts(got, tc.kept) {
				t.Errorf("kept %v, want %v", got, tc.kept)
			}
			if len(held) != tc.held {
				t.Errorf("held %d, want %d: %+v", len(held), tc.held, held)
			}
			for _, h := range held {
				if h.Guard != reconcile.GuardPolicy || h.Reason == "" {
					t.Errorf("held %+v", h)
				}
			}
		})
	}
}

func equalCounts(a, b map[reconcile.Kind]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestOwnershipGuard(t *testing.T) {
	view := reconcile.OwnershipView{
		Links: []reconcile.Link{{Source: "corp", Key: "k-linked", AccountID: "linked"}, {Source: "corp", Key: "k-admin2", AccountID: "admin-linked"}},
		Owned: []reconcile.Owned{
			{Kind: reconcile.OwnedMembership, Container: "g1", AccountID: "owned"},
			{Kind: reconcile.OwnedCustomer, Container: "10", AccountID: "owned"},
			{Kind: reconcile.OwnedOrganization, Container: "o1", AccountID: "owned"},
		},
		Authoritative: []string{"Auth"},
		Accounts: []reconcile.Account{
			{AccountID: "admin", SiteAdmin: true, AccountType: "atlassian"},
			{AccountID: "admin-linked", SiteAdmin: true, AccountType: "atlassian"},
			{AccountID: "bot", AccountType: reconcile.AccountApp},
		},
	}
	authRemove := func(account string) reconcile.Change {
		c := ch(reconcile.KindRemoveMember, account)
		c.Group = &reconcile.GroupRef{ID: "g2", Name: "auth"}
		return c
	}
	cases := []struct {
		name string
		c    reconcile.Change
		keep bool
	}{
		{"deactivation of a linked account is kept", ch(reconcile.KindDeactivateUser, "linked"), true},
		{"deactivation of an unlinked account is dropped", ch(reconcile.KindDeactivateUser, "stranger"), false},
		{"removal of an owned membership is kept", ch(reconcile.KindRemoveMember, "owned"), true},
		{"removal of an unowned membership is dropped", ch(reconcile.KindRemoveMember, "stranger"), false},
		{"authoritative group removes unowned members", authRemove("stranger"), true},
		{"site admin is never removed unless linked, even from an authoritative group", authRemove("admin"), false},
		{"linked site admin is managed like anyone", ch(reconcile.KindDeactivateUser, "admin-linked"), true},
		{"app account is never removed", authRemove("bot"), false},
		{"owned customer removal is kept", ch(reconcile.KindRemoveCustomer, "owned"), true},
		{"unowned customer removal is dropped", ch(reconcile.KindRemoveCustomer, "stranger"), false},
		{"owned organization removal is kept", ch(reconcile.KindRemoveOrganizationMember, "owned"), true},
		{"unowned organization removal is dropped", ch(reconcile.KindRemoveOrganizationMember, "stranger"), false},
		{"adds are not the guard's business", ch(reconcile.KindAddMember, "stranger"), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, held := reconcile.OwnershipGuard(plan(tc.c), view)
			if kept := out.Len() == 1; kept != tc.keep {
				t.Errorf("kept=%v want %v (held %+v)", kept, tc.keep, held)
			}
		})
	}
}

func TestIncompleteGuard(t *testing.T) {
	explicit := ch(reconcile.KindDeactivateUser, "a")
	explicit.Deprovision = reconcile.DeprovisionExplicit
	missing := ch(reconcile.KindDeactivateUser, "b")
	missing.Deprovision = reconcile.DeprovisionMissing
	p := plan(ch(reconcile.KindCreateUser, ""), ch(reconcile.KindAddMember, "a"), ch(reconcile.KindRemoveMember, "a"),
		ch(reconcile.KindRemoveCustomer, "a"), explicit, missing)
	t.Run("a failed read holds every removal and deactivation", func(t *testing.T) {
		out, held := reconcile.IncompleteGuard(p, "source corp could not be read", false)
		if got := kinds(out); !equalCounts(got, map[reconcile.Kind]int{"create_user": 1, "add_member": 1}) {
			t.Errorf("kept %v", got)
		}
		if len(held) != 4 || !strings.Contains(held[0].Reason, "source corp could not be read") {
			t.Errorf("held %+v", held)
		}
	})
	t.Run("a targeted pass still applies explicit deprovisions", func(t *testing.T) {
		out, held := reconcile.IncompleteGuard(p, "targeted pass", true)
		if len(out.DeactivateUsers) != 1 || out.DeactivateUsers[0].AccountID != "a" || len(held) != 3 {
			t.Errorf("kept %+v held %d", out.DeactivateUsers, len(held))
		}
	})
	t.Run("a complete pass holds nothing", func(t *testing.T) {
		out, held := reconcile.IncompleteGuard(p, "", false)
		if out.Len() != p.Len() || len(held) != 0 {
			t.Errorf("changed a complete plan")
		}
	})
}

func TestGraceGuard(t *testing.T) {
	links := []reconcile.Link{
		{Source: "corp", Key: "k-one", AccountID: "one", MissingPasses: 1},
		{Source: "corp", Key: "k-two", AccountID: "two", MissingPasses: 2},
	}
	d := func(account, how string) reconcile.Change {
		c := ch(reconcile.KindDeactivateUser, account)
		c.Deprovision = how
		return c
	}
	cases := []struct {
		name  string
		c     reconcile.Change
		grace int
		keep  bool
	}{
		{"missing for fewer passes than grace is held", d("one", reconcile.DeprovisionMissing), 2, false},
		{"missing for grace passes is deactivated", d("two", reconcile.DeprovisionMissing), 2, true},
		{"grace 0 deactivates at once", d("one", reconcile.DeprovisionMissing), 0, true},
		{"explicit deprovision skips grace", d("one", reconcile.DeprovisionExplicit), 5, true},
		{"missing customer removal waits too", func() reconcile.Change {
			c := ch(reconcile.KindRemoveCustomer, "one")
			c.Deprovision = reconcile.DeprovisionMissing
			return c
		}(), 2, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, held := reconcile.GraceGuard(plan(tc.c), links, tc.grace)
			if kept := out.Len() == 1; kept != tc.keep {
				t.Errorf("kept=%v want %v (held %+v)", kept, tc.keep, held)
			}
		})
	}
}

func TestBreaker(t *testing.T) {
	many := func(n int) reconcile.Changes {
		c := plan(ch(reconcile.KindCreateUser, ""), ch(reconcile.KindAddMember, "x"))
		for i := 0; i < n; i++ {
			d, r := ch(reconcile.KindDeactivateUser, "a"), ch(reconcile.KindRemoveMember, "a")
			d.AccountID, r.AccountID = fmt.Sprintf("acc-%d", i), fmt.Sprintf("acc-%d", i)
			c.DeactivateUsers = append(c.DeactivateUsers, d)
			c.RemoveMembers = append(c.RemoveMembers, r)
		}
		return c
	}
	safety := configs.SafetyConfig{MaxDeactivations: 10, MaxDeactivationPercent: 50, MaxMembershipRemovals: 20}
	held := &reconcile.HeldPlan{RunID: "r1", Deactivations: 20, Removals: 20}
	approved := &reconcile.HeldPlan{RunID: "r1", Deactivations: 20, Removals: 20, Approved: true, ApprovedBy: "ops"}
	// approvedOf(n) approved exactly the first n people's deactivation and removal of many.
	approvedOf := func(n int) *reconcile.HeldPlan {
		c := many(n)
		return &reconcile.HeldPlan{RunID: "r1", Deactivations: n, Removals: n, Approved: true, ApprovedBy: "ops",
			Changes: reconcile.Changes{DeactivateUsers: c.DeactivateUsers, RemoveMembers: c.RemoveMembers}}
	}
	cases := []struct {
		name     string
		n        int
		in       reconcile.BreakerInput
		decision string
		heldN    int
	}{
		{"under every limit passes", 5, reconcile.BreakerInput{Safety: safety, ManagedUsers: 100, ManagedMemberships: 100, Full: true}, reconcile.BreakerPass, 0},
		{"count over max_deactivations holds every removal", 11, reconcile.BreakerInput{Safety: safety, ManagedUsers: 1000, ManagedMemberships: 1000, Full: true}, reconcile.BreakerHold, 22},
		{"percent of managed users trips", 6, reconcile.BreakerInput{Safety: safety, ManagedUsers: 10, ManagedMemberships: 1000, Full: true}, reconcile.BreakerHold, 12},
		{"removal count over max_membership_removals trips", 5, reconcile.BreakerInput{Safety: configs.SafetyConfig{MaxMembershipRemovals: 4}, Full: true}, reconcile.BreakerHold, 10},
		{"an open hold keeps holding small passes", 1, reconcile.BreakerInput{Safety: safety, ManagedUsers: 100, ManagedMemberships: 100, Hold: held, Full: true}, reconcile.BreakerHold, 2},
		{"a targeted pass holds under an open hold without replacing it", 1, reconcile.BreakerInput{Safety: safety, ManagedUsers: 100, ManagedMemberships: 100, Hold: approved}, reconcile.BreakerKeep, 2},
		{"an open hold is released by a complete pass with nothing to hold", 0, reconcile.BreakerInput{Safety: safety, Hold: held, Full: true}, reconcile.BreakerRelease, 0},
		{"approval lets exactly its items through", 22, reconcile.BreakerInput{Safety: safety, ManagedUsers: 100, ManagedMemberships: 100, Hold: approvedOf(22), Full: true}, reconcile.BreakerRelease, 0},
		{"approval of a count covers nobody else", 22, reconcile.BreakerInput{Safety: safety, ManagedUsers: 100, ManagedMemberships: 100, Hold: approved, Full: true}, reconcile.BreakerHold, 44},
		{"items beyond the approved ones are judged on their own", 40, reconcile.BreakerInput{Safety: safety, ManagedUsers: 1000, ManagedMemberships: 1000, Hold: approvedOf(22), Full: true}, reconcile.BreakerHold, 36},
		{"a few items beyond the approved ones pass under the limits", 25, reconcile.BreakerInput{Safety: safety, ManagedUsers: 1000, ManagedMemberships: 1000, Hold: approvedOf(22), Full: true}, reconcile.BreakerRelease, 0},
		{"standing approvals pass a full pass uncounted", 22, reconcile.BreakerInput{Safety: safety, ManagedUsers: 100, ManagedMemberships: 100, Full: true, Standing: approvedOf(22).Changes.ItemKeys()}, reconcile.BreakerPass, 0},
		{"standing approvals pass even while a hold is open", 3, reconcile.BreakerInput{Safety: safety, ManagedUsers: 100, ManagedMemberships: 100, Hold: held, Full: true, Standing: approvedOf(2).Changes.ItemKeys()}, reconcile.BreakerHold, 2},
		{"standing approvals count in a targeted pass", 22, reconcile.BreakerInput{Safety: safety, ManagedUsers: 100, ManagedMemberships: 100, Standing: approvedOf(22).Changes.ItemKeys()}, reconcile.BreakerHold, 44},
		{"zero limits hold every one", 1, reconcile.BreakerInput{ManagedUsers: 1000, ManagedMemberships: 1000, Full: true}, reconcile.BreakerHold, 2},
		{"a zero percent limit alone holds every one", 1, reconcile.BreakerInput{Safety: configs.SafetyConfig{MaxDeactivations: 100, MaxMembershipRemovals: 100}, ManagedUsers: 1000, ManagedMemberships: 1000, Full: true}, reconcile.BreakerHold, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, h, trip := reconcile.Breaker(many(tc.n), tc.in)
			if tc.in.Hold != nil && trip.UsedApproval {
				ok := tc.in.Hold.Changes.ItemKeys()
				for _, l := range [][]reconcile.Change{out.DeactivateUsers, out.RemoveMembers} {
					for _, x := range l {
						if trip.Held() && !ok[x.ItemKey()] {
							t.Errorf("an unapproved item passed a held pass: %s", x.ItemKey())
						}
					}
				}
			}
			if trip.Decision != tc.decision {
				t.Fatalf("decision %s (%s), want %s", trip.Decision, trip.Reason, tc.decision)
			}
			if len(h) != tc.heldN {
				t.Errorf("held %d, want %d", len(h), tc.heldN)
			}
			if len(out.CreateUsers) != 1 || len(out.AddMembers) != 1 {
				t.Errorf("creates and adds must always apply: %v", kinds(out))
			}
			// In a held pass only approved items (those of the approved plan, or standing
			// ones in a full pass) may still apply.
			if trip.Held() && !trip.UsedApproval {
				for _, l := range [][]reconcile.Change{out.DeactivateUsers, out.RemoveMembers} {
					for _, x := range l {
						if !tc.in.Full || !tc.in.Standing[x.ItemKey()] {
							t.Errorf("held pass still removes %s: %v", x.ItemKey(), kinds(out))
						}
					}
				}
			}
			if n := len(out.DeactivateUsers) + len(out.RemoveMembers); tc.in.Full && n < len(tc.in.Standing) {
				t.Errorf("%d removals apply, fewer than the %d standing approvals", n, len(tc.in.Standing))
			}
		})
	}
}
