package reliability

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/sources/ldap/ldaptest"
)

// ldapFaultScenario is one LDAP row of the fault matrix: arm turns the fault on at the proxy
// in front of slapd and returns what turns it off and counts the faults injected.
type ldapFaultScenario struct {
	name string
	arm  func(w *ldapWorld) (clear func() int64)
}

func ldapFaultScenarios() []ldapFaultScenario {
	return []ldapFaultScenario{
		// Past the StartTLS handshake and the bind, inside the paged user search.
		{name: "ldap-connection-cut-mid-search", arm: func(w *ldapWorld) func() int64 {
			before := w.proxy.Cuts()
			w.proxy.Cut(9_000)
			return func() int64 { w.proxy.Cut(0); return w.proxy.Cuts() - before }
		}},
		// The answer stops coming: the page's timeout ends the read.
		{name: "ldap-stalled-answer", arm: func(w *ldapWorld) func() int64 {
			before := w.proxy.Cuts()
			w.proxy.Stall(9_000)
			return func() int64 { w.proxy.Stall(0); return w.proxy.Cuts() - before }
		}},
		{name: "ldap-server-down", arm: func(w *ldapWorld) func() int64 {
			before := w.proxy.Refused()
			w.proxy.Refuse(true)
			return func() int64 { w.proxy.Refuse(false); return w.proxy.Refused() - before }
		}},
	}
}

// ldapScenarioResult is what one LDAP run (faulty or not) ended with.
type ldapScenarioResult struct {
	phase1, phase2 endState
	removals       []string
	passes         int
}

func ldapFaultSpec() ldaptest.OrgSpec {
	if long {
		return ldaptest.OrgSpec{OU: "org", Users: 120, Disabled: 2}
	}
	return ldaptest.OrgSpec{OU: "org", Users: 48, Disabled: 2}
}

// runLDAPScenario runs the initial sync and then the churn, each to convergence, with the
// fault armed for the first passes of each phase when sc is not nil.
func runLDAPScenario(t *testing.T, sc *ldapFaultScenario, fig *faultFigure) ldapScenarioResult {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	w := newLDAPWorld(t, ldapFaultSpec())
	churn := newLDAPChurn(w.org)
	p := openLDAPInproc(t, w.writeConfig(t, ldapCfg{Dir: t.TempDir(), Grace: 1, PageSize: 10, MaxPercent: 50, MaxDeact: 100, Timeout: "2s"}))
	var res ldapScenarioResult
	for phase := range 2 {
		if phase == 1 {
			churn.apply(t, w)
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
				if sourcesComplete(run) {
					t.Errorf("phase %d pass %d: the LDAP read was complete with the fault armed: %s", phase+1, i+1, runSummary(run))
				}
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
	return res
}

var (
	ldapBaselineOnce sync.Once
	ldapBaseline     ldapScenarioResult
	ldapBaselineErr  string
)

func ldapFaultBaseline(t *testing.T) ldapScenarioResult {
	ldapBaselineOnce.Do(func() {
		var fig faultFigure
		ldapBaseline = runLDAPScenario(t, nil, &fig)
		if t.Failed() {
			ldapBaselineErr = "the fault-free LDAP run failed"
		}
	})
	if ldapBaselineErr != "" {
		t.Fatal(ldapBaselineErr)
	}
	return ldapBaseline
}

// TestLDAPFaultMatrix runs the LDAP source's faults against the same directory and churn,
// and compares each run with the fault-free one: every faulty read is incomplete (nothing
// removed on it), the passes converge to the same Jira state, and no removal is made that
// the fault-free run did not make.
func TestLDAPFaultMatrix(t *testing.T) {
	t.Parallel()
	timed(t)
	t.Run("baseline", func(t *testing.T) {
		b := ldapFaultBaseline(t)
		if len(b.removals) == 0 {
			t.Error("the fault-free run removed nothing: the churn does not exercise removals")
		}
		t.Logf("fault-free: %d passes did work; %d distinct removals", b.passes, len(b.removals))
	})
	var wg sync.WaitGroup
	for _, sc := range ldapFaultScenarios() {
		wg.Go(func() { t.Run(sc.name, func(t *testing.T) { runLDAPFaultScenario(t, sc) }) })
	}
	wg.Wait()
}

func runLDAPFaultScenario(t *testing.T, sc ldapFaultScenario) {
	baseline := ldapFaultBaseline(t)
	start := time.Now()
	fig := faultFigure{Name: sc.name, Target: "ldap", BaselinePasses: baseline.passes}
	res := runLDAPScenario(t, &sc, &fig)
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
	t.Logf("%s: %d faults injected over %d passes, %d incomplete reads, converged after %d passes (fault-free %d), %d lost, %d extra removals",
		sc.name, fig.FaultsInjected, fig.PassesWithFaults, fig.Incomplete, fig.PassesToConverge, fig.BaselinePasses, fig.Lost, fig.ExtraRemovals)
	figures.update(func(r *report) { r.Faults = append(r.Faults, fig) })
}
