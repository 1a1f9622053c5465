package state

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/idsync/idsync/reconcile"
)

var t0 = time.Date(2026, 11, 27, 4, 5, 15, 0, time.UTC)

func fixedNow() time.Time { return t0 }

func openTest(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path, Options{Now: fixedNow})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newStore(t *testing.T) *Store {
	t.Helper()
	return openTest(t, filepath.Join(t.TempDir(), "idsync.db"))
}

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(data)
}

func TestOpenCreatesPrivateFileWithEveryBucket(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "var", "lib", "idsync")
	path := filepath.Join(dir, "idsync.db")
	s := openTest(t, path)

	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != 0o600 {
		t.Errorf("file mode = %#o, want 0600", got)
	}
	dinfo, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := dinfo.Mode().Perm(); got != 0o700 {
		t.Errorf("folder mode = %#o, want 0700", got)
	}
	if w := s.Warnings(); len(w) != 0 {
		t.Errorf("Warnings() = %q, want none", w)
	}
	if s.Path() != path || s.SchemaVersion() != CurrentVersion {
		t.Errorf("Path() = %q, SchemaVersion() = %d", s.Path(), s.SchemaVersion())
	}
	err = s.view(func(tx *bbolt.Tx) error {
		for _, name := range allBuckets {
			if tx.Bucket([]byte(name)) == nil {
				t.Errorf("bucket %q missing", name)
			}
		}
		meta := tx.Bucket([]byte(bucketMeta))
		if got := string(meta.Get([]byte(metaKeyVersion))); got != "2" {
			t.Errorf("schema version = %q, want 2", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "idsync.db")
	s, err := Open(path, Options{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	link := reconcile.Link{Source: "corp", Key: "u1", UserName: "ann", AccountID: "acc-1", Created: true}
	if err := s.Journal(reconcile.JournalEntry{Links: []reconcile.Link{link}}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRun(reconcile.Run{ID: "20261127T040515Z-0001", Result: reconcile.ResultOK}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSCIM(SCIMResource{Source: "corp", Type: SCIMUser, ID: "u1", Data: []byte(`{"userName":"ann"}`)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	s = openTest(t, path)
	links, err := s.Links()
	if err != nil || len(links) != 1 || links[0].AccountID != "acc-1" {
		t.Fatalf("Links() after reopen = %+v, %v", links, err)
	}
	if _, err := s.Run("20261127T040515Z-0001"); err != nil {
		t.Fatalf("Run after reopen: %v", err)
	}
	res, err := s.SCIMResources("corp", SCIMUser)
	if err != nil || len(res) != 1 || string(res[0].Data) != `{"userName":"ann"}` {
		t.Fatalf("SCIMResources after reopen = %+v, %v", res, err)
	}
}

func TestOpenRejectsEmptyPath(t *testing.T) {
	if _, err := Open("", Options{}); err == nil {
		t.Fatal("Open(\"\") succeeded")
	}
}

func TestLockInProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "idsync.db")
	first := openTest(t, path)

	for _, ro := range []bool{false, true} {
		_, err := Open(path, Options{Timeout: 100 * time.Millisecond, ReadOnly: ro})
		if !errors.Is(err, ErrLocked) {
			t.Fatalf("second Open (read-only %v) = %v, want ErrLocked", ro, err)
		}
		msg := err.Error()
		for _, want := range []string{path, "is locked", "another idsync process holds it"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q does not contain %q", msg, want)
			}
		}
	}

	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second, err := Open(path, Options{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open after the holder closed: %v", err)
	}
	_ = second.Close()
}

func TestLockHeldByAnotherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "idsync.db")
	s := openTest(t, path)

	run := func() (string, int) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), lockHelperEnv+"="+path)
		out, err := cmd.Output()
		code := 0
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			code = exitErr.ExitCode()
		} else if err != nil {
			t.Fatalf("running the second process: %v", err)
		}
		return string(out), code
	}

	out, code := run()
	if code != 3 || !strings.HasPrefix(out, "LOCKED\n") {
		t.Fatalf("second process: exit %d, output %q; want exit 3 and LOCKED", code, out)
	}
	for _, want := range []string{path, "another idsync process holds it"} {
		if !strings.Contains(out, want) {
			t.Errorf("second process error %q does not contain %q", out, want)
		}
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if out, code := run(); code != 0 || out != "OPENED\n" {
		t.Fatalf("second process after close: exit %d, output %q", code, out)
	}
}

// validStateFile writes a state file with some records and returns its bytes.
func validStateFile(t *testing.T) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "valid.db")
	s, err := Open(path, Options{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		link := reconcile.Link{Source: "corp", Key: "u" + strings.Repeat("x", i), AccountID: "acc"}
		if err := s.Journal(reconcile.JournalEntry{Links: []reconcile.Link{link}, Audit: []reconcile.AuditRecord{{Action: "create_user", UserName: "u"}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestCorruptOrForeignFiles(t *testing.T) {
	valid := validStateFile(t)
	const page = 4096
	tests := []struct {
		name  string
		write func(t *testing.T, path string)
		want  error
	}{
		{"random bytes", func(t *testing.T, path string) {
			r := rand.New(rand.NewPCG(1, 2))
			data := make([]byte, 64<<10)
			for i := range data {
				data[i] = byte(r.Uint32())
			}
			writeFile(t, path, data)
		}, ErrNotStateFile},
		{"zero-filled", func(t *testing.T, path string) { writeFile(t, path, make([]byte, 2*page)) }, ErrNotStateFile},
		{"a few bytes", func(t *testing.T, path string) { writeFile(t, path, []byte("x\n")) }, ErrNotStateFile},
		{"JSON", func(t *testing.T, path string) {
			writeFile(t, path, []byte(`{"links": [{"source": "corp", "key": "u1"}], "version": 1}`))
		}, ErrNotStateFile},
		{"bbolt file of another program", func(t *testing.T, path string) {
			db, err := bbolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = db.Update(func(tx *bbolt.Tx) error {
				for _, name := range []string{"widgets", "links", "gadgets"} {
					b, err := tx.CreateBucket([]byte(name))
					if err != nil {
						return err
					}
					if err := b.Put([]byte("k"), []byte("v")); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			_ = db.Close()
		}, ErrNotStateFile},
		{"bbolt file with a meta bucket of another program", func(t *testing.T, path string) {
			db, err := bbolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = db.Update(func(tx *bbolt.Tx) error {
				b, err := tx.CreateBucket([]byte("meta"))
				if err != nil {
					return err
				}
				return b.Put([]byte(metaKeyVersion), []byte("3"))
			})
			if err != nil {
				t.Fatal(err)
			}
			_ = db.Close()
		}, ErrNotStateFile},
		{"both meta pages damaged", func(t *testing.T, path string) {
			data := bytes.Clone(valid)
			for _, off := range []int{0, page} {
				copy(data[off+40:off+64], bytes.Repeat([]byte{0xAB}, 24)) // past the magic: checksum fails
			}
			writeFile(t, path, data)
		}, ErrCorrupt},
		{"every data page overwritten", func(t *testing.T, path string) {
			data := bytes.Clone(valid)
			r := rand.New(rand.NewPCG(3, 4))
			for i := 2 * page; i < len(data); i++ {
				data[i] = byte(r.Uint32())
			}
			writeFile(t, path, data)
		}, ErrCorrupt},
		{"truncated", func(t *testing.T, path string) {
			writeFile(t, path, valid[:len(valid)/2])
		}, ErrCorrupt},
		{"schema version garbage", func(t *testing.T, path string) {
			writeFile(t, path, valid)
			setMeta(t, path, metaKeyVersion, "one")
		}, ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "idsync.db")
			tt.write(t, path)
			before := fileHash(t, path)
			s, err := Open(path, Options{Timeout: time.Second})
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded")
			}
			t.Logf("Open: %v", err)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open = %v, want an error wrapping %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
			if fileHash(t, path) != before {
				t.Error("the refused file was modified")
			}
			// The failed open must release the file.
			db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 100 * time.Millisecond, ReadOnly: true})
			if errors.Is(err, berrors.ErrTimeout) {
				t.Fatal("the refused file is still locked")
			}
			if db != nil {
				_ = db.Close()
			}
		})
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func setMeta(t *testing.T, path, key, value string) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	err = db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(bucketMeta)).Put([]byte(key), []byte(value))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestEmptyFileBecomesAStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "idsync.db")
	writeFile(t, path, nil)
	if _, err := Open(path, Options{ReadOnly: true}); err == nil {
		t.Fatal("read-only Open of an empty file succeeded")
	}
	s := openTest(t, path)
	if s.SchemaVersion() != CurrentVersion {
		t.Fatalf("SchemaVersion() = %d", s.SchemaVersion())
	}
}

func TestSchemaNewerThanCodeIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "idsync.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	setMeta(t, path, metaKeyVersion, "99")
	before := fileHash(t, path)
	_, err = Open(path, Options{})
	if !errors.Is(err, ErrSchemaTooNew) || !strings.Contains(err.Error(), "99") {
		t.Fatalf("Open = %v, want ErrSchemaTooNew naming version 99", err)
	}
	if fileHash(t, path) != before {
		t.Error("file modified")
	}
}

func TestWorldReadableFileWarns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "idsync.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	s, err = Open(path, Options{Logger: zerolog.New(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	w := s.Warnings()
	if len(w) != 1 || !strings.Contains(w[0], path) || !strings.Contains(w[0], "0644") {
		t.Fatalf("Warnings() = %q, want one naming the file and mode 0644", w)
	}
	if !strings.Contains(logs.String(), `"level":"warn"`) || !strings.Contains(logs.String(), path) || !strings.Contains(logs.String(), "0644") {
		t.Fatalf("log %q lacks a warning naming the file and mode", logs.String())
	}
}

func TestReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "idsync.db")
	if _, err := Open(path, Options{ReadOnly: true}); err == nil {
		t.Fatal("read-only Open of a missing file succeeded")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("read-only Open created the file")
	}
	s, err := Open(path, Options{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutBudget(Budget{Target: "jira", Limit: 100}); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()

	r1, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r1.Close() }()
	r2, err := Open(path, Options{ReadOnly: true, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("two read-only opens should share the file: %v", err)
	}
	defer func() { _ = r2.Close() }()
	if b, err := r2.Budget("jira"); err != nil || b.Limit != 100 {
		t.Fatalf("Budget = %+v, %v", b, err)
	}
	if err := r1.PutBudget(Budget{Target: "jira"}); err == nil {
		t.Fatal("write on a read-only store succeeded")
	}
	if err := r1.PutRun(reconcile.Run{ID: "x"}); err == nil {
		t.Fatal("PutRun on a read-only store succeeded")
	}
}

// TestMigrateFromVersion0 builds a file as idsync wrote it before the schema was versioned:
// no meta bucket, only some buckets, SCIM resources flat under "source/type/id" and audit
// records keyed by their RFC 3339 time.
func TestMigrateFromVersion0(t *testing.T) {
	path := filepath.Join(t.TempDir(), "idsync.db")
	link := reconcile.Link{Source: "corp", Key: "u1", UserName: "ann", AccountID: "acc-1", LinkedAt: t0}
	audit := []reconcile.AuditRecord{
		{Time: t0.Add(2 * time.Minute), Action: "add_member", UserName: "Ann", Result: "ok"},
		{Time: t0, Action: "create_user", UserName: "ann", AccountID: "acc-1", Result: "ok"},
		{Time: t0.Add(time.Minute), Action: "create_user", UserName: "bob", Result: "failed"},
	}
	buildV0(t, path, link, audit, false)

	var logs bytes.Buffer
	s, err := Open(path, Options{Logger: zerolog.New(&logs), Now: fixedNow})
	if err != nil {
		t.Fatalf("Open of a version-0 file: %v", err)
	}
	defer func() { _ = s.Close() }()
	if s.SchemaVersion() != CurrentVersion {
		t.Fatalf("SchemaVersion() = %d", s.SchemaVersion())
	}
	if !strings.Contains(logs.String(), "migrat") {
		t.Errorf("no migration logged: %s", logs.String())
	}
	if _, err := os.Stat(path + ".schema-v0.bak"); err != nil {
		t.Errorf("no copy of the file before migrating: %v", err)
	}

	links, err := s.Links()
	if err != nil || len(links) != 1 || !reflect.DeepEqual(links[0], link) {
		t.Fatalf("Links() = %+v, %v; want the version-0 link", links, err)
	}
	users, err := s.SCIMResources("corp", SCIMUser)
	if err != nil || len(users) != 1 || users[0].ID != "u1" || string(users[0].Data) != `{"userName":"ann"}` {
		t.Fatalf("SCIMResources(corp, User) = %+v, %v", users, err)
	}
	groups, err := s.SCIMResources("other", SCIMGroup)
	if err != nil || len(groups) != 1 || groups[0].ID != "g/1" {
		t.Fatalf("SCIMResources(other, Group) = %+v, %v", groups, err)
	}
	if res, _ := s.SCIMResources("corp", SCIMGroup); len(res) != 0 {
		t.Fatalf("SCIMResources(corp, Group) = %+v, want none", res)
	}
	all, err := s.Audit(time.Time{}, "")
	if err != nil || len(all) != 3 || all[0].Action != "create_user" || all[2].Action != "add_member" {
		t.Fatalf("Audit() = %+v, %v; want the three records in time order", all, err)
	}
	ann, err := s.Audit(time.Time{}, "ANN")
	if err != nil || len(ann) != 2 {
		t.Fatalf("Audit(ann) = %+v, %v; want 2 (the index must be built)", ann, err)
	}
	err = s.view(func(tx *bbolt.Tx) error {
		for _, name := range allBuckets {
			if tx.Bucket([]byte(name)) == nil {
				t.Errorf("bucket %q missing after migration", name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// New records append after the migrated ones.
	if err := s.Journal(reconcile.JournalEntry{Audit: []reconcile.AuditRecord{{Action: "remove_member", UserName: "ann"}}}); err != nil {
		t.Fatal(err)
	}
	if ann, _ := s.Audit(time.Time{}, "ann"); len(ann) != 3 {
		t.Fatalf("Audit(ann) after a new record = %d records, want 3", len(ann))
	}
}

// A version-1 file's plain JSON snapshots are compressed by the migration to version 2, after
// a copy of the file is set aside.
func TestMigrateFromVersion1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "idsync.db")
	snap := reconcile.SnapshotRecord{Source: "corp", Taken: t0, Hash: "h", Directory: reconcile.Directory{Source: "corp",
		Users: []reconcile.User{{Key: "1", UserName: "ann", Active: true, Groups: []string{"Eng"}}}, Groups: []reconcile.Group{{Key: "g", Name: "Eng"}}}}
	s := openTest(t, path)
	plain, _ := json.Marshal(snap)
	if err := s.update(func(tx *bbolt.Tx) error {
		if err := tx.Bucket([]byte(bucketSnapshots)).Put([]byte("corp"), plain); err != nil {
			return err
		}
		return tx.Bucket([]byte(bucketMeta)).Put([]byte(metaKeyVersion), []byte("1"))
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, path)
	if s.SchemaVersion() != 2 {
		t.Fatalf("SchemaVersion() = %d, want 2", s.SchemaVersion())
	}
	if _, err := os.Stat(path + ".schema-v1.bak"); err != nil {
		t.Errorf("no copy of the file before migrating: %v", err)
	}
	var stored []byte
	if err := s.view(func(tx *bbolt.Tx) error {
		stored = bytes.Clone(tx.Bucket([]byte(bucketSnapshots)).Get([]byte("corp")))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(stored, gzipMagic) {
		t.Fatalf("the migrated snapshot is not compressed: %q", stored)
	}
	if got, err := s.Snapshot("corp"); err != nil || !reflect.DeepEqual(got, snap) {
		t.Fatalf("Snapshot(corp) after migrating = %+v, %v", got, err)
	}
}

func TestFailedMigrationLeavesFileUntouched(t *testing.T) {
	path := filepath.Join(t.TempDir(), "idsync.db")
	buildV0(t, path, reconcile.Link{Source: "corp", Key: "u1", AccountID: "acc-1"}, nil, true)
	before := fileHash(t, path)
	_, err := Open(path, Options{})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "version 0 to 1") {
		t.Fatalf("Open = %v, want a migration error wrapping ErrCorrupt", err)
	}
	if fileHash(t, path) != before {
		t.Fatal("a failed migration modified the file")
	}
}

func buildV0(t *testing.T, path string, link reconcile.Link, audit []reconcile.AuditRecord, badSCIM bool) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	put := func(b *bbolt.Bucket, k string, v any) error {
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		return b.Put([]byte(k), data)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		links, err := tx.CreateBucket([]byte("links"))
		if err != nil {
			return err
		}
		if err := put(links, link.LinkKey(), link); err != nil {
			return err
		}
		scim, err := tx.CreateBucket([]byte("scim"))
		if err != nil {
			return err
		}
		if err := put(scim, "corp/User/u1", map[string]any{"source": "corp", "type": "User", "id": "u1", "resource": json.RawMessage(`{"userName":"ann"}`)}); err != nil {
			return err
		}
		if err := put(scim, "other/Group/g/1", map[string]any{"source": "other", "type": "Group", "id": "g/1", "resource": json.RawMessage(`{"displayName":"Eng"}`)}); err != nil {
			return err
		}
		if badSCIM {
			if err := scim.Put([]byte("corp/User/u2"), []byte(`{"source": "corp", "type": `)); err != nil {
				return err
			}
		}
		ab, err := tx.CreateBucket([]byte("audit"))
		if err != nil {
			return err
		}
		for _, r := range audit {
			if err := put(ab, r.Time.Format(time.RFC3339Nano), r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestTimeKeyOrder(t *testing.T) {
	times := []time.Time{
		{},
		time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(-1, 999_999_999),
		time.Unix(0, 0),
		time.Unix(0, 1),
		t0,
		time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for i := 1; i < len(times); i++ {
		if bytes.Compare(timeKey(times[i-1]), timeKey(times[i])) >= 0 {
			t.Errorf("timeKey(%v) >= timeKey(%v)", times[i-1], times[i])
		}
	}
	if got := binary.BigEndian.Uint64(seqKey(258)); got != 258 {
		t.Errorf("seqKey round trip = %d", got)
	}
}

// FuzzOpen: whatever the file holds, Open and the first reads return (an error or data),
// never panic, and never leave the file locked.
func FuzzOpen(f *testing.F) {
	dir := f.TempDir()
	path := filepath.Join(dir, "seed.db")
	s, err := Open(path, Options{})
	if err != nil {
		f.Fatal(err)
	}
	_ = s.PutSCIM(SCIMResource{Source: "corp", Type: SCIMUser, ID: "u1", Data: []byte(`{}`)})
	_ = s.Journal(reconcile.JournalEntry{Audit: []reconcile.AuditRecord{{Action: "x", UserName: "ann"}}})
	_ = s.Close()
	valid, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(valid[:3*4096])
	f.Add([]byte(`{"json": true}`))
	f.Add(make([]byte, 4096))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return // an empty file is a new store
		}
		path := filepath.Join(t.TempDir(), "idsync.db")
		writeFile(t, path, data)
		s, err := Open(path, Options{Timeout: 50 * time.Millisecond})
		if err != nil {
			if errors.Is(err, ErrLocked) {
				t.Fatalf("Open = %v", err)
			}
			return
		}
		_, _ = s.Links()
		_, _ = s.Audit(time.Time{}, "ann")
		_, _ = s.SCIMResources("corp", SCIMUser)
		_ = s.Dump(io.Discard)
		_ = s.Close()
	})
}

func TestPanicInTransactionBecomesErrCorrupt(t *testing.T) {
	s := newStore(t)
	boom := func(*bbolt.Tx) error { panic("invalid page type: 7") }
	for name, run := range map[string]func(func(*bbolt.Tx) error) error{"view": s.view, "update": s.update, "batch": s.batch} {
		if err := run(boom); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "invalid page type") {
			t.Errorf("%s: %v, want ErrCorrupt with the cause", name, err)
		}
	}
	// The store still works afterwards: the transactions were rolled back.
	if err := s.PutBudget(Budget{Target: "jira"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Budget("jira"); err != nil {
		t.Fatal(err)
	}
}
