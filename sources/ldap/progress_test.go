package ldap

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/idsync/idsync/reconcile"
)

// TestSnapshotReportsReadProgress: every search page (users, disabled users, groups) is
// reported through the context, the totals growing page by page to every entry read.
func TestSnapshotReportsReadProgress(t *testing.T) {
	srv := generic(t)
	cfg := cfgFor(srv, org.Spec.BaseDN())
	cfg.PageSize = 7
	cfg.DisabledFilter = "(pwdAccountLockedTime=*)"
	src := newSource(t, cfg, Options{})
	var mu sync.Mutex
	var got [][2]int
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir, err := src.Snapshot(reconcile.WithReadProgress(ctx, func(pages, objects int) {
		mu.Lock()
		got = append(got, [2]int{pages, objects})
		mu.Unlock()
	}))
	if err != nil {
		t.Fatal(err)
	}
	// 30 users in pages of 7 take 5 pages, the disabled one 1, the 15 groups 3.
	if len(got) != 9 {
		t.Fatalf("%d progress reports (%v), want one per search page, 9", len(got), got)
	}
	for i, g := range got {
		if g[0] != i+1 || (i > 0 && g[1] < got[i-1][1]) {
			t.Fatalf("report %d = %v after %v: the totals must grow page by page", i, g, got[max(i-1, 0)])
		}
	}
	if last := got[len(got)-1]; last[1] < len(dir.Users)+len(dir.Groups) {
		t.Errorf("last report %v counts fewer entries than the %d users and %d groups read", last, len(dir.Users), len(dir.Groups))
	}
}
