package main

import (
	"encoding/json"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/idsync/idsync/internal/sim"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/state"
)

// links and owned records in the state file (after the command that wrote them exited).
func stateRecords(t *testing.T, path string) (links []reconcile.Link, owned []reconcile.Owned) {
	t.Helper()
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return nil, nil
	}
	st, err := state.Open(path, state.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("opening the state file: %v", err)
	}
	defer st.Close()
	if links, err = st.Links(); err != nil {
		t.Fatal(err)
	}
	if owned, err = st.Owned(); err != nil {
		t.Fatal(err)
	}
	return links, owned
}

// TestCLIOperatorSession walks the one-shot commands in the order an admin meets them: plan,
// dry run, one user, a full pass, audit, state, status; then most users leave the IdP, the
// circuit breaker holds the deactivations (exit 3), and approve lets the next pass apply them.
func TestCLIOperatorSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sim.Options{})
	e.cfg.GracePasses = 0
	e.cfg.LogLevel = "debug" // secrets must stay out of every level
	e.writeConfig(e.cfg)
	cfg := e.configPath()
	js := e.sims.Jira

	t.Run("validate and version", func(t *testing.T) {
		if r := e.idsync("validate", "-c", cfg); r.code != 0 || !strings.Contains(r.stdout, "is valid") {
			t.Errorf("validate: %d %s%s", r.code, r.stdout, r.stderr)
		}
		if r := e.idsync("version"); r.code != 0 || !strings.HasPrefix(r.stdout, "idsync ") {
			t.Errorf("version: %d %s", r.code, r.stdout)
		}
	})

	t.Run("plan -o json prints the Changes and writes nothing", func(t *testing.T) {
		r := e.idsync("plan", "-c", cfg, "-o", "json")
		if r.code != 0 {
			t.Fatalf("plan: exit %d\n%s", r.code, r.stderr)
		}
		var c reconcile.Changes
		if err := json.Unmarshal([]byte(r.stdout), &c); err != nil {
			t.Fatalf("plan -o json is not a Changes value: %v\n%.500s", err, r.stdout)
		}
		if len(c.CreateUsers) != 19 || len(c.CreateGroups) == 0 || !c.HasChanges() {
			t.Errorf("plan: %d users and %d groups to create, want 19 and some", len(c.CreateUsers), len(c.CreateGroups))
		}
		if w := js.Writes(); w != 0 {
			t.Errorf("plan wrote %d times to Jira", w)
		}
		if r := e.idsync("plan", "-c", cfg); r.code != 0 || !strings.Contains(r.stdout, "dry run") {
			t.Errorf("plan table: %d\n%s", r.code, r.stdout)
		}
	})

	t.Run("--dry-run writes neither Jira nor ownership", func(t *testing.T) {
		r := e.idsync("reconcile", "-c", cfg, "--dry-run")
		if r.code != 0 {
			t.Fatalf("dry run: exit %d\n%s", r.code, r.stderr)
		}
		if w := js.Writes(); w != 0 {
			t.Errorf("dry run wrote %d times to Jira", w)
		}
		if links, owned := stateRecords(t, e.statePath()); len(links)+len(owned) != 0 {
			t.Errorf("dry run wrote %d links and %d ownership records", len(links), len(owned))
		}
	})

	var one string
	t.Run("--user syncs one user", func(t *testing.T) {
		one = e.sims.MiniOrange.Users()[3].UserName
		r := e.idsync("reconcile", "-c", cfg, "--user", one)
		if r.code != 0 {
			t.Fatalf("--user: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		created := createdAccounts(js)
		if len(created) != 1 || !strings.EqualFold(created[0].Email, e.sims.MiniOrange.Users()[3].Email) {
			t.Errorf("--user %s created %d accounts", one, len(created))
		}
	})

	t.Run("--source", func(t *testing.T) {
		if r := e.idsync("reconcile", "-c", cfg, "--source", "nope"); r.code != 2 || !strings.Contains(r.stderr, "nope") {
			t.Errorf("unknown source: %d %s", r.code, r.stderr)
		}
		r := e.idsync("reconcile", "-c", cfg, "--source", "corp", "-o", "json")
		var run reconcile.Run
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &run) != nil || !strings.Contains(run.Target, "corp") {
			t.Fatalf("--source corp: exit %d target %q\n%s", r.code, run.Target, r.stderr)
		}
		if n := len(createdAccounts(js)); n != 19 {
			t.Errorf("%d accounts after the pass, want 19", n)
		}
	})

	t.Run("a full pass with nothing to do exits 0", func(t *testing.T) {
		r := e.idsync("reconcile", "-c", cfg)
		if r.code != 0 || !strings.Contains(r.stdout, ": ok in ") {
			t.Errorf("reconcile: %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("audit", func(t *testing.T) {
		r := e.idsync("audit", "-c", cfg, "-o", "json")
		var all []reconcile.AuditRecord
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &all) != nil || len(all) < 19 {
			t.Fatalf("audit -o json: %d, %d records\n%s", r.code, len(all), r.stderr)
		}
		r = e.idsync("audit", "-c", cfg, "-o", "json", "--user", one)
		var mine []reconcile.AuditRecord
		if err := json.Unmarshal([]byte(r.stdout), &mine); err != nil || len(mine) == 0 || len(mine) >= len(all) {
			t.Fatalf("audit --user: %d of %d records (%v)", len(mine), len(all), err)
		}
		for _, a := range mine {
			if !strings.EqualFold(a.UserName, one) {
				t.Errorf("audit --user %s returned a record of %q", one, a.UserName)
			}
		}
		r = e.idsync("audit", "-c", cfg, "--since", "1h")
		if r.code != 0 || !strings.HasPrefix(r.stdout, "TIME") || strings.Count(r.stdout, "\n") != len(all)+1 {
			t.Errorf("audit table: %d, %d lines for %d records", r.code, strings.Count(r.stdout, "\n"), len(all))
		}
		time.Sleep(20 * time.Millisecond)
		r = e.idsync("audit", "-c", cfg, "--since", "10ms", "-o", "json")
		if r.code != 0 || strings.TrimSpace(r.stdout) != "null" && strings.TrimSpace(r.stdout) != "[]" {
			t.Errorf("audit --since 10ms: %d %q", r.code, r.stdout)
		}
		if r := e.idsync("audit", "-c", cfg, "-o", "yaml"); r.code != 2 {
			t.Errorf("audit -o yaml: %d", r.code)
		}
	})

	t.Run("state inspect and status", func(t *testing.T) {
		r := e.idsync("state", "inspect", "-c", cfg)
		if r.code != 0 || !json.Valid([]byte(r.stdout)) || !strings.Contains(r.stdout, `"links"`) {
			t.Errorf("state inspect: %d %.300s", r.code, r.stdout)
		}
		// status prints a table; -o json keeps the JSON for scripts.
		r = e.idsync("status", "-c", cfg, "-o", "json")
		if r.code != 0 || !json.Valid([]byte(r.stdout)) || !strings.Contains(r.stdout, `"runs"`) {
			t.Errorf("status -o json: %d %.300s", r.code, r.stdout)
		}
	})

	var heldRun string
	t.Run("circuit breaker holds: exit 3", func(t *testing.T) {
		users := e.sims.MiniOrange.Users()
		left := 0
		for _, u := range users {
			if !u.Disabled && left < 15 {
				if err := e.sims.MiniOrange.Leave(u.UserName); err != nil {
					t.Fatal(err)
				}
				left++
			}
		}
		r := e.idsync("reconcile", "-c", cfg)
		if r.code != 3 || !strings.Contains(r.stdout, "HELD") || !strings.Contains(r.stdout, "idsync approve") {
			t.Fatalf("reconcile after 15 leavers: exit %d, want 3\n%s%s", r.code, r.stdout, r.stderr)
		}
		r = e.idsync("reconcile", "-c", cfg, "-o", "json")
		var run reconcile.Run
		if r.code != 3 || json.Unmarshal([]byte(r.stdout), &run) != nil || run.Result != reconcile.ResultHeld {
			t.Fatalf("second held pass: exit %d result %q", r.code, run.Result)
		}
		heldRun = run.ID
		for _, a := range createdAccounts(js) {
			if !contains(a.Groups, "jira-software-users") {
				t.Errorf("account %s lost product access while the breaker holds", a.Email)
			}
		}
	})

	t.Run("approve lets the next pass apply", func(t *testing.T) {
		if heldRun == "" {
			t.Skip("no held run")
		}
		if r := e.idsync("approve", "-c", cfg, "not-the-run"); r.code != 2 || !strings.Contains(r.stderr, heldRun) {
			t.Errorf("approve of another run: %d %s", r.code, r.stderr)
		}
		if r := e.idsync("approve", "-c", cfg, heldRun); r.code != 0 {
			t.Fatalf("approve: %d %s", r.code, r.stderr)
		}
		r := e.idsync("reconcile", "-c", cfg)
		if r.code != 0 {
			t.Fatalf("reconcile after approve: %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		lost := 0
		for _, a := range createdAccounts(js) {
			if !contains(a.Groups, "jira-software-users") {
				lost++
			}
		}
		if lost != 15 {
			t.Errorf("%d accounts lost product access, want the 15 leavers", lost)
		}
	})
}

// TestReconcileExitCodes: 1 when items fail, 2 on config and connection errors.
func TestReconcileExitCodes(t *testing.T) {
	t.Parallel()
	t.Run("items failed: 1", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, sim.Options{Seats: 8})
		e.writeConfig(e.cfg)
		r := e.idsync("reconcile", "-c", e.configPath())
		if r.code != 1 || !strings.Contains(r.stdout, "failed") {
			t.Errorf("seat limit: exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("config error: 2", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, sim.Options{})
		o := e.cfg
		o.Broken = true
		e.writeConfig(o)
		r := e.idsync("reconcile", "-c", e.configPath())
		if r.code != 2 || !strings.Contains(r.stderr, "safety.polcy") || !strings.Contains(r.stderr, "safety.max_deactivation_percent") {
			t.Errorf("broken config: exit %d, want 2 and every problem\n%s", r.code, r.stderr)
		}
		if r := e.idsync("validate", "-c", e.configPath()); r.code != 2 || !strings.Contains(r.stderr, "safety.polcy") {
			t.Errorf("validate of a broken config: %d %s", r.code, r.stderr)
		}
		if r := e.idsync("run", "-c", e.configPath()); r.code != 2 || !strings.Contains(r.stderr, "safety.polcy") {
			t.Errorf("run with a broken config: %d %s", r.code, r.stderr)
		}
		if r := e.idsync("reconcile"); r.code != 2 || !strings.Contains(r.stderr, "-c FILE") {
			t.Errorf("no config: %d %s", r.code, r.stderr)
		}
	})
	t.Run("sink unreachable: 2", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, sim.Options{})
		o := e.cfg
		o.JiraURL = closedURL(t)
		e.writeConfig(o)
		r := e.idsync("reconcile", "-c", e.configPath())
		if r.code != 2 || !strings.Contains(r.stdout+r.stderr, "reading Jira") {
			t.Errorf("Jira unreachable: exit %d, want 2\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("source unreachable: 2", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, sim.Options{})
		o := e.cfg
		o.MiniOrangeURL = closedURL(t)
		e.writeConfig(o)
		r := e.idsync("reconcile", "-c", e.configPath())
		if r.code != 2 || !strings.Contains(r.stdout, "INCOMPLETE") {
			t.Errorf("miniOrange unreachable: exit %d, want 2\n%s%s", r.code, r.stdout, r.stderr)
		}
		if n := e.sims.Jira.Writes(); n != 0 {
			t.Errorf("%d Jira writes without a source", n)
		}
	})
}

// closedURL is a loopback URL nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String()
	_ = ln.Close()
	return u
}
