package state

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.etcd.io/bbolt"
)

// compactTxSize bounds the bytes one transaction of the compaction copies.
const compactTxSize = 64 << 20

// CompactFile is a compacted copy written to disk and verified.
type CompactFile struct {
	// Path is the absolute path of the copy.
	Path string
	// Size is its length in bytes; SourceSize the state file's.
	Size, SourceSize int64
	// SchemaVersion is the schema version of the copy (the source's).
	SchemaVersion int
	// Records counts the keys of every bucket ("links", "scim/corp", ...), the same in the
	// copy as in the source.
	Records map[string]int
}

// WriteCompactFile writes a compacted copy of s to path: bbolt keeps the pages that pruning
// freed inside the file, and the copy holds the same records in as few pages as they need.
// It writes a temporary file with mode 0600 in path's folder, checks that it opens as a state
// file with the source's schema version and the same number of records in every bucket, and
// only then renames it over path; a copy that fails the check is removed and whatever path
// held stays.
//
// It refuses an existing path unless force is set, and always refuses the state file being
// copied and a state file some idsync holds open. s should be opened read-only by a process
// that stops the daemon first (a copy taken while another process writes would be refused
// by the lock anyway). The folder must exist.
func WriteCompactFile(s *Store, path string, force bool) (CompactFile, error) {
	if path == "" {
		return CompactFile{}, errors.New("compacting the state file: no output file given")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return CompactFile{}, fmt.Errorf("compacting to %s: %w", path, err)
	}
	if err := checkBackupTarget(abs, s.path); err != nil {
		return CompactFile{}, fmt.Errorf("compacting: %w", err)
	}
	if _, err := os.Lstat(abs); err == nil && !force {
		return CompactFile{}, fmt.Errorf("compacting to %s: it exists (pass --force to replace it)", abs)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return CompactFile{}, fmt.Errorf("compacting to %s: %w", abs, err)
	}
	dir := filepath.Dir(abs)
	if info, err := os.Stat(dir); err != nil || !info.IsDir() {
		return CompactFile{}, fmt.Errorf("compacting to %s: folder %s does not exist (create it first)", abs, dir)
	}
	want, err := s.recordCounts()
	if err != nil {
		return CompactFile{}, fmt.Errorf("compacting: counting the records of %s: %w", s.path, err)
	}
	srcInfo, err := os.Stat(s.path)
	if err != nil {
		return CompactFile{}, fmt.Errorf("compacting: %w", err)
	}

	tmp, err := os.CreateTemp(dir, "."+filepath.Base(abs)+".tmp-*")
	if err != nil {
		return CompactFile{}, fmt.Errorf("compacting to %s: %w", abs, err)
	}
	tmpName := tmp.Name()
	renamed := false
	defer func() {
		if !renamed {
			_ = os.Remove(tmpName)
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return CompactFile{}, fmt.Errorf("compacting to %s: %w", abs, err)
	}
	if err := tmp.Close(); err != nil {
		return CompactFile{}, fmt.Errorf("compacting to %s: %w", abs, err)
	}
	if err := s.compactInto(tmpName); err != nil {
		return CompactFile{}, fmt.Errorf("compacting to %s: %w", abs, err)
	}
	out, err := verifyCompact(tmpName, s.version, want)
	if err != nil {
		return CompactFile{}, fmt.Errorf("the compacted copy of %s was not written: it does not match the state file (removed): %w", s.path, err)
	}
	if err := os.Rename(tmpName, abs); err != nil {
		return CompactFile{}, fmt.Errorf("compacting to %s: %w", abs, err)
	}
	renamed = true
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	out.Path, out.SourceSize = abs, srcInfo.Size()
	return out, nil
}

// compactInto copies every bucket of s into a new bbolt file at path, synced.
func (s *Store) compactInto(path string) (err error) {
	dst, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: DefaultTimeout, FreelistType: bbolt.FreelistMapType})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := dst.Close(); err == nil {
			err = cerr
		}
	}()
	defer s.recoverCorrupt(&err)
	return bbolt.Compact(dst, s.db, compactTxSize)
}

// verifyCompact opens the copy read-only, as Open would at the next start, and checks its
// schema version and record counts.
func verifyCompact(path string, version int, want map[string]int) (CompactFile, error) {
	st, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		return CompactFile{}, err
	}
	defer func() { _ = st.Close() }()
	if st.SchemaVersion() != version {
		return CompactFile{}, fmt.Errorf("schema v%d, the state file has v%d", st.SchemaVersion(), version)
	}
	got, err := st.recordCounts()
	if err != nil {
		return CompactFile{}, err
	}
	if !maps.Equal(got, want) {
		return CompactFile{}, fmt.Errorf("record counts differ: %s in the copy, %s in the state file", countsString(got), countsString(want))
	}
	info, err := os.Stat(path)
	if err != nil {
		return CompactFile{}, err
	}
	return CompactFile{Size: info.Size(), SchemaVersion: version, Records: got}, nil
}

// recordCounts counts the keys of every bucket, nested ones (SCIM resources per source) as
// "scim/<source>".
func (s *Store) recordCounts() (map[string]int, error) {
	out := map[string]int{}
	var count func(b *bbolt.Bucket, name string) error
	count = func(b *bbolt.Bucket, name string) error {
		out[name] += 0
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				if nb := b.Bucket(k); nb != nil {
					return count(nb, name+"/"+string(k))
				}
			}
			out[name]++
			return nil
		})
	}
	err := s.view(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bbolt.Bucket) error { return count(b, string(name)) })
	})
	return out, err
}

func countsString(m map[string]int) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}
