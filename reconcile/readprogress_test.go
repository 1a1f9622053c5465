package reconcile

import (
	"context"
	"sync"
	"testing"
)

// TestReadProgress: reports add up into running totals that never decrease, from any number
// of goroutines, and a context without a reporter takes reports silently.
func TestReadProgress(t *testing.T) {
	ReportReadProgress(context.Background(), 1, 10) // no reporter: nothing happens

	var mu sync.Mutex
	var got [][2]int
	ctx := WithReadProgress(context.Background(), func(pages, objects int) {
		mu.Lock()
		got = append(got, [2]int{pages, objects})
		mu.Unlock()
	})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				ReportReadProgress(ctx, 1, 3)
			}
		}()
	}
	wg.Wait()
	ReportReadProgress(ctx, 0, 0) // nothing read: not reported
	if len(got) != 200 {
		t.Fatalf("%d reports, want 200", len(got))
	}
	for i, g := range got {
		if g != [2]int{i + 1, 3 * (i + 1)} {
			t.Fatalf("report %d = %v, want running totals %v", i, g, [2]int{i + 1, 3 * (i + 1)})
		}
	}
	if WithReadProgress(ctx, nil) != ctx {
		t.Error("a nil reporter changed the context")
	}
}
