package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/app"
	"github.com/idsync/idsync/sinks/jira/jiratest"
)

const customersToken = "e2e-customers-token-0123456789"

// Customer Sync as the app does it: a person pushed to the customers_only source's own URL
// and token gets portal access to DEMO and never a licensed account (no POST
// /rest/api/3/user: a portal-only customer and the desk add instead); a pushed deletion
// removes the access; the normal source's token cannot reach the customers' URL.
func TestCustomersOnlyPushEndToEnd(t *testing.T) {
	js, jsrv := jiratest.NewServer(t, jiratest.Options{Seed: 11})
	cfg := configs.Default()
	cfg.AdminToken = "e2e-admin-token-0123456789"
	cfg.State.Path = filepath.Join(t.TempDir(), "idsync.db")
	cfg.Sources = []configs.SourceConfig{
		{Name: "okta", Type: configs.SourceSCIM, Push: &configs.PushConfig{Enabled: true, Token: pushToken, Debounce: 50 * time.Millisecond}},
		{Name: "customers", Type: configs.SourceSCIM, CustomersOnly: true,
			Push: &configs.PushConfig{Enabled: true, Token: customersToken, Debounce: 50 * time.Millisecond}},
	}
	cfg.Sink = configs.SinkConfig{Type: configs.SinkJira, Jira: &configs.JiraConfig{
		BaseURL: jsrv.URL, Email: jiratest.DefaultEmail, APIToken: jiratest.DefaultAPIToken,
		Products: []string{"jira-software"}, Deactivate: configs.DeactivateRemoveAccess,
		RateLimit: configs.RateLimit{Concurrency: 4},
	}}
	cfg.Mapping = configs.MappingConfig{ImportUsers: true, ImportGroups: true, DefaultGroups: []string{"jira-software-users"},
		Customers: []configs.CustomerMapping{{Source: "customers", ServiceDesks: []string{"DEMO"}}}}
	cfg.Safety = configs.SafetyConfig{Policy: configs.PolicySync, GracePasses: 2, MaxDeactivations: 10, MaxDeactivationPercent: 100, MaxMembershipRemovals: 100}
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
	push := func(token, method, path string, body any, want int) map[string]any {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, srv.URL+"/scim/v2/customers"+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/scim+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d, want %d: %v", method, path, resp.StatusCode, want, out)
		}
		return out
	}
	push(pushToken, "POST", "/Users", scimUser("intruder"), http.StatusUnauthorized)

	created := push(customersToken, "POST", "/Users", scimUser("cora"), http.StatusCreated)
	waitFor(t, "cora on the DEMO portal", func() bool {
		acc, ok := js.AccountByEmail("cora@example.com")
		d, _ := js.Desk("DEMO")
		return ok && slices.Contains(d.Customers, acc.AccountID)
	})
	acc, _ := js.AccountByEmail("cora@example.com")
	if acc.AccountType != "customer" || len(acc.Groups) != 0 {
		t.Fatalf("cora is %s in %v, want a portal-only customer in no group", acc.AccountType, acc.Groups)
	}
	if n := js.CallCount(http.MethodPost, "/rest/api/3/user"); n != 0 {
		t.Fatalf("%d licensed account creates for a customers-only person", n)
	}
	if js.CallCount(http.MethodPost, "/rest/servicedeskapi/customer") == 0 {
		t.Fatalf("no portal-only customer was created: %v", js.CallList())
	}

	push(customersToken, "DELETE", "/Users/"+created["id"].(string), nil, http.StatusNoContent)
	waitFor(t, "cora off the DEMO portal", func() bool {
		d, _ := js.Desk("DEMO")
		return !slices.Contains(d.Customers, acc.AccountID)
	})
	if n := js.CallCount(http.MethodPost, "/rest/api/3/user"); n != 0 {
		t.Fatalf("%d licensed account creates", n)
	}
}
