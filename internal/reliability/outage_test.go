package reliability

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idsync/idsync/internal/metrics"
	"github.com/idsync/idsync/internal/testlog"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/sources/miniorange/miniorangetest"
)

func outageOrg() miniorangetest.Org {
	return miniorangetest.GenerateOrg(miniorangetest.OrgSpec{
		Users: 30, Groups: 5, MembershipsPerUser: 2, DisabledCount: 1, Seed: 31, EmailDomain: "example.com",
	})
}

// unguarded is a config whose grace and breaker would let every removal through at once: only
// the incomplete-read rule stands between a source outage and a mass deactivation.
func unguarded(w *world, dir string) cfgOpts {
	return cfgOpts{Dir: dir, JiraURL: w.JiraURL, MOURL: w.MOURL, ImportGroups: true, PageSize: 500,
		Grace: 0, MaxPercent: 100, MaxDeact: 100000, MaxRemovals: 100000}
}

// leaveSome removes n users from the directory: a read that is trusted would now take
// their access away.
func leaveSome(t *testing.T, w *world, org miniorangetest.Org, n int) {
	t.Helper()
	for _, u := range org.Users[:n] {
		if err := w.mo.Leave(u.UserName); err != nil {
			t.Fatal(err)
		}
	}
}

// sourceGauge reads idsync_source_read_complete{source=corp} from the app's /metrics handler
// (-1 when it has no sample).
func sourceGauge(p *inproc) float64 {
	rec := httptest.NewRecorder()
	p.M.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	v, ok := metrics.Sum(rec.Body.String(), "idsync_source_read_complete", map[string]string{"source": "corp"})
	if !ok {
		return -1
	}
	return v
}

// TestOutageSource: the source refusing connections, answering an error in the middle of its
// pages, or answering an empty directory never deactivates or removes anything.
func TestOutageSource(t *testing.T) {
	t.Parallel()
	timed(t)
	passes := 1
	if long {
		passes = 3
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// outage runs the failing passes and checks them; fix ends the outage (nil: it lasts).
	type outage struct {
		name  string
		cfg   func(w *world, dir string) cfgOpts
		start func(t *testing.T, w *world, org miniorangetest.Org)
		fix   func(w *world)
		// check is called after every failing pass.
		check func(t *testing.T, p *inproc, run reconcile.Run)
	}
	incomplete := func(t *testing.T, p *inproc, run reconcile.Run) {
		t.Helper()
		if sourcesComplete(run) {
			t.Errorf("pass %s read the source completely during the outage: %s", run.ID, runSummary(run))
		}
		if run.Result != reconcile.ResultPartial {
			t.Errorf("pass %s: result %q, want partial (stored snapshot stands in)", run.ID, run.Result)
		}
		if g := sourceGauge(p); g != 0 {
			t.Errorf("idsync_source_read_complete{source=corp} = %v during the outage, want 0", g)
		}
	}
	pageFault := func(kind miniorangetest.FaultKind) func(t *testing.T, w *world, org miniorangetest.Org) {
		return func(t *testing.T, w *world, org miniorangetest.Org) {
			leaveSome(t, w, org, 3)
			w.mo.SetBatchCap(8)
			w.mo.AddFault(miniorangetest.Fault{Kind: kind, Endpoint: miniorangetest.PathUsersList, Page: 1, Status: http.StatusBadGateway})
		}
	}
	cases := []outage{
		{name: "connection-refused", cfg: unguarded, check: incomplete,
			start: func(t *testing.T, w *world, org miniorangetest.Org) { leaveSome(t, w, org, 3); w.stopSource() }},
		{name: "5xx-mid-pagination", cfg: unguarded, check: incomplete, start: pageFault(miniorangetest.FaultStatus),
			fix: func(w *world) { w.mo.ClearFaults() }},
		{name: "error-body-mid-pagination", cfg: unguarded, check: incomplete, start: pageFault(miniorangetest.FaultBodyError),
			fix: func(w *world) { w.mo.ClearFaults() }},
		{name: "cut-off-mid-pagination", cfg: unguarded, check: incomplete, start: pageFault(miniorangetest.FaultTruncate),
			fix: func(w *world) { w.mo.ClearFaults() }},
		{name: "empty-directory",
			// The shipped safety defaults: grace 2 passes, breaker at 25 deactivations or 10%.
			cfg: func(w *world, dir string) cfgOpts {
				c := unguarded(w, dir)
				c.Grace, c.MaxPercent, c.MaxDeact, c.MaxRemovals = 2, 10, 25, 250
				return c
			},
			start: func(t *testing.T, w *world, org miniorangetest.Org) {
				for _, u := range w.mo.Users() {
					if err := w.mo.Leave(u.UserName); err != nil {
						t.Fatal(err)
					}
				}
			},
			check: func(t *testing.T, p *inproc, run reconcile.Run) {
				t.Helper()
				// Grace holds the first passes, the breaker the later ones: nothing applies.
				if run.Result == reconcile.ResultFailed || applied(run, removalKinds...) > 0 {
					t.Errorf("pass %s: result %q on an empty directory: %s", run.ID, run.Result, runSummary(run))
				}
			}},
	}
	var wg sync.WaitGroup
	for _, oc := range cases {
		wg.Go(func() {
			t.Run(oc.name, func(t *testing.T) {
				org := outageOrg()
				w := newWorld(t, worldOpts{Org: org, Seed: 13})
				p := openInproc(t, oc.cfg(w, t.TempDir()))
				p.converge(ctx, 4, nil)
				if g := sourceGauge(p); g != 1 {
					t.Fatalf("idsync_source_read_complete{source=corp} = %v after a good pass, want 1", g)
				}
				before, removed := w.snapshot(), len(w.removals())
				oc.start(t, w, org)
				n := passes
				if oc.name == "empty-directory" {
					n = 4 // the grace passes, then the breaker
				}
				var held bool
				for range n {
					run := p.pass(ctx)
					oc.check(t, p, run)
					held = held || run.Result == reconcile.ResultHeld
				}
				if d := before.diff(w.snapshot(), 10); len(d) > 0 {
					t.Errorf("the outage changed Jira:\n  %s", joinLines(d))
				}
				if now := len(w.removals()); now != removed {
					t.Errorf("%d removals or deactivations were sent during the outage", now-removed)
				}
				result := "no removal or deactivation"
				if oc.name == "empty-directory" {
					hp, err := p.App.Store.HeldPlan()
					switch {
					case !held || err != nil:
						t.Errorf("an empty directory did not trip the circuit breaker (held plan: %v)", err)
					case hp.Deactivations == 0:
						t.Errorf("the held plan holds no deactivations: %+v", hp)
					default:
						result += "; the breaker holds " + strconv.Itoa(hp.Deactivations) + " deactivations for approval"
					}
					if !logged(p.Logs, "circuit breaker") {
						t.Error("no log line names the circuit breaker")
					}
				}
				if oc.fix != nil {
					oc.fix(w)
					run := p.pass(ctx)
					if !sourcesComplete(run) || sourceGauge(p) != 1 {
						t.Errorf("after the outage the read is still incomplete: %s", runSummary(run))
					}
					if len(w.removals()) == removed {
						t.Error("the leavers were not deprovisioned once the source was whole again: the outage proved nothing")
					}
				}
				figures.update(func(r *report) {
					r.Outages = append(r.Outages, namedFigure{Name: oc.name, Result: result})
				})
			})
		})
	}
	wg.Wait()
}

// logged reports whether a log line's message contains text.
func logged(logs *testlog.Buffer, text string) bool {
	for _, l := range logLines(logs) {
		if m, _ := l["message"].(string); strings.Contains(m, text) {
			return true
		}
	}
	return false
}

// TestOutageReadyz: with the source down, the daemon's /readyz turns 503 after two schedule
// intervals, the metric says the read is incomplete, and nothing is taken away.
func TestOutageReadyz(t *testing.T) {
	t.Parallel()
	timed(t)
	org := outageOrg()
	w := newWorld(t, worldOpts{Org: org, Seed: 17})
	cfg := unguarded(w, t.TempDir())
	cfg.Schedule = "@every 1s"
	cfg.write(t)
	d := startIdsync(t, cfg.secrets(), true, "run", "-c", cfg.path())
	admin := or(cfg.AdminToken, defaultAdminToken)
	waitFor(t, 60*time.Second, "a first complete pass", func() bool {
		code, body := d.httpDo(http.MethodGet, "/api/v1/status", admin, "")
		return code == http.StatusOK && strings.Contains(body, `"result": "ok"`) && strings.Contains(body, `"complete": true`)
	})
	if code, body := d.httpDo(http.MethodGet, "/readyz", "", ""); code != http.StatusOK {
		t.Fatalf("/readyz before the outage: %d %s", code, body)
	}
	before, removed := w.snapshot(), len(w.removals())
	leaveSome(t, w, org, 3)
	w.stopSource()
	stopped := time.Now()

	var body string
	waitFor(t, 90*time.Second, "/readyz to turn 503", func() bool {
		var code int
		code, body = d.httpDo(http.MethodGet, "/readyz", "", "")
		return code == http.StatusServiceUnavailable
	})
	var rz struct {
		Ready   bool `json:"ready"`
		Sources []struct {
			Name     string `json:"name"`
			Complete bool   `json:"complete"`
		} `json:"sources"`
	}
	if err := json.Unmarshal([]byte(body), &rz); err != nil || rz.Ready || len(rz.Sources) != 1 || rz.Sources[0].Complete {
		t.Errorf("/readyz body does not name the incomplete source: %s", body)
	}
	if since := time.Since(stopped); since < 2*time.Second {
		t.Errorf("/readyz turned 503 %s after the outage began, before two intervals", since)
	}
	code, exposition := d.httpDo(http.MethodGet, "/metrics", "", "")
	if v, ok := metrics.Sum(exposition, "idsync_source_read_complete", map[string]string{"source": "corp"}); code != 200 || !ok || v != 0 {
		t.Errorf("idsync_source_read_complete{source=corp} = %v (seen %v), want 0", v, ok)
	}
	if d := before.diff(w.snapshot(), 10); len(d) > 0 {
		t.Errorf("the outage changed Jira:\n  %s", joinLines(d))
	}
	if now := len(w.removals()); now != removed {
		t.Errorf("%d removals or deactivations were sent during the outage", now-removed)
	}
	t.Logf("/readyz turned 503 %s after the source went down", time.Since(stopped).Round(100*time.Millisecond))
	figures.update(func(r *report) {
		r.Outages = append(r.Outages, namedFigure{Name: "daemon-readyz", Result: "/readyz 503 and idsync_source_read_complete 0 within " +
			time.Since(stopped).Round(time.Second).String() + "; nothing removed"})
	})
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
