package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/idsync/idsync/internal/sim"
	"github.com/idsync/idsync/reconcile"
)

// While the daemon holds the state file, plan, audit and status work through its admin API
// (--addr) and print what the local commands print.
func TestPlanAuditStatusThroughTheDaemon(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sim.Options{})
	e.writeConfig(e.cfg)
	d := e.startDaemon()
	eventually(t, 30*time.Second, "the start-up pass", func() bool {
		return d.metric("idsync_passes_total", map[string]string{"trigger": "startup"}) >= 1
	})
	if !d.logged(map[string]string{"message": "listening", "config": e.configPath()}) ||
		!strings.Contains(d.output(), `"sources":["corp (miniorange, push)"]`) || !strings.Contains(d.output(), `"go_version":"go`) {
		t.Errorf("the start-up line lacks the config, the sources or the build:\n%s", d.output())
	}
	hired := e.sims.MiniOrange.HireN(2)
	addr := []string{"--addr", d.url(""), "-c", e.configPath()}

	t.Run("plan --addr", func(t *testing.T) {
		if r := e.idsync("plan", "-c", e.configPath()); r.code != exitConfig || !strings.Contains(r.stderr, "plan --addr") {
			t.Errorf("local plan while the daemon runs: %d, want 2 and a hint at --addr:\n%s", r.code, r.stderr)
		}
		r := e.idsync(append([]string{"plan", "-o", "json"}, addr...)...)
		var c reconcile.Changes
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &c) != nil {
			t.Fatalf("plan --addr -o json: %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		var created []string
		for _, ch := range c.CreateUsers {
			created = append(created, ch.UserName)
		}
		for _, u := range hired {
			if !contains(created, u.UserName) {
				t.Errorf("the plan does not create %s: creates %v", u.UserName, created)
			}
		}
		r = e.idsync(append([]string{"plan", "--user", hired[0].UserName}, addr...)...)
		if r.code != 0 || !strings.Contains(r.stdout, hired[0].UserName) || strings.Contains(r.stdout, hired[1].UserName) ||
			!strings.Contains(r.stdout, "(dry run)") {
			t.Errorf("plan --addr --user (table): %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		for _, a := range e.sims.Jira.Accounts() {
			if strings.EqualFold(a.Email, hired[0].Email) {
				t.Errorf("the plan created %s in Jira", hired[0].Email)
			}
		}
	})

	var remote string
	t.Run("audit --addr", func(t *testing.T) {
		r := e.idsync(append([]string{"audit", "-o", "json"}, addr...)...)
		var recs []reconcile.AuditRecord
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &recs) != nil || len(recs) < 19 {
			t.Fatalf("audit --addr -o json: %d, %d records\n%.500s%s", r.code, len(recs), r.stdout, r.stderr)
		}
		for _, rec := range recs {
			if rec.Result == reconcile.ItemStarted {
				t.Fatalf("a started record whose outcome is known is listed: %+v", rec)
			}
		}
		remote = r.stdout
		user := recs[len(recs)-1].UserName
		r = e.idsync(append([]string{"audit", "--user", strings.ToUpper(user), "--since", "1h"}, addr...)...)
		if r.code != 0 || !strings.Contains(r.stdout, user) || !strings.Contains(r.stdout, "RESULT") {
			t.Errorf("audit --addr --user --since: %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		// The API pages: every page within its limit, together the whole log.
		var all int
		cursor := ""
		for pages := 0; ; pages++ {
			code, body := d.do("GET", "/api/v1/audit?intents=true&limit=7&cursor="+cursor, e.adminToken)
			var p struct {
				Records []reconcile.AuditRecord `json:"records"`
				Next    string                  `json:"next"`
			}
			if code != 200 || json.Unmarshal(body, &p) != nil || len(p.Records) > 7 || pages > 100 {
				t.Fatalf("audit page: %d %.300s", code, body)
			}
			all += len(p.Records)
			if cursor = p.Next; cursor == "" {
				break
			}
		}
		if all <= len(recs) {
			t.Errorf("%d records with intents through the pages, %d without: the started records are missing", all, len(recs))
		}
		for q, want := range map[string]int{"limit=0": 400, "since=yesterday": 400, "cursor=AAAA": 400, "intents=maybe": 400} {
			if code, body := d.do("GET", "/api/v1/audit?"+q, e.adminToken); code != want {
				t.Errorf("audit?%s: %d %s, want %d", q, code, body, want)
			}
		}
		if code, _ := d.do("GET", "/api/v1/audit", ""); code != 401 {
			t.Errorf("audit without the admin token: %d", code)
		}
	})

	t.Run("status --addr", func(t *testing.T) {
		r := e.idsync(append([]string{"status"}, addr...)...)
		for _, want := range []string{"schedule", "@every 1h, next pass", "corp (miniorange, push, priority", "last pass", "revision"} {
			if r.code != 0 || !strings.Contains(r.stdout, want) {
				t.Errorf("status --addr table lacks %q: %d\n%s%s", want, r.code, r.stdout, r.stderr)
			}
		}
		r = e.idsync(append([]string{"status", "-o", "json"}, addr...)...)
		if r.code != 0 || !json.Valid([]byte(r.stdout)) || !strings.Contains(r.stdout, `"nextScheduledPass"`) {
			t.Errorf("status --addr -o json: %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})

	compacted := filepath.Join(e.dir, "compact.db")
	if r := e.idsync("state", "compact", "-c", e.configPath(), compacted); r.code != exitConfig || !strings.Contains(r.stderr, "locked") {
		t.Errorf("state compact while the daemon runs: %d\n%s", r.code, r.stderr)
	}
	d.signal(syscall.SIGTERM)
	if code, _ := d.wait(30 * time.Second); code != 0 {
		t.Fatalf("daemon exit %d", code)
	}
	t.Run("the same audit log offline", func(t *testing.T) {
		r := e.idsync("audit", "-o", "json", "-c", e.configPath())
		if r.code != 0 || r.stdout != remote {
			t.Errorf("audit -o json offline differs from audit --addr:\n%.600s\n---\n%.600s", r.stdout, remote)
		}
		r = e.idsync("status", "-c", e.configPath())
		if r.code != 0 || !strings.Contains(r.stdout, "RUN") || !strings.Contains(r.stdout, "startup") {
			t.Errorf("status (table) from the state file: %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		r = e.idsync("state", "compact", "-c", e.configPath(), compacted)
		if r.code != 0 || !strings.Contains(r.stdout, "compacted copy written: "+compacted) {
			t.Fatalf("state compact: %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		// The copy is a state file with the same audit log.
		r = e.idsync("audit", "-o", "json", "-c", e.configPath(), "--state", compacted)
		if r.code != 0 || r.stdout != remote {
			t.Errorf("audit of the compacted copy differs: %d\n%.300s%s", r.code, r.stdout, r.stderr)
		}
	})
}

// -c may be left out: $IDSYNC_CONFIG, else /etc/idsync/idsync.yaml; with neither the error
// names both. version and --version print the whole build identity.
func TestDefaultConfigAndVersion(t *testing.T) {
	t.Parallel()
	e := &env{t: t, dir: t.TempDir()}
	cfg := filepath.Join(e.dir, "elsewhere.yaml")
	body := `admin_token: test-admin-token-0123456789
sources:
  - {name: corp, type: miniorange, miniorange: {customer_key: "100001", api_key: k}}
sink:
  jira: {base_url: "https://example.atlassian.net", email: admin@example.com, api_token: t}
`
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := e.idsyncEnv([]string{"IDSYNC_CONFIG=" + cfg}, "validate"); r.code != 0 || !strings.Contains(r.stdout, cfg+" is valid") {
		t.Errorf("validate with IDSYNC_CONFIG: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := e.idsyncEnv([]string{"IDSYNC_CONFIG=" + cfg}, "validate", "-c", filepath.Join(e.dir, "missing.yaml")); r.code != exitConfig || !strings.Contains(r.stderr, "missing.yaml") {
		t.Errorf("-c wins over IDSYNC_CONFIG: %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat("/etc/idsync/idsync.yaml"); err == nil {
		t.Log("/etc/idsync/idsync.yaml exists here: not checking the error without a config")
	} else {
		for _, args := range [][]string{{"validate"}, {"run"}} {
			r := e.idsync(args...)
			if r.code != exitConfig || !strings.Contains(r.stderr, "IDSYNC_CONFIG") || !strings.Contains(r.stderr, "/etc/idsync/idsync.yaml") {
				t.Errorf("%v without a config: %d, want 2 and both places named:\n%s", args, r.code, r.stderr)
			}
		}
	}
	v, flag := e.idsync("version"), e.idsync("--version")
	if v.code != 0 || v.stdout != flag.stdout || !strings.Contains(v.stdout, "revision ") || !strings.Contains(v.stdout, "go1.") {
		t.Errorf("version and --version: %q %q", v.stdout, flag.stdout)
	}
	if h := e.idsync("--help"); !strings.Contains(h.stdout, "idsync completion") || !strings.Contains(h.stdout, "IDSYNC_CONFIG") {
		t.Errorf("--help does not mention completion and the config default:\n%s", h.stdout)
	}
}
