package scim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/idsync/idsync/state"
)

// Resource is one stored SCIM resource, keyed by source, type and id; only the listener
// reads and writes its Data.
type Resource = state.SCIMResource

// Store is the durable home of pushed resources; *state.Store implements it.
type Store interface {
	// PutSCIM stores (or replaces) one resource and returns only once it is on disk.
	PutSCIM(r Resource) error
	// DeleteSCIM removes one resource; removing a missing one is not an error.
	DeleteSCIM(source, typ, id string) error
	// SCIMResources returns every resource of one source and type.
	SCIMResources(source, typ string) ([]Resource, error)
}

// batchStore is a Store that writes several resources in one transaction (*state.Store
// does): a large group's header and member buckets then land together or not at all.
type batchStore interface {
	PutSCIMBatch(rs []Resource) error
}

// record is Resource.Data: the resource's attributes (normalized, without id and meta) and
// the metadata the listener keeps itself.
type record struct {
	Version  uint64    `json:"version"`
	Created  time.Time `json:"created"`
	Modified time.Time `json:"modified"`
	// Deleted marks a tombstone: a user the IdP deleted, kept so the next pass sees an
	// explicit deprovision rather than a user gone missing.
	Deleted *time.Time `json:"deleted,omitempty"`
	// Buckets is set on a large group's header: its members are in bucket records
	// (buckets.go), not in Resource.
	Buckets  int            `json:"buckets,omitempty"`
	Resource map[string]any `json:"resource"`
}

func encodeRecord(r record) ([]byte, error) {
	// A group's members are most of its bytes: they are written by a fast encoder.
	if list, ok := r.Resource["members"].([]any); ok && len(list) > 0 {
		rest := make(map[string]any, len(r.Resource))
		for k, v := range r.Resource {
			if k != "members" {
				rest[k] = v
			}
		}
		r2 := r
		r2.Resource = rest
		if b, err := json.Marshal(r2); err == nil && bytes.HasSuffix(b, []byte("}}")) {
			out := b[: len(b)-2 : len(b)-2]
			if !bytes.HasSuffix(out, []byte("{")) {
				out = append(out, ',')
			}
			out = append(out, `"members":`...)
			if out, ok := appendMembersJSON(out, list); ok {
				return append(out, "}}"...), nil
			}
		}
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encoding SCIM resource: %w", err)
	}
	return b, nil
}

func decodeRecord(rt *resourceType, b []byte) (record, error) {
	var r record
	if err := unmarshalNumbers(b, &r); err != nil {
		return record{}, fmt.Errorf("decoding stored SCIM resource: %w", err)
	}
	if r.Resource == nil {
		return record{}, fmt.Errorf("decoding stored SCIM resource: no attributes")
	}
	if r.Version == 0 || r.Created.IsZero() {
		return record{}, fmt.Errorf("decoding stored SCIM resource: missing version or creation time")
	}
	// Stored data passed validation when written; normalizing again guards against a
	// damaged or hand-edited file.
	res, verr := normalize(rt, r.Resource)
	if verr != nil {
		return record{}, fmt.Errorf("stored SCIM resource is invalid: %s", verr.Detail)
	}
	r.Resource = res
	return r, nil
}

func unmarshalNumbers(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

var _ Store = (*state.Store)(nil)
