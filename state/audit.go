package state

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/idsync/idsync/reconcile"
)

// The audit log is append-only: records are keyed by the bucket's sequence and never
// rewritten; only a retention (state.retention.audit) deletes the oldest. Two index buckets make the two questions operators ask cheap on a log
// of millions of records: "since when" (audit_by_time) and "about whom" (audit_by_user).

// maxAuditUserLen bounds the user fields of an audit record, which become index keys.
const maxAuditUserLen = 1024

// appendFill is the bbolt FillPercent of buckets written at their end (the audit log, its
// time index, the runs): bbolt's default of 0.5 suits random inserts and leaves pages that
// only ever receive appends half empty.
const appendFill = 0.9

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// timeKey sorts like time: seconds with the sign bit flipped (so times before 1970 sort
// first), then nanoseconds. Unix seconds cover every time.Time, unlike UnixNano.
func timeKey(t time.Time) []byte {
	k := binary.BigEndian.AppendUint64(nil, uint64(t.Unix())^(1<<63))
	return binary.BigEndian.AppendUint32(k, uint32(t.Nanosecond()))
}

// userKeys are the distinct case-folded user fields a record is indexed under.
func userKeys(r reconcile.AuditRecord) []string {
	var keys []string
	for _, u := range []string{r.UserName, r.UserKey, r.AccountID} {
		if u = strings.ToLower(u); u != "" && !slices.Contains(keys, u) {
			keys = append(keys, u)
		}
	}
	return keys
}

func createAuditBuckets(tx *bbolt.Tx) error {
	for _, name := range []string{bucketAudit, bucketAuditByTime, bucketAuditByUser} {
		if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
			return fmt.Errorf("creating bucket %q: %w", name, err)
		}
	}
	return nil
}

// appendAudits appends records under the next sequence numbers and indexes them. Index
// entries are written in key order: bbolt keeps a transaction's inserts in in-memory nodes,
// and unsorted inserts into one growing node cost a memmove each (a first pass that links a
// 100,000-user site writes 100,000 records in one entry).
func appendAudits(tx *bbolt.Tx, recs []reconcile.AuditRecord) error {
	if len(recs) == 0 {
		return nil
	}
	b, err := bucket(tx, bucketAudit)
	if err != nil {
		return err
	}
	byTime, err := bucket(tx, bucketAuditByTime)
	if err != nil {
		return err
	}
	byUser, err := bucket(tx, bucketAuditByUser)
	if err != nil {
		return err
	}
	// The log and its time index grow at their end: full pages instead of bbolt's half-full
	// splits keep the file about a third smaller (BenchmarkStateYear).
	b.FillPercent, byTime.FillPercent = appendFill, appendFill
	type kv struct{ k, v []byte }
	var timeIdx, userIdx []kv
	for _, r := range recs {
		seq, err := b.NextSequence()
		if err != nil {
			return fmt.Errorf("numbering audit record: %w", err)
		}
		key := seqKey(seq)
		data, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encoding audit record: %w", err)
		}
		if err := b.Put(key, data); err != nil {
			return fmt.Errorf("writing audit record %d: %w", seq, err)
		}
		timeIdx = append(timeIdx, kv{append(timeKey(r.Time), key...), key})
		for _, u := range userKeys(r) {
			userIdx = append(userIdx, kv{append(append([]byte(u), 0), key...), key})
		}
	}
	for _, idx := range []struct {
		b    *bbolt.Bucket
		name string
		kvs  []kv
	}{{byTime, "time", timeIdx}, {byUser, "user", userIdx}} {
		slices.SortFunc(idx.kvs, func(x, y kv) int { return bytes.Compare(x.k, y.k) })
		for _, e := range idx.kvs {
			if err := idx.b.Put(e.k, e.v); err != nil {
				return fmt.Errorf("indexing audit record by %s: %w", idx.name, err)
			}
		}
	}
	return nil
}

// Audit returns audit records at or after since, oldest first (ties in append order),
// optionally only those whose UserName, UserKey or AccountID equals user (case-insensitive).
func (s *Store) Audit(since time.Time, user string) ([]reconcile.AuditRecord, error) {
	var out []reconcile.AuditRecord
	err := s.view(func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketAudit)
		if err != nil {
			return err
		}
		index, prefix, start := bucketAuditByTime, []byte(nil), timeKey(since)
		if user != "" {
			index, prefix = bucketAuditByUser, append([]byte(strings.ToLower(user)), 0)
			start = prefix
		}
		ib, err := bucket(tx, index)
		if err != nil {
			return err
		}
		c := ib.Cursor()
		for k, v := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			data := b.Get(v)
			if data == nil {
				return fmt.Errorf("%s entry %x points at no audit record: %w", index, k, ErrCorrupt)
			}
			var r reconcile.AuditRecord
			if err := decodeJSON(bucketAudit, v, data, &r); err != nil {
				return err
			}
			if user != "" && r.Time.Before(since) {
				continue
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading audit log: %w", err)
	}
	if user != "" {
		// The user index is in append order; the contract is time order.
		slices.SortStableFunc(out, func(a, b reconcile.AuditRecord) int { return a.Time.Compare(b.Time) })
	}
	return out, nil
}
