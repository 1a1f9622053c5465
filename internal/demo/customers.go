package demo

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/idsync/idsync/internal/cli"
	"github.com/idsync/idsync/reconcile"
)

// Step 4: Customer Sync. A customer pushed to the customers_only source's own URL (with its
// own token) gets portal access to DEMO and no licensed account; a pushed deletion removes it.
func (d *demo) customerSync(ctx context.Context) error {
	d.heading("Customer Sync: a customer pushed to its own SCIM URL")
	base := d.scimBase + customersName
	email := "cora.customer@example.org"
	user := map[string]any{
		"schemas":  []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName": email, "active": true, "displayName": "Cora Customer",
		"name":   map[string]string{"givenName": "Cora", "familyName": "Customer"},
		"emails": []map[string]any{{"value": email, "type": "work", "primary": true}},
	}
	if err := d.scimCallTo(ctx, base, SCIMToken, http.MethodPost, "/Users", user, nil); err == nil {
		return fmt.Errorf("demo check failed: the corp source's token opened the customers' SCIM URL")
	}
	creates := d.sims.Jira.CallCount(http.MethodPost, "/rest/api/3/user")
	seen := d.runIDs()
	var created struct{ ID string }
	if err := d.scimCallTo(ctx, base, CustomersToken, http.MethodPost, "/Users", user, &created); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "POST %s/Users (%s) with the customers token: 201 (the corp token is refused there: 401).\n", base, email)
	run, err := d.waitRun(ctx, seen, reconcile.TriggerPush, 15*time.Second)
	if err != nil {
		return err
	}
	cli.Summary(indent(d.out), run)
	acc, ok := d.sims.Jira.AccountByEmail(email)
	desk, _ := d.sims.Jira.Desk("DEMO")
	if err := check(ok && acc.AccountType == "customer" && slices.Contains(desk.Customers, acc.AccountID) && len(acc.Groups) == 0,
		"the pushed customer is %+v, want a portal-only customer of DEMO in no group", acc); err != nil {
		return err
	}
	if err := check(d.sims.Jira.CallCount(http.MethodPost, "/rest/api/3/user") == creates, "a licensed account was created for a customer"); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "%s is a portal-only customer of DEMO: no licensed account, no group.\n", email)

	seen = d.runIDs()
	if err := d.scimCallTo(ctx, base, CustomersToken, http.MethodDelete, "/Users/"+created.ID, nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "DELETE %s/Users/%s: the IdP removed the customer.\n", base, created.ID)
	run, err = d.waitRun(ctx, seen, reconcile.TriggerPush, 15*time.Second)
	if err != nil {
		return err
	}
	cli.Summary(indent(d.out), run)
	desk, _ = d.sims.Jira.Desk("DEMO")
	if err := check(!slices.Contains(desk.Customers, acc.AccountID), "the removed customer still has DEMO"); err != nil {
		return err
	}
	fmt.Fprintln(d.out, "Their DEMO portal access is gone; nothing else changed.")
	return nil
}
