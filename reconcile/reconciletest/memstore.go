package reconciletest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/idsync/idsync/reconcile"
)

// MemStore is an in-memory runner.Store, safe for concurrent use. Clone gives a copy of
// its durable state, as a process restarting on the same state file would find it.
type MemStore struct {
	// FailJournal, when set, is called before every Journal with its 1-based number; a
	// non-nil error fails that Journal and nothing of it is kept (like a crash before the
	// transaction committed).
	FailJournal func(n int, e reconcile.JournalEntry) error

	mu       sync.Mutex
	st       memState
	journals int
}

type memState struct {
	Links    map[string]reconcile.Link           `json:"links"`
	Owned    map[string]reconcile.Owned          `json:"owned"`
	Audit    []reconcile.AuditRecord             `json:"audit"`
	Runs     map[string]reconcile.Run            `json:"runs"`
	Held     *reconcile.HeldPlan                 `json:"held"`
	Standing []reconcile.StandingApproval        `json:"standing,omitempty"`
	Snaps    map[string]reconcile.SnapshotRecord `json:"snaps"`
	RunOrder []string                            `json:"runOrder"`
}

// NewMemStore returns an empty store.
func NewMemStore() *MemStore {
	return &MemStore{st: memState{
		Links: map[string]reconcile.Link{}, Owned: map[string]reconcile.Owned{},
		Runs: map[string]reconcile.Run{}, Snaps: map[string]reconcile.SnapshotRecord{},
	}}
}

// Clone copies the durable state (not FailJournal), like reopening the state file.
func (s *MemStore) Clone() *MemStore {
	s.mu.Lock()
	b, err := json.Marshal(s.st)
	s.mu.Unlock()
	if err != nil {
		panic(fmt.Sprintf("reconciletest: cloning store: %v", err)) // test helper: state is always encodable
	}
	out := NewMemStore()
	if err := json.Unmarshal(b, &out.st); err != nil {
		panic(fmt.Sprintf("reconciletest: cloning store: %v", err))
	}
	return out
}

// Journals counts Journal calls.
func (s *MemStore) Journals() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.journals
}

func (s *MemStore) Links() ([]reconcile.Link, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]reconcile.Link, 0, len(s.st.Links))
	for _, l := range s.st.Links {
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b reconcile.Link) int { return strings.Compare(a.LinkKey(), b.LinkKey()) })
	return out, nil
}

func (s *MemStore) Owned() ([]reconcile.Owned, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]reconcile.Owned, 0, len(s.st.Owned))
	for _, o := range s.st.Owned {
		out = append(out, o)
	}
	slices.SortFunc(out, func(a, b reconcile.Owned) int { return strings.Compare(a.OwnedKey(), b.OwnedKey()) })
	return out, nil
}

func (s *MemStore) Journal(e reconcile.JournalEntry) error {
	s.mu.Lock()
	s.journals++
	n := s.journals
	fail := s.FailJournal
	s.mu.Unlock()
	if fail != nil {
		if err := fail(n, e); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range e.Links {
		s.st.Links[l.LinkKey()] = l
	}
	for _, o := range e.Own {
		s.st.Owned[o.OwnedKey()] = o
	}
	for _, o := range e.Disown {
		delete(s.st.Owned, o.OwnedKey())
	}
	s.st.Audit = append(s.st.Audit, e.Audit...)
	return nil
}

func (s *MemStore) PutRun(r reconcile.Run) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.st.Runs[r.ID]; !ok {
		s.st.RunOrder = append(s.st.RunOrder, r.ID)
	}
	b, err := json.Marshal(r) // keep a copy the caller cannot change
	if err != nil {
		return fmt.Errorf("encoding run: %w", err)
	}
	var cp reconcile.Run
	if err := json.Unmarshal(b, &cp); err != nil {
		return fmt.Errorf("decoding run: %w", err)
	}
	s.st.Runs[r.ID] = cp
	return nil
}

func (s *MemStore) Run(id string) (reconcile.Run, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.st.Runs[id]
	if !ok {
		return reconcile.Run{}, fmt.Errorf("run %s: %w", id, reconcile.ErrNotFound)
	}
	return r, nil
}

func (s *MemStore) Runs(limit int) ([]reconcile.Run, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []reconcile.Run
	for i := len(s.st.RunOrder) - 1; i >= 0; i-- {
		if limit > 0 && len(out) == limit {
			break
		}
		out = append(out, s.st.Runs[s.st.RunOrder[i]])
	}
	return out, nil
}

// PruneRuns drops the oldest run records beyond keep.
func (s *MemStore) PruneRuns(keep int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.st.RunOrder) > keep {
		delete(s.st.Runs, s.st.RunOrder[0])
		s.st.RunOrder = s.st.RunOrder[1:]
	}
	return nil
}

func (s *MemStore) HeldPlan() (reconcile.HeldPlan, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.Held == nil {
		return reconcile.HeldPlan{}, fmt.Errorf("held plan: %w", reconcile.ErrNotFound)
	}
	return *s.st.Held, nil
}

func (s *MemStore) PutHeldPlan(h reconcile.HeldPlan) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Held = &h
	return nil
}

func (s *MemStore) ClearHeldPlan() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Held = nil
	return nil
}

func (s *MemStore) Standing() ([]reconcile.StandingApproval, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.st.Standing), nil
}

func (s *MemStore) PutStanding(list []reconcile.StandingApproval) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Standing = slices.Clone(list)
	return nil
}

func (s *MemStore) PutSnapshot(r reconcile.SnapshotRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Snaps[r.Source] = r
	return nil
}

func (s *MemStore) Snapshot(source string) (reconcile.SnapshotRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.st.Snaps[source]
	if !ok {
		return reconcile.SnapshotRecord{}, fmt.Errorf("snapshot of %s: %w", source, reconcile.ErrNotFound)
	}
	return r, nil
}

func (s *MemStore) Audit(since time.Time, user string) ([]reconcile.AuditRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []reconcile.AuditRecord
	for _, a := range s.st.Audit {
		if a.Time.Before(since) {
			continue
		}
		if user != "" && !strings.EqualFold(a.UserName, user) && !strings.EqualFold(a.UserKey, user) && !strings.EqualFold(a.AccountID, user) {
			continue
		}
		out = append(out, a)
	}
	slices.SortStableFunc(out, func(a, b reconcile.AuditRecord) int { return cmp.Compare(a.Time.UnixNano(), b.Time.UnixNano()) })
	return out, nil
}
