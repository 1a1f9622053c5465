package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/idsync/idsync/internal/proctest"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/sinks/jira/jiratest"
)

// unmanagedView is what must never change about an account idsync does not manage.
type unmanagedView struct {
	jiratest.Account
	Desks, Orgs []string
}

func viewOf(js *jiratest.Sim, id string) unmanagedView {
	a, _ := js.Account(id)
	v := unmanagedView{Account: a}
	for _, d := range js.Desks() {
		if slices.Contains(d.Customers, id) {
			v.Desks = append(v.Desks, d.Key)
		}
	}
	for _, o := range js.Orgs() {
		if slices.Contains(o.Members, id) {
			v.Orgs = append(v.Orgs, o.Name)
		}
	}
	return v
}

// TestReliabilityUnmanagedAccounts runs a full churn (initial sync, people leaving, moving,
// disabled, hired, to convergence) on a site that also holds accounts no source knows: the
// site admin, an app account, a portal-only customer, a contractor and an inactive person, in
// the very groups, desk and organization idsync manages. None of them is changed, and no
// request names them.
func TestReliabilityUnmanagedAccounts(t *testing.T) {
	t.Parallel()
	timed(t)
	for _, authoritative := range []bool{false, true} {
		name := "shared-groups"
		if authoritative {
			name = "authoritative-group"
		}
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			sz := faultSize()
			org := faultOrg(sz)
			seed := jiratest.Seed{
				Groups: []jiratest.SeedGroup{{Name: "engineering"}, {Name: "Support"}},
				Users: []jiratest.User{
					{Email: "contractor@other.org", DisplayName: "Contractor", Groups: []string{"jira-software-users", "engineering", "Support"}},
					{Email: "inactive.person@other.org", DisplayName: "Gone Person", Inactive: true, Groups: []string{"engineering"}},
					{Email: "portal.customer@customer.org", DisplayName: "Portal Customer", Type: jiratest.TypeCustomer},
				},
			}
			w := newWorld(t, worldOpts{Org: org, Jira: seed, MOBatchCap: sz.batchCap, Seed: 61})
			contractor, _ := w.jira.AccountByEmail("contractor@other.org")
			inactive, _ := w.jira.AccountByEmail("inactive.person@other.org")
			customer, _ := w.jira.AccountByEmail("portal.customer@customer.org")
			for _, m := range [][2]string{{"engineering", jiratest.AppID}, {"Support", jiratest.AppID},
				{"engineering", jiratest.SiteAdminID}, {"Support", jiratest.SiteAdminID}} {
				if err := w.jira.AddMember(m[0], m[1]); err != nil {
					t.Fatal(err)
				}
			}
			for _, id := range []string{contractor.AccountID, customer.AccountID} {
				if err := w.jira.AddDeskCustomer("DEMO", id); err != nil {
					t.Fatal(err)
				}
			}
			acme := w.jira.AddOrg("Acme Customers")
			for _, id := range []string{contractor.AccountID, customer.AccountID} {
				if err := w.jira.AddOrgMember(acme, id); err != nil {
					t.Fatal(err)
				}
			}
			// Who must stay untouched whatever the mapping: the site admin, the app account and
			// the customer; in a group idsync does not own whole, also the other people.
			protected := map[string]string{jiratest.SiteAdminID: "site admin", jiratest.AppID: "app account", customer.AccountID: "portal customer"}
			if !authoritative {
				protected[contractor.AccountID] = "contractor"
				protected[inactive.AccountID] = "inactive person"
			}
			before := map[string]unmanagedView{}
			for id := range protected {
				before[id] = viewOf(w.jira, id)
			}

			cfg := faultConfig(w, t.TempDir())
			if authoritative {
				cfg.Groups = "{idp: Engineering, jira: [engineering], authoritative: true}"
			}
			p := openInproc(t, cfg)
			p.converge(ctx, 6, nil)
			applyChurn(t, w.mo, org)
			p.converge(ctx, 6, nil)
			if len(w.removals()) == 0 {
				t.Fatal("the churn removed nothing: the test proves nothing")
			}
			for id, who := range protected {
				if got := viewOf(w.jira, id); fmt.Sprint(got) != fmt.Sprint(before[id]) {
					t.Errorf("%s changed:\n  before %+v\n  after  %+v", who, before[id], got)
				}
			}
			for _, x := range w.writes.list() {
				for _, id := range x.AccountIDs {
					if who, ok := protected[id]; ok {
						t.Errorf("a request changed the %s: %s", who, x)
					}
				}
			}
			if authoritative {
				c := viewOf(w.jira, contractor.AccountID)
				t.Logf("authoritative engineering: the contractor is now in %v", c.Groups)
			}
		})
	}
}

// TestReliabilitySecrets runs the CLI commands and the daemon with known secret values, given
// inline, as files and through the environment, at debug level, on success and on failure,
// and searches every output, log and API answer for them.
func TestReliabilitySecrets(t *testing.T) {
	t.Parallel()
	timed(t)
	for _, mode := range []string{"inline", "files", "env"} {
		t.Run(mode, func(t *testing.T) {
			w := newWorld(t, worldOpts{Org: outageOrg(), Seed: 71})
			cfg := unguarded(w, t.TempDir())
			cfg.LogLevel = "debug"
			cfg.PushToken = "rel-scim-corp-token-4d8e"
			cfg.AdminToken = "rel-admin-" + mode + "-token-a17f"
			if mode != "inline" {
				cfg.SecretsIn = mode
			}
			path := cfg.write(t)
			secrets, env := cfg.secrets(), cfg.env()
			run := func(args ...string) cmdResult {
				t.Helper()
				return runIdsync(t, secrets, env, args...)
			}
			expect := func(r cmdResult, codes ...int) {
				t.Helper()
				if !slices.Contains(codes, r.code) {
					t.Errorf("unexpected exit: %s", r)
				}
			}
			expect(run("validate", "-c", path), 0)
			expect(run("plan", "-c", path), 0)
			expect(run("plan", "-c", path, "-o", "json"), 0)
			expect(run("reconcile", "-c", path), 0)
			expect(run("reconcile", "-c", path, "-o", "json"), 0)
			expect(run("state", "inspect", "-c", path), 0)
			expect(run("audit", "-c", path), 0)
			expect(run("audit", "-c", path, "-o", "json"), 0)
			expect(run("status", "-c", path), 0)

			d := startIdsyncEnv(t, secrets, env, true, "run", "-c", path, "--no-initial-pass")
			admin := cfg.AdminToken
			check := func(method, path, token string, want int) string {
				t.Helper()
				code, body := d.httpDo(method, path, token, "")
				if code != want {
					t.Errorf("%s %s: %d, want %d: %s", method, path, code, want, body)
				}
				proctest.NoSecrets(t, method+" "+path, body, secrets)
				return body
			}
			check(http.MethodPost, "/api/v1/reconcile", admin, http.StatusAccepted)
			waitFor(t, 60*time.Second, "the triggered pass", func() bool {
				_, body := d.httpDo(http.MethodGet, "/api/v1/status", admin, "")
				return strings.Contains(body, `"trigger": "api"`)
			})
			check(http.MethodGet, "/api/v1/status", admin, http.StatusOK)
			runs := check(http.MethodGet, "/api/v1/runs", admin, http.StatusOK)
			var list []reconcile.Run
			if err := json.Unmarshal([]byte(runs), &list); err == nil && len(list) > 0 {
				check(http.MethodGet, "/api/v1/runs/"+list[0].ID, admin, http.StatusOK)
			} else {
				var wrapped struct {
					Runs []reconcile.Run `json:"runs"`
				}
				if err := json.Unmarshal([]byte(runs), &wrapped); err == nil && len(wrapped.Runs) > 0 {
					check(http.MethodGet, "/api/v1/runs/"+wrapped.Runs[0].ID, admin, http.StatusOK)
				} else {
					t.Errorf("/api/v1/runs lists no run: %s", runs)
				}
			}
			check(http.MethodGet, "/api/v1/held", admin, http.StatusNotFound) // nothing held
			check(http.MethodGet, "/metrics", "", http.StatusOK)
			check(http.MethodGet, "/readyz", "", http.StatusOK)
			check(http.MethodGet, "/healthz", "", http.StatusOK)
			check(http.MethodGet, "/scim/v2/corp/Users", cfg.PushToken, http.StatusOK)
			check(http.MethodGet, "/api/v1/status", "wrong-token", http.StatusUnauthorized)
			expect(run("status", "--addr", "http://"+d.addr, "-c", path), 0)
			d.kill()

			// Failures: credentials the APIs refuse must not be echoed either. (One way of
			// giving secrets is enough in the default run: the failing reads retry for seconds.)
			if !long && mode != "inline" {
				return
			}
			for _, bad := range []struct{ what, from, to string }{
				{"a refused Jira token", jiraToken, "rel-wrong-jira-token-5b1e"},
				{"a refused miniOrange key", moAPIKey, "rel-wrong-mo-key-93aa"},
			} {
				broken := cfg
				broken.Dir = t.TempDir()
				bpath := broken.write(t)
				raw, err := os.ReadFile(bpath)
				if err != nil {
					t.Fatal(err)
				}
				benv := env
				if mode == "inline" {
					raw = []byte(strings.ReplaceAll(string(raw), bad.from, bad.to))
				} else {
					// Files and variables: swap the value where it lives.
					for _, f := range mustGlob(t, broken.Dir+"/secret-*") {
						b, _ := os.ReadFile(f)
						if strings.TrimSpace(string(b)) == bad.from {
							_ = os.WriteFile(f, []byte(bad.to), 0o600)
						}
					}
					benv = nil
					for _, kv := range env {
						benv = append(benv, strings.Replace(kv, "="+bad.from, "="+bad.to, 1))
					}
				}
				if err := os.WriteFile(bpath, raw, 0o600); err != nil {
					t.Fatal(err)
				}
				r := runIdsync(t, append(slices.Clone(secrets), bad.to), benv, "reconcile", "-c", bpath)
				if r.code == 0 {
					t.Errorf("%s: reconcile succeeded: %s", bad.what, r)
				}
			}
		})
	}

	t.Run("bad-config", func(t *testing.T) {
		// A secret under a misspelt key or in a value of the wrong shape is still a secret:
		// validation names the field, never the value.
		dir := t.TempDir()
		w := newWorld(t, worldOpts{Org: outageOrg(), Seed: 73})
		cfg := unguarded(w, dir)
		path := cfg.write(t)
		raw, _ := os.ReadFile(path)
		for _, c := range []struct{ name, edit, secret string }{
			{"misspelt key", strings.Replace(string(raw), "    products:", "    api_tokn: \"rel-typo-secret-77d1\"\n    products:", 1), "rel-typo-secret-77d1"},
			{"wrong shape", strings.Replace(string(raw), "admin_token: \"", "admin_token: {nested: \"rel-nested-secret-8c21\"}\nx_admin_token: \"", 1), "rel-nested-secret-8c21"},
			{"list value", strings.Replace(string(raw), "admin_token: \"", "admin_token: [\"rel-list-secret-1f0b\"]\nx_admin_token: \"", 1), "rel-list-secret-1f0b"},
		} {
			bad := dir + "/bad.yaml"
			if err := os.WriteFile(bad, []byte(c.edit), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, cmd := range [][]string{{"validate", "-c", bad}, {"reconcile", "-c", bad}, {"run", "-c", bad}} {
				r := runIdsync(t, append(cfg.secrets(), c.secret), nil, cmd...)
				if r.code != 2 {
					t.Errorf("%s: %s: want exit 2: %s", c.name, cmd[0], r)
				}
			}
		}
	})
}

func mustGlob(t *testing.T, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestReliabilityTokens: admin and SCIM tokens reach only their own routes; refusals are 401
// and say nothing about why, nor whether a source exists.
func TestReliabilityTokens(t *testing.T) {
	t.Parallel()
	timed(t)
	w := newWorld(t, worldOpts{Org: outageOrg(), Seed: 79})
	cfg := unguarded(w, t.TempDir())
	cfg.PushToken = "rel-scim-corp-token-2b7c"
	cfg.SCIMTokens = map[string]string{"partner": "rel-scim-partner-token-e04d"}
	cfg.write(t)
	secrets := cfg.secrets()
	d := startIdsync(t, secrets, true, "run", "-c", cfg.path(), "--no-initial-pass")
	admin, corp, partner := defaultAdminToken, cfg.PushToken, cfg.SCIMTokens["partner"]

	// A user pushed to partner, that corp must not reach.
	code, body := d.httpDo(http.MethodPost, "/scim/v2/partner/Users", partner,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"p@example.com","emails":[{"value":"p@example.com","primary":true}],"active":true}`)
	if code != http.StatusCreated {
		t.Fatalf("partner create: %d %s", code, body)
	}
	var pu struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal([]byte(body), &pu)

	unauth := map[string][]string{} // route family -> 401 bodies, which must not differ
	for _, c := range []struct {
		method, path, token string
		want                int
		family              string
	}{
		{"GET", "/api/v1/status", "", 401, "admin"},
		{"GET", "/api/v1/status", "wrong", 401, "admin"},
		{"GET", "/api/v1/status", corp, 401, "admin"},
		{"GET", "/api/v1/status", partner, 401, "admin"},
		{"POST", "/api/v1/reconcile", corp, 401, "admin"},
		{"GET", "/api/v1/held", partner, 401, "admin"},
		{"GET", "/api/v1/status", admin, 200, ""},
		{"GET", "/scim/v2/corp/Users", "", 401, "scim"},
		{"GET", "/scim/v2/corp/Users", "wrong", 401, "scim"},
		{"GET", "/scim/v2/corp/Users", admin, 401, "scim"},
		{"GET", "/scim/v2/corp/Users", partner, 401, "scim"},
		{"GET", "/scim/v2/nosuchsource/Users", corp, 401, "scim"},
		{"GET", "/scim/v2/partner/Users/" + pu.ID, corp, 401, "scim"},
		{"DELETE", "/scim/v2/partner/Users/" + pu.ID, corp, 401, "scim"},
		{"GET", "/scim/v2/corp/Users/" + pu.ID, corp, 404, ""},
		{"GET", "/scim/v2/corp/Users", corp, 200, ""},
		{"GET", "/scim/v2/partner/Users/" + pu.ID, partner, 200, ""},
	} {
		code, body := d.httpDo(c.method, c.path, c.token, "")
		if code != c.want {
			t.Errorf("%s %s with %s: %d, want %d: %s", c.method, c.path, tokenName(c.token, admin, corp, partner), code, c.want, body)
		}
		proctest.NoSecrets(t, c.method+" "+c.path, body, secrets)
		if c.want == 401 {
			unauth[c.family] = append(unauth[c.family], normalise401(body))
		}
	}
	for family, bodies := range unauth {
		for _, b := range bodies[1:] {
			if b != bodies[0] {
				t.Errorf("%s 401 answers differ (they must not tell why):\n  %s\n  %s", family, bodies[0], b)
			}
		}
	}
	// A token in the query string is no credential.
	if code, _ := d.httpDo(http.MethodGet, "/api/v1/status?access_token="+admin, "", ""); code != 401 {
		t.Errorf("a token in the query string was accepted: %d", code)
	}
	// The partner's user is still there: corp's DELETE was refused.
	if code, _ := d.httpDo(http.MethodGet, "/scim/v2/partner/Users/"+pu.ID, partner, ""); code != 200 {
		t.Errorf("the partner's user reads %d after corp's refused DELETE", code)
	}
}

func tokenName(tok, admin, corp, partner string) string {
	switch tok {
	case "":
		return "no token"
	case admin:
		return "the admin token"
	case corp:
		return "corp's SCIM token"
	case partner:
		return "partner's SCIM token"
	}
	return "a wrong token"
}

// normalise401 drops the parts of a refusal that may legitimately vary (the path it names).
func normalise401(body string) string {
	var m map[string]any
	if json.Unmarshal([]byte(body), &m) != nil {
		return body
	}
	delete(m, "path")
	b, _ := json.Marshal(m)
	return string(b)
}

// TestReliabilityStateFileMode: the state file is created 0600; a world-readable one makes
// the CLI print a warning.
func TestReliabilityStateFileMode(t *testing.T) {
	t.Parallel()
	timed(t)
	w := newWorld(t, worldOpts{Org: outageOrg(), Seed: 83})
	cfg := unguarded(w, t.TempDir())
	path := cfg.write(t)
	if r := runIdsync(t, cfg.secrets(), nil, "reconcile", "-c", path); r.code != 0 {
		t.Fatalf("reconcile: %s", r)
	}
	info, err := os.Stat(cfg.statePath())
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("state file created with mode %#o, want 0600", mode)
	}
	if err := os.Chmod(cfg.statePath(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"reconcile", "-c", path}, {"state", "inspect", "-c", path}, {"audit", "-c", path}, {"status", "-c", path}} {
		r := runIdsync(t, cfg.secrets(), nil, args...)
		if !strings.Contains(r.stderr, "0644") || !strings.Contains(strings.ToLower(r.stderr), "chmod 600") {
			t.Errorf("idsync %s on a world-readable state file printed no warning:\n%s", args[0], proctest.Tail(r.stderr, 2000))
		}
	}
}
