package state

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"go.etcd.io/bbolt"

	"github.com/idsync/idsync/reconcile"
)

// CurrentVersion is the schema version this idsync reads and writes.
const CurrentVersion = 2

// Keys of the meta bucket.
const (
	metaKeyVersion = "schema_version" // decimal
	metaKeyApp     = "app"            // always appName: tells our files from other bbolt files
	appName        = "idsync"
)

// migration moves a file from one schema version to the next. It runs inside the single
// transaction of Open, so a failure leaves the file exactly as it was.
type migration struct {
	name string
	fn   func(tx *bbolt.Tx) error
}

// migrations[i] migrates version i to i+1. Append only; never edit a released one.
var migrations = []migration{
	{name: "nest SCIM resources per source, key the audit log by sequence and index it", fn: migrate0to1},
	{name: "compress source snapshots", fn: migrate1to2},
}

// migrate1to2 stores every source snapshot compressed (see PutSnapshot). The version moves
// even though plain snapshots would still read: an older idsync would take a compressed one
// for damage, and must refuse the file instead.
func migrate1to2(tx *bbolt.Tx) error {
	b := tx.Bucket([]byte(bucketSnapshots))
	if b == nil {
		return nil
	}
	type snap struct {
		key  []byte
		data []byte
	}
	var plain []snap
	err := b.ForEach(func(k, v []byte) error {
		if bytes.HasPrefix(v, gzipMagic) {
			return nil
		}
		var r reconcile.SnapshotRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("snapshot %q: %v: %w", k, err, ErrCorrupt)
		}
		data, err := encodeSnapshot(r)
		if err != nil {
			return fmt.Errorf("snapshot %q: %w", k, err)
		}
		plain = append(plain, snap{key: copyBytes(k), data: data})
		return nil
	})
	if err != nil {
		return err
	}
	for _, p := range plain {
		if err := b.Put(p.key, p.data); err != nil {
			return fmt.Errorf("writing snapshot %q: %w", p.key, err)
		}
	}
	return nil
}

// v0Buckets are the bucket names of version 0: files written before the schema carried a
// version key.
var v0Buckets = []string{"links", "owned", "snapshots", "scim", "runs", "audit", "held", "budget"}

// initSchema checks what the file holds and brings it to CurrentVersion: a new file gets
// every bucket, an older one is copied aside and migrated, a newer or foreign one is refused.
func (s *Store) initSchema() error {
	var (
		from  int
		fresh bool
	)
	err := s.view(func(tx *bbolt.Tx) error {
		// bbolt maps pages up to its high-water mark without checking the file reaches
		// that far; reading past the end of a truncated file would fault.
		if info, err := os.Stat(s.path); err == nil && info.Size() < tx.Size() {
			return fmt.Errorf("file is truncated: %d bytes, bbolt expects at least %d: %w", info.Size(), tx.Size(), ErrCorrupt)
		}
		var err error
		from, fresh, err = fileVersion(tx)
		return err
	})
	if err != nil {
		return fmt.Errorf("state file %s: %w", s.path, err)
	}
	switch {
	case from > CurrentVersion:
		return fmt.Errorf("state file %s has schema version %d, this idsync knows up to %d (upgrade idsync; it never downgrades a file): %w",
			s.path, from, CurrentVersion, ErrSchemaTooNew)
	case s.readOnly && fresh:
		return fmt.Errorf("state file %s holds no idsync data yet (open it read-write once)", s.path)
	case s.readOnly && from < CurrentVersion:
		return fmt.Errorf("state file %s has schema version %d and needs migrating to %d: open it read-write once (start idsync)",
			s.path, from, CurrentVersion)
	case s.readOnly:
		s.version = from
		return nil
	}

	if !fresh && from < CurrentVersion {
		backup := fmt.Sprintf("%s.schema-v%d.bak", s.path, from)
		if err := s.view(func(tx *bbolt.Tx) error { return tx.CopyFile(backup, 0o600) }); err != nil {
			return fmt.Errorf("copying state file %s to %s before migrating it: %w", s.path, backup, err)
		}
		s.log.Info().Str("file", s.path).Str("backup", backup).Int("from", from).Int("to", CurrentVersion).
			Msg("migrating state file schema")
	}
	err = s.update(func(tx *bbolt.Tx) error {
		if !fresh {
			for v := from; v < CurrentVersion; v++ {
				m := migrations[v]
				if err := m.fn(tx); err != nil {
					return fmt.Errorf("migrating from schema version %d to %d (%s): %w", v, v+1, m.name, err)
				}
			}
		}
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
				return fmt.Errorf("creating bucket %q: %w", name, err)
			}
		}
		meta := tx.Bucket([]byte(bucketMeta))
		if string(meta.Get([]byte(metaKeyVersion))) == strconv.Itoa(CurrentVersion) {
			return nil
		}
		if err := meta.Put([]byte(metaKeyApp), []byte(appName)); err != nil {
			return fmt.Errorf("writing schema marker: %w", err)
		}
		if err := meta.Put([]byte(metaKeyVersion), []byte(strconv.Itoa(CurrentVersion))); err != nil {
			return fmt.Errorf("writing schema version: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("preparing state file %s: %w", s.path, err)
	}
	if !fresh {
		for v := from; v < CurrentVersion; v++ {
			s.log.Info().Str("file", s.path).Int("to", v+1).Str("migration", migrations[v].name).Msg("state file migrated")
		}
	}
	s.version = CurrentVersion
	return nil
}

// fileVersion reads the schema version. A file without a version key is version 0 when all
// its buckets are ones idsync uses, fresh when it has none, and foreign otherwise.
func fileVersion(tx *bbolt.Tx) (version int, fresh bool, err error) {
	if meta := tx.Bucket([]byte(bucketMeta)); meta != nil {
		if raw := meta.Get([]byte(metaKeyVersion)); raw != nil {
			if app := meta.Get([]byte(metaKeyApp)); string(app) != appName {
				return 0, false, fmt.Errorf("its meta bucket names %q, not %q: %w", app, appName, ErrNotStateFile)
			}
			v, err := strconv.Atoi(string(raw))
			if err != nil || v < 1 {
				return 0, false, fmt.Errorf("schema version %q is not a version: %w", raw, ErrCorrupt)
			}
			return v, false, nil
		}
	}
	var names, unknown []string
	err = tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
		n := string(name)
		names = append(names, n)
		if !slices.Contains(allBuckets, n) && !slices.Contains(v0Buckets, n) {
			unknown = append(unknown, strconv.Quote(n))
		}
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	if len(names) == 0 {
		return 0, true, nil
	}
	if len(unknown) > 0 {
		if len(unknown) > 5 {
			unknown = append(unknown[:5], "...")
		}
		return 0, false, fmt.Errorf("bbolt file written by another program (no schema version; buckets %s): %w",
			strings.Join(unknown, ", "), ErrNotStateFile)
	}
	return 0, false, nil
}

// v0SCIMResource is how version 0 stored a SCIM resource: flat in the scim bucket under
// "source/type/id", the resource embedded.
type v0SCIMResource struct {
	Source   string          `json:"source"`
	Type     string          `json:"type"`
	ID       string          `json:"id"`
	Resource json.RawMessage `json:"resource"`
}

// migrate0to1: SCIM resources move into one nested bucket per source (so a source's
// resources are listed and isolated without scanning others); audit records, keyed by their
// RFC 3339 time in version 0 (which collides for records of the same instant), are re-keyed
// by sequence in their old order and indexed by time and user.
func migrate0to1(tx *bbolt.Tx) error {
	if b := tx.Bucket([]byte(bucketSCIM)); b != nil {
		type flat struct {
			key []byte
			res v0SCIMResource
		}
		var old []flat
		err := b.ForEach(func(k, v []byte) error {
			if v == nil { // already a nested bucket
				return nil
			}
			var r v0SCIMResource
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("scim record %q: %v: %w", k, err, ErrCorrupt)
			}
			if r.Source == "" || r.ID == "" || !validSCIMType(r.Type) || !json.Valid(r.Resource) {
				return fmt.Errorf("scim record %q lacks a source, type, id or resource: %w", k, ErrCorrupt)
			}
			old = append(old, flat{key: copyBytes(k), res: r})
			return nil
		})
		if err != nil {
			return err
		}
		for _, f := range old {
			if err := b.Delete(f.key); err != nil {
				return fmt.Errorf("removing old scim record %q: %w", f.key, err)
			}
			sb, err := b.CreateBucketIfNotExists([]byte(f.res.Source))
			if err != nil {
				return fmt.Errorf("creating scim bucket of source %q: %w", f.res.Source, err)
			}
			if err := sb.Put(scimKey(f.res.Type, f.res.ID), f.res.Resource); err != nil {
				return fmt.Errorf("writing scim resource %s/%s/%s: %w", f.res.Source, f.res.Type, f.res.ID, err)
			}
		}
	}

	if b := tx.Bucket([]byte(bucketAudit)); b != nil {
		var recs []reconcile.AuditRecord
		err := b.ForEach(func(k, v []byte) error {
			var r reconcile.AuditRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("audit record %q: %v: %w", k, err, ErrCorrupt)
			}
			recs = append(recs, r)
			return nil
		})
		if err != nil {
			return err
		}
		if err := tx.DeleteBucket([]byte(bucketAudit)); err != nil {
			return fmt.Errorf("replacing the audit bucket: %w", err)
		}
		if err := createAuditBuckets(tx); err != nil {
			return err
		}
		if err := appendAudits(tx, recs); err != nil {
			return err
		}
	}
	return nil
}
