package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/idsync/idsync/sinks/jira/jiratest"
)

// Customer Sync under Jira faults: people pushed to a customers_only source become portal-only
// customers of DEMO and never licensed accounts, whatever the faults do to the creates and
// desk adds (5xx, resets after the write landed, truncated answers); a person the corp source
// also knows keeps the licensed account and is added to the desk by accountId; pushed
// deletions remove the customer access idsync granted and nothing else.
func TestFaultCustomersOnlySource(t *testing.T) {
	sz := faultSize()
	org := faultOrg(sz)
	w := newWorld(t, worldOpts{Org: org, MOBatchCap: sz.batchCap, Seed: 61})
	const token = "rel-customers-token-5d21"
	cfg := faultConfig(w, t.TempDir())
	cfg.SCIMTokens = map[string]string{"customers": token}
	cfg.CustomersOnly = map[string]bool{"customers": true}
	cfg.Customers = "{idp: Support, service_desks: [DEMO], organizations: [Acme Customers]}\n{source: customers, service_desks: [DEMO]}"
	p := openInproc(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p.converge(ctx, 6, nil)

	srv := httptest.NewServer(p.App.SCIM)
	defer srv.Close()
	push := func(method, path string, body any, want int) map[string]any {
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
	user := func(email string) map[string]any {
		return map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": email, "active": true,
			"displayName": email, "emails": []map[string]any{{"value": email, "type": "work", "primary": true}}}
	}
	var ids []string
	var customers []string
	for i := range 5 {
		email := fmt.Sprintf("portal.%d@customer.example.org", i)
		customers = append(customers, email)
		ids = append(ids, push("POST", "/Users", user(email), http.StatusCreated)["id"].(string))
	}
	staff := org.Users[0] // corp knows them too: licensed account, desk by accountId
	if staff.Disabled {
		staff = org.Users[1]
	}
	push("POST", "/Users", user(staff.Email), http.StatusCreated)

	faults := jiratest.Faults{Rate: 0.15, Kinds: []jiratest.Fault{jiratest.Fault500, jiratest.Fault502, jiratest.FaultResetAfter, jiratest.FaultTruncate}}
	phase := func(what string) {
		t.Helper()
		before := w.jf.injected()
		defer func() {
			if w.jf.injected() == before {
				t.Errorf("%s: no fault was injected; the phase proves nothing", what)
			}
		}()
		w.jira.SetFaults(faults)
		for range 2 {
			p.pass(ctx)
		}
		w.jira.SetFaults(jiratest.Faults{})
		if _, runs := p.converge(ctx, 8, nil); len(runs) == 0 {
			t.Fatalf("%s: no pass", what)
		}
	}
	phase("customers pushed")

	desk := func() []string {
		var d jiratest.DeskInfo
		w.inspect(func() { d, _ = w.jira.Desk("DEMO") })
		return d.Customers
	}
	for _, email := range customers {
		var a jiratest.Account
		var ok bool
		w.inspect(func() { a, ok = w.jira.AccountByEmail(email) })
		if !ok || a.AccountType != "customer" || len(a.Groups) != 0 || !slices.Contains(desk(), a.AccountID) {
			t.Errorf("%s after faults: %+v (found %v), want a portal-only customer of DEMO in no group", email, a, ok)
		}
	}
	var sa jiratest.Account
	w.inspect(func() { sa, _ = w.jira.AccountByEmail(staff.Email) })
	if sa.AccountType != "atlassian" || !slices.Contains(desk(), sa.AccountID) || !slices.Contains(sa.Groups, "jira-software-users") {
		t.Errorf("the person of both sources: %+v, want the licensed account on DEMO by accountId", sa)
	}
	for _, wr := range w.writes.list() {
		if wr.Template == "/rest/api/3/user" && wr.Method == http.MethodPost {
			for _, email := range customers {
				var a jiratest.Account
				w.inspect(func() { a, _ = w.jira.AccountByEmail(email) })
				if slices.Contains(wr.AccountIDs, a.AccountID) {
					t.Errorf("a licensed account was created for the customers-only %s: %s", email, wr)
				}
			}
		}
	}
	if dups := w.duplicates(); len(dups) > 0 {
		t.Errorf("duplicates: %v", dups)
	}

	// Two customers are deleted at the IdP: their DEMO access goes, under faults, and nothing
	// else is removed.
	removalsBefore := len(w.writes.list())
	for _, id := range ids[:2] {
		push("DELETE", "/Users/"+id, nil, http.StatusNoContent)
	}
	phase("customers deleted")
	for i, email := range customers {
		var a jiratest.Account
		w.inspect(func() { a, _ = w.jira.AccountByEmail(email) })
		if on := slices.Contains(desk(), a.AccountID); on != (i >= 2) {
			t.Errorf("%s on DEMO: %v, want %v", email, on, i >= 2)
		}
	}
	for _, wr := range w.writes.list()[removalsBefore:] {
		if wr.Method == http.MethodDelete && wr.Template != "/rest/servicedeskapi/servicedesk/{serviceDeskId}/customer" {
			t.Errorf("a deletion of customers removed something else: %s", wr)
		}
	}
}
