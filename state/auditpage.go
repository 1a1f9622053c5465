package state

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/idsync/idsync/reconcile"
)

// Page sizes of AuditPage.
const (
	DefaultAuditPageSize = 1000
	MaxAuditPageSize     = 10000
)

// ErrBadCursor: an AuditPage cursor that this query did not hand out (damaged, or from a
// query with another user filter).
var ErrBadCursor = errors.New("bad audit cursor")

// AuditQuery selects one page of the audit log.
type AuditQuery struct {
	// Since keeps records at or after this time (zero: from the first).
	Since time.Time
	// User keeps records whose UserName, UserKey or AccountID equals it (case-insensitive).
	User string
	// Cursor is AuditPage.Next of the previous page ("" for the first page).
	Cursor string
	// Limit is the most records on the page (<= 0: DefaultAuditPageSize; at most
	// MaxAuditPageSize).
	Limit int
}

// AuditPage is one page of the audit log.
type AuditPage struct {
	Records []reconcile.AuditRecord `json:"records"`
	// Next continues the query on the next page; empty on the last page.
	Next string `json:"next,omitempty"`
}

// AuditPage returns the audit records of q in pages, oldest first: in time order, or with a
// user filter in append order (time order except among the items of one pass applied at the
// same moment; Audit sorts those by time). Records appended after a page was read appear on a
// later page when they sort after it, and a page never repeats a record of an earlier page
// of the same query.
func (s *Store) AuditPage(q AuditQuery) (AuditPage, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultAuditPageSize
	}
	limit = min(limit, MaxAuditPageSize)
	kind, index, prefix, start := byte('t'), bucketAuditByTime, []byte(nil), timeKey(q.Since)
	if q.User != "" {
		kind, index, prefix = 'u', bucketAuditByUser, append([]byte(strings.ToLower(q.User)), 0)
		start = prefix
	}
	if q.Cursor != "" {
		k, err := decodeCursor(q.Cursor, kind, prefix)
		if err != nil {
			return AuditPage{}, err
		}
		if bytes.Compare(k, start) > 0 {
			start = k
		}
	}
	page := AuditPage{Records: []reconcile.AuditRecord{}}
	err := s.view(func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketAudit)
		if err != nil {
			return err
		}
		ib, err := bucket(tx, index)
		if err != nil {
			return err
		}
		c := ib.Cursor()
		for k, v := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if len(page.Records) == limit {
				page.Next = encodeCursor(kind, k)
				return nil
			}
			data := b.Get(v)
			if data == nil {
				return fmt.Errorf("%s entry %x points at no audit record: %w", index, k, ErrCorrupt)
			}
			var r reconcile.AuditRecord
			if err := decodeJSON(bucketAudit, v, data, &r); err != nil {
				return err
			}
			if q.User != "" && r.Time.Before(q.Since) {
				continue
			}
			page.Records = append(page.Records, r)
		}
		return nil
	})
	if err != nil {
		return AuditPage{}, fmt.Errorf("reading audit log: %w", err)
	}
	return page, nil
}

// A cursor is the index entry the next page starts at, with the index it belongs to.
func encodeCursor(kind byte, key []byte) string {
	return base64.RawURLEncoding.EncodeToString(append([]byte{kind}, key...))
}

func decodeCursor(s string, kind byte, prefix []byte) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 2 || b[0] != kind || !bytes.HasPrefix(b[1:], prefix) {
		return nil, ErrBadCursor
	}
	return b[1:], nil
}

// CollapseIntents drops the write-ahead "started" records of recs whose outcome is in recs or
// in later (records that follow recs in the log), so the log reads one line per change; a
// "started" record without an outcome (the process died mid-change) stays visible.
func CollapseIntents(recs, later []reconcile.AuditRecord) []reconcile.AuditRecord {
	done := map[string]bool{}
	for _, l := range [][]reconcile.AuditRecord{recs, later} {
		for _, r := range l {
			if r.Intent != "" && r.Result != reconcile.ItemStarted {
				done[r.Intent] = true
			}
		}
	}
	out := recs[:0:0]
	for _, r := range recs {
		if r.Result == reconcile.ItemStarted && done[r.Intent] {
			continue
		}
		out = append(out, r)
	}
	return out
}
