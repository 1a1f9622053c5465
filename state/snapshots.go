package state

import (
	"errors"
	"fmt"

	"go.etcd.io/bbolt"

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
	err := s.update(func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketSnapshots)
		if err != nil {
			return err
		}
		return putJSON(b, bucketSnapshots, r.Source, r)
	})
	if err != nil {
		return fmt.Errorf("storing snapshot of source %s: %w", r.Source, err)
	}
	return nil
}

// Snapshot returns the last complete read of a source, or an error wrapping
// reconcile.ErrNotFound when it was never read completely.
func (s *Store) Snapshot(source string) (reconcile.SnapshotRecord, error) {
	var r reconcile.SnapshotRecord
	err := s.view(func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketSnapshots)
		if err != nil {
			return err
		}
		return getJSON(b, bucketSnapshots, source, &r)
	})
	if err != nil {
		return reconcile.SnapshotRecord{}, fmt.Errorf("reading snapshot of source %s: %w", source, err)
	}
	return r, nil
}
