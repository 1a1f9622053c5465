package runner_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/reconcile/reconciletest"
	"github.com/idsync/idsync/reconcile/runner"
	"github.com/idsync/idsync/state"
)

// crashWorld is a Jira and a store after earlier passes, and a directory whose next pass
// needs every kind of change: creates, adds, removals, customers and deactivations.
func crashWorld(t *testing.T, store runner.Store) (*reconciletest.FakeSink, []reconcile.User) {
	t.Helper()
	f := newSite()
	eng := f.AddGroup("engineering", false)
	bob := f.AddAccount(reconcile.Account{Email: "bob@example.com", DisplayName: "bob", Active: true})
	dave := f.AddAccount(reconcile.Account{Email: "dave@example.com", DisplayName: "dave", Active: true})
	erin := f.AddAccount(reconcile.Account{Email: "erin@example.com", DisplayName: "erin", Active: true})
	var e reconcile.JournalEntry
	for _, a := range []struct{ key, name, id string }{{"2", "bob", bob}, {"4", "dave", dave}, {"5", "erin", erin}} {
		for _, g := range []string{"engineering", "jira-software-users"} {
			if err := f.AddToGroup(g, a.id); err != nil {
				t.Fatal(err)
			}
		}
		e.Links = append(e.Links, reconcile.Link{Source: "corp", Key: a.key, UserName: a.name, Email: a.name + "@example.com", AccountID: a.id, Created: true, LinkedAt: t0})
		e.Own = append(e.Own, reconcile.Owned{Kind: reconcile.OwnedMembership, Container: eng, ContainerName: "engineering", AccountID: a.id})
	}
	e.Links[2].MissingPasses = 5
	if err := store.Journal(e); err != nil {
		t.Fatal(err)
	}
	users := []reconcile.User{
		user("1", "alice", "alice@example.com", "Engineering", "Sales"),
		user("2", "bob", "bob@example.com", "Sales"),
		user("3", "carol", "carol@example.com", "Jira-Service-group"),
		disabled(user("4", "dave", "dave@example.com", "Engineering")),
		user("6", "frank", "frank@example.com", "Jira-Service-group", "Engineering"),
	}
	return f, users
}

func crashRunner(t *testing.T, f *reconciletest.FakeSink, store runner.Store, users []reconcile.User) *runner.Runner {
	t.Helper()
	r, err := runner.NewRunner(runner.RunnerConfig{
		Sources: []runner.SourceSpec{{Source: reconciletest.NewFakeSource("corp", users)}},
		Sink:    f, Store: store, Mapping: baseMapping(), Safety: openSafety(), Concurrency: 3,
		Logger: zerolog.Nop(), Now: newClock().Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// endState describes Jira and the store by names and emails (ids differ between runs).
func endState(t *testing.T, f *reconciletest.FakeSink, store runner.Store) string {
	t.Helper()
	email := map[string]string{}
	for _, a := range f.Accounts() {
		email[a.AccountID] = a.AccountType + ":" + a.Email
	}
	links, err := store.Links()
	if err != nil {
		t.Fatal(err)
	}
	owned, err := store.Owned()
	if err != nil {
		t.Fatal(err)
	}
	lines := []string{f.Describe()}
	for _, l := range links {
		lines = append(lines, fmt.Sprintf("link %s -> %s deactivated=%v removed=%d", l.LinkKey(), email[l.AccountID], l.Deactivated, len(l.RemovedGroups)))
	}
	for _, o := range owned {
		if o.Kind == reconcile.OwnedGroup {
			continue // a crash between a group create and its journal adopts the group without this record
		}
		lines = append(lines, fmt.Sprintf("own %s %s %s", o.Kind, strings.ToLower(o.ContainerName), email[o.AccountID]))
	}
	slices.Sort(lines[1:])
	return strings.Join(lines, "\n")
}

var errCrash = errors.New("simulated crash")

// stateStore wraps the bbolt store with a journal that can fail at call k.
type stateStore struct {
	*state.Store
	mu        sync.Mutex
	failAt, n int
}

func (s *stateStore) Journal(e reconcile.JournalEntry) error {
	s.mu.Lock()
	s.n++
	crash := s.n == s.failAt
	s.mu.Unlock()
	if crash {
		return errCrash
	}
	return s.Store.Journal(e)
}

func TestCrashAtEveryItem(t *testing.T) {
	// The reference: one uninterrupted pass.
	refStore := reconciletest.NewMemStore()
	refSink, users := crashWorld(t, refStore)
	run, err := crashRunner(t, refSink, refStore, users).RunOnce(context.Background(), runner.RunOptions{Trigger: "cli"})
	if err != nil || run.Result != reconcile.ResultOK {
		t.Fatalf("reference pass: %v %s %v", err, run.Result, run.Errors)
	}
	want := endState(t, refSink, refStore)
	applies, journals := refSink.ApplyCalls(), refStore.Journals()
	if applies < 10 {
		t.Fatalf("reference pass applied only %d items", applies)
	}
	for _, k := range []reconcile.Kind{reconcile.KindCreateUser, reconcile.KindCreateCustomer, reconcile.KindRemoveMember, reconcile.KindDeactivateUser, reconcile.KindAddCustomer} {
		if run.Counts[k][reconcile.ItemOK] == 0 {
			t.Fatalf("reference pass has no %s", k)
		}
	}

	check := func(t *testing.T, f *reconciletest.FakeSink, store runner.Store) {
		t.Helper()
		r := crashRunner(t, f, store, users)
		if _, err := r.RunOnce(context.Background(), runner.RunOptions{Trigger: "startup"}); err != nil {
			t.Fatalf("pass after restart: %v", err)
		}
		if got := endState(t, f, store); got != want {
			t.Fatalf("end state differs from the uninterrupted pass:\n--- got\n%s\n--- want\n%s", got, want)
		}
		if n := f.DuplicateCreates(); n != 0 {
			t.Fatalf("%d duplicate creates", n)
		}
	}

	for k := 1; k <= applies; k++ {
		t.Run(fmt.Sprintf("shutdown after apply %d", k), func(t *testing.T) {
			store := reconciletest.NewMemStore()
			f, _ := crashWorld(t, store)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			f.AfterApply = func(_ reconcile.Change, n int) {
				if n == k {
					cancel()
				}
			}
			_, _ = crashRunner(t, f, store, users).RunOnce(ctx, runner.RunOptions{Trigger: "cli"})
			f.AfterApply = nil
			check(t, f, store.Clone())
		})
	}
	for j := 1; j <= journals; j++ {
		t.Run(fmt.Sprintf("crash at journal %d", j), func(t *testing.T) {
			store := reconciletest.NewMemStore()
			f, _ := crashWorld(t, store)
			base := store.Journals()
			store.FailJournal = func(n int, _ reconcile.JournalEntry) error {
				if n == base+j {
					return errCrash
				}
				return nil
			}
			_, _ = crashRunner(t, f, store, users).RunOnce(context.Background(), runner.RunOptions{Trigger: "cli"})
			check(t, f, store.Clone()) // the clone is the state file as the crash left it
		})
	}
}

// The same crash matrix, reopening a real state file between the attempts.
func TestCrashReopensStateFile(t *testing.T) {
	refStore := reconciletest.NewMemStore()
	refSink, users := crashWorld(t, refStore)
	if _, err := crashRunner(t, refSink, refStore, users).RunOnce(context.Background(), runner.RunOptions{Trigger: "cli"}); err != nil {
		t.Fatal(err)
	}
	want := endState(t, refSink, refStore)
	journals := refStore.Journals()
	for j := 2; j <= journals; j += 3 {
		t.Run(fmt.Sprintf("crash at journal %d", j), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "idsync.db")
			st, err := state.Open(path, state.Options{})
			if err != nil {
				t.Fatal(err)
			}
			ss := &stateStore{Store: st}
			f, _ := crashWorld(t, ss)
			ss.failAt = ss.n + j
			_, _ = crashRunner(t, f, ss, users).RunOnce(context.Background(), runner.RunOptions{Trigger: "cli"})
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			st, err = state.Open(path, state.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if _, err := crashRunner(t, f, st, users).RunOnce(context.Background(), runner.RunOptions{Trigger: "startup"}); err != nil {
				t.Fatal(err)
			}
			if got := endState(t, f, st); got != want {
				t.Fatalf("end state differs:\n--- got\n%s\n--- want\n%s", got, want)
			}
			if f.DuplicateCreates() != 0 {
				t.Fatalf("duplicate creates")
			}
		})
	}
}

var _ = configs.PolicySync
