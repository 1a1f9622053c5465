package state

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/idsync/idsync/reconcile"
)

// Retention bounds the history the state file keeps (config state.retention): run records
// and audit records older than these ages are deleted by ApplyRetention. Zero keeps
// everything of that kind. Links, ownership, snapshots, SCIM resources and the held plan are
// the current state, never history, and are never pruned.
type Retention struct {
	Runs  time.Duration
	Audit time.Duration
}

// MinKeptRuns run records are kept whatever their age, so `idsync status` still shows the
// last passes after a long outage.
const MinKeptRuns = 10

// MaxPrunedPerCall bounds the records one ApplyRetention deletes, in one transaction: the
// first prune of a long history (retention set on an old file) is spread over the next passes
// instead of one long write that holds up the pass after it.
const MaxPrunedPerCall = 50000

// maxPruned is MaxPrunedPerCall; tests lower it.
var maxPruned = MaxPrunedPerCall

// Pruned says what one ApplyRetention deleted.
type Pruned struct {
	Runs  int
	Audit int
	// More is true when the bound stopped it: older records remain for the next call.
	More bool
}

// SetRetention sets the retention ApplyRetention applies. Once a retention is set, it also
// decides how many run records stay: PruneRuns (the Runner's count after each pass) leaves
// the runs to it.
func (s *Store) SetRetention(r Retention) { s.retention.Store(&r) }

// ApplyRetention deletes, in one transaction, the run records older than Retention.Runs (but
// the newest MinKeptRuns) and the audit records older than Retention.Audit, oldest first and at
// most MaxPrunedPerCall in all. Its cost is that of what it deletes: both buckets are read
// from their oldest key (run ids sort by time, the audit log has its time index) up to the
// first one to keep. It does nothing without SetRetention.
func (s *Store) ApplyRetention(now time.Time) (Pruned, error) {
	r := s.retention.Load()
	if r == nil || (r.Runs <= 0 && r.Audit <= 0) {
		return Pruned{}, nil
	}
	var p Pruned
	err := s.update(func(tx *bbolt.Tx) error {
		p = Pruned{}
		budget := maxPruned
		if r.Runs > 0 {
			n, more, err := pruneRunsBefore(tx, now.Add(-r.Runs), budget)
			if err != nil {
				return err
			}
			p.Runs, p.More, budget = n, more, budget-n
		}
		if r.Audit > 0 {
			n, more, err := pruneAuditBefore(tx, now.Add(-r.Audit), budget)
			if err != nil {
				return err
			}
			p.Audit, p.More = n, p.More || more
		}
		return nil
	})
	if err != nil {
		return Pruned{}, fmt.Errorf("applying the state retention: %w", err)
	}
	return p, nil
}

// pruneRunsBefore deletes up to max run records whose id sorts before cutoff's (ids made by
// NewRunID start with their UTC second), keeping the newest MinKeptRuns. Ids of another form
// sort after digits and are kept.
func pruneRunsBefore(tx *bbolt.Tx, cutoff time.Time, max int) (int, bool, error) {
	b, err := bucket(tx, bucketRuns)
	if err != nil {
		return 0, false, err
	}
	limit := []byte(cutoff.UTC().Format(runIDLayout))
	c := b.Cursor()
	// The MinKeptRuns-th newest key: it and every newer one stay.
	var floor []byte
	n := 0
	for k, _ := c.Last(); k != nil && n < MinKeptRuns; k, _ = c.Prev() {
		floor, n = k, n+1
	}
	if n < MinKeptRuns {
		return 0, false, nil
	}
	if bytes.Compare(floor, limit) < 0 {
		limit = floor
	}
	limit = copyBytes(limit)
	var old [][]byte
	more := false
	for k, _ := c.First(); k != nil && bytes.Compare(k, limit) < 0; k, _ = c.Next() {
		if len(old) == max {
			more = true
			break
		}
		old = append(old, copyBytes(k))
	}
	for _, k := range old {
		if err := b.Delete(k); err != nil {
			return 0, false, fmt.Errorf("deleting run %s: %w", k, err)
		}
	}
	return len(old), more, nil
}

// pruneAuditBefore deletes up to max audit records older than cutoff, with their index
// entries.
func pruneAuditBefore(tx *bbolt.Tx, cutoff time.Time, max int) (int, bool, error) {
	b, err := bucket(tx, bucketAudit)
	if err != nil {
		return 0, false, err
	}
	byTime, err := bucket(tx, bucketAuditByTime)
	if err != nil {
		return 0, false, err
	}
	byUser, err := bucket(tx, bucketAuditByUser)
	if err != nil {
		return 0, false, err
	}
	limit := timeKey(cutoff)
	type entry struct{ timeKey, seq []byte }
	var old []entry
	more := false
	c := byTime.Cursor()
	for k, v := c.First(); k != nil && bytes.Compare(k, limit) < 0; k, v = c.Next() {
		if len(old) == max {
			more = true
			break
		}
		old = append(old, entry{copyBytes(k), copyBytes(v)})
	}
	for _, e := range old {
		if data := b.Get(e.seq); data != nil {
			var who struct {
				UserName  string `json:"userName"`
				UserKey   string `json:"userKey"`
				AccountID string `json:"accountId"`
			}
			if err := json.Unmarshal(data, &who); err != nil {
				return 0, false, fmt.Errorf("decoding audit record %x: %v: %w", e.seq, err, ErrCorrupt)
			}
			for _, u := range userKeys(reconcile.AuditRecord{UserName: who.UserName, UserKey: who.UserKey, AccountID: who.AccountID}) {
				if err := byUser.Delete(append(append([]byte(u), 0), e.seq...)); err != nil {
					return 0, false, fmt.Errorf("deleting audit index entry: %w", err)
				}
			}
			if err := b.Delete(e.seq); err != nil {
				return 0, false, fmt.Errorf("deleting audit record %x: %w", e.seq, err)
			}
		}
		if err := byTime.Delete(e.timeKey); err != nil {
			return 0, false, fmt.Errorf("deleting audit index entry: %w", err)
		}
	}
	return len(old), more, nil
}
