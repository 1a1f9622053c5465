package reconcile_test

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
)

// A first sync plans a million adds at 100k users, so what Plan allocates beyond its output
// decides the pass's peak memory: lists sized once (not grown by copying), one GroupRef and
// one reason string per group shared by its adds. The bound is what the output itself takes
// plus 20%; growing the lists by appending costs several times the output, and a GroupRef and
// a reason per item alone add about 30%.
func TestFirstSyncPlanAllocations(t *testing.T) {
	o := genOrg(5000, 500, 10, 0.01)
	d, _, err := reconcile.Map(o.src, o.cfg)
	if err != nil {
		t.Fatal(err)
	}
	opts := reconcile.PlanOptions{Now: time.Now(), DeactivateMethod: configs.DeactivateRemoveAccess}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := reconcile.Plan(d, reconcile.Live{}, reconcile.Ownership{}, opts)
	runtime.ReadMemStats(&after)

	if len(c.CreateUsers) != 5000 || len(c.AddMembers) != 5000*11 || len(c.CreateGroups) != 501 {
		t.Fatalf("plan: %d creates, %d adds, %d groups", len(c.CreateUsers), len(c.AddMembers), len(c.CreateGroups))
	}
	out := uint64(c.Len()) * uint64(unsafe.Sizeof(reconcile.Change{}))
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("Plan allocated %d bytes for %d bytes of changes (%.2fx)", alloc, out, float64(alloc)/float64(out))
	if float64(alloc) > 1.2*float64(out) {
		t.Errorf("Plan allocated %d bytes for %d items (%d bytes of changes): %.2fx, want at most 1.2x",
			alloc, c.Len(), out, float64(alloc)/float64(out))
	}
}

// Ownership records interleaved by account (as a caller may assemble them, rather than in the
// store's key order) plan exactly as sorted ones; forget regroups them instead of reloading a
// group's members at every record (which made a 100k-user plan take minutes).
func TestPlanOwnershipInAnyOrder(t *testing.T) {
	o := genOrg(2000, 200, 5, 0.05)
	for i := range 20 {
		o.own.Owned = append(o.own.Owned,
			reconcile.Owned{Kind: reconcile.OwnedMembership, Container: fmt.Sprintf("gid-%05d", i), AccountID: fmt.Sprintf("acc-ghost-%d", i)},
			reconcile.Owned{Kind: reconcile.OwnedMembership, Container: "gid-deleted", AccountID: fmt.Sprintf("acc-%06d", 100+i)})
	}
	slices.SortFunc(o.own.Owned, func(a, b reconcile.Owned) int {
		return cmp.Or(strings.Compare(a.Container, b.Container), strings.Compare(a.AccountID, b.AccountID))
	})
	d, _, err := reconcile.Map(o.src, o.cfg)
	if err != nil {
		t.Fatal(err)
	}
	opts := reconcile.PlanOptions{Now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), DeactivateMethod: configs.DeactivateRemoveAccess}
	sorted := reconcile.Plan(d, o.live, o.own, opts)
	if len(sorted.Forget) != 40 || len(sorted.RemoveMembers) == 0 || len(sorted.AddMembers) == 0 {
		t.Fatalf("the org should forget 40 records, add and remove members: %d, %d, %d", len(sorted.Forget), len(sorted.AddMembers), len(sorted.RemoveMembers))
	}
	if cap(sorted.AddMembers) != len(sorted.AddMembers) {
		t.Errorf("adds counted %d ahead, planned %d", cap(sorted.AddMembers), len(sorted.AddMembers))
	}
	byAccount := slices.Clone(o.own.Owned)
	slices.SortStableFunc(byAccount, func(a, b reconcile.Owned) int { return strings.Compare(a.AccountID, b.AccountID) })
	shuffled := slices.Clone(o.own.Owned)
	rand.New(rand.NewPCG(3, 4)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	want, _ := json.Marshal(sorted)
	for name, owned := range map[string][]reconcile.Owned{"by account": byAccount, "shuffled": shuffled} {
		got, _ := json.Marshal(reconcile.Plan(d, o.live, reconcile.Ownership{Links: o.own.Links, Owned: owned}, opts))
		if string(got) != string(want) {
			t.Errorf("%s: the plan differs from the plan with sorted ownership", name)
		}
	}
}

// BenchmarkPlanFirstSync plans the first sync of the BenchmarkPlan org into an empty Jira: 100k
// creates and 1.1M adds, the plan that decides a first pass's peak memory (B/op).
func BenchmarkPlanFirstSync(b *testing.B) {
	o := genOrg(100_000, 10_000, 10, 0.01)
	d, _, err := reconcile.Map(o.src, o.cfg)
	if err != nil {
		b.Fatal(err)
	}
	o = org{}
	opts := reconcile.PlanOptions{Now: time.Now(), DeactivateMethod: configs.DeactivateRemoveAccess}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for b.Loop() {
		reconcile.Plan(d, reconcile.Live{}, reconcile.Ownership{}, opts)
	}
	reportCPU(b, cpu)
}
