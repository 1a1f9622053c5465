package reconciletest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/idsync/idsync/reconcile"
)

// FakeSource serves a directory held in memory. It implements reconcile.Source and
// reconcile.UserSource.
type FakeSource struct {
	// Fail, when set, can fail Snapshot (n is the 1-based call number).
	Fail func(n int) error
	// Block, when set, is received from at the start of Snapshot (tests hold a pass open).
	Block chan struct{}

	name  string
	mu    sync.Mutex
	dir   reconcile.Directory
	calls int
	users int
}

var (
	_ reconcile.Source     = (*FakeSource)(nil)
	_ reconcile.UserSource = (*FakeSource)(nil)
)

// NewFakeSource returns a source named name serving users (groups are derived from them
// when not given).
func NewFakeSource(name string, users []reconcile.User, groups ...reconcile.Group) *FakeSource {
	s := &FakeSource{name: name}
	s.Set(users, groups...)
	return s
}

// Set replaces the directory.
func (s *FakeSource) Set(users []reconcile.User, groups ...reconcile.Group) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dir = reconcile.Directory{Source: s.name, Users: cloneUsers(users), Groups: slices.Clone(groups)}
	if len(groups) == 0 {
		seen := map[string]bool{}
		for _, u := range users {
			for _, g := range u.Groups {
				if !seen[strings.ToLower(g)] {
					seen[strings.ToLower(g)] = true
					s.dir.Groups = append(s.dir.Groups, reconcile.Group{Key: g, Name: g})
				}
			}
		}
	}
}

func cloneUsers(us []reconcile.User) []reconcile.User {
	out := slices.Clone(us)
	for i := range out {
		out[i].Groups = slices.Clone(out[i].Groups)
	}
	return out
}

func (s *FakeSource) Name() string { return s.name }

// Snapshot returns the directory, or the injected failure.
func (s *FakeSource) Snapshot(ctx context.Context) (reconcile.Directory, error) {
	if s.Block != nil {
		select {
		case <-s.Block:
		case <-ctx.Done():
			return reconcile.Directory{}, ctx.Err()
		}
	}
	s.mu.Lock()
	s.calls++
	n := s.calls
	fail := s.Fail
	d := reconcile.Directory{Source: s.dir.Source, Users: cloneUsers(s.dir.Users), Groups: slices.Clone(s.dir.Groups)}
	s.mu.Unlock()
	if fail != nil {
		if err := fail(n); err != nil {
			return reconcile.Directory{}, err
		}
	}
	return d, ctx.Err()
}

// User returns one user by userName (case-insensitive).
func (s *FakeSource) User(ctx context.Context, userName string) (reconcile.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users++
	for _, u := range s.dir.Users {
		if strings.EqualFold(u.UserName, userName) {
			u.Groups = slices.Clone(u.Groups)
			return u, ctx.Err()
		}
	}
	return reconcile.User{}, fmt.Errorf("user %q: %w", userName, reconcile.ErrUserNotFound)
}

// SnapshotCalls counts Snapshot calls; UserCalls counts User calls.
func (s *FakeSource) SnapshotCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// UserCalls counts User calls.
func (s *FakeSource) UserCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.users
}

// PlainSource hides a source's UserSource side, for tests of sources that cannot fetch one
// user.
type PlainSource struct{ reconcile.Source }
