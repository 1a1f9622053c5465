package scimpull

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
)

// Unknown means no: RFC 7643 makes active optional, but a user without it is never taken as
// active. The read fails as incomplete and names the records and the field.
func TestSnapshotUserWithoutActiveIsIncomplete(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(u map[string]any)
	}{
		{"absent", func(u map[string]any) { delete(u, "active") }},
		{"null", func(u map[string]any) { u["active"] = nil }},
		{"renamed", func(u map[string]any) { u["enabled"] = u["active"]; delete(u, "active") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, url := newFakeSCIM(t, 30, 4)
			tc.edit(f.users[4])
			dir, err := newSource(t, url, nil).Snapshot(context.Background())
			if !errors.Is(err, ErrIncomplete) {
				t.Fatalf("Snapshot error = %v, want ErrIncomplete", err)
			}
			want := `users listing: 1 of 30 users have no active attribute, and a user whose status is missing or unknown is never taken as active: "user4@example.com" (field active is missing)`
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q\ndoes not contain %q", err, want)
			}
			if dir.Users != nil {
				t.Error("a failed read returned users")
			}
		})
	}
}

func TestSnapshotNamesFiveUsersWithoutActive(t *testing.T) {
	f, url := newFakeSCIM(t, 30, 4)
	for _, u := range f.users {
		delete(u, "active")
	}
	_, err := newSource(t, url, nil).Snapshot(context.Background())
	if !errors.Is(err, ErrIncomplete) {
		t.Fatalf("Snapshot error = %v, want ErrIncomplete", err)
	}
	msg := err.Error()
	for i := range 5 {
		if !strings.Contains(msg, fmt.Sprintf(`"user%d@example.com" (field active is missing)`, i)) {
			t.Errorf("error does not name user%d: %s", i, msg)
		}
	}
	if strings.Contains(msg, "user5@example.com") || !strings.Contains(msg, "30 of 30 users") || !strings.Contains(msg, "and 25 more") {
		t.Errorf("error should name five users and count the rest: %s", msg)
	}
}

func TestUserWithoutActiveIsAnError(t *testing.T) {
	f, url := newFakeSCIM(t, 30, 4)
	delete(f.users[3], "active")
	u, err := newSource(t, url, nil).User(context.Background(), "user3@example.com")
	if err == nil {
		t.Fatalf("User = %+v, want an error", u)
	}
	if errors.Is(err, reconcile.ErrUserNotFound) || !errors.Is(err, ErrIncomplete) {
		t.Errorf("error = %v, want ErrIncomplete and not ErrUserNotFound", err)
	}
	if !strings.Contains(err.Error(), `user "user3@example.com": field active is missing`) {
		t.Errorf("error %q does not name the user and the field", err)
	}
	// The string forms some servers send keep working.
	f.mu.Lock()
	f.users[3]["active"] = "TRUE"
	f.mu.Unlock()
	if u, err := newSource(t, url, nil).User(context.Background(), "user3@example.com"); err != nil || !u.Active {
		t.Errorf(`active "TRUE": %+v, %v`, u, err)
	}
}

// Counts bound memory: a totalResults is checked against max_objects before anything is sized
// by it, and a listing grows with what it received.

func TestTotalResultsBeyondMaxObjectsFailsFast(t *testing.T) {
	f, url := newFakeSCIM(t, 30, 4)
	f.edit = func(path string, _ int, p map[string]any) {
		if path == "/Users" {
			p["totalResults"] = 40_000_000
		}
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := newSource(t, url, nil).Snapshot(context.Background())
	runtime.ReadMemStats(&after)
	want := "users listing: totalResults 40000000 is more than max_objects (1000000)"
	if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Snapshot error = %v, want ErrIncomplete and %q", err, want)
	}
	if got := f.callCount("/Users"); got != 1 {
		t.Errorf("%d /Users requests, want 1: nothing past the first page may be asked for", got)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 32<<20 {
		t.Errorf("the read allocated %d MiB for a claim it refused", got>>20)
	}
}

func TestMaxObjectsIsConfigurable(t *testing.T) {
	_, url := newFakeSCIM(t, 30, 4)
	_, err := newSource(t, url, func(c *configs.SCIMPullConfig, _ *Options) { c.MaxObjects = 29 }).Snapshot(context.Background())
	if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "totalResults 30 is more than max_objects (29)") {
		t.Errorf("Snapshot error = %v, want a totalResults of 30 refused", err)
	}
	if _, err := newSource(t, url, func(c *configs.SCIMPullConfig, _ *Options) { c.MaxObjects = 30 }).Snapshot(context.Background()); err != nil {
		t.Errorf("max_objects equal to the directory: %v", err)
	}
}

// TestClaimedTotalDoesNotSizeTheRead: a server that claims max_objects users and serves 30,
// one per page. The read fails when the listing ends; what it allocated on the way must follow
// the 30 received, not the claim.
func TestClaimedTotalDoesNotSizeTheRead(t *testing.T) {
	const claimed = 100_000
	f, url := newFakeSCIM(t, 30, 4)
	f.maxCount = 1
	f.edit = func(path string, _ int, p map[string]any) {
		if path == "/Users" {
			p["totalResults"] = claimed
		}
	}
	src := newSource(t, url, func(c *configs.SCIMPullConfig, _ *Options) { c.MaxObjects = claimed })
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := src.Snapshot(context.Background())
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "listing ended at 30 of totalResults 100000") {
		t.Fatalf("Snapshot error = %v, want the short listing refused", err)
	}
	need := uint64(claimed) * uint64(unsafe.Sizeof(scimUser{}))
	if got := after.TotalAlloc - before.TotalAlloc; got > need/4 {
		t.Errorf("the read allocated %d KiB for 30 users received; sizing by the claim would take %d KiB", got>>10, need>>10)
	}
}
