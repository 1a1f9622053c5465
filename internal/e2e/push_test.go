// Package e2e holds end-to-end tests across packages: SCIM pushes through the real listener
// into the Jira simulator, and the generic SCIM pull source reading idsync's own listener.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/app"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/reconcile/runner"
	"github.com/idsync/idsync/sinks/jira/jiratest"
)

const pushToken = "e2e-push-token-0123456789"

// pushEnv is a push-only source wired to the Jira simulator through the real app.
type pushEnv struct {
	jira *jiratest.Sim
	app  *app.App
	scim string
	base string // the listener's /scim/v2/, for other sources
}

// newPushEnv wires a push-only source "okta" to the Jira simulator; edits change the config
// before it is validated (more sources, other mappings).
func newPushEnv(t *testing.T, edits ...func(*configs.Config)) *pushEnv {
	t.Helper()
	js, jsrv := jiratest.NewServer(t, jiratest.Options{Seed: 7})
	cfg := configs.Default()
	cfg.AdminToken = "e2e-admin-token-0123456789"
	cfg.State.Path = filepath.Join(t.TempDir(), "idsync.db")
	cfg.Sources = []configs.SourceConfig{{Name: "okta", Type: configs.SourceSCIM,
		Push: &configs.PushConfig{Enabled: true, Token: pushToken, Debounce: 50 * time.Millisecond}}}
	cfg.Sink = configs.SinkConfig{Type: configs.SinkJira, Jira: &configs.JiraConfig{
		BaseURL: jsrv.URL, Email: jiratest.DefaultEmail, APIToken: jiratest.DefaultAPIToken,
		Products: []string{"jira-software"}, Deactivate: configs.DeactivateRemoveAccess,
		RateLimit: configs.RateLimit{Concurrency: 4},
	}}
	cfg.Mapping = configs.MappingConfig{ImportUsers: true, ImportGroups: true, DefaultGroups: []string{"jira-software-users"}}
	cfg.Safety = configs.SafetyConfig{Policy: configs.PolicySync, GracePasses: 2, MaxDeactivations: 10, MaxDeactivationPercent: 100, MaxMembershipRemovals: 100}
	for _, edit := range edits {
		edit(cfg)
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	a, err := app.Open(cfg, app.Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatalf("app.Open: %v", err)
	}
	srv := httptest.NewServer(a.SCIM)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = a.Runner.Serve(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
		_ = a.Close()
	})
	return &pushEnv{jira: js, app: a, scim: srv.URL + "/scim/v2/okta", base: srv.URL + "/scim/v2/"}
}

func (e *pushEnv) call(t *testing.T, method, path string, body any, wantStatus ...int) map[string]any {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.scim+path, rd)
	req.Header.Set("Authorization", "Bearer "+pushToken)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if !slices.Contains(wantStatus, resp.StatusCode) {
		t.Fatalf("%s %s: status %d, want %v: %s", method, path, resp.StatusCode, wantStatus, data)
	}
	var out map[string]any
	_ = json.Unmarshal(data, &out)
	return out
}

func scimUser(name string) map[string]any {
	return map[string]any{
		"schemas":  []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName": name + "@example.com", "active": true, "displayName": name,
		"name":   map[string]string{"givenName": name, "familyName": "Test"},
		"emails": []map[string]any{{"value": name + "@example.com", "type": "work", "primary": true}},
	}
}

// waitFor polls cond until it holds or the deadline passes (pushes trigger passes after the
// debounce window, asynchronously).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func (e *pushEnv) groupsOf(email string) ([]string, bool) {
	a, ok := e.jira.AccountByEmail(email)
	return a.Groups, ok
}

// TestSCIMPushEndToEnd: a SCIM client pushes users and groups; the Jira simulator ends up
// with the right accounts, groups, memberships and deactivations, through the same plan,
// guards and journal as pull mode.
func TestSCIMPushEndToEnd(t *testing.T) {
	e := newPushEnv(t)
	ids := map[string]string{}
	for _, n := range []string{"ann", "bob", "cat"} {
		ids[n] = e.call(t, http.MethodPost, "/Users", scimUser(n), http.StatusCreated)["id"].(string)
	}
	grp := e.call(t, http.MethodPost, "/Groups", map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": "Engineering",
		"members":     []map[string]string{{"value": ids["ann"]}, {"value": ids["bob"]}},
	}, http.StatusCreated)

	waitFor(t, "accounts and memberships", func() bool {
		ann, ok1 := e.groupsOf("ann@example.com")
		bob, ok2 := e.groupsOf("bob@example.com")
		cat, ok3 := e.groupsOf("cat@example.com")
		return ok1 && ok2 && ok3 && slices.Contains(ann, "Engineering") && slices.Contains(bob, "Engineering") &&
			slices.Contains(cat, "jira-software-users") && !slices.Contains(cat, "Engineering")
	})

	// Okta-style member removal, then Entra-style deprovision (active "False" as a string),
	// then a DELETE: each is a push, each goes through the guards.
	e.call(t, http.MethodPatch, "/Groups/"+grp["id"].(string), map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []map[string]any{{"op": "remove", "path": fmt.Sprintf("members[value eq %q]", ids["bob"])}},
	}, http.StatusOK, http.StatusNoContent) // RFC 7644 allows either
	e.call(t, http.MethodPatch, "/Users/"+ids["cat"], map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []map[string]any{{"op": "Replace", "path": "active", "value": "False"}},
	}, http.StatusOK, http.StatusNoContent)
	e.call(t, http.MethodDelete, "/Users/"+ids["ann"], nil, http.StatusNoContent)

	// Removals wait for the next complete pass (a targeted pass holds membership removals);
	// explicit deprovisions apply at once. Run a full pass as the schedule would.
	waitFor(t, "cat and ann deprovisioned", func() bool {
		cat, _ := e.groupsOf("cat@example.com")
		ann, _ := e.groupsOf("ann@example.com")
		return len(cat) == 0 && len(ann) == 0
	})
	run, err := e.app.RunOnce(context.Background(), runner.RunOptions{Trigger: reconcile.TriggerSchedule})
	if err != nil || run.Result != reconcile.ResultOK {
		t.Fatalf("full pass: %v %s %v", err, run.Result, run.Errors)
	}
	bob, _ := e.groupsOf("bob@example.com")
	if slices.Contains(bob, "Engineering") || !slices.Contains(bob, "jira-software-users") {
		t.Fatalf("bob's groups after removal from Engineering: %v", bob)
	}
	if d := e.jira.DuplicateEmails(); len(d) > 0 {
		t.Fatalf("duplicate accounts: %v", d)
	}
	// The site admin was never touched.
	if a, ok := e.jira.Account(jiratest.SiteAdminID); !ok || !a.Active || len(a.Groups) == 0 {
		t.Fatalf("site admin changed: %+v", a)
	}
	// Every deprovision is audited.
	recs, err := e.app.Store.Audit(time.Time{}, "ann@example.com")
	if err != nil || len(recs) == 0 {
		t.Fatalf("no audit for ann: %v", err)
	}
}
