package jira_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/metrics"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/sinks/jira"
	"github.com/idsync/idsync/sinks/jira/jiratest"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
)

// addMembers applies n AddMember changes with the given parallelism and returns the first error.
func addMembers(t *testing.T, e *env, n, par int) error {
	t.Helper()
	gid, err := e.sim.AddGroup(fmt.Sprintf("storm-%d", time.Now().UnixNano()), "")
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, n)
	for i := range ids {
		if ids[i], err = e.sim.AddUser(jiratest.User{Email: fmt.Sprintf("s%d-%s@example.com", i, gid[:8])}); err != nil {
			t.Fatal(err)
		}
	}
	ctx := ctxT(t)
	work := make(chan string)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				_, err := e.sink.Apply(ctx, reconcile.Change{Kind: reconcile.KindAddMember, AccountID: id, Group: &reconcile.GroupRef{ID: gid}})
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
	return first
}

// A client that has no idea of the limit hammers a tight bucket: every 429 must be waited
// out (no request of the throttled class before Retry-After), and every change still lands.
func TestRateLimitStormNoEarlyRetries(t *testing.T) {
	e := newEnv(t, withScale(4), withRate(0, 0, 8), withSim(func(o *jiratest.Options) {
		o.Limits = map[string]jiratest.Limit{"POST /rest/api/3/group/user": {RPS: 10, Burst: 3}}
	}))
	if err := addMembers(t, e, 60, 8); err != nil {
		t.Fatalf("storm did not complete: %v", err)
	}
	if e.sim.Throttled() == 0 {
		t.Fatal("no 429 issued: the test does not test anything")
	}
	if n := e.sim.EarlyRetries(); n != 0 {
		t.Fatalf("%d requests arrived inside their Retry-After window", n)
	}
	b := e.sink.Budget()
	if b.Throttled == 0 || b.RetryAfter < time.Second || b.Reason != jiratest.ReasonBurst {
		t.Errorf("budget = %+v", b)
	}
	t.Logf("throttled %d, writes %d", e.sim.Throttled(), e.sim.Writes())
}

// A tenant-wide quota (the site bucket) stops every class: reads and writes running together
// must all respect it.
func TestTenantQuotaPausesEveryClass(t *testing.T) {
	e := newEnv(t, withScale(4), withRate(0, 0, 6), withSim(func(o *jiratest.Options) { o.Rate = jiratest.Limit{RPS: 30, Burst: 3} }))
	for i := range 120 {
		_, _ = e.sim.AddUser(jiratest.User{Email: fmt.Sprintf("q%d@example.com", i), Groups: []string{fmt.Sprintf("g%d", i%40)}})
	}
	var groups []string
	for i := range 40 {
		groups = append(groups, fmt.Sprintf("g%d", i))
	}
	var wg sync.WaitGroup
	var liveErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, liveErr = e.sink.Live(ctxT(t), reconcile.Scope{Groups: groups})
	}()
	err := addMembers(t, e, 40, 4)
	wg.Wait()
	if err != nil || liveErr != nil {
		t.Fatalf("apply: %v; live: %v", err, liveErr)
	}
	if e.sim.Throttled() == 0 {
		t.Fatal("no 429 issued")
	}
	if n := e.sim.EarlyRetries(); n != 0 {
		t.Fatalf("%d early requests under a tenant quota", n)
	}
}

func TestServiceUnavailableBurst(t *testing.T) {
	e := newEnv(t)
	e.sim.InjectFault(jiratest.Fault503, 3, "POST /rest/api/3/group/user")
	e.sim.InjectFault(jiratest.Fault503, 2, "GET /rest/api/3/users/search")
	if err := addMembers(t, e, 5, 1); err != nil {
		t.Fatalf("503 burst not ridden out: %v", err)
	}
	if _, err := e.sink.Live(ctxT(t), reconcile.Scope{}); err != nil {
		t.Fatal(err)
	}
	if got := e.sim.Calls()[jiratest.Call{Method: "POST", Endpoint: "/rest/api/3/group/user", Status: 503}]; got != 3 {
		t.Fatalf("503s served = %d, want 3", got)
	}
	if e.sim.EarlyRetries() != 0 {
		t.Fatal("retried before the 503's Retry-After")
	}
}

func TestConnectionResetsAndTruncation(t *testing.T) {
	e := newEnv(t)
	for i := range 1500 {
		_, _ = e.sim.AddUser(jiratest.User{Email: fmt.Sprintf("r%d@example.com", i)})
	}
	e.sim.InjectFault(jiratest.FaultReset, 1, "GET /rest/api/3/users/search")
	e.sim.InjectFault(jiratest.FaultTruncate, 1, "GET /rest/api/3/users/search")
	e.sim.InjectFault(jiratest.Fault500, 1, "GET /rest/api/3/group/bulk")
	e.sim.InjectFault(jiratest.Fault502, 1, "GET /rest/api/3/applicationrole")
	live, err := e.sink.Live(ctxT(t), reconcile.Scope{Groups: []string{"jira-software-users"}})
	if err != nil {
		t.Fatalf("Live through faults: %v", err)
	}
	if len(live.Accounts) != 1502 {
		t.Fatalf("accounts = %d after retries, want 1502", len(live.Accounts))
	}
}

// A create whose answer was lost (processed, then the connection died) is checked before it
// is sent again: the group is adopted, never duplicated; one that was never processed is
// created on the next attempt.
func TestCreateAfterUnknownOutcome(t *testing.T) {
	e := newEnv(t)
	e.sim.InjectFault(jiratest.FaultResetAfter, 1, "POST /rest/api/3/group")
	res := mustApply(t, e, reconcile.Change{Kind: reconcile.KindCreateGroup, Group: &reconcile.GroupRef{Name: "Lost"}})
	g, _ := e.sim.Group("Lost")
	if !res.Adopted || res.GroupID != g.ID {
		t.Fatalf("result %+v, group %+v", res, g)
	}
	if n := e.sim.CallCount("POST", "/rest/api/3/group"); n != 1 {
		t.Fatalf("POST /group sent %d times; the existence check must come first", n)
	}

	e.sim.InjectFault(jiratest.FaultReset, 1, "POST /rest/api/3/group")
	res = mustApply(t, e, reconcile.Change{Kind: reconcile.KindCreateGroup, Group: &reconcile.GroupRef{Name: "Never"}})
	if g, ok := e.sim.Group("Never"); !ok || res.Adopted || res.GroupID != g.ID {
		t.Fatalf("result %+v, group %+v", res, g)
	}

	e.sim.InjectFault(jiratest.FaultResetAfter, 1, "POST /rest/servicedeskapi/customer")
	cres := mustApply(t, e, reconcile.Change{Kind: reconcile.KindCreateCustomer, Email: "lost@example.org", ServiceDesk: "DEMO"})
	if a, ok := e.sim.AccountByEmail("lost@example.org"); !ok || a.AccountID != cres.AccountID {
		t.Fatalf("customer %+v, result %+v", a, cres)
	}
	e.sim.InjectFault(jiratest.FaultResetAfter, 1, "POST /rest/api/3/user")
	ures := mustApply(t, e, reconcile.Change{Kind: reconcile.KindCreateUser, Email: "lostuser@example.com"})
	if a, ok := e.sim.AccountByEmail("lostuser@example.com"); !ok || a.AccountID != ures.AccountID {
		t.Fatalf("user %+v, result %+v", a, ures)
	}
	noDuplicates(t, e)
}

func TestRandomFaultsNeverDuplicate(t *testing.T) {
	e := newEnv(t, withSim(func(o *jiratest.Options) {
		o.Faults = jiratest.Faults{Rate: 0.3, Kinds: []jiratest.Fault{jiratest.Fault500, jiratest.Fault503,
			jiratest.FaultReset, jiratest.FaultResetAfter, jiratest.FaultTruncate}, RetryAfter: time.Second}
	}))
	ctx := ctxT(t)
	for i := range 20 {
		email := fmt.Sprintf("f%d@example.com", i)
		var err error
		for try := 0; try < 5; try++ { // the executor retries failed items next pass
			if _, err = e.sink.Apply(ctx, reconcile.Change{Kind: reconcile.KindCreateUser, Email: email}); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("create %s: %v", email, err)
		}
		for try := 0; try < 5; try++ {
			if _, err = e.sink.Apply(ctx, reconcile.Change{Kind: reconcile.KindCreateGroup, Group: &reconcile.GroupRef{Name: fmt.Sprintf("grp-%d", i)}}); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("create group %d: %v", i, err)
		}
	}
	noDuplicates(t, e)
}

func TestErrorsAreTypedAndHoldNoSecrets(t *testing.T) {
	clock := jiratest.NewScaledClock(100)
	_, srv := jiratest.NewServer(t, jiratest.Options{Clock: clock})
	cfg := configs.JiraConfig{BaseURL: srv.URL, Email: jiratest.DefaultEmail, APIToken: "wrong-secret-token",
		Products: []string{"jira-software"}}
	m := metrics.New()
	s, err := jira.New(cfg, jira.Options{Logger: zerolog.Nop(), Clock: clock, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Apply(ctxT(t), reconcile.Change{Kind: reconcile.KindCreateGroup, Group: &reconcile.GroupRef{Name: "x"}})
	if !errors.Is(err, jira.ErrUnauthorized) {
		t.Fatalf("err = %v, want ErrUnauthorized", err)
	}
	if strings.Contains(err.Error(), "wrong-secret-token") {
		t.Fatal("token in error")
	}
	var d dto.Metric
	if err := m.APIRequests.WithLabelValues("jira", "/rest/api/3/group", "POST", "401").Write(&d); err != nil {
		t.Fatal(err)
	}
	if n := d.GetCounter().GetValue(); n != 1 {
		t.Errorf("metrics counted %v 401s on POST /group", n)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	base := configs.JiraConfig{BaseURL: "https://x.atlassian.net", Email: "a@b.c", APIToken: "t"}
	for name, mut := range map[string]func(*configs.JiraConfig){
		"no email":         func(c *configs.JiraConfig) { c.Email = "" },
		"no token":         func(c *configs.JiraConfig) { c.APIToken = "" },
		"bad url":          func(c *configs.JiraConfig) { c.BaseURL = "x.atlassian.net" },
		"url with creds":   func(c *configs.JiraConfig) { c.BaseURL = "https://u:p@x.atlassian.net" },
		"bad method":       func(c *configs.JiraConfig) { c.Deactivate = "nuke" },
		"admin-api no url": func(c *configs.JiraConfig) { c.Deactivate = configs.DeactivateAdminAPI },
		"admin no key": func(c *configs.JiraConfig) {
			c.AdminAPI = &configs.AdminAPIConfig{BaseURL: "https://api.atlassian.com"}
		},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := base
			mut(&cfg)
			if _, err := jira.New(cfg, jira.Options{}); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	s, err := jira.New(base, jira.Options{})
	if err != nil || s.Method() != configs.DeactivateRemoveAccess {
		t.Fatalf("defaults: %v %v", s, err)
	}
}

func TestContextCancelStopsWaiting(t *testing.T) {
	e := newEnv(t, withSim(func(o *jiratest.Options) {
		o.Limits = map[string]jiratest.Limit{"GET /rest/api/3/users/search": {RPS: 0.001, Burst: 1}}
		o.RetryAfter = time.Hour
	}))
	ctx := ctxT(t)
	if _, err := e.sink.Live(ctx, reconcile.Scope{}); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err := e.sink.Live(short, reconcile.Scope{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's deadline", err)
	}
}

// A rate configured ten times above what the site allows: the sink halves rate and burst on
// each 429 and then recovers only to just under the rate it was throttled at, so it settles
// below the site's limit instead of climbing back into it every few seconds (without the
// ceiling this run does not finish in 30 s).
func TestThrottledRateSettlesBelowTheSiteLimit(t *testing.T) {
	e := newEnv(t, withScale(4), withRate(400, 20, 8), withSim(func(o *jiratest.Options) {
		o.Limits = map[string]jiratest.Limit{"POST /rest/api/3/group/user": {RPS: 40, Burst: 5}}
	}))
	if err := addMembers(t, e, 600, 8); err != nil {
		t.Fatalf("adds did not complete: %v", err)
	}
	if e.sim.EarlyRetries() != 0 {
		t.Fatal("requests inside a Retry-After window")
	}
	if n := e.sim.Throttled(); n == 0 || n > 45 {
		t.Fatalf("%d 429s for 600 adds at a 40/s site limit, want a few dozen at most", n)
	}
	t.Logf("throttled %d", e.sim.Throttled())
}
