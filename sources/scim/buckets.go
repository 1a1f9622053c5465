package scim

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Large groups are stored in pieces. A group of up to groupInlineMax members is one record.
// A larger one is a header record (its attributes, Buckets = memberBuckets) plus
// memberBuckets records "<id>#mNN" that hold its members, each member in the bucket its
// lower-cased id hashes to. A member change then rewrites one bucket (about 1/64 of the
// members) and the small header, instead of the whole group: without this, a 100,000-member
// group would rewrite megabytes per member an IdP adds.
//
// The bucket and header writes of one change go to the store in one transaction when the
// store can (*state.Store can): a crash leaves all of them or none, and the client is
// answered once they are durable. With a store that writes records one by one, a crash in
// between can leave some newer than others; the client, never answered, retries, and member
// changes are idempotent. When a group shrinks back below groupInlineMax/2 it is written
// inline again and its buckets deleted; buckets a non-bucketed header does not claim
// (including those of deleted groups) are ignored when loading.

const memberBuckets = 64

// groupInlineMax is where bucketing starts. Rewriting a few kilobytes per member change
// already costs more disk time than a header and one bucket (BenchmarkSCIMLoad); it is a
// variable so tests can exercise buckets with small groups.
var groupInlineMax = 128

const bucketSep = "#m"

func bucketID(gid string, k int) string { return fmt.Sprintf("%s%s%02d", gid, bucketSep, k) }

// bucketOf hashes the ASCII-lower-cased id (FNV-1a), without allocating: it runs for
// every member on each write of a large group.
func bucketOf(memberID string) int {
	const offset, prime = 2166136261, 16777619
	h := uint32(offset)
	for i := 0; i < len(memberID); i++ {
		c := memberID[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		h ^= uint32(c)
		h *= prime
	}
	return int(h % memberBuckets)
}

// foldID lower-cases an id for comparisons, allocating only when it has upper case.
func foldID(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' || c >= 0x80 {
			return strings.ToLower(s)
		}
	}
	return s
}

// bucketRecord is the Data of a bucket record.
type bucketRecord struct {
	Members []any `json:"members"`
}

func encodeBucket(members []any) ([]byte, error) {
	if len(members) == 0 {
		return []byte(`{"members":[]}`), nil
	}
	b := append([]byte(nil), `{"members":`...)
	if out, ok := appendMembersJSON(b, members); ok {
		return append(out, '}'), nil
	}
	data, err := json.Marshal(bucketRecord{Members: members})
	if err != nil {
		return nil, fmt.Errorf("encoding member bucket: %w", err)
	}
	return data, nil
}

// putGroup stores a group: inline, or as header and buckets (only the buckets diff touched
// when the group was already bucketed). rec.Buckets is set to the layout written.
func (h *Handler) putGroup(s *source, id string, old *record, rec *record, diff *memberDiff) error {
	members := elements(rec.Resource["members"])
	was := old != nil && old.Buckets > 0
	bucketed := len(members) > groupInlineMax || (was && len(members) > groupInlineMax/2)
	if !bucketed {
		rec.Buckets = 0
		if err := h.put(s, groupType, id, *rec); err != nil {
			return err
		}
		if was {
			// Best effort: a non-bucketed header never reads its old buckets.
			for k := 0; k < memberBuckets; k++ {
				if err := h.opts.Store.DeleteSCIM(s.name, TypeGroup, bucketID(id, k)); err != nil {
					h.log.Warn().Err(err).Str("group", id).Msg("deleting an unused member bucket failed; it is ignored")
					break
				}
			}
		}
		return nil
	}
	rec.Buckets = memberBuckets
	var dirty [memberBuckets]bool
	if was && diff != nil {
		for _, m := range diff.added {
			dirty[bucketOf(m)] = true
		}
		for _, m := range diff.removed {
			dirty[bucketOf(m)] = true
		}
	} else {
		for k := range dirty {
			dirty[k] = true
		}
	}
	var lists [memberBuckets][]any
	for _, el := range members {
		m, _ := el.(map[string]any)
		v, _ := m["value"].(string)
		if k := bucketOf(v); dirty[k] {
			lists[k] = append(lists[k], el)
		}
	}
	header := *rec
	header.Resource = make(map[string]any, len(rec.Resource))
	for k, v := range rec.Resource {
		if k != "members" {
			header.Resource[k] = v
		}
	}
	data, err := encodeRecord(header)
	if err != nil {
		return err
	}
	recs := []Resource{{Source: s.name, Type: TypeGroup, ID: id, Data: data}}
	for k := range dirty {
		if !dirty[k] {
			continue
		}
		data, err := encodeBucket(lists[k])
		if err != nil {
			return err
		}
		recs = append(recs, Resource{Source: s.name, Type: TypeGroup, ID: bucketID(id, k), Data: data})
	}
	if bs, ok := h.opts.Store.(batchStore); ok {
		if err := bs.PutSCIMBatch(recs); err != nil {
			return fmt.Errorf("storing group %s of source %s: %w", id, s.name, err)
		}
		return nil
	}
	// One by one, concurrently: a store that batches concurrent writers still commits them
	// with one disk sync.
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, r := range recs {
		wg.Add(1)
		go func(r Resource) {
			defer wg.Done()
			if err := h.opts.Store.PutSCIM(r); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("storing %s of source %s: %w", r.ID, s.name, err))
				mu.Unlock()
			}
		}(r)
	}
	wg.Wait()
	return errors.Join(errs...)
}

// deleteGroup removes a group's header, then its buckets (best effort: orphan buckets are
// ignored when loading).
func (h *Handler) deleteGroup(s *source, id string, rec record) error {
	if err := h.opts.Store.DeleteSCIM(s.name, TypeGroup, id); err != nil {
		return fmt.Errorf("deleting group %s of source %s: %w", id, s.name, err)
	}
	if rec.Buckets > 0 {
		for k := 0; k < memberBuckets; k++ {
			if err := h.opts.Store.DeleteSCIM(s.name, TypeGroup, bucketID(id, k)); err != nil {
				h.log.Warn().Err(err).Str("group", id).Msg("deleting a member bucket of a deleted group failed; it is ignored")
				break
			}
		}
	}
	return nil
}

// splitGroupRecords separates headers from member buckets (by group id).
func splitGroupRecords(rs []Resource) (headers []Resource, buckets map[string][]Resource) {
	buckets = map[string][]Resource{}
	for _, r := range rs {
		if i := strings.LastIndex(r.ID, bucketSep); i > 0 {
			buckets[r.ID[:i]] = append(buckets[r.ID[:i]], r)
			continue
		}
		headers = append(headers, r)
	}
	return headers, buckets
}

// assembleMembers reads a bucketed group's members from its bucket records.
func assembleMembers(id string, bs []Resource) ([]any, error) {
	membersAttr := groupSchema.attr("members")
	var all []any
	for _, b := range bs {
		var br bucketRecord
		if err := unmarshalNumbers(b.Data, &br); err != nil {
			return nil, fmt.Errorf("member bucket %s: %w", b.ID, err)
		}
		nv, verr := normalizeValue(membersAttr, br.Members, "members")
		if verr != nil {
			return nil, fmt.Errorf("member bucket %s: %s", b.ID, verr.Detail)
		}
		all = append(all, elements(nv)...)
	}
	return all, nil
}
