package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"go.etcd.io/bbolt"
)

// SCIM resource types the listener stores.
const (
	SCIMUser  = "User"
	SCIMGroup = "Group"
)

// SCIMResource is one resource the SCIM listener stores for a push source.
type SCIMResource struct {
	Source string `json:"source"`
	Type   string `json:"type"` // "User" | "Group"
	ID     string `json:"id"`
	Data   []byte `json:"data"` // the resource JSON as the listener keeps it
}

// SCIM resources live in one nested bucket per source under "scim", keyed "Type/id" and
// holding the resource JSON as is. A source's bucket is the only place its resources are
// read from or written to, which keeps sources isolated by construction.

func validSCIMType(t string) bool { return t == SCIMUser || t == SCIMGroup }

func scimKey(typ, id string) []byte { return []byte(typ + "/" + id) }

func checkSCIMAddress(source, typ, id string) error {
	var errs []error
	if source == "" || len(source) > maxKeyLen {
		errs = append(errs, errors.New("source is empty or too long"))
	}
	if !validSCIMType(typ) {
		errs = append(errs, fmt.Errorf("type %q is not %q or %q", typ, SCIMUser, SCIMGroup))
	}
	if id == "" || len(id) > maxKeyLen {
		errs = append(errs, errors.New("id is empty or too long"))
	}
	return errors.Join(errs...)
}

// PutSCIM stores (or replaces) a resource. It returns once the resource is on disk;
// concurrent callers share one transaction and one fsync.
func (s *Store) PutSCIM(r SCIMResource) error {
	if err := checkSCIMAddress(r.Source, r.Type, r.ID); err != nil {
		return fmt.Errorf("storing SCIM resource: %w", err)
	}
	if !json.Valid(r.Data) {
		return fmt.Errorf("storing SCIM %s %s/%s: data is not valid JSON", r.Type, r.Source, r.ID)
	}
	// The caller may reuse r.Data once we return; bbolt keeps a reference until commit.
	data := bytes.Clone(r.Data)
	err := s.batch(func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketSCIM)
		if err != nil {
			return err
		}
		sb, err := b.CreateBucketIfNotExists([]byte(r.Source))
		if err != nil {
			return fmt.Errorf("creating SCIM bucket of source %s: %w", r.Source, err)
		}
		return sb.Put(scimKey(r.Type, r.ID), data)
	})
	if err != nil {
		return fmt.Errorf("storing SCIM %s %s/%s: %w", r.Type, r.Source, r.ID, err)
	}
	return nil
}

// PutSCIMBatch stores several resources in one transaction: all of them are on disk when it
// returns, or none is (a large group's header and member buckets land together). A resource
// that fails its checks fails the whole batch before anything is written.
func (s *Store) PutSCIMBatch(rs []SCIMResource) error {
	data := make([][]byte, len(rs))
	for i, r := range rs {
		if err := checkSCIMAddress(r.Source, r.Type, r.ID); err != nil {
			return fmt.Errorf("storing SCIM resource %d of %d: %w", i+1, len(rs), err)
		}
		if !json.Valid(r.Data) {
			return fmt.Errorf("storing SCIM %s %s/%s: data is not valid JSON", r.Type, r.Source, r.ID)
		}
		data[i] = bytes.Clone(r.Data)
	}
	err := s.batch(func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketSCIM)
		if err != nil {
			return err
		}
		for i, r := range rs {
			sb, err := b.CreateBucketIfNotExists([]byte(r.Source))
			if err != nil {
				return fmt.Errorf("creating SCIM bucket of source %s: %w", r.Source, err)
			}
			if err := sb.Put(scimKey(r.Type, r.ID), data[i]); err != nil {
				return fmt.Errorf("%s %s/%s: %w", r.Type, r.Source, r.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("storing %d SCIM resources: %w", len(rs), err)
	}
	return nil
}

// DeleteSCIM removes a resource; removing one that is not there is not an error.
func (s *Store) DeleteSCIM(source, typ, id string) error {
	if err := checkSCIMAddress(source, typ, id); err != nil {
		return fmt.Errorf("deleting SCIM resource: %w", err)
	}
	err := s.batch(func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketSCIM)
		if err != nil {
			return err
		}
		sb := b.Bucket([]byte(source))
		if sb == nil {
			return nil
		}
		return sb.Delete(scimKey(typ, id))
	})
	if err != nil {
		return fmt.Errorf("deleting SCIM %s %s/%s: %w", typ, source, id, err)
	}
	return nil
}

// SCIMResources returns a source's resources of one type, ordered by id.
func (s *Store) SCIMResources(source, typ string) ([]SCIMResource, error) {
	if source == "" || !validSCIMType(typ) {
		return nil, fmt.Errorf("listing SCIM resources: need a source and type %q or %q (got %q, %q)", SCIMUser, SCIMGroup, source, typ)
	}
	var out []SCIMResource
	err := s.view(func(tx *bbolt.Tx) error {
		defer releaseMap(tx) // a pushed org of many people is a bulk read (see listRecords)
		b, err := bucket(tx, bucketSCIM)
		if err != nil {
			return err
		}
		sb := b.Bucket([]byte(source))
		if sb == nil {
			return nil
		}
		prefix := scimKey(typ, "")
		c := sb.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			out = append(out, SCIMResource{
				Source: source,
				Type:   typ,
				ID:     strings.TrimPrefix(string(k), string(prefix)),
				Data:   copyBytes(v),
			})
			if len(out)%releaseEvery == 0 {
				releaseMap(tx)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing SCIM %s resources of source %s: %w", typ, source, err)
	}
	return out, nil
}
