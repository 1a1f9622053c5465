package miniorange

import (
	"context"
	"sync"
	"testing"

	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/sources/miniorange/miniorangetest"
)

// TestSnapshotReportsReadProgress: every page the read takes in is reported through the
// context, its pages and objects adding up in order (pages read in parallel included), to
// as many pages as the listings took and at least every user and group.
func TestSnapshotReportsReadProgress(t *testing.T) {
	srv := startSim(t, nil)
	src := newSource(t, srv.URL, nil)
	var mu sync.Mutex
	var got [][2]int
	ctx := reconcile.WithReadProgress(context.Background(), func(pages, objects int) {
		mu.Lock()
		got = append(got, [2]int{pages, objects})
		mu.Unlock()
	})
	dir, err := src.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	calls := srv.Calls()
	pages := calls[miniorangetest.PathUsersList] + calls[miniorangetest.PathGroupsList] + calls[miniorangetest.PathGroupMembers]
	if len(got) != pages || pages < 3 {
		t.Fatalf("%d progress reports, want one per page read (%d)", len(got), pages)
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
