package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/idsync/idsync/configs"
)

const customersToken = "e2e-customers-token-0123456789"

// Customer Sync as the app does it: a person pushed to the customers_only source's own URL
// and token gets portal access to DEMO and never a licensed account (no POST
// /rest/api/3/user: a portal-only customer and the desk add instead); a pushed deletion
// removes the access; the normal source's token cannot reach the customers' URL.
func TestCustomersOnlyPushEndToEnd(t *testing.T) {
	e := newPushEnv(t, func(cfg *configs.Config) {
		cfg.Sources = append(cfg.Sources, configs.SourceConfig{Name: "customers", Type: configs.SourceSCIM, CustomersOnly: true,
			Push: &configs.PushConfig{Enabled: true, Token: customersToken, Debounce: 50 * time.Millisecond}})
		cfg.Mapping.Customers = []configs.CustomerMapping{{Source: "customers", ServiceDesks: []string{"DEMO"}}}
	})
	js := e.jira
	push := func(token, method, path string, body any, want int) map[string]any {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, e.base+"customers"+path, bytes.NewReader(b))
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
