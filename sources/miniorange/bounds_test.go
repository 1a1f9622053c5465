package miniorange

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/sources/miniorange/miniorangetest"
)

// Counts bound memory: a totalCount is checked against max_objects before anything is sized
// by it, and what a read holds grows with what it received, never with what was claimed.

func TestTotalBeyondMaxObjectsFailsFast(t *testing.T) {
	srv := startSim(t, nil)
	// One small page that claims forty million users.
	url := serve(t, rewrite(srv.Handler(), miniorangetest.PathUsersList, func(b map[string]any) { b["totalCount"] = 40_000_000 }))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	dir, err := newSource(t, url, nil).Snapshot(ctx)
	runtime.ReadMemStats(&after)
	want := "users listing: totalCount 40000000 is more than max_objects (1000000)"
	if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Snapshot error = %v, want ErrIncomplete and %q", err, want)
	}
	if dir.Users != nil {
		t.Error("a failed read returned users")
	}
	if got := srv.Calls()[miniorangetest.PathUsersList]; got != 1 {
		t.Errorf("%d users/list requests, want 1: nothing past the first page may be asked for", got)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 32<<20 {
		t.Errorf("the read allocated %d MiB for a claim it refused", got>>20)
	}
}

func TestMaxObjectsIsConfigurable(t *testing.T) {
	srv := startSim(t, nil) // 50 users, 12 groups and DEFAULT
	_, err := newSource(t, srv.URL, func(c *configs.MiniOrangeConfig, _ *Options) { c.MaxObjects = 49 }).Snapshot(context.Background())
	if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "totalCount 50 is more than max_objects (49)") {
		t.Errorf("Snapshot error = %v, want a totalCount of 50 refused", err)
	}
	if _, err := newSource(t, srv.URL, func(c *configs.MiniOrangeConfig, _ *Options) { c.MaxObjects = 50 }).Snapshot(context.Background()); err != nil {
		t.Errorf("max_objects equal to the directory: %v", err)
	}
}

// TestClaimedTotalDoesNotSizeTheRead reads from a slow server that claims max_objects users
// and serves one per page: the goroutines and memory of the read must stay bounded by the
// concurrency and by what arrived, not by the claim.
func TestClaimedTotalDoesNotSizeTheRead(t *testing.T) {
	const claimed = 200_000
	var served atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			StartIndex int `json:"startIndex"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case miniorangetest.PathGroupsList:
			fmt.Fprint(w, `{"status":"SUCCESS","totalCount":0,"groups":[]}`)
			return
		case miniorangetest.PathUsersList:
		default:
			http.NotFound(w, r)
			return
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		served.Add(1)
		fmt.Fprintf(w, `{"status":"SUCCESS","totalCount":%d,"users":[{"id":"%d","username":"u%d","status":"ACTIVE","groups":[]}]}`,
			claimed, req.StartIndex, req.StartIndex)
	})
	src := newSource(t, serve(t, h), func(c *configs.MiniOrangeConfig, o *Options) {
		c.MaxObjects = claimed
		o.Concurrency = 4
	})

	runtime.GC()
	base := runtime.NumGoroutine()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := src.Snapshot(ctx)
		done <- err
	}()
	peak := 0
	tick := time.NewTicker(2 * time.Millisecond)
	stop := time.After(400 * time.Millisecond)
sample:
	for {
		select {
		case <-tick.C:
			peak = max(peak, runtime.NumGoroutine()-base)
		case <-stop:
			break sample
		}
	}
	tick.Stop()
	cancel()
	err := <-done
	runtime.ReadMemStats(&after)

	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Snapshot error = %v, want the cancellation", err)
	}
	if n := served.Load(); n < 5 {
		t.Fatalf("only %d pages served: the read never got going", n)
	}
	if peak > 64 {
		t.Errorf("%d goroutines above the baseline while reading a listing that claims %d users; want a bound set by the concurrency, not by the claim", peak, claimed)
	}
	need := uint64(claimed) * uint64(unsafe.Sizeof(moUser{}))
	if got := after.TotalAlloc - before.TotalAlloc; got > need/4 {
		t.Errorf("the read allocated %d KiB for %d pages received; sizing by the claim would take %d KiB", got>>10, served.Load(), need>>10)
	}
	t.Logf("peak %d goroutines above the baseline, %d pages served, %d KiB allocated", peak, served.Load(), (after.TotalAlloc-before.TotalAlloc)>>10)
}
