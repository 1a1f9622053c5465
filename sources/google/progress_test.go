package google

import (
	"context"
	"sync"
	"testing"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/sources/google/googletest"
)

// TestSnapshotReportsReadProgress: every page of users, groups and members is reported
// through the context, the totals growing page by page (member listings read in parallel
// included) to as many pages as the simulator served and every object they held.
func TestSnapshotReportsReadProgress(t *testing.T) {
	e := newEnv(t, googletest.Options{}, func(c *configs.GoogleConfig) { c.PageSize = 50 })
	var mu sync.Mutex
	var got [][2]int
	ctx := reconcile.WithReadProgress(context.Background(), func(pages, objects int) {
		mu.Lock()
		got = append(got, [2]int{pages, objects})
		mu.Unlock()
	})
	dir, err := e.src.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	calls := e.sim.Calls()
	pages := calls[googletest.EndpointUsersList] + calls[googletest.EndpointGroupsList] + calls[googletest.EndpointMembersList]
	if len(got) != pages || calls[googletest.EndpointUsersList] < 4 {
		t.Fatalf("%d progress reports, want one per page read (%d; users pages %d)", len(got), pages, calls[googletest.EndpointUsersList])
	}
	for i, g := range got {
		if g[0] != i+1 || (i > 0 && g[1] < got[i-1][1]) {
			t.Fatalf("report %d = %v after %v: the totals must grow page by page", i, g, got[max(i-1, 0)])
		}
	}
	if last := got[len(got)-1]; last[1] < len(dir.Users)+len(dir.Groups) {
		t.Errorf("last report %v counts fewer objects than the %d users and %d groups read", last, len(dir.Users), len(dir.Groups))
	}
}
