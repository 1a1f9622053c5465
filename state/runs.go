package state

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"go.etcd.io/bbolt"

	"github.com/idsync/idsync/reconcile"
)

// DefaultKeepRuns is how many run records PruneRuns keeps when asked for keep <= 0.
const DefaultKeepRuns = 500

// heldKey is the one key of the held bucket: there is at most one open held plan.
const heldKey = "current"

// runIDLayout is the time part of a run id: UTC to the second, so ids sort by time.
const runIDLayout = "20060102T150405Z"

// runIDs hands out the sequence part of run ids. Within one second of the clock the
// sequence counts up, so ids of one process are unique and sort in creation order; its start
// is random so that two processes started in the same second (two CLI runs) do not collide.
// Recent seconds are remembered so a clock that steps back cannot repeat an id.
var runIDs = struct {
	sync.Mutex
	last map[int64]uint32
	// order remembers the seconds in last, oldest first, to bound it.
	order []int64
}{last: map[int64]uint32{}}

// runIDMemory bounds how many seconds runIDs remembers.
const runIDMemory = 256

// NewRunID returns a time-sortable run id such as 20261127T040515Z-3f9a (UTC second, then a
// hex sequence), unique within the process even for ids of the same second.
func NewRunID(now time.Time) string {
	now = now.UTC()
	sec := now.Unix()
	runIDs.Lock()
	seq, seen := runIDs.last[sec]
	if seen {
		seq++
	} else {
		seq = rand.Uint32N(0x8000) // leaves 32768 ids in that second before a fifth digit
		runIDs.order = append(runIDs.order, sec)
		if len(runIDs.order) > runIDMemory {
			delete(runIDs.last, runIDs.order[0])
			runIDs.order = runIDs.order[1:]
		}
	}
	runIDs.last[sec] = seq
	runIDs.Unlock()
	return fmt.Sprintf("%s-%04x", now.Format(runIDLayout), seq)
}

// PutRun stores (or replaces) a run record under its id.
func (s *Store) PutRun(r reconcile.Run) error {
	if r.ID == "" || len(r.ID) > maxKeyLen {
		return fmt.Errorf("storing run: id %q is empty or too long", r.ID)
	}
	err := s.update(func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketRuns)
		if err != nil {
			return err
		}
		b.FillPercent = appendFill // ids sort by time: runs are appended
		return putJSON(b, bucketRuns, r.ID, r)
	})
	if err != nil {
		return fmt.Errorf("storing run %s: %w", r.ID, err)
	}
	return nil
}

// Run returns the run with that id, or an error wrapping reconcile.ErrNotFound.
func (s *Store) Run(id string) (reconcile.Run, error) {
	r, err := readJSON[reconcile.Run](s, bucketRuns, id)
	if err != nil {
		return reconcile.Run{}, fmt.Errorf("reading run %s: %w", id, err)
	}
	return r, nil
}

// Runs returns runs newest first (in reverse id order, which is time order for ids from
// NewRunID), at most limit of them (all when limit <= 0).
func (s *Store) Runs(limit int) ([]reconcile.Run, error) {
	var out []reconcile.Run
	err := s.view(func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketRuns)
		if err != nil {
			return err
		}
		c := b.Cursor()
		for k, v := c.Last(); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Prev() {
			var r reconcile.Run
			if err := decodeJSON(bucketRuns, k, v, &r); err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing runs: %w", err)
	}
	return out, nil
}

// PruneRuns deletes the oldest run records beyond the newest keep (DefaultKeepRuns when
// keep <= 0, so a zero value never empties the history). Once SetRetention was called, the
// retention decides instead (ApplyRetention, by age) and PruneRuns does nothing: the Runner's
// count is the default of a store nobody configured.
func (s *Store) PruneRuns(keep int) error {
	if s.retention.Load() != nil {
		return nil
	}
	if keep <= 0 {
		keep = DefaultKeepRuns
	}
	err := s.update(func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketRuns)
		if err != nil {
			return err
		}
		n := b.Stats().KeyN
		if n <= keep {
			return nil
		}
		var old [][]byte
		c := b.Cursor()
		for k, _ := c.First(); k != nil && len(old) < n-keep; k, _ = c.Next() {
			old = append(old, copyBytes(k))
		}
		for _, k := range old {
			if err := b.Delete(k); err != nil {
				return fmt.Errorf("deleting run %s: %w", k, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pruning runs: %w", err)
	}
	return nil
}

// HeldPlan returns the open held plan, or an error wrapping reconcile.ErrNotFound.
func (s *Store) HeldPlan() (reconcile.HeldPlan, error) {
	h, err := readJSON[reconcile.HeldPlan](s, bucketHeld, heldKey)
	if err != nil {
		return reconcile.HeldPlan{}, fmt.Errorf("reading held plan: %w", err)
	}
	return h, nil
}

// PutHeldPlan replaces the open held plan (Created is stamped when zero).
func (s *Store) PutHeldPlan(h reconcile.HeldPlan) error {
	if h.RunID == "" {
		return errors.New("storing held plan: runId is required")
	}
	if h.Created.IsZero() {
		h.Created = s.now()
	}
	if err := s.update(putRecord(bucketHeld, heldKey, h)); err != nil {
		return fmt.Errorf("storing held plan of run %s: %w", h.RunID, err)
	}
	return nil
}

// ClearHeldPlan removes the open held plan; it is a no-op when there is none.
func (s *Store) ClearHeldPlan() error {
	err := s.update(func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketHeld)
		if err != nil {
			return err
		}
		return b.Delete([]byte(heldKey))
	})
	if err != nil {
		return fmt.Errorf("clearing held plan: %w", err)
	}
	return nil
}

// standingKey is the one key of the standing bucket.
const standingKey = "current"

// Standing returns the approvals that stand for items Jira refused; none is an empty list.
func (s *Store) Standing() ([]reconcile.StandingApproval, error) {
	var out []reconcile.StandingApproval
	err := s.view(func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketStanding)
		if err != nil {
			return err
		}
		err = getJSON(b, bucketStanding, standingKey, &out)
		if errors.Is(err, reconcile.ErrNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading standing approvals: %w", err)
	}
	return out, nil
}

// PutStanding replaces the standing approvals; an empty list clears them.
func (s *Store) PutStanding(list []reconcile.StandingApproval) error {
	err := s.update(func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketStanding)
		if err != nil {
			return err
		}
		if len(list) == 0 {
			return b.Delete([]byte(standingKey))
		}
		return putJSON(b, bucketStanding, standingKey, list)
	})
	if err != nil {
		return fmt.Errorf("storing standing approvals: %w", err)
	}
	return nil
}
