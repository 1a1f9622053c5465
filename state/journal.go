package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/bbolt"

	"github.com/idsync/idsync/internal/intern"
	"github.com/idsync/idsync/reconcile"
)

// maxKeyLen bounds record keys built from caller data, well under bbolt's 32 KiB.
const maxKeyLen = 4096

// Links returns every link, ordered by LinkKey.
func (s *Store) Links() ([]reconcile.Link, error) {
	return listJSON[reconcile.Link](s, bucketLinks)
}

// Owned returns every ownership record, ordered by OwnedKey. The records share their
// strings: a big site's million owned memberships name a few thousand groups and a hundred
// thousand accounts, and a pass holds every record at once.
func (s *Store) Owned() ([]reconcile.Owned, error) {
	var strs intern.Strings
	return listRecords(s, bucketOwned, func(o *reconcile.Owned) {
		o.Kind = reconcile.OwnedKind(strs.Get(string(o.Kind)))
		o.Container, o.ContainerName, o.AccountID = strs.Get(o.Container), strs.Get(o.ContainerName), strs.Get(o.AccountID)
	})
}

// ownedRecord is an ownership record as stored: with the date idsync first recorded it.
// Owned() leaves the date out (its decoder skips the field).
type ownedRecord struct {
	reconcile.Owned
	Since time.Time `json:"since"`
}

// Journal writes one entry in one durable transaction: links are upserted, then Own
// upserted, then Disown deleted, then Audit appended. Concurrent callers share a transaction
// (bbolt's DB.Batch) and Journal returns once that transaction is on disk. An entry with an
// invalid record is rejected whole, before anything is written.
//
// Zero timestamps are filled: Link.UpdatedAt and AuditRecord.Time with now; Link.LinkedAt
// with the stored record's (or now for a new one), so an upsert keeps the original date. An
// ownership record is stored with since when idsync has owned it: the stored record's date,
// or now for a new one.
func (s *Store) Journal(e reconcile.JournalEntry) error {
	if len(e.Links)+len(e.Own)+len(e.Disown)+len(e.Audit) == 0 {
		return nil
	}
	if err := validateEntry(e); err != nil {
		return fmt.Errorf("journal entry rejected: %w", err)
	}
	now := s.now()
	links := slices.Clone(e.Links)
	for i := range links {
		if links[i].UpdatedAt.IsZero() {
			links[i].UpdatedAt = now
		}
	}
	own := slices.Clone(e.Own)
	audit := slices.Clone(e.Audit)
	for i := range audit {
		if audit[i].Time.IsZero() {
			audit[i].Time = now
		}
	}
	err := s.batch(func(tx *bbolt.Tx) error {
		lb, err := bucket(tx, bucketLinks)
		if err != nil {
			return err
		}
		ob, err := bucket(tx, bucketOwned)
		if err != nil {
			return err
		}
		for _, l := range links {
			key := l.LinkKey()
			if l.LinkedAt.IsZero() {
				l.LinkedAt = now
				var old reconcile.Link
				if data := lb.Get([]byte(key)); data != nil && json.Unmarshal(data, &old) == nil && !old.LinkedAt.IsZero() {
					l.LinkedAt = old.LinkedAt
				}
			}
			if err := putJSON(lb, bucketLinks, key, l); err != nil {
				return err
			}
		}
		for _, o := range own {
			key := o.OwnedKey()
			rec := ownedRecord{Owned: o, Since: now}
			var old ownedRecord
			if data := ob.Get([]byte(key)); data != nil && json.Unmarshal(data, &old) == nil && !old.Since.IsZero() {
				rec.Since = old.Since
			}
			if err := putJSON(ob, bucketOwned, key, rec); err != nil {
				return err
			}
		}
		for _, o := range e.Disown {
			if err := ob.Delete([]byte(o.OwnedKey())); err != nil {
				return fmt.Errorf("deleting owned record %q: %w", o.OwnedKey(), err)
			}
		}
		return appendAudits(tx, audit)
	})
	if err != nil {
		return fmt.Errorf("journaling: %w", err)
	}
	return nil
}

// validateEntry checks every record of an entry and reports every problem.
func validateEntry(e reconcile.JournalEntry) error {
	var errs []error
	for i, l := range e.Links {
		if l.Source == "" || l.Key == "" || l.AccountID == "" {
			errs = append(errs, fmt.Errorf("links[%d] (%q): source, key and accountId are required", i, l.LinkKey()))
		} else if len(l.LinkKey()) > maxKeyLen {
			errs = append(errs, fmt.Errorf("links[%d]: key longer than %d bytes", i, maxKeyLen))
		}
	}
	for _, list := range []struct {
		name string
		recs []reconcile.Owned
	}{{"own", e.Own}, {"disown", e.Disown}} {
		for i, o := range list.recs {
			if err := validateOwned(o); err != nil {
				errs = append(errs, fmt.Errorf("%s[%d] (%q): %w", list.name, i, o.OwnedKey(), err))
			}
		}
	}
	for i, a := range e.Audit {
		if a.Action == "" {
			errs = append(errs, fmt.Errorf("audit[%d]: action is required", i))
		}
		if len(a.UserName) > maxAuditUserLen || len(a.UserKey) > maxAuditUserLen || len(a.AccountID) > maxAuditUserLen {
			errs = append(errs, fmt.Errorf("audit[%d]: userName, userKey and accountId are limited to %d bytes", i, maxAuditUserLen))
		}
	}
	return errors.Join(errs...)
}

func validateOwned(o reconcile.Owned) error {
	switch {
	case o.Kind == "" || o.Container == "":
		return errors.New("kind and container are required")
	case len(o.OwnedKey()) > maxKeyLen:
		return fmt.Errorf("key longer than %d bytes", maxKeyLen)
	case o.AccountID == "" && o.Kind != reconcile.OwnedGroup:
		// Only a created group is owned without an account; anything else would be a
		// record no removal could ever match.
		return fmt.Errorf("accountId is required for kind %q", o.Kind)
	}
	return nil
}
