package daemon

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
)

// After each pass the daemon deletes what state.retention no longer keeps; a change of the
// retention applies on reload, without a restart.
func TestDaemonAppliesRetentionAfterPasses(t *testing.T) {
	p := startInProcess(t, "")
	audit := func() []reconcile.AuditRecord {
		t.Helper()
		code, body := p.call("GET", "/api/v1/audit?intents=true")
		var page struct{ Records []reconcile.AuditRecord }
		if code != http.StatusOK || json.Unmarshal(body, &page) != nil {
			t.Fatalf("audit: %d %s", code, body)
		}
		return page.Records
	}
	if code, body := p.call("POST", "/api/v1/reconcile?wait=true"); code != http.StatusOK {
		t.Fatalf("first pass: %d %s", code, body)
	}
	if n := len(audit()); n < 10 {
		t.Fatalf("the first sync audited %d records", n)
	}
	// A dry run (plan) prunes nothing.
	if code, body := p.call("GET", "/api/v1/plan"); code != http.StatusOK {
		t.Fatalf("plan: %d %s", code, body)
	}
	if n := len(audit()); n < 10 {
		t.Fatalf("a dry run pruned the audit log: %d records left", n)
	}
	// Records older than a millisecond go: all of the first pass's, after the next pass.
	p.reload(func(cfg string) string {
		return strings.Replace(cfg, "state: {path: ", "state: {retention: {audit: 1ms, runs: 1ms}, path: ", 1)
	}, 1)
	if strings.Contains(p.logs.String(), "take effect after a restart") {
		t.Errorf("the retention change asks for a restart:\n%s", p.logs)
	}
	if code, body := p.call("POST", "/api/v1/reconcile?wait=true"); code != http.StatusOK {
		t.Fatalf("second pass: %d %s", code, body)
	}
	if recs := audit(); len(recs) != 0 {
		t.Errorf("%d audit records older than the retention are left, the first at %s", len(recs), recs[0].Time)
	}
	if !strings.Contains(p.logs.String(), "state retention: old records deleted") {
		t.Error("no log line says what the retention deleted")
	}
	// The runs stay: at least the newest state.MinKeptRuns whatever their age.
	_, body := p.call("GET", "/api/v1/runs")
	if !strings.Contains(string(body), `"trigger": "api"`) {
		t.Errorf("runs: %s", body)
	}
}

func TestRetentionChangeNeedsNoRestart(t *testing.T) {
	a, b := configs.Default(), configs.Default()
	b.State.Retention.Audit = 2 * time.Hour
	if k := needsRestart(a, b); len(k) != 0 {
		t.Errorf("a retention change is reported as restart-only: %v", k)
	}
	b.State.Path = "/elsewhere.db"
	if k := needsRestart(a, b); len(k) != 1 || k[0] != "state.path" {
		t.Errorf("needsRestart = %v, want state.path", k)
	}
}
