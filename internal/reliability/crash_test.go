package reliability

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/sources/miniorange/miniorangetest"
)

// crashSize is the org of the crash trials: large enough that a pass takes a few seconds
// against a simulator with some latency.
type crashSize struct {
	users, groups, trials int
	latency               time.Duration
}

func crashSizes() crashSize {
	if long {
		return crashSize{users: 200, groups: 15, trials: 20, latency: 4 * time.Millisecond}
	}
	return crashSize{users: 100, groups: 8, trials: 4, latency: 4 * time.Millisecond}
}

func crashOrg(sz crashSize) miniorangetest.Org {
	return miniorangetest.GenerateOrg(miniorangetest.OrgSpec{
		Users: sz.users, Groups: sz.groups, MembershipsPerUser: 2, DisabledCount: 3, Seed: 21, EmailDomain: "example.com",
	})
}

// procEnv is one world run through the binary: simulators, config and state file.
type procEnv struct {
	t   *testing.T
	w   *world
	cfg cfgOpts
}

func newCrashEnv(t *testing.T, sz crashSize, org miniorangetest.Org) *procEnv {
	w := newWorld(t, worldOpts{Org: org, Seed: 9, JiraLatency: sz.latency, JiraReturn: sz.latency, MOLatency: sz.latency / 4})
	cfg := cfgOpts{
		Dir: t.TempDir(), JiraURL: w.JiraURL, MOURL: w.MOURL, ImportGroups: true,
		Groups:    "{idp: Engineering, jira: [engineering, developers]}",
		Customers: "{idp: Support, service_desks: [DEMO], organizations: [Acme Customers]}",
		Grace:     0, MaxPercent: 50, MaxDeact: 1000, MaxRemovals: 5000, Concurrency: 4,
	}
	cfg.write(t)
	return &procEnv{t: t, w: w, cfg: cfg}
}

// reconcileArgs is one foreground pass with its record on stdout.
func (e *procEnv) reconcileArgs() []string {
	return []string{"reconcile", "-c", e.cfg.path(), "-o", "json"}
}

// pass runs `idsync reconcile` to completion and decodes its run record.
func (e *procEnv) pass() (reconcile.Run, cmdResult) {
	e.t.Helper()
	r := runIdsync(e.t, e.cfg.secrets(), nil, e.reconcileArgs()...)
	var run reconcile.Run
	if err := json.Unmarshal([]byte(r.stdout), &run); err != nil {
		e.t.Fatalf("decoding the run record: %v\n%s", err, r)
	}
	return run, r
}

// converge runs passes until one finds nothing to do; it returns the passes that did work.
func (e *procEnv) converge(max int) int {
	e.t.Helper()
	for i := range max {
		run, r := e.pass()
		switch r.code {
		case 0, 1: // ok, or items failed that the next pass retries
		default:
			e.t.Fatalf("pass %d: unexpected exit:\n%s", i, r)
		}
		if r.code == 0 && converged(run) {
			return i
		}
	}
	e.t.Fatalf("no convergence within %d passes", max)
	return max
}

// killAfterWrites starts a pass and SIGKILLs it once the Jira simulator has processed n more
// writes (or d has passed, whichever comes first): a kill point tied to the pass's progress
// lands mid-pass however loaded the machine is. It reports whether the pass was still
// running.
func (e *procEnv) killAfterWrites(n int, d time.Duration) (bool, time.Duration) {
	e.t.Helper()
	base := len(e.w.writes.list())
	start := time.Now()
	p := startIdsync(e.t, e.cfg.secrets(), false, e.reconcileArgs()...)
	deadline := time.After(d)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for len(e.w.writes.list())-base < n {
		select {
		case <-p.done:
			return false, time.Since(start)
		case <-deadline:
			n = 0
		case <-tick.C:
		}
	}
	landed := !p.exited()
	p.kill()
	return landed, time.Since(start)
}

// auditRecords reads the audit log through `idsync audit -o json`.
func (e *procEnv) auditRecords() []reconcile.AuditRecord {
	e.t.Helper()
	r := runIdsync(e.t, e.cfg.secrets(), nil, "audit", "-c", e.cfg.path(), "-o", "json")
	if r.code != 0 {
		e.t.Fatalf("audit: %s", r)
	}
	var recs []reconcile.AuditRecord
	if err := json.Unmarshal([]byte(r.stdout), &recs); err != nil {
		e.t.Fatalf("decoding the audit log: %v", err)
	}
	return recs
}

// unaudited lists the Jira writes that changed something and have no audit record naming
// the same action family and account (or the account's person, for records written before
// the account existed) and, for memberships, the group. A record of any result counts: after
// a crash the next pass resolves a write-ahead record as "unknown" and says whether it found
// the change applied.
func unaudited(w *world, recs []reconcile.AuditRecord) []string {
	nb := w.names()
	// A record written before the account existed (the write-ahead record of a create, and
	// its resolution after a crash) names the person, not the account: records that name
	// both tie the account to its person.
	person := map[string]map[string]bool{} // accountId -> source/userKey
	for _, a := range recs {
		if a.AccountID != "" && a.UserKey != "" {
			if person[a.AccountID] == nil {
				person[a.AccountID] = map[string]bool{}
			}
			person[a.AccountID][a.Source+"/"+a.UserKey] = true
		}
	}
	type key struct{ action, account string }
	have := map[key][]string{} // -> targets
	for _, a := range recs {
		have[key{a.Action, a.AccountID}] = append(have[key{a.Action, a.AccountID}], a.Target)
	}
	byPerson := map[key][]string{}
	for _, a := range recs {
		if a.AccountID == "" && a.UserKey != "" {
			k := key{a.Action, a.Source + "/" + a.UserKey}
			byPerson[k] = append(byPerson[k], a.Target)
		}
	}
	groupCreated := map[string]bool{}
	for _, a := range recs {
		if a.Action == string(reconcile.KindCreateGroup) {
			groupCreated[strings.ToLower(strings.TrimSpace(strings.SplitN(a.Target, " (", 2)[0]))] = true
		}
	}
	found := func(account, target string, actions ...reconcile.Kind) bool {
		match := func(targets []string) bool {
			for _, tg := range targets {
				if target == "" || strings.Contains(strings.ToLower(tg), strings.ToLower(target)) {
					return true
				}
			}
			return false
		}
		for _, act := range actions {
			if match(have[key{string(act), account}]) {
				return true
			}
			for p := range person[account] {
				if match(byPerson[key{string(act), p}]) {
					return true
				}
			}
		}
		return false
	}
	seenAccount := map[string]bool{}
	var out []string
	for _, x := range w.writes.list() {
		var ok bool
		switch {
		case x.Method == http.MethodPost && x.Template == "/rest/api/3/user":
			id := x.AccountIDs[len(x.AccountIDs)-1]
			if w.initial[id] || seenAccount[id] {
				continue // not a new account: nothing changed
			}
			seenAccount[id] = true
			// A "link" record (matched an existing account by email) does not count: the
			// account is idsync's own creation, and the audit log must say so.
			ok = found(id, "", reconcile.KindCreateUser, reconcile.KindReactivateUser)
		case x.Method == http.MethodPost && x.Template == "/rest/servicedeskapi/customer":
			ok = found(x.AccountIDs[len(x.AccountIDs)-1], "", reconcile.KindCreateCustomer)
		case x.Method == http.MethodPost && x.Template == "/rest/api/3/group":
			ok = groupCreated[strings.ToLower(x.GroupName)]
		case x.Template == "/rest/api/3/group/user":
			acts := []reconcile.Kind{reconcile.KindAddMember, reconcile.KindReactivateUser}
			if x.Method == http.MethodDelete {
				acts = []reconcile.Kind{reconcile.KindRemoveMember, reconcile.KindDeactivateUser}
			}
			ok = found(x.AccountIDs[0], nb.group(x.GroupID), acts...)
		case strings.HasSuffix(x.Template, "/customer"):
			acts := []reconcile.Kind{reconcile.KindAddCustomer}
			if x.Method == http.MethodDelete {
				acts = []reconcile.Kind{reconcile.KindRemoveCustomer, reconcile.KindDeactivateUser}
			}
			ok = true
			for _, id := range x.AccountIDs {
				ok = ok && found(id, "", acts...)
			}
		case strings.HasSuffix(x.Template, "/organization/{organizationId}/user"):
			acts := []reconcile.Kind{reconcile.KindAddOrganizationMember}
			if x.Method == http.MethodDelete {
				acts = []reconcile.Kind{reconcile.KindRemoveOrganizationMember, reconcile.KindDeactivateUser}
			}
			ok = true
			for _, id := range x.AccountIDs {
				ok = ok && found(id, "", acts...)
			}
		case x.Template == "/rest/servicedeskapi/organization":
			continue // created by the first member add, which is audited itself
		case strings.HasSuffix(x.Template, "/manage/profile") || strings.HasSuffix(x.Template, "/manage/email"):
			// Creating an account also sets its display name when the admin API is configured.
			ok = found(x.AccountIDs[0], "", reconcile.KindUpdateUser, reconcile.KindCreateUser)
		case strings.HasSuffix(x.Template, "/lifecycle/disable"):
			ok = found(x.AccountIDs[0], "", reconcile.KindDeactivateUser)
		case strings.HasSuffix(x.Template, "/lifecycle/enable"):
			ok = found(x.AccountIDs[0], "", reconcile.KindReactivateUser)
		default:
			ok = false
		}
		if !ok {
			who := make([]string, 0, len(x.AccountIDs))
			for _, id := range x.AccountIDs {
				who = append(who, nb.account(id))
			}
			out = append(out, fmt.Sprintf("%s %s %s %s", x.Method, x.Template, strings.Join(who, ","), nb.group(x.GroupID)+x.GroupName+x.Desk+x.Org))
		}
	}
	return out
}

// crashReference is the uncrashed run of the crash org: end states and pass durations.
type crashReference struct {
	initial, churned endState
	initialPass      time.Duration
	churnPass        time.Duration
	writes           int // Jira writes of the initial sync
	churnWrites      int // Jira writes of the churn pass
}

var (
	crashRefOnce sync.Once
	crashRef     crashReference
	crashRefErr  string
)

func crashReferenceRun(t *testing.T, sz crashSize, org miniorangetest.Org) {
	crashRefOnce.Do(func() {
		idsyncBinary(t) // build first: the timings below are the passes' own
		e := newCrashEnv(t, sz, org)
		start := time.Now()
		if run, r := e.pass(); r.code != 0 || !sourcesComplete(run) {
			t.Fatalf("the reference pass failed: %s", r)
		}
		crashRef.initialPass = time.Since(start)
		e.converge(4)
		crashRef.initial = e.w.snapshot()
		crashRef.writes = len(e.w.writes.list())
		applyChurn(t, e.w.mo, org)
		start = time.Now()
		if _, r := e.pass(); r.code != 0 {
			t.Fatalf("the reference churn pass failed: %s", r)
		}
		crashRef.churnPass = time.Since(start)
		crashRef.churnWrites = len(e.w.writes.list()) - crashRef.writes
		e.converge(4)
		crashRef.churned = e.w.snapshot()
		if t.Failed() {
			crashRefErr = "the uncrashed reference run failed"
		}
	})
	if crashRefErr != "" {
		t.Fatal(crashRefErr)
	}
}

// TestCrashConsistency kills `idsync reconcile` with SIGKILL at seeded random moments of a
// large pass (the initial sync, or a churn with deactivations and removals), restarts it until
// it converges, and compares the end state with the uncrashed run.
func TestCrashConsistency(t *testing.T) {
	if !long {
		// The long run gives the crash trials the machine to themselves (they run before
		// the parallel tests), so the kill moments spread over a pass of steady length.
		t.Parallel()
	}
	timed(t)
	sz := crashSizes()
	org := crashOrg(sz)
	crashReferenceRun(t, sz, org)
	t.Logf("reference: initial sync %s (%d Jira writes), churn %s", crashRef.initialPass.Round(time.Millisecond), crashRef.writes, crashRef.churnPass.Round(time.Millisecond))
	fig := crashFigure{Users: sz.users, PassMs: int(crashRef.initialPass.Milliseconds()), Writes: crashRef.writes}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("IDSYNC_CRASH_SEED"); s != "" {
		_, _ = fmt.Sscan(s, &seed)
	}
	t.Logf("crash seed %d (IDSYNC_CRASH_SEED=%d reproduces the kill moments)", seed, seed)
	var unauditedAll []string
	for k := range sz.trials {
		churn := k%2 == 1
		rng := rand.New(rand.NewPCG(seed, uint64(k)))
		t.Run(fmt.Sprintf("trial-%02d", k), func(t *testing.T) {
			e := newCrashEnv(t, sz, org)
			window, writes, want := crashRef.initialPass, crashRef.writes, crashRef.initial
			if churn {
				e.converge(4)
				applyChurn(t, e.w.mo, org)
				window, writes, want = crashRef.churnPass, crashRef.churnWrites, crashRef.churned
			}
			// The kill point is a share of the pass's writes, not of its duration, so it
			// lands mid-pass whatever the machine's load; the time bound is a backstop.
			frac := 0.05 + 0.9*rng.Float64()
			landed, at := e.killAfterWrites(max(1, int(float64(writes)*frac)), 4*window+10*time.Second)
			fig.Trials++
			if landed {
				fig.Kills++
				fig.KillsAtMs = append(fig.KillsAtMs, int(at.Milliseconds()))
			}
			if k%3 == 2 {
				// Kill the first restart too.
				landed2, at2 := e.killAfterWrites(max(1, int(float64(writes)*(0.05+0.5*rng.Float64()))), 4*window+10*time.Second)
				if landed2 {
					fig.Kills++
					fig.KillsAtMs = append(fig.KillsAtMs, int(at2.Milliseconds()))
				}
			}
			n := e.converge(8)
			fig.MaxRestart = max(fig.MaxRestart, n)
			if d := want.diff(e.w.snapshot(), 20); len(d) > 0 {
				fig.Lost += len(d)
				t.Errorf("end state after a kill at %s differs from the uncrashed run:\n  %s", at, joinLines(d))
			}
			if dups := e.w.duplicates(); len(dups) > 0 {
				fig.Duplicates += len(dups)
				t.Errorf("duplicates: %v", dups)
			}
			un := unaudited(e.w, e.auditRecords())
			fig.Unaudited += len(un)
			unauditedAll = append(unauditedAll, un...)
			t.Logf("killed at %s (landed mid-pass: %v); converged after %d more passes; %d Jira writes without an audit record", at, landed, n, len(un))
		})
	}
	if fig.Kills < sz.trials*3/4 {
		t.Errorf("only %d of %d kills landed during a pass", fig.Kills, sz.trials)
	}
	if len(unauditedAll) > 0 {
		t.Logf("Jira writes without an audit record of their own (first 20):\n  %s", joinLines(head(unauditedAll, 20)))
	}
	t.Run("audit-complete", func(t *testing.T) {
		if len(unauditedAll) > 0 {
			t.Errorf("%d Jira writes have no audit record of their own:\n  %s", len(unauditedAll), joinLines(head(unauditedAll, 20)))
		}
	})
	t.Logf("crash trials: %d, kills mid-pass: %d, duplicates: %d, lost: %d, unaudited writes: %d", fig.Trials, fig.Kills, fig.Duplicates, fig.Lost, fig.Unaudited)
	figures.update(func(r *report) { r.Crash = &fig })
}
