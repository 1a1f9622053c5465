// Package state is idsync's durable memory: one bbolt file holding links (source key <->
// Jira accountId), ownership records, per-source snapshots, SCIM resources pushed by IdPs, run
// records, the append-only audit log (pruned by age when a retention is set), the held plan of the circuit breaker and the last known
// API budget of each target.
//
// The file has mode 0600 and is locked by the process that opens it: a second idsync (or a
// second Open in the same process) fails within Options.Timeout with an error wrapping
// ErrLocked. A file that is not an idsync state file, or is damaged, gives an error wrapping
// ErrNotStateFile or ErrCorrupt and is never modified. Every bucket is created at open, and
// files written by an older schema are migrated in one transaction (after a copy of the file
// is written beside it).
//
// Every method of *Store is safe for concurrent use. Records are JSON so `idsync state
// inspect` and the bbolt CLI can read them; bytes never leave a transaction uncopied.
package state

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/idsync/idsync/internal/logging"
	"github.com/idsync/idsync/reconcile"
)

// Errors callers can test with errors.Is.
var (
	// ErrLocked: another process (or another Store in this process) holds the file.
	ErrLocked = errors.New("state file is locked")
	// ErrNotStateFile: the file is something else (not bbolt, or bbolt written by another
	// program).
	ErrNotStateFile = errors.New("not an idsync state file")
	// ErrCorrupt: the file is an idsync state file (or a bbolt file) that cannot be read.
	ErrCorrupt = errors.New("state file is corrupt")
	// ErrSchemaTooNew: the file was written by a newer idsync; this one will not downgrade it.
	ErrSchemaTooNew = errors.New("state file schema is newer than this idsync")
)

// Bucket names. Changing one is a schema change and needs a migration.
const (
	bucketMeta        = "meta"
	bucketLinks       = "links"
	bucketOwned       = "owned"
	bucketSnapshots   = "snapshots"
	bucketSCIM        = "scim" // one nested bucket per source
	bucketRuns        = "runs"
	bucketAudit       = "audit"
	bucketAuditByTime = "audit_by_time" // index: time + seq -> nil
	bucketAuditByUser = "audit_by_user" // index: lower(user) 0x00 seq -> nil
	bucketHeld        = "held"
	bucketStanding    = "standing" // one key: the approvals that stand (reconcile.StandingApproval)
	bucketBudget      = "budget"
)

// allBuckets are the top-level buckets of the current schema, created at open.
var allBuckets = []string{
	bucketMeta, bucketLinks, bucketOwned, bucketSnapshots, bucketSCIM, bucketRuns,
	bucketAudit, bucketAuditByTime, bucketAuditByUser, bucketHeld, bucketBudget,
	bucketStanding,
}

// DefaultTimeout is how long Open waits for the file lock.
const DefaultTimeout = 2 * time.Second

// batchDelay bounds how long a batched write (Journal, PutSCIM, PutBudget) waits for
// companions before it commits. Concurrent writers resubmit within microseconds of the last
// commit, so 1ms still gathers all of them into one fsync, while bbolt's default of 10ms
// would cap 16 SCIM writers below 1,000 puts/s (measured: ~850/s vs ~2,500/s at 1ms).
const batchDelay = time.Millisecond

// Options tune Open.
type Options struct {
	// Timeout bounds the wait for the file lock (default 2s).
	Timeout time.Duration
	// ReadOnly opens the file with a shared lock and refuses writes (for `state inspect`).
	// A read-only open does not create the file, its buckets, or migrate it.
	ReadOnly bool
	// Logger receives warnings (world-readable file) and migration notes.
	Logger zerolog.Logger
	// Now stamps records whose time fields are zero (default time.Now).
	Now func() time.Time
}

// Store is the bbolt state file. It implements runner.Store.
type Store struct {
	db       *bbolt.DB
	path     string
	readOnly bool
	log      zerolog.Logger
	now      func() time.Time
	warnings []string
	// version is the schema version of the file as opened (current after migrations).
	version int
	// retention is what ApplyRetention prunes (nil: nothing; see SetRetention).
	retention atomic.Pointer[Retention]

	// released is when a writer last called releaseMap (unix nanoseconds).
	released atomic.Int64

	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating it unless opts.ReadOnly) the state file at path, locks it, creates
// missing buckets and migrates an older schema.
func Open(path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("opening state file: no path given (state.path)")
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Store{
		path:     path,
		readOnly: opts.ReadOnly,
		log:      opts.Logger.With().Str(logging.FieldComponent, "state").Logger(),
		now:      opts.Now,
	}

	info, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && opts.ReadOnly:
		return nil, fmt.Errorf("opening state file %s read-only: it does not exist: %w", path, err)
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("creating the folder of state file %s: %w", path, err)
		}
	case err != nil:
		return nil, fmt.Errorf("opening state file %s: %w", path, err)
	case info.IsDir():
		return nil, fmt.Errorf("opening state file %s: it is a directory", path)
	case opts.ReadOnly && info.Size() == 0:
		return nil, fmt.Errorf("state file %s is empty: it holds no idsync data yet", path)
	default:
		if mode := info.Mode().Perm(); mode&0o044 != 0 {
			w := fmt.Sprintf("state file %s has mode %#o: other users can read it; run chmod 600 %s", path, mode, path)
			s.warnings = append(s.warnings, w)
			s.log.Warn().Str("file", path).Str("mode", fmt.Sprintf("%#o", mode)).Msg(w)
		}
	}

	if info != nil && info.Size() > 0 {
		switch err := verifyPath(path, opts.Timeout); {
		case errors.Is(err, errVerifyLocked):
			return nil, lockedError(path)
		case err != nil:
			return nil, fmt.Errorf("state file %s is damaged: %v: %w", path, err, ErrCorrupt)
		}
	}
	db, err := openBolt(path, opts)
	if err != nil {
		return nil, err
	}
	s.db = db
	s.db.MaxBatchDelay = batchDelay
	if err := s.initSchema(); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// openBolt opens the bbolt file, turning bbolt's errors and panics into ours. The file
// handle is captured so that a panic inside bbolt.Open does not leave it open (and locked).
func openBolt(path string, opts Options) (db *bbolt.DB, err error) {
	var file *os.File
	bopts := &bbolt.Options{
		Timeout:      opts.Timeout,
		ReadOnly:     opts.ReadOnly,
		FreelistType: bbolt.FreelistMapType,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, perm)
			file = f
			return f, err
		},
	}
	// A truncated file can make bbolt read past the end of its memory map while opening.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if file != nil {
				unlockFile(file)
				_ = file.Close()
			}
			db, err = nil, fmt.Errorf("state file %s cannot be read (bbolt: %v): %w", path, r, ErrCorrupt)
		}
	}()
	db, err = bbolt.Open(path, 0o600, bopts)
	if err == nil {
		return db, nil
	}
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, lockedError(path)
	case errors.Is(err, berrors.ErrInvalid):
		if hasBoltMagic(path) {
			return nil, fmt.Errorf("state file %s is a bbolt file whose header pages are damaged: %w", path, ErrCorrupt)
		}
		return nil, fmt.Errorf("state file %s is not a bbolt database (empty, zeroed, or another kind of file): %w", path, ErrNotStateFile)
	case errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch):
		return nil, fmt.Errorf("state file %s: bbolt header: %v: %w", path, err, ErrCorrupt)
	}
	// Anything else is the system's answer (permissions, a read-only or full disk, mmap
	// limits), not a verdict on the file's content.
	return nil, fmt.Errorf("opening state file %s: %w", path, err)
}

func lockedError(path string) error {
	return fmt.Errorf("state file %s is locked: another idsync process holds it (the daemon? use the admin API or stop it): %w", path, ErrLocked)
}

// boltMagic starts every bbolt meta page, after the 16-byte page header.
const boltMagic = 0xED0CDAED

// hasBoltMagic reports whether the file carries a bbolt meta page at any page size bbolt
// supports, to tell a damaged state file from a foreign one.
func hasBoltMagic(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer func() { _ = f.Close() }()
	var buf [4]byte
	for _, off := range []int64{0, 1024, 2048, 4096, 8192, 16384, 32768, 65536} {
		if _, err := f.ReadAt(buf[:], off+16); err != nil {
			return false
		}
		if binary.NativeEndian.Uint32(buf[:]) == boltMagic {
			return true
		}
	}
	return false
}

// Path is the absolute path of the file.
func (s *Store) Path() string { return s.path }

// Warnings are problems found at open that do not stop idsync (a world-readable file), for
// the CLI to print.
func (s *Store) Warnings() []string { return append([]string(nil), s.warnings...) }

// SchemaVersion is the schema version of the open file.
func (s *Store) SchemaVersion() int { return s.version }

// Close waits for transactions in flight and releases the file. Calling it again is a no-op.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("closing state file %s: %w", s.path, err)
		}
	})
	return s.closeErr
}

// view, update and batch run fn in a transaction and turn a bbolt panic (which a damaged
// page can cause) into an error wrapping ErrCorrupt. The transaction is rolled back first.
// SetPanicOnFault turns a fault on the memory map (a page past the end of a file that
// shrank under us) into a recoverable panic instead of a crash of the whole daemon.
func (s *Store) view(fn func(*bbolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer s.recoverCorrupt(&err)
	return s.db.View(fn)
}

func (s *Store) update(fn func(*bbolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer s.recoverCorrupt(&err)
	if s.readOnly {
		return fmt.Errorf("state file %s is open read-only", s.path)
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		s.releaseWritten(tx)
		return fn(tx)
	})
}

// batch is update for writers that may come in bursts: concurrent callers share one
// transaction and one fsync. fn may run more than once and must only touch tx.
func (s *Store) batch(fn func(*bbolt.Tx) error) (err error) {
	defer s.recoverCorrupt(&err)
	if s.readOnly {
		return fmt.Errorf("state file %s is open read-only", s.path)
	}
	return s.db.Batch(func(tx *bbolt.Tx) error {
		s.releaseWritten(tx)
		return fn(tx)
	})
}

// releaseInterval spaces the releaseMap calls of writers (one madvise over the whole map).
const releaseInterval = time.Second

// releaseWritten drops, at most once per releaseInterval, the pages earlier commits mapped:
// a commit reads every page it rewrites through the map, and a first sync's million writes
// land all over a big file.
func (s *Store) releaseWritten(tx *bbolt.Tx) {
	now := time.Now().UnixNano()
	last := s.released.Load()
	if now-last < int64(releaseInterval) || !s.released.CompareAndSwap(last, now) {
		return
	}
	releaseMap(tx)
}

func (s *Store) recoverCorrupt(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("state file %s cannot be read (bbolt: %v): %w", s.path, r, ErrCorrupt)
	}
}

// bucket returns a top-level bucket, or an error when it is missing (which only a read-only
// open of an unmigrated file, or damage, can cause).
func bucket(tx *bbolt.Tx, name string) (*bbolt.Bucket, error) {
	b := tx.Bucket([]byte(name))
	if b == nil {
		return nil, fmt.Errorf("bucket %q is missing: %w", name, ErrCorrupt)
	}
	return b, nil
}

// putJSON stores v as JSON under key in bucket b (named name, for errors).
func putJSON(b *bbolt.Bucket, name, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %s record %q: %w", name, key, err)
	}
	if err := b.Put([]byte(key), data); err != nil {
		return fmt.Errorf("writing %s record %q: %w", name, key, err)
	}
	return nil
}

// putRecord is a transaction that stores v as JSON under key in the top-level bucket name.
func putRecord(name, key string, v any) func(*bbolt.Tx) error {
	return func(tx *bbolt.Tx) error {
		b, err := bucket(tx, name)
		if err != nil {
			return err
		}
		return putJSON(b, name, key, v)
	}
}

// getJSON decodes the record under key into v; it wraps reconcile.ErrNotFound when missing.
// json.Unmarshal copies what it keeps, so nothing points into the transaction's memory.
func getJSON(b *bbolt.Bucket, name, key string, v any) error {
	data := b.Get([]byte(key))
	if data == nil {
		return fmt.Errorf("%s record %q: %w", name, key, reconcile.ErrNotFound)
	}
	return decodeJSON(name, []byte(key), data, v)
}

// decodeJSON decodes one stored record; a record that does not decode is damage.
func decodeJSON(name string, key, data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decoding %s record %q: %v: %w", name, key, err, ErrCorrupt)
	}
	return nil
}

// readJSON decodes the record under key of a top-level bucket in one read transaction; it
// wraps reconcile.ErrNotFound when missing.
func readJSON[T any](s *Store, name, key string) (T, error) {
	var v T
	err := s.view(func(tx *bbolt.Tx) error {
		b, err := bucket(tx, name)
		if err != nil {
			return err
		}
		return getJSON(b, name, key, &v)
	})
	return v, err
}

// listJSON decodes every record of a top-level bucket, in key order.
func listJSON[T any](s *Store, name string) ([]T, error) {
	return listRecords[T](s, name, nil)
}

// releaseEvery is how many records a bulk read visits between two releaseMap calls. With
// fault-around, 8,192 scattered records can map some 100 MB of a big file.
const releaseEvery = 8 << 10

// listRecords decodes every record of a top-level bucket, in key order, passing each to
// keep (when set) before it is stored. The slice is sized by a count of the keys first: a
// growing slice of a million records would hold up to twice their memory while it grows.
func listRecords[T any](s *Store, name string, keep func(*T)) ([]T, error) {
	var out []T
	err := s.view(func(tx *bbolt.Tx) error {
		defer releaseMap(tx)
		b, err := bucket(tx, name)
		if err != nil {
			return err
		}
		n := 0
		c := b.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if n++; n%releaseEvery == 0 {
				releaseMap(tx)
			}
		}
		if n > 0 {
			out = make([]T, 0, n)
		}
		return b.ForEach(func(k, v []byte) error {
			var rec T
			if err := decodeJSON(name, k, v, &rec); err != nil {
				return err
			}
			if keep != nil {
				keep(&rec)
			}
			out = append(out, rec)
			if len(out)%releaseEvery == 0 {
				releaseMap(tx)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", name, err)
	}
	return out, nil
}

// copyBytes copies bytes out of a transaction: bbolt's slices point into the memory map and
// are only valid until the transaction ends.
func copyBytes(b []byte) []byte { return bytes.Clone(b) }
