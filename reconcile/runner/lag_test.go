package runner_test

import (
	"slices"
	"sync"
	"testing"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/reconcile/runner"
)

// lagSet is a concurrency-safe set of accounts Jira's search index does not show yet.
type lagSet struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (l *lagSet) set(ids ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ids = map[string]bool{}
	for _, id := range ids {
		l.ids[id] = true
	}
}

func (l *lagSet) has(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ids[id]
}

// Jira's member listings lag behind for accounts created moments ago. A leaver whose account
// they do not show yet still loses every group idsync added them to and every product-access
// group (deactivating with nothing to remove would leave them their access while recording
// them as deactivated); a mover's old membership is not forgotten, so the pass after the lag
// removes it.
func TestSearchIndexLag(t *testing.T) {
	e := newEnv(t, []reconcile.User{
		user("1", "alice", "alice@example.com", "Engineering"),
		user("2", "bob", "bob@example.com", "Engineering"),
		user("3", "carol", "carol@example.com"),
	}, baseMapping(), limits(configs.SafetyConfig{Policy: configs.PolicySync}))
	e.sink.CreateAddsTo = []string{"jira-software-users"}
	lag := &lagSet{}
	e.sink.Lagging = lag.has
	e.run(runner.RunOptions{})
	alice, _ := e.sink.AccountByEmail("alice@example.com")
	bob, _ := e.sink.AccountByEmail("bob@example.com")

	// Alice is disabled and bob moves to Sales while the index does not show either yet.
	lag.set(alice.AccountID, bob.AccountID)
	e.src.Set([]reconcile.User{
		disabled(user("1", "alice", "alice@example.com", "Engineering")),
		user("2", "bob", "bob@example.com", "Sales"),
		user("3", "carol", "carol@example.com"),
	})
	run := e.run(runner.RunOptions{})
	if applied(run, reconcile.KindDeactivateUser) != 1 || !run.Changes.DeactivateUsers[0].Unlisted {
		t.Fatalf("alice not deactivated as unlisted: %+v %+v", run.Counts, run.Changes.DeactivateUsers)
	}
	for _, g := range []string{"engineering", "jira-software-users"} {
		if slices.Contains(e.sink.Members(g), alice.AccountID) {
			t.Errorf("deactivated alice is still in %s", g)
		}
	}
	if !slices.Contains(e.sink.Members("Sales"), bob.AccountID) {
		t.Errorf("bob not added to Sales")
	}
	owned, _ := e.store.Owned()
	if !slices.ContainsFunc(owned, func(o reconcile.Owned) bool {
		return o.AccountID == bob.AccountID && o.ContainerName == "engineering"
	}) {
		t.Fatalf("the ownership of bob's engineering membership was forgotten while the index hid it")
	}

	// The index catches up: bob leaves engineering.
	lag.set()
	run = e.run(runner.RunOptions{})
	if slices.Contains(e.sink.Members("engineering"), bob.AccountID) {
		t.Errorf("bob kept engineering after the lag: %+v", run.Counts)
	}
	if again := e.run(runner.RunOptions{}); again.Changes.HasChanges() {
		t.Errorf("not converged: %+v", again.Changes)
	}
}
