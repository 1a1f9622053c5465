package reliability

// In-process runs: the config file is loaded and validated as the binary does, and
// internal/app wires the state, sources, sink and Runner exactly as `idsync run` does.

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/app"
	"github.com/idsync/idsync/internal/logging"
	"github.com/idsync/idsync/internal/metrics"
	"github.com/idsync/idsync/internal/testlog"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/reconcile/runner"
)

// logLines decodes the JSON log lines.
func logLines(l *testlog.Buffer) []map[string]any {
	var out []map[string]any
	for line := range strings.SplitSeq(l.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// inproc is one wired idsync inside the test process.
type inproc struct {
	t    testing.TB
	cfg  cfgOpts
	App  *app.App
	M    *metrics.Metrics
	Logs *testlog.Buffer
}

func openInproc(t testing.TB, o cfgOpts) *inproc {
	t.Helper()
	path := o.write(t)
	cfg, err := configs.LoadAndValidate(path, nil)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &testlog.Buffer{}
	log, err := logging.New(logs, or(o.LogLevel, "info"), logging.FormatJSON)
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	a, err := app.Open(cfg, app.Options{Logger: log, Metrics: m, StateTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("app.Open: %v", err)
	}
	p := &inproc{t: t, cfg: o, App: a, M: m, Logs: logs}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("closing the app: %v", err)
		}
		for _, s := range o.secrets() {
			if strings.Contains(logs.String(), s) {
				t.Errorf("idsync's logs contain the secret %q", s)
			}
		}
	})
	return p
}

// pass runs one pass as the daemon's schedule does: with the default full_read_interval it
// reads Jira in full on the first pass and after any pass with a failed item, and
// incrementally otherwise, so every fault scenario runs with incremental passes on.
func (p *inproc) pass(ctx context.Context) reconcile.Run {
	p.t.Helper()
	run, err := p.App.RunOnce(ctx, runner.RunOptions{Trigger: reconcile.TriggerSchedule})
	if err != nil && run.ID == "" {
		p.t.Fatalf("pass: %v", err)
	}
	if run.Result == reconcile.ResultFailed && ctx.Err() != nil {
		p.t.Fatalf("pass interrupted: %v", ctx.Err())
	}
	return run
}

// planned counts the items a pass tried (ok, failed, skipped) or held back.
func planned(run reconcile.Run) int {
	n := 0
	for _, byResult := range run.Counts {
		for result, c := range byResult {
			switch result {
			case reconcile.ItemOK, reconcile.ItemFailed, reconcile.ItemSkipped, reconcile.ItemHeld:
				n += c
			}
		}
	}
	return n
}

// applied counts the items of kind k (all kinds when empty) that a pass applied.
func applied(run reconcile.Run, kinds ...reconcile.Kind) int {
	n := 0
	for k, byResult := range run.Counts {
		if len(kinds) == 0 || containsKind(kinds, k) {
			n += byResult[reconcile.ItemOK]
		}
	}
	return n
}

func containsKind(ks []reconcile.Kind, k reconcile.Kind) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

func failedItems(run reconcile.Run) int {
	n := 0
	for _, byResult := range run.Counts {
		n += byResult[reconcile.ItemFailed] + byResult[reconcile.ItemSkipped]
	}
	return n
}

func sourcesComplete(run reconcile.Run) bool {
	for _, s := range run.Sources {
		if !s.Complete {
			return false
		}
	}
	return len(run.Sources) > 0
}

// converged reports whether a pass found nothing to do.
func converged(run reconcile.Run) bool {
	return run.Result == reconcile.ResultOK && planned(run) == 0 && sourcesComplete(run)
}

// converge runs passes until one finds nothing to do; it returns how many passes did work
// before that, and every run. check is called after each pass (nil: none).
func (p *inproc) converge(ctx context.Context, max int, check func(i int, run reconcile.Run)) (int, []reconcile.Run) {
	p.t.Helper()
	var runs []reconcile.Run
	for i := range max {
		run := p.pass(ctx)
		runs = append(runs, run)
		if check != nil {
			check(i, run)
		}
		if converged(run) {
			return i, runs
		}
	}
	p.t.Fatalf("no convergence within %d passes; last run: %s", max, runSummary(runs[len(runs)-1]))
	return max, runs
}

func runSummary(run reconcile.Run) string {
	b, _ := json.Marshal(struct {
		Result  string                            `json:"result"`
		Counts  map[reconcile.Kind]map[string]int `json:"counts"`
		Errors  []string                          `json:"errors,omitempty"`
		Sources []reconcile.SourceRun             `json:"sources"`
	}{run.Result, run.Counts, head(run.Errors, 5), run.Sources})
	return string(b)
}
