package state

import (
	"errors"
	"fmt"

	"github.com/idsync/idsync/reconcile"
)

// PutSnapshot stores the last complete read of a source, replacing the previous one (Taken
// is stamped when zero).
func (s *Store) PutSnapshot(r reconcile.SnapshotRecord) error {
	if r.Source == "" || len(r.Source) > maxKeyLen {
		return errors.New("storing snapshot: source is empty or too long")
	}
	if r.Taken.IsZero() {
		r.Taken = s.now()
	}
	if err := s.update(putRecord(bucketSnapshots, r.Source, r)); err != nil {
		return fmt.Errorf("storing snapshot of source %s: %w", r.Source, err)
	}
	return nil
}

// Snapshot returns the last complete read of a source, or an error wrapping
// reconcile.ErrNotFound when it was never read completely.
func (s *Store) Snapshot(source string) (reconcile.SnapshotRecord, error) {
	r, err := readJSON[reconcile.SnapshotRecord](s, bucketSnapshots, source)
	if err != nil {
		return reconcile.SnapshotRecord{}, fmt.Errorf("reading snapshot of source %s: %w", source, err)
	}
	return r, nil
}
