package main

import (
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/idsync/idsync/internal/sim"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/sinks/jira/jiratest"
	"github.com/idsync/idsync/sources/miniorange/miniorangetest"
	"github.com/idsync/idsync/state"
)

// createdAccounts are the Jira accounts the seed did not have (the site admin and the app).
func createdAccounts(js *jiratest.Sim) []jiratest.Account {
	var out []jiratest.Account
	for _, a := range js.Accounts() {
		if a.AccountID != jiratest.SiteAdminID && a.AccountID != jiratest.AppID {
			out = append(out, a)
		}
	}
	return out
}

func slowEnv(t *testing.T, users int, latency time.Duration) *env {
	e := newEnv(t, sim.Options{Org: miniorangetest.OrgSpec{Users: users, Groups: 3, MembershipsPerUser: 1, Seed: 3}})
	e.sims.Jira.SetLatency(latency, 0)
	return e
}

// TestDaemonSIGTERMDuringSlowPass stops the daemon in the middle of a slow first pass: it
// exits within shutdown_timeout, and every account the pass created has its link and its
// audit record, so the next pass finishes the job without a duplicate.
func TestDaemonSIGTERMDuringSlowPass(t *testing.T) {
	t.Parallel()
	e := slowEnv(t, 60, 80*time.Millisecond)
	e.cfg.ShutdownTimeout = "10s"
	e.writeConfig(e.cfg)
	d := e.startDaemon()
	eventually(t, 60*time.Second, "the first accounts", func() bool { return len(createdAccounts(e.sims.Jira)) >= 4 })
	d.signal(syscall.SIGTERM)
	code, took := d.wait(11 * time.Second)
	if code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	t.Logf("stopped %s after SIGTERM", took)
	created := createdAccounts(e.sims.Jira)
	if len(created) >= 60 {
		t.Fatalf("the pass finished before SIGTERM (%d accounts); the test proves nothing", len(created))
	}

	st, err := state.Open(e.statePath(), state.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("reopening the state file: %v", err)
	}
	links, err := st.Links()
	if err != nil {
		t.Fatal(err)
	}
	audit, err := st.Audit(time.Time{}, "")
	if err != nil {
		t.Fatal(err)
	}
	runs, err := st.Runs(10)
	_ = st.Close()
	if err != nil {
		t.Fatal(err)
	}
	linked := map[string]bool{}
	for _, l := range links {
		if l.Created {
			linked[l.AccountID] = true
		}
	}
	audited := map[string]bool{}
	for _, a := range audit {
		if a.Action == string(reconcile.KindCreateUser) && a.Result == reconcile.ItemOK {
			audited[a.AccountID] = true
		}
	}
	for _, a := range created {
		if !linked[a.AccountID] || !audited[a.AccountID] {
			t.Errorf("account %s (%s) was created but linked=%v audited=%v", a.AccountID, a.Email, linked[a.AccountID], audited[a.AccountID])
		}
	}
	if len(runs) == 0 || runs[0].Result != reconcile.ResultPartial {
		t.Errorf("the interrupted pass is not recorded as partial: %+v", runs)
	}

	// The next run picks up where the first stopped, and creates nobody twice.
	e.sims.Jira.SetLatency(0, 0)
	r := e.idsync("reconcile", "-c", e.configPath())
	if r.code != 0 {
		t.Fatalf("reconcile after the interrupted pass: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	seen := map[string]bool{}
	for _, a := range createdAccounts(e.sims.Jira) {
		if seen[a.Email] {
			t.Errorf("duplicate account for %s", a.Email)
		}
		seen[a.Email] = true
	}
	if len(seen) != 60 {
		t.Errorf("%d accounts after the second pass, want 60", len(seen))
	}
}

// TestDaemonSecondSignalForcesExit: a second SIGTERM ends at once a shutdown that waits for
// slow items in flight, with exit code 130; SIGHUP meanwhile does not.
func TestDaemonSecondSignalForcesExit(t *testing.T) {
	t.Parallel()
	e := slowEnv(t, 40, 50*time.Millisecond)
	e.cfg.ShutdownTimeout = "30s"
	e.writeConfig(e.cfg)
	d := e.startDaemon()
	eventually(t, 30*time.Second, "the start-up pass applying", func() bool { return e.sims.Jira.Writes() >= 2 })
	// From now on every Jira call takes 15 s: the items the executor starts next are in
	// flight when SIGTERM arrives, and a graceful stop waits for them.
	e.sims.Jira.SetLatency(15*time.Second, 0)
	started := e.sims.Jira.Started()
	eventually(t, 10*time.Second, "a Jira call served with the 15 s latency", func() bool { return e.sims.Jira.Started() > started })
	d.signal(syscall.SIGTERM)
	eventually(t, 3*time.Second, "shutting down", func() bool { return d.logged(map[string]string{"message": "shutting down"}) })
	d.signal(syscall.SIGHUP)
	eventually(t, 3*time.Second, "SIGHUP ignored", func() bool {
		return d.logged(map[string]string{"message": "signal ignored while shutting down"})
	})
	d.signal(syscall.SIGTERM)
	// The bound only catches a forced exit that still waits for the 15 s calls in flight.
	code, took := d.wait(20 * time.Second)
	if code != exitForced {
		t.Errorf("exit code %d, want %d", code, exitForced)
	}
	if took > 12*time.Second {
		t.Errorf("forced exit took %s: it waited for the calls in flight", took)
	}
}

// TestDaemonSyncQueuedBehindLongPass: while a slow full pass holds the runner, the one-user
// sync answers 202 (queued) within its wait, and the user reaches Jira once the pass ends.
func TestDaemonSyncQueuedBehindLongPass(t *testing.T) {
	t.Parallel()
	e := slowEnv(t, 12, 400*time.Millisecond)
	e.writeConfig(e.cfg)
	d := e.startDaemon()
	eventually(t, 30*time.Second, "the start-up pass under way", func() bool { return e.sims.Jira.Reads() > 0 })
	if _, err := e.sims.MiniOrange.Hire(miniorangetest.User{UserName: "late.hire@example.com", Email: "late.hire@example.com",
		FirstName: "Late", LastName: "Hire"}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, body := d.do("POST", "/api/v1/sync/users/late.hire@example.com?wait=500ms", e.adminToken)
	if code != http.StatusAccepted || !strings.Contains(string(body), `"queued"`) {
		t.Fatalf("sync behind a long pass: %d %s, want 202 queued", code, body)
	}
	// A generous bound: it catches an answer that waited for the long pass, not a slow one.
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("the 202 took %s: it waited for the pass", took)
	}
	e.sims.Jira.SetLatency(0, 0)
	eventually(t, 60*time.Second, "the queued user in Jira", func() bool {
		_, ok := e.sims.Jira.AccountByEmail("late.hire@example.com")
		return ok
	})
	if code, body := d.do("GET", "/api/v1/sync/users/x", e.adminToken); code != http.StatusMethodNotAllowed {
		t.Errorf("GET on the sync route: %d %s", code, body)
	}
	d.signal(syscall.SIGTERM)
	if code, _ := d.wait(25 * time.Second); code != 0 {
		t.Errorf("exit code %d", code)
	}
}
