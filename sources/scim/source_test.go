package scim

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/state"
)

func TestDebounceCoalesces(t *testing.T) {
	f := newFixture(t, func(o *HandlerOptions) { o.Sources[0].Debounce = 2 * time.Second })
	a := f.createUser("a@example.com")
	f.clock.Advance(1500 * time.Millisecond) // inside the window: nothing yet
	b := f.createUser("b@example.com")
	f.clock.Advance(1500 * time.Millisecond) // the second write restarted the window
	if n := len(f.changes()); n != 0 {
		t.Fatalf("fired during the quiet window: %v", f.changes())
	}
	f.clock.Advance(600 * time.Millisecond)
	want := []changeCall{{Source: "corp", Users: []string{"a@example.com", "b@example.com"}, Groups: []string{}}}
	if got := f.changes(); !reflect.DeepEqual(got, want) {
		t.Fatalf("changes = %+v, want %+v", got, want)
	}
	// A group write touches the group and its added members; a later member change only
	// the members added or removed; a rename the old and new names and every member.
	gid := f.createGroup("Eng", a)
	f.clock.Advance(3 * time.Second)
	mustCode(t, f.corp("PATCH", "Groups/"+gid, `{"Operations":[{"op":"add","path":"members","value":["`+b+`"]}]}`), http.StatusNoContent)
	f.clock.Advance(3 * time.Second)
	mustCode(t, f.corp("PATCH", "Groups/"+gid, `{"Operations":[{"op":"replace","path":"displayName","value":"Engineering"}]}`), http.StatusNoContent)
	mustCode(t, f.corp("PATCH", "Users/"+a, `{"Operations":[{"op":"replace","path":"userName","value":"a2@example.com"}]}`), http.StatusOK)
	f.clock.Advance(3 * time.Second)
	got := f.changes()[1:]
	want = []changeCall{
		{Source: "corp", Users: []string{"a@example.com"}, Groups: []string{"Eng"}},
		{Source: "corp", Users: []string{"b@example.com"}, Groups: []string{"Eng"}},
		{Source: "corp", Users: []string{"a2@example.com", "a@example.com", "b@example.com"}, Groups: []string{"Eng", "Engineering"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("changes = %+v\nwant %+v", got, want)
	}
	// Deleting a group touches all its members.
	mustCode(t, f.corp("DELETE", "Groups/"+gid, ""), http.StatusNoContent)
	mustCode(t, f.corp("DELETE", "Users/"+b, ""), http.StatusNoContent)
	f.clock.Advance(3 * time.Second)
	last := f.changes()[len(f.changes())-1]
	if !reflect.DeepEqual(last, changeCall{Source: "corp", Users: []string{"a2@example.com", "b@example.com"}, Groups: []string{"Engineering"}}) {
		t.Fatalf("delete touched %+v", last)
	}
	// Reads never trigger.
	n := len(f.changes())
	f.corp("GET", "Users", "")
	f.clock.Advance(time.Minute)
	if len(f.changes()) != n || f.clock.pending() != 0 {
		t.Fatal("a read triggered a pass")
	}
}

func TestDebounceMaxWait(t *testing.T) {
	f := newFixture(t, func(o *HandlerOptions) { o.Sources[0].Debounce = time.Second })
	// A write every 900ms keeps the window open; the trigger still fires after 10 windows.
	for i := 0; i < 12; i++ {
		f.createUser("u" + string(rune('a'+i)))
		f.clock.Advance(900 * time.Millisecond)
	}
	got := f.changes()
	if len(got) != 1 || len(got[0].Users) != 12 {
		t.Fatalf("changes = %+v", got)
	}
}

func TestDebouncePerSourceAndClose(t *testing.T) {
	f := newFixture(t)
	f.createUser("a@example.com")
	mustCode(t, f.do("POST", "/scim/v2/other/Groups", tokenB, `{"displayName":"Other"}`), http.StatusCreated)
	if len(f.changes()) != 0 {
		t.Fatal("fired early")
	}
	// Close flushes what is pending at once, per source.
	if err := f.h.Close(); err != nil {
		t.Fatal(err)
	}
	got := f.changes()
	if len(got) != 2 {
		t.Fatalf("Close flushed %+v", got)
	}
	bySource := map[string]changeCall{}
	for _, c := range got {
		bySource[c.Source] = c
	}
	if !reflect.DeepEqual(bySource["corp"].Users, []string{"a@example.com"}) || !reflect.DeepEqual(bySource["other"].Groups, []string{"Other"}) {
		t.Fatalf("flushed %+v", got)
	}
	f.clock.Advance(time.Minute)
	if len(f.changes()) != 2 {
		t.Fatal("a stopped timer fired")
	}
}

func TestDebounceRealTimers(t *testing.T) {
	// The default AfterFunc (real timers) with a short window; Close waits for OnChange.
	calls := make(chan []string, 4)
	h, err := NewHandler(HandlerOptions{
		Store:    newMemStore(),
		Sources:  []SourceOptions{{Name: "corp", Token: tokenA, Debounce: 5 * time.Millisecond}},
		OnChange: func(_ string, users, _ []string) { calls <- users },
		Logger:   zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, h: h}
	f.createUser("a@example.com")
	select {
	case u := <-calls:
		if !reflect.DeepEqual(u, []string{"a@example.com"}) {
			t.Fatalf("users = %v", u)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnChange never ran")
	}
	_ = h.Close()
}

func TestSnapshotConversion(t *testing.T) {
	f := newFixture(t)
	a := mustCode(t, f.corp("POST", "Users", `{
		"userName": "ann@example.com", "externalId": "00u1", "title": "CTO",
		"name": {"givenName": "Ann", "familyName": "Lee", "formatted": "Ann Lee"},
		"emails": [{"value": "ann@home.example", "type": "home"}, {"value": "ann@work.example", "type": "work"}],
		"`+SchemaEnterprise+`": {"department": "R&D", "employeeNumber": "42", "manager": {"value": "boss"}}
	}`), http.StatusCreated).str("id")
	f.clock.Advance(time.Minute)
	b := f.createUser("bob@example.com", `"displayName":"Bob B"`, `"active":"False"`)
	c := mustCode(t, f.corp("POST", "Users", `{"userName":"cy","emails":[{"value":"c1@x"},{"value":"c2@x","primary":true},{"value":"c3@x","type":"work"}]}`), http.StatusCreated).str("id")
	d := mustCode(t, f.corp("POST", "Users", `{"userName":"dee","emails":[{"value":"d1@x","type":"home"},{"value":"d2@x","type":"other"}]}`), http.StatusCreated).str("id")
	g1 := f.createGroup("Sales", a, b)
	g2 := f.createGroup("Eng", a)
	src := NewSource("corp", f.h)
	if src.Name() != "corp" {
		t.Fatal(src.Name())
	}
	dir, err := src.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if dir.Source != "corp" || len(dir.Users) != 4 || len(dir.Groups) != 2 {
		t.Fatalf("dir = %+v", dir)
	}
	wantA := reconcile.User{
		Key: a, UserName: "ann@example.com", Email: "ann@work.example", DisplayName: "Ann Lee",
		GivenName: "Ann", FamilyName: "Lee", Active: true, Groups: []string{"Eng", "Sales"},
		Attributes: map[string]string{"externalId": "00u1", "title": "CTO", "department": "R&D", "employeeNumber": "42", "manager": "boss"},
		Modified:   time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC),
	}
	if !reflect.DeepEqual(dir.Users[0], wantA) {
		t.Fatalf("user a =\n%+v\nwant\n%+v", dir.Users[0], wantA)
	}
	ub := dir.Users[1]
	if ub.Key != b || ub.Active || ub.DisplayName != "Bob B" || ub.Email != "bob@example.com" || !reflect.DeepEqual(ub.Groups, []string{"Sales"}) ||
		!ub.Modified.Equal(time.Date(2026, 3, 1, 9, 1, 0, 0, time.UTC)) {
		t.Fatalf("user b = %+v", ub)
	}
	if dir.Users[2].Key != c || dir.Users[2].Email != "c2@x" || !dir.Users[2].Active {
		t.Fatalf("user c = %+v", dir.Users[2])
	}
	if dir.Users[3].Key != d || dir.Users[3].Email != "d1@x" {
		t.Fatalf("user d = %+v", dir.Users[3])
	}
	if dir.Groups[0] != (reconcile.Group{Key: g1, Name: "Sales"}) || dir.Groups[1] != (reconcile.Group{Key: g2, Name: "Eng"}) {
		t.Fatalf("groups = %+v", dir.Groups)
	}
	us := src.(reconcile.UserSource)
	u, err := us.User(t.Context(), "ANN@example.com")
	if err != nil || !reflect.DeepEqual(u, wantA) {
		t.Fatalf("User = %+v, %v", u, err)
	}
	if _, err := us.User(t.Context(), "nobody"); !errors.Is(err, reconcile.ErrUserNotFound) {
		t.Fatalf("User(nobody) = %v", err)
	}
	if _, err := NewSource("nosuch", f.h).Snapshot(t.Context()); err == nil {
		t.Fatal("Snapshot of an unknown source succeeded")
	}
}

func TestSnapshotTombstones(t *testing.T) {
	f := newFixture(t, func(o *HandlerOptions) { o.TombstoneRetention = 48 * time.Hour })
	a := f.createUser("ann@example.com")
	b := f.createUser("bob@example.com")
	f.createGroup("Sales", a, b)
	f.clock.Advance(time.Hour)
	mustCode(t, f.corp("DELETE", "Users/"+a, ""), http.StatusNoContent)
	mustCode(t, f.corp("DELETE", "Users/"+b, ""), http.StatusNoContent)
	deletedAt := f.clock.Now()
	src := NewSource("corp", f.h)
	dir, err := src.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(dir.Users) != 2 {
		t.Fatalf("users = %+v", dir.Users)
	}
	for _, u := range dir.Users {
		if u.Active || !u.Modified.Equal(deletedAt) || len(u.Groups) != 0 || u.Email == "" {
			t.Fatalf("tombstone = %+v", u)
		}
	}
	u, err := src.(reconcile.UserSource).User(t.Context(), "ann@example.com")
	if err != nil || u.Active || u.Key != a {
		t.Fatalf("User(tombstone) = %+v, %v", u, err)
	}
	// A new user with the same name hides the tombstone.
	a2 := f.createUser("Ann@example.com")
	dir, _ = src.Snapshot(t.Context())
	if len(dir.Users) != 2 {
		t.Fatalf("users = %+v", dir.Users)
	}
	for _, u := range dir.Users {
		if strings.EqualFold(u.UserName, "ann@example.com") && (u.Key != a2 || !u.Active) {
			t.Fatalf("ann = %+v", u)
		}
	}
	// After the retention the tombstones are purged from the store too.
	f.clock.Advance(49 * time.Hour)
	dir, _ = src.Snapshot(t.Context())
	if len(dir.Users) != 1 || dir.Users[0].Key != a2 {
		t.Fatalf("after purge = %+v", dir.Users)
	}
	recs := f.store.records(t, "corp", TypeUser)
	if _, ok := recs[a]; ok || len(recs) != 1 {
		t.Fatalf("store after purge = %v", recs)
	}
	if _, err := src.(reconcile.UserSource).User(t.Context(), "bob@example.com"); !errors.Is(err, reconcile.ErrUserNotFound) {
		t.Fatalf("purged user = %v", err)
	}
}

func TestSnapshotHonoursContext(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := NewSource("corp", f.h).Snapshot(ctx); err == nil {
		t.Fatal("Snapshot ignored a cancelled context")
	}
}

// TestDurabilityWithState writes through the real bbolt store, drops the handler without
// Close, closes and reopens the file, and finds every answered write there.
func TestDurabilityWithState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "idsync.db")
	st, err := state.Open(path, state.Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, clock: newFakeClock()}
	h, err := NewHandler(HandlerOptions{Store: st, Sources: []SourceOptions{{Name: "corp", Token: tokenA}}, Now: f.clock.Now, AfterFunc: f.clock.AfterFunc})
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	a := f.createUser("ann@example.com")
	b := f.createUser("bob@example.com")
	g := f.createGroup("Eng", a, b)
	mustCode(t, f.corp("PATCH", "Users/"+a, `{"Operations":[{"op":"replace","path":"active","value":false}]}`), http.StatusOK)
	mustCode(t, f.corp("DELETE", "Users/"+b, ""), http.StatusNoContent)
	// No h.Close: the process "dies" after the answers.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st2, err := state.Open(path, state.Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	h2, err := NewHandler(HandlerOptions{Store: st2, Sources: []SourceOptions{{Name: "corp", Token: tokenA}}, Now: f.clock.Now, AfterFunc: f.clock.AfterFunc})
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	f2 := &fixture{t: t, h: h2}
	r := mustCode(t, f2.corp("GET", "Users/"+a, ""), http.StatusOK)
	if r.Body["active"] != false || r.str("meta", "version") != `W/"2"` {
		t.Fatalf("after reopen: %s", r.Raw)
	}
	mustSCIMError(t, f2.corp("GET", "Users/"+b, ""), http.StatusNotFound, "")
	r = mustCode(t, f2.corp("GET", "Groups/"+g, ""), http.StatusOK)
	if len(r.Body["members"].([]any)) != 1 {
		t.Fatalf("group after reopen: %s", r.Raw)
	}
	dir, err := NewSource("corp", h2).Snapshot(t.Context())
	if err != nil || len(dir.Users) != 2 {
		t.Fatalf("snapshot after reopen = %+v, %v", dir, err)
	}
	for _, u := range dir.Users {
		if u.Active {
			t.Fatalf("user %s active after reopen", u.UserName)
		}
	}
	// A new write after the restart continues the versions.
	r = mustCode(t, f2.corp("PATCH", "Users/"+a, `{"Operations":[{"op":"replace","path":"active","value":true}]}`), http.StatusOK)
	if r.str("meta", "version") != `W/"3"` {
		t.Fatalf("version after restart = %s", r.str("meta", "version"))
	}
}
