package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/idsync/idsync/reconcile"
)

// fillStore writes one record of most kinds.
func fillStore(t *testing.T, s *Store) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Journal(reconcile.JournalEntry{
		Links: []reconcile.Link{{Source: "corp", Key: "u1", UserName: "ann", AccountID: "acc-1"}},
		Own:   []reconcile.Owned{{Kind: reconcile.OwnedMembership, Container: "g1", AccountID: "acc-1"}},
		Audit: []reconcile.AuditRecord{{Action: "create_user", UserName: "ann", Result: "ok"}},
	}))
	must(s.PutRun(reconcile.Run{ID: "20261127T040515Z-0001", Result: reconcile.ResultOK}))
	must(s.PutHeldPlan(reconcile.HeldPlan{RunID: "20261127T040515Z-0001", Deactivations: 30}))
	must(s.PutBudget(Budget{Target: "jira", Limit: 100, Remaining: 7}))
	must(s.PutSCIM(SCIMResource{Source: "corp", Type: SCIMUser, ID: "u1", Data: []byte(`{"userName":"ann"}`)}))
}

// dumpDoc is a store's Dump without the file's path, for comparing two files.
func dumpDoc(t *testing.T, s *Store) map[string]any {
	t.Helper()
	var buf bytes.Buffer
	if err := s.Dump(&buf); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	delete(doc, "file")
	return doc
}

func openReadOnly(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("the backup does not open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// onlyFiles fails when dir holds anything but names (a temporary file left behind).
func onlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if !reflect.DeepEqual(got, names) {
		t.Errorf("folder holds %q, want %q", got, names)
	}
}

func TestWriteBackupFileCopiesEveryRecord(t *testing.T) {
	s := newStore(t)
	fillStore(t, s)
	dir := t.TempDir()
	path := filepath.Join(dir, "backup.db")

	b, err := WriteBackupFile(s, path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if b.Path != path || b.Size != info.Size() || b.SchemaVersion != CurrentVersion {
		t.Errorf("BackupFile %+v; file has %d bytes, want schema %d", b, info.Size(), CurrentVersion)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("backup mode %#o, want 0600", mode)
	}
	onlyFiles(t, dir, "backup.db")

	c := openReadOnly(t, path)
	if got, want := dumpDoc(t, c), dumpDoc(t, s); !reflect.DeepEqual(got, want) {
		t.Errorf("the backup holds other records:\n got %v\nwant %v", got, want)
	}
	if run, err := c.Run("20261127T040515Z-0001"); err != nil || run.Result != reconcile.ResultOK {
		t.Errorf("run in the backup: %+v, %v", run, err)
	}

	// A second backup to the same file replaces the first.
	if err := s.PutRun(reconcile.Run{ID: "20261127T040516Z-0002", Result: reconcile.ResultOK}); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	if _, err := WriteBackupFile(s, path); err != nil {
		t.Fatalf("replacing a backup: %v", err)
	}
	if _, err := openReadOnly(t, path).Run("20261127T040516Z-0002"); err != nil {
		t.Errorf("the replaced backup lacks the newer run: %v", err)
	}
	onlyFiles(t, dir, "backup.db")
}

func TestBackupIsAPointInTimeCopyWhileWriting(t *testing.T) {
	s := newStore(t)
	const n = 60
	id := func(i int) string { return fmt.Sprintf("run-%04d", i) }
	var wg sync.WaitGroup
	wg.Add(1)
	started := make(chan struct{})
	go func() {
		defer wg.Done()
		for i := range n {
			if err := s.PutRun(reconcile.Run{ID: id(i), Result: reconcile.ResultOK}); err != nil {
				t.Error(err)
				return
			}
			if i == n/3 {
				close(started)
			}
		}
	}()
	<-started
	path := filepath.Join(t.TempDir(), "backup.db")
	if _, err := WriteBackupFile(s, path); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	// The copy holds the runs committed before it began, in order, and no hole.
	c := openReadOnly(t, path)
	held := 0
	for i := range n {
		_, err := c.Run(id(i))
		switch {
		case err == nil && held == i:
			held++
		case err == nil:
			t.Fatalf("the backup holds %s but not %s", id(i), id(held))
		case !errors.Is(err, reconcile.ErrNotFound):
			t.Fatal(err)
		}
	}
	t.Logf("the backup holds %d of %d runs", held, n)
	if held <= n/3 {
		t.Errorf("the backup holds %d runs, want more than %d", held, n/3)
	}
}

func TestWriteBackupFileRefusesTheLiveFile(t *testing.T) {
	s := newStore(t)
	fillStore(t, s)
	dir := filepath.Dir(s.Path())
	before := fileHash(t, s.Path())
	if err := os.Link(s.Path(), filepath.Join(dir, "hardlink.db")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(s.Path(), filepath.Join(dir, "symlink.db")); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{
		s.Path(),
		filepath.Join(dir, ".", "sub", "..", "idsync.db"),
		filepath.Join(dir, "hardlink.db"),
		filepath.Join(dir, "symlink.db"),
	} {
		_, err := WriteBackupFile(s, path)
		if err == nil || !strings.Contains(err.Error(), "live state file") {
			t.Errorf("backup to %s: %v, want a refusal naming the live state file", path, err)
		}
	}
	if fileHash(t, s.Path()) != before {
		t.Error("the live file changed")
	}
	onlyFiles(t, dir, "hardlink.db", "idsync.db", "symlink.db")
}

func TestWriteBackupFileRefusesAStateFileInUse(t *testing.T) {
	s := newStore(t)
	other := newStore(t) // held open, as a running daemon holds its file
	_, err := WriteBackupFile(s, other.Path())
	if err == nil || !strings.Contains(err.Error(), "holds open") {
		t.Errorf("backup over a state file in use: %v, want a refusal", err)
	}
}

func TestWriteBackupFileNeedsAnExistingFolder(t *testing.T) {
	s := newStore(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "missing", "backup.db")
	_, err := WriteBackupFile(s, path)
	if err == nil || !strings.Contains(err.Error(), "folder "+filepath.Join(dir, "missing")+" does not exist") {
		t.Errorf("backup into a missing folder: %v", err)
	}
	onlyFiles(t, dir)

	_, err = WriteBackupFile(s, dir)
	if err == nil || !strings.Contains(err.Error(), "it is a folder") {
		t.Errorf("backup to a folder: %v", err)
	}
}

func TestWriteBackupFromRemovesACopyThatDoesNotOpen(t *testing.T) {
	s := newStore(t)
	fillStore(t, s)
	dir := t.TempDir()
	path := filepath.Join(dir, "backup.db")
	if _, err := WriteBackupFile(s, path); err != nil {
		t.Fatal(err)
	}
	good := fileHash(t, path)

	for name, write := range map[string]func(io.Writer) (int64, error){
		"not bbolt": func(w io.Writer) (int64, error) {
			n, err := io.WriteString(w, strings.Repeat("not a state file\n", 1000))
			return int64(n), err
		},
		"truncated": func(w io.Writer) (int64, error) {
			var buf bytes.Buffer
			if _, err := s.Backup(&buf); err != nil {
				return 0, err
			}
			n, err := w.Write(buf.Bytes()[:buf.Len()/2])
			return int64(n), err
		},
		"write fails": func(w io.Writer) (int64, error) {
			_, _ = io.WriteString(w, "partial")
			return 7, errors.New("connection reset")
		},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := WriteBackupFrom(path, s.Path(), write); err == nil {
				t.Fatal("a bad copy was accepted")
			}
			if fileHash(t, path) != good {
				t.Error("a bad copy replaced the previous backup")
			}
			onlyFiles(t, dir, "backup.db")
		})
	}
}
