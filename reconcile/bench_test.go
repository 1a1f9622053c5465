package reconcile_test

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
)

// org is a generated organisation: a source directory and a Jira that differs from it by
// about 1% (memberships added and removed, renamed people, new hires, leavers).
type org struct {
	src  []reconcile.SourceData
	cfg  configs.MappingConfig
	live reconcile.Live
	own  reconcile.Ownership
}

func genOrg(nUsers, nGroups, perUser int, diff float64) org {
	rng := rand.New(rand.NewPCG(1, 2))
	groups := make([]string, nGroups)
	for i := range groups {
		groups[i] = fmt.Sprintf("G%05d", i)
	}
	users := make([]reconcile.User, nUsers)
	for i := range users {
		gs := make([]string, perUser)
		for j := range gs {
			gs[j] = groups[(i*7+j*(nGroups/perUser+1))%nGroups]
		}
		users[i] = reconcile.User{Key: fmt.Sprintf("id-%06d", i), UserName: fmt.Sprintf("user%06d", i),
			Email: fmt.Sprintf("user%06d@example.com", i), DisplayName: fmt.Sprintf("User %06d", i), Active: true, Groups: gs}
	}
	o := org{cfg: configs.MappingConfig{ImportUsers: true, ImportGroups: true, DefaultGroups: []string{"jira-software-users"}}}
	o.src = []reconcile.SourceData{{Directory: reconcile.Directory{Source: "corp", Users: users}, Priority: 1}}

	// Jira as the last pass left it, then perturbed.
	nd := int(float64(nUsers) * diff)
	members := make(map[string][]string, nGroups+1)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range users {
		if i < nd/2 {
			continue // new hires: no account yet
		}
		id := fmt.Sprintf("acc-%06d", i)
		dn := users[i].DisplayName
		if i%int(1/diff) == 1 {
			dn = "Old Name" // profile drift
		}
		o.live.Accounts = append(o.live.Accounts, reconcile.Account{AccountID: id, AccountType: reconcile.AccountAtlassian,
			Email: users[i].Email, DisplayName: dn, Active: true})
		o.own.Links = append(o.own.Links, reconcile.Link{Source: "corp", Key: users[i].Key, UserName: users[i].UserName,
			Email: users[i].Email, AccountID: id, Created: true, LinkedAt: now})
		for j, g := range users[i].Groups {
			if i%int(1/diff) == 3 && j < perUser/2 {
				continue // memberships to add
			}
			members[g] = append(members[g], id)
		}
		members["jira-software-users"] = append(members["jira-software-users"], id)
	}
	// Leavers: linked accounts no source lists.
	for i := 0; i < nd/2; i++ {
		id := fmt.Sprintf("acc-gone-%06d", i)
		o.live.Accounts = append(o.live.Accounts, reconcile.Account{AccountID: id, AccountType: reconcile.AccountAtlassian,
			Email: fmt.Sprintf("gone%06d@example.com", i), Active: true})
		o.own.Links = append(o.own.Links, reconcile.Link{Source: "corp", Key: fmt.Sprintf("gone-%06d", i), AccountID: id, MissingPasses: 3})
		members[groups[i%nGroups]] = append(members[groups[i%nGroups]], id)
	}
	// Memberships to remove: people moved out of a group by the IdP.
	for k := 0; k < nd*perUser/2; k++ {
		i := nd + rng.IntN(nUsers-nd)
		g := groups[rng.IntN(nGroups)]
		members[g] = append(members[g], fmt.Sprintf("acc-%06d", i))
	}
	// Jira's member pages and the state file's ownership records are decoded separately in a
	// real pass: every id is its own string, laid out in the order it was read. Sharing one
	// string per account here would model neither the memory nor the cache behaviour.
	all := append([]string{"jira-software-users"}, groups...)
	for gi, g := range all {
		gid := fmt.Sprintf("gid-%05d", gi)
		ms := make([]string, len(members[g]))
		for i, m := range members[g] {
			ms[i] = strings.Clone(m)
		}
		o.live.Groups = append(o.live.Groups, reconcile.LiveGroup{ID: gid, Name: g, Members: ms, MembersRead: true, ProductAccess: gi == 0})
		for _, m := range members[g] {
			o.own.Owned = append(o.own.Owned, reconcile.Owned{Kind: reconcile.OwnedMembership, Container: gid, ContainerName: g, AccountID: strings.Clone(m)})
		}
	}
	// As the store returns them: ordered by key.
	slices.SortFunc(o.own.Owned, func(a, b reconcile.Owned) int {
		return cmp.Or(strings.Compare(a.Container, b.Container), strings.Compare(a.AccountID, b.AccountID))
	})
	slices.SortFunc(o.own.Links, func(a, b reconcile.Link) int { return strings.Compare(a.Key, b.Key) })
	for i := range o.own.Links {
		o.own.Links[i].AccountID = strings.Clone(o.own.Links[i].AccountID)
	}
	return o
}

func BenchmarkPlan(b *testing.B) {
	o := genOrg(100_000, 10_000, 10, 0.01)
	d, _, err := reconcile.Map(o.src, o.cfg)
	if err != nil {
		b.Fatal(err)
	}
	opts := reconcile.PlanOptions{Now: time.Now(), DeactivateMethod: configs.DeactivateRemoveAccess}
	c := reconcile.Plan(d, o.live, o.own, opts)
	b.Logf("plan: %d creates, %d updates, %d adds, %d removals, %d deactivations, %d forget",
		len(c.CreateUsers), len(c.UpdateUsers), len(c.AddMembers), len(c.RemoveMembers), len(c.DeactivateUsers), len(c.Forget))
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for b.Loop() {
		reconcile.Plan(d, o.live, o.own, opts)
	}
	reportCPU(b, cpu)
}

// cpuTime is the process's user+system CPU time; reported per op it stays meaningful when the
// machine is shared and wall time is not.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

func BenchmarkMap(b *testing.B) {
	o := genOrg(100_000, 10_000, 10, 0.01)
	m, err := reconcile.NewMapper(o.cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for b.Loop() {
		m.Map(o.src)
	}
	reportCPU(b, cpu)
}

// BenchmarkGuards measures what a full pass does around Plan on the BenchmarkPlan org: the
// Jira scope and the guards, each of which walks the million ownership records or the links.
func BenchmarkGuards(b *testing.B) {
	o := genOrg(100_000, 10_000, 10, 0.01)
	d, _, err := reconcile.Map(o.src, o.cfg)
	if err != nil {
		b.Fatal(err)
	}
	c := reconcile.Plan(d, o.live, o.own, reconcile.PlanOptions{Now: time.Now(), DeactivateMethod: configs.DeactivateRemoveAccess})
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for b.Loop() {
		reconcile.BuildScope(d, o.own, false)
		g, _ := reconcile.IdentityGuard(c, reconcile.ActiveView{People: d.People, Links: o.own.Links, Accounts: o.live.Accounts})
		g, _ = reconcile.OwnershipGuard(g, reconcile.OwnershipView{Links: o.own.Links, Owned: o.own.Owned, Accounts: o.live.Accounts})
		reconcile.GraceGuard(g, o.own.Links, 2)
	}
	reportCPU(b, cpu)
}
