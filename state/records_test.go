package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/idsync/idsync/reconcile"
	"go.etcd.io/bbolt"
)

func TestJournalRoundTrip(t *testing.T) {
	s := newStore(t)
	ann := reconcile.Link{Source: "corp", Key: "u1", UserName: "ann", Email: "ann@example.com", AccountID: "acc-1", Created: true,
		RemovedGroups: []reconcile.GroupRef{{ID: "g1", Name: "eng"}}, LinkedAt: t0.Add(-time.Hour), UpdatedAt: t0.Add(-time.Hour)}
	bob := reconcile.Link{Source: "corp", Key: "u2", UserName: "bob", AccountID: "acc-2"}
	eng := reconcile.Owned{Kind: reconcile.OwnedMembership, Container: "g1", ContainerName: "eng", AccountID: "acc-1"}
	desk := reconcile.Owned{Kind: reconcile.OwnedCustomer, Container: "10", AccountID: "acc-2"}
	group := reconcile.Owned{Kind: reconcile.OwnedGroup, Container: "g1", ContainerName: "eng"}
	if err := s.Journal(reconcile.JournalEntry{Own: []reconcile.Owned{desk}}); err != nil {
		t.Fatal(err)
	}

	entry := reconcile.JournalEntry{
		Links:  []reconcile.Link{ann, bob},
		Own:    []reconcile.Owned{eng, group},
		Disown: []reconcile.Owned{desk},
		Audit: []reconcile.AuditRecord{
			{RunID: "r1", Actor: "cli", Action: "create_user", Source: "corp", UserKey: "u2", UserName: "bob", AccountID: "acc-2", Reason: "new in corp", Result: "ok"},
			{Time: t0.Add(-time.Minute), RunID: "r1", Actor: "cli", Action: "add_member", UserName: "ann", Target: "eng", Result: "ok"},
		},
	}
	if err := s.Journal(entry); err != nil {
		t.Fatal(err)
	}

	links, err := s.Links()
	if err != nil {
		t.Fatal(err)
	}
	wantBob := bob
	wantBob.LinkedAt, wantBob.UpdatedAt = t0, t0 // zero times are stamped with Now
	if want := []reconcile.Link{ann, wantBob}; !reflect.DeepEqual(links, want) {
		t.Fatalf("Links() = %+v\nwant %+v", links, want)
	}
	owned, err := s.Owned()
	if err != nil {
		t.Fatal(err)
	}
	if want := []reconcile.Owned{group, eng}; !reflect.DeepEqual(owned, want) {
		t.Fatalf("Owned() = %+v\nwant %+v (the customer record disowned)", owned, want)
	}
	audit, err := s.Audit(time.Time{}, "")
	if err != nil {
		t.Fatal(err)
	}
	want0, want1 := entry.Audit[1], entry.Audit[0]
	want1.Time = t0
	if want := []reconcile.AuditRecord{want0, want1}; !reflect.DeepEqual(audit, want) {
		t.Fatalf("Audit() = %+v\nwant %+v", audit, want)
	}

	// Re-linking with a zero LinkedAt keeps the original date; UpdatedAt moves.
	relink := bob
	relink.Email = "bob@example.com"
	later := t0.Add(time.Hour)
	s.now = func() time.Time { return later }
	if err := s.Journal(reconcile.JournalEntry{Links: []reconcile.Link{relink}}); err != nil {
		t.Fatal(err)
	}
	links, _ = s.Links()
	if got := links[1]; got.Email != "bob@example.com" || !got.LinkedAt.Equal(t0) || !got.UpdatedAt.Equal(later) {
		t.Fatalf("relinked = %+v; want email updated, LinkedAt kept at %v, UpdatedAt %v", got, t0, later)
	}
	if err := s.Journal(reconcile.JournalEntry{}); err != nil {
		t.Fatalf("empty entry: %v", err)
	}
}

func TestJournalRejectsInvalidEntriesWhole(t *testing.T) {
	good := reconcile.Link{Source: "corp", Key: "u1", AccountID: "acc-1"}
	tests := []struct {
		name  string
		entry reconcile.JournalEntry
		want  string
	}{
		{"link without account", reconcile.JournalEntry{Links: []reconcile.Link{good, {Source: "corp", Key: "u2"}}}, "links[1]"},
		{"link without source", reconcile.JournalEntry{Links: []reconcile.Link{{Key: "u2", AccountID: "a"}}}, "links[0]"},
		{"membership without account", reconcile.JournalEntry{Links: []reconcile.Link{good}, Own: []reconcile.Owned{{Kind: reconcile.OwnedMembership, Container: "g1"}}}, "own[0]"},
		{"disown without container", reconcile.JournalEntry{Disown: []reconcile.Owned{{Kind: reconcile.OwnedCustomer, AccountID: "a"}}}, "disown[0]"},
		{"audit without action", reconcile.JournalEntry{Links: []reconcile.Link{good}, Audit: []reconcile.AuditRecord{{UserName: "ann"}}}, "audit[0]"},
		{"audit with a huge user", reconcile.JournalEntry{Audit: []reconcile.AuditRecord{{Action: "x", UserName: strings.Repeat("a", 5000)}}}, "audit[0]"},
		{"link key too long", reconcile.JournalEntry{Links: []reconcile.Link{{Source: "corp", Key: strings.Repeat("k", 5000), AccountID: "a"}}}, "links[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			err := s.Journal(tt.entry)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Journal = %v, want an error naming %s", err, tt.want)
			}
			links, _ := s.Links()
			owned, _ := s.Owned()
			audit, _ := s.Audit(time.Time{}, "")
			if len(links)+len(owned)+len(audit) != 0 {
				t.Fatalf("a rejected entry wrote %d links, %d owned, %d audit records", len(links), len(owned), len(audit))
			}
		})
	}
}

func TestJournalConcurrentCallers(t *testing.T) {
	s := newStore(t)
	const workers, each = 16, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				key := fmt.Sprintf("w%02d-%02d", w, i)
				err := s.Journal(reconcile.JournalEntry{
					Links: []reconcile.Link{{Source: "corp", Key: key, AccountID: "acc-" + key}},
					Own:   []reconcile.Owned{{Kind: reconcile.OwnedMembership, Container: "g1", AccountID: "acc-" + key}},
					Audit: []reconcile.AuditRecord{{Action: "create_user", UserKey: key, Result: "ok"}},
				})
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	links, err := s.Links()
	if err != nil || len(links) != workers*each {
		t.Fatalf("Links() = %d, %v; want %d", len(links), err, workers*each)
	}
	owned, _ := s.Owned()
	audit, _ := s.Audit(time.Time{}, "")
	if len(owned) != workers*each || len(audit) != workers*each {
		t.Fatalf("owned %d, audit %d; want %d each", len(owned), len(audit), workers*each)
	}
	if one, _ := s.Audit(time.Time{}, "W07-13"); len(one) != 1 || one[0].UserKey != "w07-13" {
		t.Fatalf("Audit(W07-13) = %+v", one)
	}
}

func TestAuditFilters(t *testing.T) {
	s := newStore(t)
	recs := []reconcile.AuditRecord{
		{Time: t0.Add(3 * time.Minute), Action: "a3", UserName: "Ann", Result: "ok"},
		{Time: t0, Action: "a0", UserKey: "ann", Result: "ok"},
		{Time: t0.Add(time.Minute), Action: "a1", UserName: "bob", AccountID: "ACC-ANN", Result: "ok"},
		{Time: t0.Add(2 * time.Minute), Action: "a2", UserName: "bob", Result: "ok"},
		{Time: t0.Add(time.Minute), Action: "a1b", UserName: "ann", Result: "ok"},
	}
	for _, r := range recs {
		if err := s.Journal(reconcile.JournalEntry{Audit: []reconcile.AuditRecord{r}}); err != nil {
			t.Fatal(err)
		}
	}
	actions := func(rs []reconcile.AuditRecord) string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Action)
		}
		return strings.Join(out, ",")
	}
	tests := []struct {
		since time.Time
		user  string
		want  string
	}{
		{time.Time{}, "", "a0,a1,a1b,a2,a3"},
		{t0.Add(time.Minute), "", "a1,a1b,a2,a3"},
		{t0.Add(90 * time.Second), "", "a2,a3"},
		{t0.Add(time.Hour), "", ""},
		{time.Time{}, "ANN", "a0,a1b,a3"},
		{time.Time{}, "acc-ann", "a1"},
		{t0.Add(time.Minute), "ann", "a1b,a3"},
		{time.Time{}, "an", ""},
		{time.Time{}, "nobody", ""},
	}
	for _, tt := range tests {
		got, err := s.Audit(tt.since, tt.user)
		if err != nil {
			t.Fatal(err)
		}
		if actions(got) != tt.want {
			t.Errorf("Audit(%v, %q) = %s, want %s", tt.since.Sub(t0), tt.user, actions(got), tt.want)
		}
	}
}

func TestRuns(t *testing.T) {
	s := newStore(t)
	if _, err := s.Run("nope"); !errors.Is(err, reconcile.ErrNotFound) {
		t.Fatalf("Run(nope) = %v, want ErrNotFound", err)
	}
	if runs, err := s.Runs(10); err != nil || len(runs) != 0 {
		t.Fatalf("Runs on an empty store = %v, %v", runs, err)
	}
	var ids []string
	for i := range 6 {
		start := t0.Add(time.Duration(i) * time.Minute)
		r := reconcile.Run{
			ID: NewRunID(start), Trigger: "schedule", Started: start, Finished: start.Add(time.Second),
			Complete: true, Result: reconcile.ResultOK, Held: i,
			Counts:  map[reconcile.Kind]map[string]int{reconcile.KindCreateUser: {"ok": i}},
			Errors:  []string{"e"},
			Sources: []reconcile.SourceRun{{Name: "corp", Complete: true, Users: 3, Hash: "h"}},
			Changes: &reconcile.Changes{CreateUsers: []reconcile.Change{{Kind: reconcile.KindCreateUser, UserName: "ann", Reason: "new"}}},
		}
		if err := s.PutRun(r); err != nil {
			t.Fatal(err)
		}
		got, err := s.Run(r.ID)
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Fatalf("Run(%s) = %+v, %v\nwant %+v", r.ID, got, err, r)
		}
		ids = append(ids, r.ID)
	}
	newest := slices.Clone(ids)
	slices.Reverse(newest)
	runIDs := func(rs []reconcile.Run) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	if got, _ := s.Runs(0); !slices.Equal(runIDs(got), newest) {
		t.Fatalf("Runs(0) = %v, want %v", runIDs(got), newest)
	}
	if got, _ := s.Runs(2); !slices.Equal(runIDs(got), newest[:2]) {
		t.Fatalf("Runs(2) = %v, want %v", runIDs(got), newest[:2])
	}
	// PutRun replaces.
	if err := s.PutRun(reconcile.Run{ID: ids[0], Result: reconcile.ResultFailed}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Run(ids[0]); got.Result != reconcile.ResultFailed {
		t.Fatalf("replaced run = %+v", got)
	}
	if err := s.PutRun(reconcile.Run{}); err == nil {
		t.Fatal("PutRun without id succeeded")
	}

	if err := s.PruneRuns(0); err != nil { // default keep: nothing to prune
		t.Fatal(err)
	}
	if got, _ := s.Runs(0); len(got) != 6 {
		t.Fatalf("after PruneRuns(0): %d runs, want 6", len(got))
	}
	if err := s.PruneRuns(4); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Runs(0); !slices.Equal(runIDs(got), newest[:4]) {
		t.Fatalf("after PruneRuns(4): %v, want %v", runIDs(got), newest[:4])
	}
	if err := s.PruneRuns(10); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Runs(0); len(got) != 4 {
		t.Fatalf("after PruneRuns(10): %d runs, want 4", len(got))
	}
}

func TestNewRunID(t *testing.T) {
	format := regexp.MustCompile(`^\d{8}T\d{6}Z-[0-9a-f]{4}$`)
	at := time.Date(2031, 5, 6, 7, 8, 9, 500, time.FixedZone("CET", 3600))
	var ids []string
	for range 2000 {
		id := NewRunID(at)
		if !format.MatchString(id) || !strings.HasPrefix(id, "20310506T060809Z-") {
			t.Fatalf("NewRunID = %q, want UTC time then 4 hex digits", id)
		}
		ids = append(ids, id)
	}
	if !slices.IsSorted(ids) {
		t.Fatal("ids of one second do not sort in creation order")
	}
	// A clock that steps to another second and back must not repeat an id.
	other := NewRunID(at.Add(time.Second))
	again := NewRunID(at)
	if slices.Contains(ids, again) || again <= ids[len(ids)-1] || other <= again {
		t.Fatalf("after a clock step: %q then %q (last of the first second %q)", other, again, ids[len(ids)-1])
	}
	seen := map[string]bool{}
	for i := range 1000 {
		id := NewRunID(at.Add(time.Duration(i%3) * time.Second))
		if seen[id] {
			t.Fatalf("NewRunID repeated %q", id)
		}
		seen[id] = true
	}
}

func TestHeldPlan(t *testing.T) {
	s := newStore(t)
	if _, err := s.HeldPlan(); !errors.Is(err, reconcile.ErrNotFound) {
		t.Fatalf("HeldPlan on an empty store = %v, want ErrNotFound", err)
	}
	if err := s.ClearHeldPlan(); err != nil {
		t.Fatalf("ClearHeldPlan with none: %v", err)
	}
	h := reconcile.HeldPlan{
		RunID: "20261127T040515Z-0001", Created: t0, Reason: "30 deactivations > max 25", Deactivations: 30, Removals: 2,
		Changes: reconcile.Changes{DeactivateUsers: []reconcile.Change{{Kind: reconcile.KindDeactivateUser, AccountID: "acc-1", Reason: "gone"}}},
	}
	if err := s.PutHeldPlan(h); err != nil {
		t.Fatal(err)
	}
	if got, err := s.HeldPlan(); err != nil || !reflect.DeepEqual(got, h) {
		t.Fatalf("HeldPlan() = %+v, %v\nwant %+v", got, err, h)
	}
	h2 := reconcile.HeldPlan{RunID: "20261127T050515Z-0002", Approved: true, ApprovedBy: "cli", ApprovedAt: t0}
	if err := s.PutHeldPlan(h2); err != nil {
		t.Fatal(err)
	}
	got, err := s.HeldPlan()
	if err != nil || got.RunID != h2.RunID || !got.Approved || !got.Created.Equal(t0) {
		t.Fatalf("replaced HeldPlan() = %+v, %v", got, err)
	}
	if err := s.PutHeldPlan(reconcile.HeldPlan{}); err == nil {
		t.Fatal("PutHeldPlan without run id succeeded")
	}
	if err := s.ClearHeldPlan(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.HeldPlan(); !errors.Is(err, reconcile.ErrNotFound) {
		t.Fatalf("HeldPlan after clear = %v, want ErrNotFound", err)
	}
}

func TestSnapshots(t *testing.T) {
	s := newStore(t)
	if _, err := s.Snapshot("corp"); !errors.Is(err, reconcile.ErrNotFound) {
		t.Fatalf("Snapshot(corp) = %v, want ErrNotFound", err)
	}
	snap := reconcile.SnapshotRecord{Source: "corp", Taken: t0, Hash: "sha256:ab", Directory: reconcile.Directory{
		Source: "corp",
		Users: []reconcile.User{{Key: "1", UserName: "ann", Email: "ann@example.com", Active: true, Groups: []string{"Eng"},
			Attributes: map[string]string{"dept": "R&D"}}},
		Groups: []reconcile.Group{{Key: "g1", Name: "Eng"}},
	}}
	other := reconcile.SnapshotRecord{Source: "hr", Hash: "sha256:cd", Directory: reconcile.Directory{Source: "hr", Users: []reconcile.User{}, Groups: []reconcile.Group{}}}
	for _, r := range []reconcile.SnapshotRecord{snap, other} {
		if err := s.PutSnapshot(r); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.Snapshot("corp"); err != nil || !reflect.DeepEqual(got, snap) {
		t.Fatalf("Snapshot(corp) = %+v, %v\nwant %+v", got, err, snap)
	}
	other.Taken = t0
	if got, err := s.Snapshot("hr"); err != nil || !reflect.DeepEqual(got, other) {
		t.Fatalf("Snapshot(hr) = %+v, %v\nwant %+v", got, err, other)
	}
	snap.Hash = "sha256:ef"
	snap.Directory.Users = nil
	if err := s.PutSnapshot(snap); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Snapshot("corp"); got.Hash != "sha256:ef" || len(got.Directory.Users) != 0 {
		t.Fatalf("replaced snapshot = %+v", got)
	}
	if err := s.PutSnapshot(reconcile.SnapshotRecord{}); err == nil {
		t.Fatal("PutSnapshot without source succeeded")
	}
}

func TestSCIM(t *testing.T) {
	s := newStore(t)
	put := func(r SCIMResource) {
		t.Helper()
		if err := s.PutSCIM(r); err != nil {
			t.Fatal(err)
		}
	}
	data := []byte(`{"userName":"ann"}`)
	put(SCIMResource{Source: "corp", Type: SCIMUser, ID: "u2", Data: []byte(`{"userName":"bob"}`)})
	put(SCIMResource{Source: "corp", Type: SCIMUser, ID: "u1", Data: data})
	put(SCIMResource{Source: "corp", Type: SCIMGroup, ID: "u1", Data: []byte(`{"displayName":"Eng"}`)})
	put(SCIMResource{Source: "corp-2", Type: SCIMUser, ID: "u1", Data: []byte(`{"userName":"other"}`)})
	data[2] = 'X' // the store must have copied the caller's bytes

	list := func(source, typ string) string {
		t.Helper()
		rs, err := s.SCIMResources(source, typ)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rs {
			if r.Source != source || r.Type != typ {
				t.Fatalf("resource %+v listed under %s/%s", r, source, typ)
			}
			out = append(out, r.ID+"="+string(r.Data))
		}
		return strings.Join(out, " ")
	}
	if got, want := list("corp", SCIMUser), `u1={"userName":"ann"} u2={"userName":"bob"}`; got != want {
		t.Fatalf("corp users = %s, want %s", got, want)
	}
	if got, want := list("corp", SCIMGroup), `u1={"displayName":"Eng"}`; got != want {
		t.Fatalf("corp groups = %s, want %s", got, want)
	}
	if got, want := list("corp-2", SCIMUser), `u1={"userName":"other"}`; got != want {
		t.Fatalf("corp-2 users = %s, want %s", got, want)
	}
	if got := list("nobody", SCIMUser); got != "" {
		t.Fatalf("unknown source lists %s", got)
	}

	// Returned bytes are copies.
	rs, _ := s.SCIMResources("corp", SCIMUser)
	rs[0].Data[2] = 'Z'
	if got := list("corp", SCIMUser); !strings.HasPrefix(got, `u1={"userName":"ann"}`) {
		t.Fatalf("mutating a returned resource changed the store: %s", got)
	}

	put(SCIMResource{Source: "corp", Type: SCIMUser, ID: "u1", Data: []byte(`{"userName":"ann2"}`)})
	if err := s.DeleteSCIM("corp", SCIMUser, "u2"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.DeleteSCIM("corp-2", SCIMUser, "u1"); err != nil {
			t.Fatalf("DeleteSCIM (idempotent): %v", err)
		}
	}
	if err := s.DeleteSCIM("nobody", SCIMGroup, "x"); err != nil {
		t.Fatalf("DeleteSCIM of an unknown source: %v", err)
	}
	if got, want := list("corp", SCIMUser), `u1={"userName":"ann2"}`; got != want {
		t.Fatalf("corp users after replace and delete = %s, want %s", got, want)
	}
	if got := list("corp-2", SCIMUser); got != "" {
		t.Fatalf("corp-2 users after delete = %s", got)
	}
	if got, want := list("corp", SCIMGroup), `u1={"displayName":"Eng"}`; got != want {
		t.Fatalf("deleting a user touched a group of the same id: %s", got)
	}

	for _, bad := range []SCIMResource{
		{Source: "", Type: SCIMUser, ID: "u", Data: []byte(`{}`)},
		{Source: "corp", Type: "user", ID: "u", Data: []byte(`{}`)},
		{Source: "corp", Type: SCIMUser, ID: "", Data: []byte(`{}`)},
		{Source: "corp", Type: SCIMUser, ID: "u", Data: []byte(`{"userName":`)},
		{Source: "corp", Type: SCIMUser, ID: "u"},
	} {
		if err := s.PutSCIM(bad); err == nil {
			t.Errorf("PutSCIM(%+v) succeeded", bad)
		}
	}
	if _, err := s.SCIMResources("corp", "Users"); err == nil {
		t.Error("SCIMResources with a bad type succeeded")
	}
	if err := s.DeleteSCIM("corp", "Widget", "u"); err == nil {
		t.Error("DeleteSCIM with a bad type succeeded")
	}
}

func TestBudget(t *testing.T) {
	s := newStore(t)
	if _, err := s.Budget("jira"); !errors.Is(err, reconcile.ErrNotFound) {
		t.Fatalf("Budget(jira) = %v, want ErrNotFound", err)
	}
	b := Budget{Target: "jira", Limit: 100, Remaining: 42, Reset: t0.Add(time.Minute), Throttled: 3, UpdatedAt: t0.Add(-time.Second)}
	if err := s.PutBudget(b); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBudget(Budget{Target: "miniorange", Limit: 10}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Budget("jira"); err != nil || got != b {
		t.Fatalf("Budget(jira) = %+v, %v\nwant %+v", got, err, b)
	}
	all, err := s.Budgets()
	if err != nil || len(all) != 2 || all[1].Target != "miniorange" || !all[1].UpdatedAt.Equal(t0) {
		t.Fatalf("Budgets() = %+v, %v", all, err)
	}
	if err := s.PutBudget(Budget{}); err == nil {
		t.Fatal("PutBudget without target succeeded")
	}
}

func TestClosedStoreErrors(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "idsync.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	if _, err := s.Links(); err == nil {
		t.Error("Links on a closed store succeeded")
	}
	if err := s.PutSCIM(SCIMResource{Source: "corp", Type: SCIMUser, ID: "u", Data: []byte(`{}`)}); err == nil {
		t.Error("PutSCIM on a closed store succeeded")
	}
}

func TestPutSCIMBatch(t *testing.T) {
	s := newStore(t)
	ids := func() string {
		t.Helper()
		rs, err := s.SCIMResources("corp", SCIMGroup)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rs {
			out = append(out, r.ID+"="+string(r.Data))
		}
		return strings.Join(out, " ")
	}
	data := []byte(`{"members":[]}`)
	err := s.PutSCIMBatch([]SCIMResource{
		{Source: "corp", Type: SCIMGroup, ID: "g1", Data: []byte(`{"buckets":64}`)},
		{Source: "corp", Type: SCIMGroup, ID: "g1#m00", Data: data},
	})
	if err != nil {
		t.Fatal(err)
	}
	data[1] = 'X' // the store must have copied the caller's bytes
	if got, want := ids(), `g1={"buckets":64} g1#m00={"members":[]}`; got != want {
		t.Fatalf("after a batch: %s, want %s", got, want)
	}
	// One bad resource fails the batch before anything is written.
	err = s.PutSCIMBatch([]SCIMResource{
		{Source: "corp", Type: SCIMGroup, ID: "g1", Data: []byte(`{"buckets":0}`)},
		{Source: "corp", Type: SCIMGroup, ID: "g1#m01", Data: []byte(`{not json`)},
	})
	if err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Fatalf("a batch with bad JSON: %v", err)
	}
	if got, want := ids(), `g1={"buckets":64} g1#m00={"members":[]}`; got != want {
		t.Fatalf("a failed batch changed the store: %s", got)
	}
	if err := s.PutSCIMBatch([]SCIMResource{{Source: "", Type: SCIMGroup, ID: "g2", Data: data}}); err == nil {
		t.Error("a resource without a source was stored")
	}
}

func TestStanding(t *testing.T) {
	s := newStore(t)
	if got, err := s.Standing(); err != nil || len(got) != 0 {
		t.Fatalf("Standing on an empty store = %v, %v; want none", got, err)
	}
	list := []reconcile.StandingApproval{{
		Change: reconcile.Change{Kind: reconcile.KindDeactivateUser, AccountID: "acc-1", UserName: "u9"},
		RunID:  "20261127T040515Z-0001", By: "ops", Since: t0,
	}}
	if err := s.PutStanding(list); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Standing(); err != nil || !reflect.DeepEqual(got, list) {
		t.Fatalf("Standing() = %+v, %v\nwant %+v", got, err, list)
	}
	if err := s.PutStanding(nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Standing(); err != nil || len(got) != 0 {
		t.Fatalf("Standing after clearing = %v, %v", got, err)
	}
}

// A snapshot is stored compressed, much smaller than its JSON, and reads back whole.
func TestSnapshotStoredCompressed(t *testing.T) {
	s := newStore(t)
	dir := reconcile.Directory{Source: "corp", Groups: []reconcile.Group{{Key: "g", Name: "Eng <ops>"}}}
	for i := range 2000 {
		dir.Users = append(dir.Users, reconcile.User{Key: fmt.Sprint(i), UserName: fmt.Sprintf("user%d@example.com", i),
			Email: fmt.Sprintf("user%d@example.com", i), DisplayName: "User \u00e9 & co", Active: i%7 != 0,
			Groups: []string{"Eng <ops>", "DEFAULT"}})
	}
	snap := reconcile.SnapshotRecord{Source: "corp", Taken: t0, Hash: "h", Directory: dir}
	if err := s.PutSnapshot(snap); err != nil {
		t.Fatal(err)
	}
	plain, _ := json.Marshal(snap)
	var stored []byte
	if err := s.view(func(tx *bbolt.Tx) error {
		stored = bytes.Clone(tx.Bucket([]byte(bucketSnapshots)).Get([]byte("corp")))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(stored, gzipMagic) || len(stored)*4 > len(plain) {
		t.Fatalf("stored snapshot is %d bytes (gzip: %v) for %d bytes of JSON", len(stored), bytes.HasPrefix(stored, gzipMagic), len(plain))
	}
	inflated, err := snapshotJSON(stored)
	if err != nil || !json.Valid(inflated) {
		t.Fatalf("inflated snapshot is not JSON: %v", err)
	}
	if got, err := s.Snapshot("corp"); err != nil || !reflect.DeepEqual(got, snap) {
		t.Fatalf("Snapshot(corp) differs from what was stored: %v", err)
	}
}

// Snapshots stored as plain JSON (before compression) still read; a damaged compressed one
// is damage, not a missing snapshot.
func TestSnapshotPlainAndDamaged(t *testing.T) {
	s := newStore(t)
	snap := reconcile.SnapshotRecord{Source: "corp", Taken: t0, Hash: "h", Directory: reconcile.Directory{Source: "corp",
		Users: []reconcile.User{{Key: "1", UserName: "ann", Active: true}}, Groups: []reconcile.Group{}}}
	plain, _ := json.Marshal(snap)
	put := func(v []byte) {
		t.Helper()
		if err := s.update(func(tx *bbolt.Tx) error { return tx.Bucket([]byte(bucketSnapshots)).Put([]byte("corp"), v) }); err != nil {
			t.Fatal(err)
		}
	}
	put(plain)
	if got, err := s.Snapshot("corp"); err != nil || !reflect.DeepEqual(got, snap) {
		t.Fatalf("plain JSON snapshot = %+v, %v", got, err)
	}
	enc, err := encodeSnapshot(snap)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{enc[:len(enc)/2], append(slices.Clone(enc[:12]), 0xff, 0xff)} {
		put(bad)
		if _, err := s.Snapshot("corp"); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("damaged snapshot: err = %v, want ErrCorrupt", err)
		}
	}
}

// Ownership records read back share their repeated strings: a million memberships of a few
// thousand groups hold each group id once.
func TestOwnedShareStrings(t *testing.T) {
	s := newStore(t)
	var own []reconcile.Owned
	for i := range 6 {
		own = append(own, reconcile.Owned{Kind: reconcile.OwnedMembership, Container: "group-1", ContainerName: "Eng",
			AccountID: fmt.Sprintf("acc-%d", i%3)})
	}
	if err := s.Journal(reconcile.JournalEntry{Own: own[:3]}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Owned()
	if err != nil || len(got) != 3 {
		t.Fatalf("Owned() = %d records, %v", len(got), err)
	}
	for _, o := range got[1:] {
		if unsafe.StringData(o.Container) != unsafe.StringData(got[0].Container) ||
			unsafe.StringData(string(o.Kind)) != unsafe.StringData(string(got[0].Kind)) {
			t.Fatalf("records of one group hold their own copies of its id and kind: %+v", got)
		}
	}
}

// An ownership record is stored with since when idsync has owned it, and re-adding it keeps
// that date.
func TestOwnedSinceKept(t *testing.T) {
	s := newStore(t)
	eng := reconcile.Owned{Kind: reconcile.OwnedMembership, Container: "g1", ContainerName: "eng", AccountID: "acc-1"}
	since := func() time.Time {
		t.Helper()
		var rec ownedRecord
		if err := s.view(func(tx *bbolt.Tx) error {
			return json.Unmarshal(tx.Bucket([]byte(bucketOwned)).Get([]byte(eng.OwnedKey())), &rec)
		}); err != nil {
			t.Fatal(err)
		}
		return rec.Since
	}
	if err := s.Journal(reconcile.JournalEntry{Own: []reconcile.Owned{eng}}); err != nil {
		t.Fatal(err)
	}
	if got := since(); !got.Equal(t0) {
		t.Fatalf("since = %v, want the journal's now %v", got, t0)
	}
	old := t0.Add(-48 * time.Hour)
	if err := s.update(putRecord(bucketOwned, eng.OwnedKey(), ownedRecord{Owned: eng, Since: old})); err != nil {
		t.Fatal(err)
	}
	if err := s.Journal(reconcile.JournalEntry{Own: []reconcile.Owned{eng}}); err != nil {
		t.Fatal(err)
	}
	if got := since(); !got.Equal(old) {
		t.Fatalf("since after re-adding = %v, want the first date %v", got, old)
	}
}
