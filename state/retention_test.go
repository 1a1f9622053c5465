package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/idsync/idsync/reconcile"
)

// history writes a run every hour for days days before now, each with an audit record about
// one of three users, and returns how many of each.
func history(t testing.TB, s *Store, now time.Time, days int) int {
	t.Helper()
	// One fsync per run record would make the history cost seconds; durability is not what
	// these tests are about.
	s.db.NoSync = true
	defer func() { s.db.NoSync = false }()
	n := 0
	var entry reconcile.JournalEntry
	for at := now.Add(-time.Duration(days) * 24 * time.Hour); at.Before(now); at = at.Add(time.Hour) {
		id := NewRunID(at)
		if err := s.PutRun(reconcile.Run{ID: id, Trigger: "schedule", Started: at, Finished: at, Result: "ok"}); err != nil {
			t.Fatal(err)
		}
		entry.Audit = append(entry.Audit, reconcile.AuditRecord{Time: at, RunID: id, Action: "update_user",
			UserName: fmt.Sprintf("user%d", n%3), AccountID: fmt.Sprintf("acc-%d", n%3), Result: "ok"})
		n++
	}
	if err := s.Journal(entry); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRetentionDeletesByAge(t *testing.T) {
	s := newStore(t)
	now := t0
	total := history(t, s, now, 10) // 240 runs and audit records

	// Without a retention nothing goes, and the Runner's count still prunes.
	if p, err := s.ApplyRetention(now); err != nil || p != (Pruned{}) {
		t.Fatalf("no retention: %+v %v", p, err)
	}
	s.SetRetention(Retention{Runs: 2 * 24 * time.Hour, Audit: 5 * 24 * time.Hour})
	if err := s.PruneRuns(5); err != nil {
		t.Fatal(err)
	}
	if runs, _ := s.Runs(0); len(runs) != total {
		t.Fatalf("PruneRuns pruned %d runs although a retention is set", total-len(runs))
	}

	p, err := s.ApplyRetention(now)
	if err != nil {
		t.Fatal(err)
	}
	if p.Runs != total-48 || p.Audit != total-120 || p.More {
		t.Errorf("pruned %+v, want %d runs and %d audit records", p, total-48, total-120)
	}
	runs, _ := s.Runs(0)
	if len(runs) != 48 || runs[len(runs)-1].Started.Before(now.Add(-48*time.Hour)) {
		t.Errorf("%d runs left, oldest %s", len(runs), runs[len(runs)-1].Started)
	}
	recs, err := s.Audit(time.Time{}, "")
	if err != nil || len(recs) != 120 || recs[0].Time.Before(now.Add(-120*time.Hour)) {
		t.Fatalf("%d audit records left (%v)", len(recs), err)
	}
	// The user index lost its entries too: a dangling one would read as damage.
	for _, u := range []string{"user0", "ACC-1", "user2"} {
		if recs, err := s.Audit(time.Time{}, u); err != nil || len(recs) != 40 {
			t.Errorf("audit of %s: %d records, %v", u, len(recs), err)
		}
	}
	if p, err := s.ApplyRetention(now); err != nil || p != (Pruned{}) {
		t.Errorf("a second call pruned %+v, %v", p, err)
	}

	// A long outage: every run is older than the retention, the newest MinKeptRuns stay.
	if p, err := s.ApplyRetention(now.Add(365 * 24 * time.Hour)); err != nil || p.Runs != 48-MinKeptRuns || p.Audit != 120 {
		t.Errorf("after a year: %+v %v", p, err)
	}
	if runs, _ := s.Runs(0); len(runs) != MinKeptRuns {
		t.Errorf("%d runs kept, want %d", len(runs), MinKeptRuns)
	}
	// Zero keeps everything of its kind.
	s.SetRetention(Retention{})
	if p, err := s.ApplyRetention(now.Add(1000 * 24 * time.Hour)); err != nil || p != (Pruned{}) {
		t.Errorf("zero retention pruned %+v %v", p, err)
	}
}

func TestRetentionIsBoundedPerCall(t *testing.T) {
	old := maxPruned
	maxPruned = 50
	t.Cleanup(func() { maxPruned = old })
	s := newStore(t)
	total := history(t, s, t0, 5) // 120
	s.SetRetention(Retention{Runs: time.Hour, Audit: time.Hour})
	var runs, audit, calls int
	for more := true; more; calls++ {
		p, err := s.ApplyRetention(t0)
		if err != nil || p.Runs+p.Audit > 50 {
			t.Fatalf("call %d: %+v %v", calls, p, err)
		}
		runs, audit, more = runs+p.Runs, audit+p.Audit, p.More
	}
	if runs != total-MinKeptRuns || audit != total-1 || calls < 5 {
		t.Errorf("%d calls pruned %d runs and %d audit records of %d", calls, runs, audit, total)
	}
}

func TestCompact(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "idsync.db")
	s := openTest(t, path)
	history(t, s, t0, 20)
	s.SetRetention(Retention{Runs: 24 * time.Hour, Audit: 24 * time.Hour})
	if _, err := s.ApplyRetention(t0); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()

	out := filepath.Join(dir, "compact.db")
	c, err := WriteCompactFile(ro, out, false)
	if err != nil {
		t.Fatal(err)
	}
	if c.Size >= c.SourceSize || c.Records["runs"] != 24 || c.Records["audit"] != 24 || c.SchemaVersion != ro.SchemaVersion() {
		t.Errorf("compacted %+v", c)
	}
	if info, err := os.Stat(out); err != nil || info.Mode().Perm() != 0o600 || info.Size() != c.Size {
		t.Errorf("copy: %v %v", info, err)
	}
	copyStore, err := Open(out, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if recs, err := copyStore.Audit(time.Time{}, "user1"); err != nil || len(recs) != 8 {
		t.Errorf("the copy's audit of user1: %d %v", len(recs), err)
	}
	_ = copyStore.Close()

	// An existing file is refused without --force and left as it was.
	if err := os.WriteFile(out, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteCompactFile(ro, out, false); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("existing output: %v", err)
	}
	if b, _ := os.ReadFile(out); string(b) != "keep me" {
		t.Error("the refused output changed")
	}
	if _, err := WriteCompactFile(ro, out, true); err != nil {
		t.Errorf("--force: %v", err)
	}
	// The state file itself is refused even with force, and nothing is left behind.
	if _, err := WriteCompactFile(ro, path, true); err == nil || !strings.Contains(err.Error(), "live state file") {
		t.Errorf("compacting over the state file: %v", err)
	}
	if _, err := WriteCompactFile(ro, filepath.Join(dir, "no", "such", "x.db"), false); err == nil {
		t.Error("a missing folder was accepted")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
	if _, err := WriteCompactFile(ro, "", false); err == nil || errors.Is(err, ErrCorrupt) {
		t.Errorf("no output: %v", err)
	}
}
