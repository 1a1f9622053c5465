package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/idsync/idsync/internal/daemon"
	"github.com/idsync/idsync/internal/version"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/reconcile/runner"
)

func TestConfigPath(t *testing.T) {
	dir := t.TempDir()
	def := filepath.Join(dir, "idsync.yaml")
	old := defaultConfig
	defaultConfig = def
	t.Cleanup(func() { defaultConfig = old })

	t.Setenv(ConfigEnv, "")
	_, err := ConfigPath("")
	if err == nil || !strings.Contains(err.Error(), ConfigEnv) || !strings.Contains(err.Error(), def) {
		t.Errorf("neither exists: %v; want both named", err)
	}
	if err := os.WriteFile(def, []byte("x: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if p, err := ConfigPath(""); p != def || err != nil {
		t.Errorf("the default file exists: %q %v", p, err)
	}
	t.Setenv(ConfigEnv, "/from/env.yaml")
	if p, err := ConfigPath(""); p != "/from/env.yaml" || err != nil {
		t.Errorf("IDSYNC_CONFIG: %q %v", p, err)
	}
	if p, err := ConfigPath("given.yaml"); p != "given.yaml" || err != nil {
		t.Errorf("-c: %q %v", p, err)
	}
}

func TestRowsCut(t *testing.T) {
	c := reconcile.Changes{AddMembers: make([]reconcile.Change, 3)}
	run := reconcile.Run{Changes: &c}
	if RowsCut(run, 3) || !RowsCut(run, 2) || RowsCut(run, 0) {
		t.Error("rows of a kind")
	}
	run = reconcile.Run{HeldByGuard: map[string]int{reconcile.GuardOwnership: 9, reconcile.GuardGrace: 2}}
	if RowsCut(run, 2) || !RowsCut(run, 1) {
		t.Error("held rows: ownership drops are never listed, others are")
	}
}

func TestStatusTables(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	last := reconcile.Run{ID: "r-2", Trigger: "schedule", JiraRead: reconcile.ReadIncremental, Started: now.Add(-time.Minute), Finished: now.Add(-58 * time.Second),
		Result: reconcile.ResultOK, Counts: map[reconcile.Kind]map[string]int{reconcile.KindCreateUser: {"ok": 3, "failed": 1}}}
	hold := &reconcile.HeldPlan{RunID: "r-1", Deactivations: 30, Reason: "30 deactivations > max 25"}
	var b strings.Builder
	st := daemon.Status{Build: version.Info{Version: "v1.2.3", Revision: "abc", GoVersion: "go1.26.8"}, Uptime: "1h",
		Started: now.Add(-time.Hour), ConfigFile: "/etc/idsync/idsync.yaml", Schedule: "@every 15m",
		NextPass: now.Add(12 * time.Minute), Jitter: "30s",
		Sources: []daemon.SourceStatus{{Name: "corp", Type: "miniorange", Push: true, Priority: 10}},
		Runner: runner.RunnerStatus{Last: &last, Hold: hold, Standing: []reconcile.StandingApproval{{
			Change: reconcile.Change{Kind: reconcile.KindDeactivateUser, UserName: "u9", AccountID: "acc-9"},
			RunID:  "r-0", By: "ops", Since: now.Add(-2 * time.Hour)}}}}
	if err := WriteDaemonStatus(&b, st, now); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"idsync v1.2.3 (revision abc, go1.26.8)", "@every 15m, next pass", "(in 12m0s) (up to 30s later",
		"corp (miniorange, push, priority 10)", "no pass", "run r-2 (schedule): ok in 2s", "3 ok, 1 failed", "idsync approve r-1",
		"refused", "deactivate_user u9", "approved by ops in run r-0", "Jira read incremental"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("daemon status lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	if err := WriteRuns(&b, []reconcile.Run{last}, hold, now); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(b.String()), "\n"); len(lines) != 4 || !strings.HasPrefix(lines[0], "RUN") ||
		!strings.Contains(lines[1], "r-2") || !strings.Contains(lines[3], "HELD: run r-1") {
		t.Errorf("runs table:\n%s", b.String())
	}
}
