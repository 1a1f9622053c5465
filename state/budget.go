package state

import (
	"errors"
	"fmt"
	"time"
)

// Budget is the last known API budget of a target (from X-RateLimit-* headers).
type Budget struct {
	Target    string    `json:"target"`
	Limit     int       `json:"limit"`
	Remaining int       `json:"remaining"`
	Reset     time.Time `json:"reset"`
	Throttled int       `json:"throttled"` // 429s seen
	UpdatedAt time.Time `json:"updatedAt"`
}

// PutBudget stores a target's budget (UpdatedAt is stamped when zero). Concurrent callers
// share one transaction; callers that see a response every few milliseconds should still
// write at most every few seconds.
func (s *Store) PutBudget(b Budget) error {
	if b.Target == "" || len(b.Target) > maxKeyLen {
		return errors.New("storing API budget: target is empty or too long")
	}
	if b.UpdatedAt.IsZero() {
		b.UpdatedAt = s.now()
	}
	if err := s.batch(putRecord(bucketBudget, b.Target, b)); err != nil {
		return fmt.Errorf("storing API budget of %s: %w", b.Target, err)
	}
	return nil
}

// Budget returns a target's last known budget, or an error wrapping reconcile.ErrNotFound.
func (s *Store) Budget(target string) (Budget, error) {
	b, err := readJSON[Budget](s, bucketBudget, target)
	if err != nil {
		return Budget{}, fmt.Errorf("reading API budget of %s: %w", target, err)
	}
	return b, nil
}

// Budgets returns the budget of every target, ordered by target (for status pages).
func (s *Store) Budgets() ([]Budget, error) {
	return listJSON[Budget](s, bucketBudget)
}
