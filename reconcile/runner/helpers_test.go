package runner_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/reconcile/reconciletest"
	"github.com/idsync/idsync/reconcile/runner"
)

// clock is a test clock that advances a second per reading (safe for concurrent use).
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 4, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

func (c *clock) advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

func user(key, name, email string, groups ...string) reconcile.User {
	return reconcile.User{Key: key, UserName: name, Email: email, DisplayName: name, Active: true, Groups: groups}
}

// numbered returns n active people u0..u(n-1) with keys 0..n-1, emails uN@example.com, all
// in groups.
func numbered(n int, groups ...string) []reconcile.User {
	users := make([]reconcile.User, 0, n)
	for i := range n {
		users = append(users, user(fmt.Sprint(i), fmt.Sprintf("u%d", i), fmt.Sprintf("u%d@example.com", i), groups...))
	}
	return users
}

func disabled(u reconcile.User) reconcile.User {
	u.Active = false
	return u
}

func baseMapping() configs.MappingConfig {
	return configs.MappingConfig{
		ImportUsers:   true,
		ImportGroups:  true,
		Groups:        []configs.GroupMapping{{IdP: "Engineering", Jira: []string{"engineering"}}},
		DefaultGroups: []string{"jira-software-users"},
		Customers:     []configs.CustomerMapping{{IdP: "Jira-Service-group", ServiceDesks: []string{"DEMO"}, Organizations: []string{"Acme"}}},
	}
}

// limits fills the breaker thresholds a test leaves at 0 with values no test reaches: 0 means
// "hold every one", so a test names only the thresholds it exercises.
func limits(s configs.SafetyConfig) configs.SafetyConfig {
	if s.MaxDeactivations == 0 {
		s.MaxDeactivations = 1 << 30
	}
	if s.MaxMembershipRemovals == 0 {
		s.MaxMembershipRemovals = 1 << 30
	}
	if s.MaxDeactivationPercent == 0 {
		s.MaxDeactivationPercent = 100
	}
	return s
}

func openSafety() configs.SafetyConfig {
	return limits(configs.SafetyConfig{Policy: configs.PolicySync, GracePasses: 0})
}

// newSite is a Jira with a site admin, an app account, the product-access group, the site-admin
// group and desk DEMO.
func newSite() *reconciletest.FakeSink {
	f := reconciletest.NewFakeSink()
	admin := f.AddAccount(reconcile.Account{Email: "admin@example.com", DisplayName: "Admin", Active: true, SiteAdmin: true})
	f.AddAccount(reconcile.Account{AccountType: reconcile.AccountApp, DisplayName: "Automation", Active: true})
	f.AddGroup("jira-software-users", true)
	f.AddGroup("site-admins", false)
	_ = f.SetAdmin("site-admins")
	_ = f.AddToGroup("jira-software-users", admin)
	_ = f.AddToGroup("site-admins", admin)
	f.AddDesk("DEMO", "Demo service project")
	return f
}

type env struct {
	t     *testing.T
	src   *reconciletest.FakeSource
	sink  *reconciletest.FakeSink
	store *reconciletest.MemStore
	clock *clock
	r     *runner.Runner
	cfg   runner.RunnerConfig
}

func newEnv(t *testing.T, users []reconcile.User, m configs.MappingConfig, s configs.SafetyConfig) *env {
	t.Helper()
	e := &env{t: t, src: reconciletest.NewFakeSource("corp", users), sink: newSite(),
		store: reconciletest.NewMemStore(), clock: newClock()}
	e.cfg = runner.RunnerConfig{
		Sources: []runner.SourceSpec{{Source: e.src, Priority: 10}},
		Sink:    e.sink, Store: e.store, Mapping: m, Safety: s, Concurrency: 4,
		Logger: zerolog.Nop(), Now: e.clock.Now,
	}
	e.rebuild()
	return e
}

func (e *env) rebuild() {
	e.t.Helper()
	e.cfg.Store = e.store
	e.cfg.Sink = e.sink
	r, err := runner.NewRunner(e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.r = r
}

func (e *env) run(o runner.RunOptions) reconcile.Run {
	e.t.Helper()
	if o.Trigger == "" {
		o.Trigger = reconcile.TriggerCLI
	}
	run, err := e.r.RunOnce(context.Background(), o)
	if err != nil {
		e.t.Fatalf("RunOnce: %v (run %+v)", err, run.Errors)
	}
	return run
}

// applied counts items of a kind that ended ok in a run.
func applied(run reconcile.Run, k reconcile.Kind) int { return run.Counts[k][reconcile.ItemOK] }

func totalApplied(run reconcile.Run) int {
	n := 0
	for _, m := range run.Counts {
		n += m[reconcile.ItemOK] + m[reconcile.ItemFailed]
	}
	return n
}

// waitFor polls cond until it holds, failing the test after 10 s with what it waited for.
// The runner reports its state only through Status; the deadline catches hangs, not speed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// t0 is the tests' fixed start of time (the domain tests in package reconcile have their own).
var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
