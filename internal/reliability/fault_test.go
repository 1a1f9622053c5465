package reliability

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idsync/idsync/configs"
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

// suspendChurn readies the suspend rows: the people applyChurn will take away (leavers and the
// disabled) are first given the legacy product-access group by hand, so that the end state
// shows suspension keeping it.
func suspendChurn(t testing.TB, w *world, org miniorangetest.Org) {
	t.Helper()
	for _, u := range churned(org) {
		w.inspect(func() {
			a, ok := w.jira.AccountByEmail(u.Email)
			if !ok {
				t.Fatalf("%s has no Jira account after the initial sync", u.Email)
			}
			if err := w.jira.AddMember(jiratest.LegacyAccessGroup, a.AccountID); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// churned are the active people applyChurn makes leave or disables, and returners those it
// disables (a suspend row's third phase enables them again).
func churned(org miniorangetest.Org) []miniorangetest.User {
	active, n := churnActive(org)
	return append(append([]miniorangetest.User(nil), active[:n]...), active[2*n:2*n+n/2+1]...)
}

func returners(org miniorangetest.Org) []miniorangetest.User {
	active, n := churnActive(org)
	return active[2*n : 2*n+n/2+1]
}

func churnActive(org miniorangetest.Org) ([]miniorangetest.User, int) {
	var active []miniorangetest.User
	for _, u := range org.Users {
		if !u.Disabled {
			active = append(active, u)
		}
	}
	return active, max(2, len(active)/12)
}

// faultScenario is one row of the matrix.
type faultScenario struct {
	name   string
	target string // jira | miniorange
	long   bool   // only in the long run
	// deactivate is sink.jira.deactivate ("": remove-access). A suspend row runs a third
	// phase in which the disabled people return, and compares with the suspend baseline.
	deactivate string
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

// orgEndpoints are the organization API's, which deactivate: suspend uses.
var orgEndpoints = []string{
	"GET /admin/v2/orgs/{orgId}/directories",
	"GET /admin/v2/orgs/{orgId}/directories/{directoryId}/users",
	"POST /admin/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}/suspend",
	"POST /admin/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}/restore",
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
	suspendQueued := false
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
		{name: "jira-suspend-unknown-outcome", target: "jira", deactivate: configs.DeactivateSuspend, arm: func(w *world) func() int64 {
			// Suspend and restore whose answers are lost (the change is made) or refused with
			// a 5xx, at random and, so that each kind fires at least once, queued for the
			// first calls (runScenario checks they met them); plus faults on the other writes
			// and the directory reads.
			if !suspendQueued {
				suspendQueued = true
				for _, ep := range orgEndpoints[2:] {
					w.jira.InjectFault(jiratest.FaultResetAfter, 1, ep)
					w.jira.InjectFault(jiratest.Fault500, 1, ep)
				}
				w.jira.InjectFault(jiratest.Fault500, 1, orgEndpoints[0])
			}
			return jiraFaults(jiratest.Faults{Rate: r(0.3), Endpoints: append(slices.Clone(writeEndpoints), orgEndpoints...),
				Kinds: []jiratest.Fault{jiratest.FaultResetAfter, jiratest.Fault500, jiratest.FaultTruncate, jiratest.Fault503}})(w)
		}},
		{name: "jira-suspend-mixed", target: "jira", long: true, deactivate: configs.DeactivateSuspend, arm: func(w *world) func() int64 {
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
	phases   []endState
	removals []string
	passes   int
	// suspended is, per phase, each suspended account with the times it was suspended
	// (accounts never suspended are left out).
	suspended []map[string]int
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
// armed for the first passes of each phase when sc is not nil. With deactivate: suspend the
// site's role has the legacy access group, the people the churn takes away are in it, and a
// third phase enables the disabled people again.
func runScenario(t *testing.T, deactivate string, sc *faultScenario, fig *faultFigure) scenarioResult {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	sz := faultSize()
	org := faultOrg(sz)
	wo := worldOpts{Org: org, MOBatchCap: sz.batchCap, Seed: 5}
	phases := 2
	if deactivate == configs.DeactivateSuspend {
		wo.Jira, phases = jiratest.LegacyAccessSeed(), 3
	}
	w := newWorld(t, wo)
	cfg := faultConfig(w, t.TempDir())
	cfg.Deactivate = deactivate
	p := openInproc(t, cfg)
	var res scenarioResult
	for phase := range phases {
		switch {
		case phase == 1 && deactivate == configs.DeactivateSuspend:
			suspendChurn(t, w, org)
			applyChurn(t, w.mo, org)
		case phase == 1:
			applyChurn(t, w.mo, org)
		case phase == 2:
			for _, u := range returners(org) {
				if err := w.mo.Enable(u.UserName); err != nil {
					t.Fatal(err)
				}
			}
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
		res.phases = append(res.phases, w.snapshot())
		res.suspended = append(res.suspended, suspensions(w))
	}
	if sc != nil && sc.name == "jira-suspend-unknown-outcome" {
		calls := w.jira.Calls()
		for _, ep := range orgEndpoints[2:] {
			method, tmpl, _ := strings.Cut(ep, " ")
			if calls[jiratest.Call{Method: method, Endpoint: tmpl, Status: http.StatusInternalServerError}] == 0 {
				t.Errorf("%s never met a fault", ep)
			}
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

// suspensions maps each suspended account (by email) to the times it was suspended.
func suspensions(w *world) map[string]int {
	out := map[string]int{}
	w.inspect(func() {
		for _, a := range w.jira.Accounts() {
			if a.Suspended {
				out[accountKey(a)] = a.Suspensions
			}
		}
	})
	return out
}

// baselines are the fault-free runs, one per deactivation method, each run once per test
// binary.
var baselines = map[string]*baselineRun{"": {}, configs.DeactivateSuspend: {}}

type baselineRun struct {
	once sync.Once
	res  scenarioResult
	err  string
}

// TestFaultMatrix runs every fault scenario against the same org and churn, and compares each
// with the fault-free run.
func TestFaultMatrix(t *testing.T) {
	t.Parallel()
	timed(t)
	t.Run("baseline", func(t *testing.T) {
		b := faultBaseline(t, "")
		if len(b.removals) == 0 {
			t.Error("the fault-free run removed nothing: the churn does not exercise removals")
		}
		t.Logf("fault-free: %d passes did work; %d distinct removals", b.passes, len(b.removals))
	})
	t.Run("baseline-suspend", func(t *testing.T) {
		b := faultBaseline(t, configs.DeactivateSuspend)
		checkSuspendBaseline(t, b)
		t.Logf("fault-free with suspend: %d passes did work; suspended after the churn %v", b.passes, b.suspended[1])
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

// faultBaseline runs the fault-free scenario of a deactivation method once per test binary
// (also when -run selects a single scenario).
func faultBaseline(t *testing.T, deactivate string) scenarioResult {
	b := baselines[deactivate]
	b.once.Do(func() {
		var fig faultFigure
		b.res = runScenario(t, deactivate, nil, &fig)
		if t.Failed() {
			b.err = "the fault-free run failed"
		}
	})
	if b.err != "" {
		t.Fatal(b.err)
	}
	return b.res
}

// checkSuspendBaseline: with suspend, the people the churn takes away are suspended with
// every group kept (the legacy access group too), and those who return are restored.
func checkSuspendBaseline(t *testing.T, b scenarioResult) {
	t.Helper()
	org := faultOrg(faultSize())
	for _, u := range churned(org) {
		key := strings.ToLower(u.Email)
		if b.suspended[1][key] != 1 {
			t.Errorf("%s: suspended %d times after the churn, want once", key, b.suspended[1][key])
		}
		if !slices.Contains(b.phases[1].Groups[jiratest.LegacyAccessGroup], key) {
			t.Errorf("%s left %s although suspension keeps groups", key, jiratest.LegacyAccessGroup)
		}
	}
	for _, u := range returners(org) {
		key := strings.ToLower(u.Email)
		if _, still := b.suspended[2][key]; still || !slices.Contains(b.phases[2].Groups[jiratest.LegacyAccessGroup], key) {
			t.Errorf("%s: still suspended after returning, or without the groups it kept", key)
		}
	}
}

func runFaultScenario(t *testing.T, sc faultScenario) {
	baseline := faultBaseline(t, sc.deactivate)
	start := time.Now()
	fig := faultFigure{Name: sc.name, Target: sc.target, BaselinePasses: baseline.passes}
	res := runScenario(t, sc.deactivate, &sc, &fig)
	fig.PassesToConverge = res.passes
	for i := range baseline.phases {
		if d := baseline.phases[i].diff(res.phases[i], 20); len(d) > 0 {
			fig.Lost += len(d)
			t.Errorf("phase %d: end state differs from the fault-free run:\n  %s", i+1, joinLines(d))
		}
		if want, got := baseline.suspended[i], res.suspended[i]; !maps.Equal(want, got) {
			fig.Lost++
			t.Errorf("phase %d: suspended accounts (and times suspended) %v, fault-free %v", i+1, got, want)
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
