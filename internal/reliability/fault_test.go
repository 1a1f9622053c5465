package reliability

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/sinks/jira/jiratest"
	"github.com/idsync/idsync/sources/miniorange/miniorangetest"
)

// scenarioSize is the org a fault scenario runs on.
type scenarioSize struct {
	users, groups, batchCap int
}

func faultSize() scenarioSize {
	if long {
		return scenarioSize{users: 100, groups: 15, batchCap: 30}
	}
	return scenarioSize{users: 24, groups: 6, batchCap: 8}
}

func faultOrg(sz scenarioSize) miniorangetest.Org {
	return miniorangetest.GenerateOrg(miniorangetest.OrgSpec{
		Users: sz.users, Groups: sz.groups, MembershipsPerUser: 2, DisabledCount: 2,
		Seed: 11, EmailDomain: "example.com",
	})
}

// faultConfig is the mapping every scenario uses: groups on the fly plus an explicit mapping,
// the default product group, and JSM customers with an organization, so every change kind
// meets the faults.
func faultConfig(w *world, dir string) cfgOpts {
	return cfgOpts{
		Dir: dir, JiraURL: w.JiraURL, MOURL: w.MOURL, PageSize: 500,
		ImportGroups: true,
		Groups:       "{idp: Engineering, jira: [engineering, developers]}",
		Customers:    "{idp: Support, service_desks: [DEMO], organizations: [Acme Customers]}",
		Grace:        1, MaxPercent: 50, MaxDeact: 100,
	}
}

// applyChurn changes the directory the same way in every run: some people leave, some move
// group, some are disabled, one is enabled again, some are hired. It uses explicit names (no
// simulator randomness), so a run whose faults drew random numbers churns the same.
func applyChurn(t testing.TB, mo *miniorangetest.Sim, org miniorangetest.Org) {
	t.Helper()
	var active, disabled []miniorangetest.User
	for _, u := range org.Users {
		if u.Disabled {
			disabled = append(disabled, u)
		} else {
			active = append(active, u)
		}
	}
	n := max(2, len(active)/12)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range active[:n] {
		must(mo.Leave(u.UserName))
	}
	for _, u := range active[n : 2*n] {
		if len(u.Groups) == 0 {
			continue
		}
		to := ""
		for _, g := range org.Groups {
			if !slices.Contains(u.Groups, g.Name) {
				to = g.Name
				break
			}
		}
		must(mo.Move(u.UserName, u.Groups[0], to))
	}
	for _, u := range active[2*n : 2*n+n/2+1] {
		must(mo.Disable(u.UserName))
	}
	if len(disabled) > 0 {
		must(mo.Enable(disabled[0].UserName))
	}
	for i := range n {
		groups := []string{"Engineering", "Support"}[i%2 : i%2+1]
		_, err := mo.Hire(miniorangetest.User{
			UserName: fmt.Sprintf("hire.%02d@example.com", i), Email: fmt.Sprintf("hire.%02d@example.com", i),
			FirstName: "Hire", LastName: fmt.Sprintf("Number %d", i), Groups: groups,
		})
		must(err)
	}
}

// faultScenario is one row of the matrix.
type faultScenario struct {
	name   string
	target string // jira | miniorange
	long   bool   // only in the long run
	// arm turns the fault on and returns the function that turns it off and says how many
	// faults were injected while it was on.
	arm func(w *world) (clear func() int64)
}

func jiraFaults(f jiratest.Faults) func(w *world) func() int64 {
	return func(w *world) func() int64 {
		before := w.jf.injected()
		w.jira.SetFaults(f)
		return func() int64 {
			w.jira.SetFaults(jiratest.Faults{})
			return w.jf.injected() - before
		}
	}
}

// moPageFault arms a miniOrange page fault for as long as the scenario's faulty passes run.
// Faults answered as errors are counted by the wrapper; faults that look like normal pages
// (a skewed total, a shifted page) are the normal answers of that page while armed.
func moPageFault(f miniorangetest.Fault) func(w *world) func() int64 {
	return func(w *world) func() int64 {
		before := w.mf.injected()
		pagesBefore := w.mf.pageRequests(f.Endpoint, f.Page)
		w.mo.AddFault(f)
		return func() int64 {
			w.mo.ClearFaults()
			n := w.mf.injected() - before
			if f.Kind == miniorangetest.FaultTotalSkew || f.Kind == miniorangetest.FaultShift {
				n += int64(w.mf.pageRequests(f.Endpoint, f.Page) - pagesBefore)
			}
			return n
		}
	}
}

var writeEndpoints = []string{
	"POST /rest/api/3/user", "POST /rest/api/3/group", "POST /rest/api/3/group/user",
	"DELETE /rest/api/3/group/user", "POST /rest/servicedeskapi/customer",
	"POST /rest/servicedeskapi/servicedesk/{serviceDeskId}/customer",
	"DELETE /rest/servicedeskapi/servicedesk/{serviceDeskId}/customer",
	"POST /rest/servicedeskapi/organization",
	"POST /rest/servicedeskapi/organization/{organizationId}/user",
	"PATCH /users/{account_id}/manage/profile",
}

func faultScenarios() []faultScenario {
	// The rates below are scaled: two thirds in the long run, half in the short one. Every
	// kind still fires several times per phase, and the waits faults cause (1 s backoffs,
	// Retry-After windows that stop a whole class of requests) stay within the time budget.
	r := func(x float64) float64 {
		if long {
			return x * 2 / 3
		}
		return x / 2
	}
	mo := func(kind miniorangetest.FaultKind, endpoint string, page, times, delta int) func(w *world) func() int64 {
		return moPageFault(miniorangetest.Fault{Kind: kind, Endpoint: endpoint, Page: page, Times: times, Delta: delta, Status: http.StatusBadGateway})
	}
	return []faultScenario{
		{name: "jira-5xx", target: "jira", arm: jiraFaults(jiratest.Faults{Rate: r(0.1), Kinds: []jiratest.Fault{jiratest.Fault500, jiratest.Fault502}})},
		{name: "jira-503-retry-after", target: "jira", arm: jiraFaults(jiratest.Faults{Rate: r(0.15), Kinds: []jiratest.Fault{jiratest.Fault503}, RetryAfter: time.Second})},
		{name: "jira-429-storm", target: "jira", arm: func(w *world) func() int64 {
			// A tenant quota of 2 requests/s against four workers for a few seconds: every
			// worker is throttled, again and again, until the storm passes.
			before := w.jira.Throttled()
			w.jira.SetRate(jiratest.Limit{RPS: 2, Burst: 1})
			storm := time.AfterFunc(stormLength(), func() { w.jira.SetRate(jiratest.Limit{}) })
			return func() int64 {
				storm.Stop()
				w.jira.SetRate(jiratest.Limit{})
				return w.jira.Throttled() - before
			}
		}},
		{name: "jira-429-sustained", target: "jira", long: true, arm: func(w *world) func() int64 {
			// A tenant quota of 25 requests/s for the whole phase, far below sink.jira's
			// configured 500/s: the sink must learn the real budget and never send early.
			before := w.jira.Throttled()
			w.jira.SetRate(jiratest.Limit{RPS: 25, Burst: 5})
			return func() int64 {
				w.jira.SetRate(jiratest.Limit{})
				return w.jira.Throttled() - before
			}
		}},
		{name: "jira-connection-reset", target: "jira", arm: jiraFaults(jiratest.Faults{Rate: r(0.1), Kinds: []jiratest.Fault{jiratest.FaultReset, jiratest.FaultResetAfter}})},
		{name: "jira-truncated-body", target: "jira", arm: jiraFaults(jiratest.Faults{Rate: r(0.1), Kinds: []jiratest.Fault{jiratest.FaultTruncate}})},
		{name: "jira-latency-spike", target: "jira", arm: func(w *world) func() int64 {
			w.jf.slowOver.Store(int64(900 * time.Millisecond))
			return jiraFaults(jiratest.Faults{Rate: r(0.06), Kinds: []jiratest.Fault{jiratest.FaultSlow}, SlowDelay: 1200 * time.Millisecond})(w)
		}},
		{name: "jira-search-index-lag", target: "jira", arm: func(w *world) func() int64 {
			before := len(w.jira.Accounts())
			w.jira.SetIndexLag(3 * time.Second)
			return func() int64 {
				w.jira.SetIndexLag(0)
				return int64(len(w.jira.Accounts()) - before) // accounts created while hidden from listings
			}
		}},
		{name: "jira-unknown-outcome-writes", target: "jira", arm: jiraFaults(jiratest.Faults{Rate: r(0.3), Endpoints: writeEndpoints,
			Kinds: []jiratest.Fault{jiratest.FaultResetAfter, jiratest.Fault500, jiratest.FaultTruncate, jiratest.Fault503}})},
		{name: "jira-mixed", target: "jira", arm: func(w *world) func() int64 {
			w.jf.slowOver.Store(int64(900 * time.Millisecond))
			return jiraFaults(jiratest.Faults{Rate: r(0.12), SlowDelay: time.Second})(w)
		}},
		{name: "miniorange-5xx", target: "miniorange", arm: func(w *world) func() int64 {
			before := w.mf.injected()
			w.mo.SetErrorRate(r(0.2), http.StatusInternalServerError)
			return func() int64 {
				w.mo.ClearFaults()
				return w.mf.injected() - before
			}
		}},
		{name: "miniorange-error-mid-pagination", target: "miniorange", arm: mo(miniorangetest.FaultStatus, miniorangetest.PathUsersList, 1, 5, 0)},
		{name: "miniorange-error-body-mid-pagination", target: "miniorange", arm: mo(miniorangetest.FaultBodyError, miniorangetest.PathUsersList, 1, 0, 0)},
		{name: "miniorange-total-disagrees", target: "miniorange", arm: mo(miniorangetest.FaultTotalSkew, miniorangetest.PathUsersList, 0, 0, 3)},
		{name: "miniorange-total-too-low", target: "miniorange", arm: mo(miniorangetest.FaultTotalSkew, miniorangetest.PathUsersList, 0, 0, -3)},
		{name: "miniorange-shifted-page", target: "miniorange", arm: mo(miniorangetest.FaultShift, miniorangetest.PathUsersList, 1, 0, 0)},
		{name: "miniorange-truncated-page", target: "miniorange", arm: mo(miniorangetest.FaultTruncate, miniorangetest.PathUsersList, 2, 3, 0)},
		{name: "miniorange-reset", target: "miniorange", arm: mo(miniorangetest.FaultReset, miniorangetest.PathUsersList, 1, 3, 0)},
		{name: "miniorange-group-members-error", target: "miniorange", arm: mo(miniorangetest.FaultBodyError, miniorangetest.PathGroupMembers, 0, 0, 0)},
	}
}

// scenarioResult is what one run of the scenario (faulty or not) ended with.
type scenarioResult struct {
	phase1, phase2 endState
	removals       []string
	passes         int
}

// stormLength is how long a 429 storm lasts.
func stormLength() time.Duration {
	if long {
		return 10 * time.Second
	}
	return 3 * time.Second
}

// faultPasses is how many passes of each phase run with the fault armed.
func faultPasses() int {
	if long {
		return 2
	}
	return 1
}

// runScenario runs the initial sync and then the churn, each to convergence, with the fault
// armed for the first passes of each phase when sc is not nil.
func runScenario(t *testing.T, sc *faultScenario, fig *faultFigure) scenarioResult {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	sz := faultSize()
	org := faultOrg(sz)
	w := newWorld(t, worldOpts{Org: org, MOBatchCap: sz.batchCap, Seed: 5})
	p := openInproc(t, faultConfig(w, t.TempDir()))
	var res scenarioResult
	for phase := range 2 {
		if phase == 1 {
			applyChurn(t, w.mo, org)
		}
		var clear func() int64
		if sc != nil {
			clear = sc.arm(w)
		}
		check := func(i int, run reconcile.Run) {
			checkPass(t, run)
			if sc == nil {
				return
			}
			if i < faultPasses() {
				fig.PassesWithFaults++
			}
			fig.FailedItems += failedItems(run)
			if !sourcesComplete(run) {
				fig.Incomplete++
			}
			if i == faultPasses()-1 {
				fig.FaultsInjected += clear()
				clear = nil
			}
		}
		n, _ := p.converge(ctx, 12, check)
		if clear != nil {
			// Converged while the fault was still armed (it never fired, or fired harmlessly).
			fig.FaultsInjected += clear()
		}
		res.passes += n
		if phase == 0 {
			res.phase1 = w.snapshot()
		} else {
			res.phase2 = w.snapshot()
		}
	}
	res.removals = w.removals()
	if dups := w.duplicates(); len(dups) > 0 {
		t.Errorf("duplicates on the Jira site: %v", dups)
		fig.Duplicates += len(dups)
	}
	if e := w.jira.EarlyRetries(); e != 0 {
		t.Errorf("%d requests were sent inside a Retry-After window", e)
		fig.EarlyRetries += e
	}
	fig.Throttled = w.jira.Throttled()
	return res
}

// checkPass asserts what every pass must do under faults: complete, or say what failed; and
// never take anything away on an incomplete read.
func checkPass(t *testing.T, run reconcile.Run) {
	t.Helper()
	switch run.Result {
	case reconcile.ResultOK:
		if n := failedItems(run); n > 0 {
			t.Errorf("pass %s: result ok with %d failed items", run.ID, n)
		}
	case reconcile.ResultPartial:
		if failedItems(run) == 0 && sourcesComplete(run) && len(run.Errors) == 0 {
			t.Errorf("pass %s: partial without failed items, errors or an incomplete read: %s", run.ID, runSummary(run))
		}
	case reconcile.ResultFailed:
		if len(run.Errors) == 0 || applied(run) > 0 {
			t.Errorf("pass %s: failed without saying why, or after applying items: %s", run.ID, runSummary(run))
		}
	default:
		t.Errorf("pass %s: unexpected result %q: %s", run.ID, run.Result, runSummary(run))
	}
	if !sourcesComplete(run) {
		if n := applied(run, removalKinds...); n > 0 {
			t.Errorf("pass %s: %d removals or deactivations applied on an incomplete source read", run.ID, n)
		}
	}
}

var removalKinds = []reconcile.Kind{reconcile.KindRemoveMember, reconcile.KindRemoveCustomer,
	reconcile.KindRemoveOrganizationMember, reconcile.KindDeactivateUser}

var (
	baselineOnce sync.Once
	baseline     scenarioResult
	baselineErr  string
)

// TestFaultMatrix runs every fault scenario against the same org and churn, and compares each
// with the fault-free run.
func TestFaultMatrix(t *testing.T) {
	t.Parallel()
	timed(t)
	t.Run("baseline", func(t *testing.T) {
		b := faultBaseline(t)
		if len(b.removals) == 0 {
			t.Error("the fault-free run removed nothing: the churn does not exercise removals")
		}
		t.Logf("fault-free: %d passes did work; %d distinct removals", b.passes, len(b.removals))
	})
	// The scenarios mostly wait (backoff, Retry-After, latency): they run all at once, in
	// subtests started from goroutines (t.Parallel would cap them at GOMAXPROCS).
	var wg sync.WaitGroup
	for _, sc := range faultScenarios() {
		if sc.long && !long {
			continue
		}
		wg.Go(func() { t.Run(sc.name, func(t *testing.T) { runFaultScenario(t, sc) }) })
	}
	wg.Wait()
}

// faultBaseline runs the fault-free scenario once per test binary (also when -run selects a
// single scenario).
func faultBaseline(t *testing.T) scenarioResult {
	baselineOnce.Do(func() {
		var fig faultFigure
		baseline = runScenario(t, nil, &fig)
		if t.Failed() {
			baselineErr = "the fault-free run failed"
		}
	})
	if baselineErr != "" {
		t.Fatal(baselineErr)
	}
	return baseline
}

func runFaultScenario(t *testing.T, sc faultScenario) {
	baseline := faultBaseline(t)
	start := time.Now()
	fig := faultFigure{Name: sc.name, Target: sc.target, BaselinePasses: baseline.passes}
	res := runScenario(t, &sc, &fig)
	fig.PassesToConverge = res.passes
	for i, pair := range [][2]endState{{baseline.phase1, res.phase1}, {baseline.phase2, res.phase2}} {
		if d := pair[0].diff(pair[1], 20); len(d) > 0 {
			fig.Lost += len(d)
			t.Errorf("phase %d: end state differs from the fault-free run:\n  %s", i+1, joinLines(d))
		}
	}
	if extra := setDiff(res.removals, baseline.removals); len(extra) > 0 {
		fig.ExtraRemovals = len(extra)
		t.Errorf("removals the fault-free run did not make: %v", head(extra, 10))
	}
	if fig.FaultsInjected == 0 {
		t.Errorf("no fault was injected: the scenario proves nothing")
	}
	fig.Seconds = time.Since(start).Round(time.Millisecond).Seconds()
	t.Logf("%s: %d faults injected over %d passes, %d failed items reported, %d incomplete reads, converged after %d passes (fault-free %d), %d duplicates, %d lost, %d extra removals, %d early retries",
		sc.name, fig.FaultsInjected, fig.PassesWithFaults, fig.FailedItems, fig.Incomplete, fig.PassesToConverge, fig.BaselinePasses,
		fig.Duplicates, fig.Lost, fig.ExtraRemovals, fig.EarlyRetries)
	figures.update(func(r *report) { r.Faults = append(r.Faults, fig) })
}

func joinLines(s []string) string { return strings.Join(s, "\n  ") }
