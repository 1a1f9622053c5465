package reliability

// A Google Workspace source end to end: the config file is loaded and validated as the
// binary does (type google, a relative credentials_file), internal/app wires the google
// source, the Jira sink and the Runner, and passes run against the Directory API simulator
// (which checks the service account's signed JWT at its token endpoint) and the Jira
// simulator, both on 127.0.0.1.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/app"
	"github.com/idsync/idsync/internal/httpx"
	"github.com/idsync/idsync/internal/logging"
	"github.com/idsync/idsync/internal/metrics"
	"github.com/idsync/idsync/internal/testlog"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/reconcile/runner"
	"github.com/idsync/idsync/sinks/jira/jiratest"
	"github.com/idsync/idsync/sources/google/googletest"
)

// gworld is one test's Jira and Google simulators.
type gworld struct {
	jira   *jiratest.Sim
	google *googletest.Server
	jf     *faultCounter
	dir    string
	cfg    string // the config file
}

type gworldOpts struct {
	Org *googletest.Org
	// Caps below Google's documented page sizes, so small orgs still page.
	UsersCap, GroupsCap, MembersCap int
	Grace                           int
	NestedGroups                    bool
}

func newGWorld(t testing.TB, o gworldOpts) *gworld {
	t.Helper()
	w := &gworld{jf: newFaultCounter(), dir: t.TempDir()}
	w.jira = jiratest.New(jiratest.Options{Seed: 7, RetryAfter: time.Second, EarlyGrace: 250 * time.Millisecond})
	jsrv := serveLoopback(t, w.jf.wrap(w.jira.Handler(), false))
	w.google = googletest.NewServer(t, googletest.Options{Org: o.Org, Seed: 3})
	w.google.SetPageCaps(o.UsersCap, o.GroupsCap, o.MembersCap)
	// The key file sits next to the config and is named relatively, as operators do.
	key, err := os.ReadFile(w.google.CredentialsFile())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.dir, "google-sa.json"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`listen: "127.0.0.1:0"
admin_token: %q
state: {path: %q}
schedule: "@every 1h"
shutdown_timeout: 20s
log: {level: info, format: json}
sources:
  - name: workspace
    type: google
    priority: 10
    google:
      admin_email: %s
      credentials_file: google-sa.json
      base_url: %s
      page_size: 500
      nested_groups: %v
      rate_limit: {requests_per_second: 0, concurrency: 4}
sink:
  type: jira
  jira:
    base_url: %s
    email: %s
    api_token: %q
    products: [jira-software]
    deactivate: remove-access
    rate_limit: {requests_per_second: 500, burst: 50, concurrency: 4}
mapping:
  import_users: true
  import_groups: true
  groups:
    - {idp: Engineering, jira: [engineering, developers]}
  default_groups: [jira-software-users]
safety:
  policy: sync
  grace_passes: %d
  max_deactivations: 100
  max_deactivation_percent: 50
  max_membership_removals: 1000
`, defaultAdminToken, filepath.Join(w.dir, "idsync.db"), googletest.DefaultAdminEmail, w.google.URL, o.NestedGroups,
		jsrv.URL, jiratest.DefaultEmail, jiraToken, o.Grace)
	w.cfg = filepath.Join(w.dir, "idsync.yaml")
	if err := os.WriteFile(w.cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

// open wires idsync from the config file as `idsync run` does. retry shortens the source's
// retry waits (zero: the defaults).
func (w *gworld) open(t testing.TB, retry httpx.Retry) *inproc {
	t.Helper()
	cfg, err := configs.LoadAndValidate(w.cfg, nil)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	if g := cfg.Sources[0].Google; g == nil || g.CredentialsFile != filepath.Join(w.dir, "google-sa.json") {
		t.Fatalf("credentials_file did not resolve against the config's folder: %+v", g)
	}
	logs := &testlog.Buffer{}
	log, err := logging.New(logs, "info", logging.FormatJSON)
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	a, err := app.Open(cfg, app.Options{Logger: log, Metrics: m, StateTimeout: 5 * time.Second, SourceRetry: retry})
	if err != nil {
		t.Fatalf("app.Open: %v", err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("closing the app: %v", err)
		}
		if strings.Contains(logs.String(), "PRIVATE KEY") || strings.Contains(logs.String(), "ya29.") {
			t.Error("idsync's logs hold the service account key or an access token")
		}
	})
	return &inproc{t: t, App: a, M: m, Logs: logs}
}

// site is what Jira holds: accounts by email with their groups, and groups by name.
type site struct {
	accounts map[string][]string // email -> groups (lower case)
	groups   map[string][]string // lower name -> member emails
}

func (w *gworld) site() site {
	s := site{accounts: map[string][]string{}, groups: map[string][]string{}}
	email := map[string]string{}
	for _, a := range w.jira.Accounts() {
		email[a.AccountID] = strings.ToLower(a.Email)
		var gs []string
		for _, g := range a.Groups {
			gs = append(gs, strings.ToLower(g))
		}
		s.accounts[strings.ToLower(a.Email)] = gs
	}
	for _, g := range w.jira.Groups() {
		var ms []string
		for _, id := range g.Members {
			ms = append(ms, email[id])
		}
		sort.Strings(ms)
		s.groups[strings.ToLower(g.Name)] = ms
	}
	return s
}

// hasAccess reports whether the account is in the product-access group.
func (s site) hasAccess(email string) bool {
	return slices.Contains(s.accounts[strings.ToLower(email)], "jira-software-users")
}

// checkMirror asserts that Jira mirrors the Google org: every active user has an account with
// product access, inactive users have none, and every Google group's same-name Jira group
// holds exactly the group's active effective members (nested groups expanded).
func (w *gworld) checkMirror(t *testing.T) {
	t.Helper()
	s := w.site()
	active := map[string]bool{}
	for _, u := range w.google.Users() {
		e := strings.ToLower(u.PrimaryEmail)
		switch {
		case !u.Suspended && !u.Archived:
			active[e] = true
			if !s.hasAccess(e) {
				t.Errorf("active user %s has no Jira access", e)
			}
		case s.hasAccess(e):
			t.Errorf("inactive user %s (suspended %v, archived %v) has Jira access", e, u.Suspended, u.Archived)
		}
	}
	for _, g := range w.google.Groups() {
		var want []string
		for _, m := range w.google.EffectiveMembers(g.Email) {
			if active[strings.ToLower(m)] {
				want = append(want, strings.ToLower(m))
			}
		}
		names := []string{strings.ToLower(g.Name)}
		if g.Name == "Engineering" {
			names = []string{"engineering", "developers"}
		}
		for _, n := range names {
			got := s.groups[n]
			if missing, extra := setDiff(want, got), setDiff(got, want); len(missing)+len(extra) > 0 {
				t.Errorf("Jira group %s: missing %v, extra %v", n, head(missing, 5), head(extra, 5))
			}
		}
	}
}

func deactivated(run reconcile.Run) int {
	return run.Counts[reconcile.KindDeactivateUser][reconcile.ItemOK]
}

// TestGoogleEndToEnd syncs a demo-sized Workspace org (200 users, 15 groups, nested groups,
// suspended and archived users) into an empty Jira site through the real wiring, then a
// leaver (deleted in Google) is deprovisioned after the grace passes and a suspended user at
// once.
func TestGoogleEndToEnd(t *testing.T) {
	t.Parallel()
	timed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w := newGWorld(t, gworldOpts{UsersCap: 64, GroupsCap: 6, MembersCap: 16, Grace: 2})
	p := w.open(t, httpx.Retry{})

	n, runs := p.converge(ctx, 5, func(_ int, run reconcile.Run) { checkPass(t, run) })
	if n == 0 || runs[0].Counts[reconcile.KindCreateUser][reconcile.ItemOK] != 195 {
		t.Fatalf("initial sync: %s", runSummary(runs[0]))
	}
	w.checkMirror(t)
	if v, _ := metrics.Sum(scrape(t, p.M), "idsync_source_read_complete", map[string]string{"source": "workspace"}); v != 1 {
		t.Errorf("idsync_source_read_complete = %v", v)
	}

	// Churn at Google: one leaver (deleted), one suspended, one hire, one moved between
	// groups.
	users := w.google.Users()
	leaver, suspended := users[0].PrimaryEmail, users[1].PrimaryEmail
	groups := w.google.Groups()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.google.Delete(leaver))
	must(w.google.SetSuspended(suspended, true))
	_, err := w.google.Hire(googletest.User{PrimaryEmail: "new.hire@example.com", GivenName: "New", FamilyName: "Hire"}, groups[1].Email)
	must(err)
	mover := users[2].PrimaryEmail
	for _, g := range groups {
		if slices.Contains(g.Members, mover) {
			must(w.google.RemoveMember(g.Email, mover))
			break
		}
	}
	must(w.google.AddMember(groups[5].Email, mover))

	run := p.pass(ctx)
	checkPass(t, run)
	if deactivated(run) != 1 {
		t.Fatalf("first pass after the churn deactivated %d, want the suspended user only: %s", deactivated(run), runSummary(run))
	}
	s := w.site()
	if s.hasAccess(suspended) {
		t.Error("the suspended user keeps access: a suspension is an explicit deprovision (no grace)")
	}
	if !s.hasAccess(leaver) {
		t.Error("the leaver lost access before the grace passes")
	}
	if !s.hasAccess("new.hire@example.com") {
		t.Error("the hire has no account")
	}
	var later []reconcile.Run
	for i := 0; i < 4 && s.hasAccess(leaver); i++ {
		r := p.pass(ctx)
		checkPass(t, r)
		later = append(later, r)
		s = w.site()
	}
	if s.hasAccess(leaver) {
		t.Fatalf("the leaver still has access after %d more passes", len(later))
	}
	// Missing from the churn pass and the next one (grace_passes: 2), gone in the third.
	if len(later) != 2 || deactivated(later[1]) != 1 {
		t.Errorf("the leaver was deactivated after %d more passes, want 2 (grace_passes: 2)", len(later))
	}
	if _, runs := p.converge(ctx, 4, func(_ int, run reconcile.Run) { checkPass(t, run) }); len(runs) == 0 {
		t.Fatal("no pass")
	}
	w.checkMirror(t)
	if d := w.jira.DuplicateEmails(); len(d) > 0 {
		t.Errorf("duplicate accounts: %v", d)
	}
	// A targeted one-user run reads users.get and the user's groups.
	before := w.google.Calls()[googletest.EndpointUsersGet]
	one, err := p.App.RunOnce(ctx, runner.RunOptions{Trigger: reconcile.TriggerAPI, Users: []string{"new.hire@example.com"}})
	if err != nil || one.Result != reconcile.ResultOK {
		t.Errorf("targeted run: %v %s", err, runSummary(one))
	}
	if w.google.Calls()[googletest.EndpointUsersGet] != before+1 {
		t.Errorf("the targeted run did not fetch the user (users.get calls %v)", w.google.Calls())
	}
}

// A user record without its state fields is never taken as active: the pass is incomplete and
// removes nothing, and the metric says so.
func TestGoogleUnknownStateHoldsRemovals(t *testing.T) {
	t.Parallel()
	timed(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	org := googletest.GenerateOrg(googletest.OrgSpec{Users: 30, Groups: 4, MembershipsPerUser: 2, Nested: 1, Seed: 5})
	w := newGWorld(t, gworldOpts{Org: &org, Grace: 0})
	p := w.open(t, httpx.Retry{})
	p.converge(ctx, 4, nil)
	victim := w.google.Users()[3].PrimaryEmail
	w.google.SetUserHook(func(email string, rec map[string]any) {
		if email == victim {
			delete(rec, "suspended")
			delete(rec, "archived")
		}
	})
	// Someone also left: with grace 0 a complete read would deactivate them at once.
	leaver := w.google.Users()[4].PrimaryEmail
	if err := w.google.Delete(leaver); err != nil {
		t.Fatal(err)
	}
	run := p.pass(ctx)
	checkPass(t, run)
	if sourcesComplete(run) || applied(run, removalKinds...) > 0 {
		t.Fatalf("a record without a state: %s", runSummary(run))
	}
	if !strings.Contains(strings.Join(run.Errors, " ")+fmt.Sprint(run.Sources), victim) {
		t.Errorf("the pass does not name the record: %s", runSummary(run))
	}
	if v, _ := metrics.Sum(scrape(t, p.M), "idsync_source_read_complete", map[string]string{"source": "workspace"}); v != 0 {
		t.Errorf("idsync_source_read_complete = %v after an incomplete read", v)
	}
	w.google.SetUserHook(nil)
	run = p.pass(ctx)
	if !sourcesComplete(run) || deactivated(run) != 1 {
		t.Errorf("once the record is whole again the leaver goes: %s", runSummary(run))
	}
}

// scrape renders the metrics as /metrics does.
func scrape(t testing.TB, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}
