package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/idsync/idsync/internal/cli"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/reconcile/runner"
	"github.com/idsync/idsync/sinks/jira/jiratest"
	"github.com/idsync/idsync/sources/miniorange/miniorangetest"
)

// Step 1.
func (d *demo) initialSync(ctx context.Context) error {
	d.heading("initial sync of the sample org")
	before := d.untouchables()
	run, err := d.pass(ctx, runner.RunOptions{Trigger: reconcile.TriggerCLI})
	if err != nil {
		return err
	}
	active := 0
	for _, u := range d.sims.MiniOrange.Users() {
		if !u.Disabled {
			active++
			if _, ok := d.sims.Jira.AccountByEmail(u.Email); !ok && !onlyCustomer(u) {
				return fmt.Errorf("demo check failed: %s has no Jira account after the first pass", u.Email)
			}
		}
	}
	desk, _ := d.sims.Jira.Desk("DEMO")
	fmt.Fprintf(d.out, "Jira now has an account for each of the %d active IdP users (disabled ones were not created),\n", active)
	fmt.Fprintf(d.out, "the IdP groups as Jira groups, and %d customers on service desk DEMO.\n", len(desk.Customers))
	if err := d.sameUntouchables(before); err != nil {
		return err
	}
	fmt.Fprintln(d.out, "The site admin and the app account were left exactly as they were.")
	return check(run.Result == reconcile.ResultOK, "first pass result %s: %v", run.Result, run.Errors)
}

// onlyCustomer: people only in customer-mapped groups get portal-only customers, not accounts
// found by AccountByEmail among licensed users; both are accounts in the simulator, so this
// only guards the check against a user in no group at all.
func onlyCustomer(u miniorangetest.User) bool {
	return len(u.Groups) == 1 && u.Groups[0] == "Jira-Service-group"
}

// Step 2.
func (d *demo) idpChanges(ctx context.Context) error {
	d.heading("IdP changes: 3 hires, 2 leavers, 2 moves, 1 email change")
	mo := d.sims.MiniOrange
	hires := mo.HireN(3)
	active := activeUsers(mo)
	leavers := []string{active[10].UserName, active[11].UserName}
	for _, l := range leavers {
		if err := mo.Leave(l); err != nil {
			return err
		}
	}
	moved := 0
	for _, u := range active[20:] {
		if moved == 2 {
			break
		}
		if len(u.Groups) == 0 || slices.Contains(u.Groups, "Support") || u.Groups[0] == "Jira-Service-group" {
			continue
		}
		if err := mo.Move(u.UserName, u.Groups[0], "Support"); err != nil {
			return err
		}
		fmt.Fprintf(d.out, "  moved %s: %s -> Support\n", u.UserName, u.Groups[0])
		moved++
	}
	renamed := active[30]
	newEmail := "renamed." + renamed.Email
	if err := mo.Rename(renamed.UserName, miniorangetest.Profile{Email: newEmail}); err != nil {
		return err
	}
	for _, h := range hires {
		fmt.Fprintf(d.out, "  hired %s\n", h.UserName)
	}
	fmt.Fprintf(d.out, "  left %s\n  email of %s -> %s\n", strings.Join(leavers, ", "), renamed.UserName, newEmail)

	fmt.Fprintln(d.out, "\nNext pass: hires are created, moves and the email change applied (the email change updates")
	fmt.Fprintln(d.out, "the linked account through the admin API; it never creates a second account). The leavers are")
	fmt.Fprintln(d.out, "missing from the IdP for the first time: the grace period (safety.grace_passes: 1) holds their")
	fmt.Fprintln(d.out, "deactivation for one complete pass.")
	run, err := d.pass(ctx, runner.RunOptions{Trigger: reconcile.TriggerCLI})
	if err != nil {
		return err
	}
	if err := check(run.Counts[reconcile.KindDeactivateUser][reconcile.ItemHeld] == 2, "expected the 2 leavers held by grace, counts %v", run.Counts); err != nil {
		return err
	}
	if err := check(d.accountsWithEmail(renamed.Email, newEmail) == 1, "the email change must update one account, not create another"); err != nil {
		return err
	}

	// An admin once gave the first leaver the legacy product-access group by hand.
	legacy, ok := d.sims.Jira.AccountByEmail(active[10].Email)
	if err := check(ok, "leaver %s has no Jira account", leavers[0]); err != nil {
		return err
	}
	if err := d.sims.Jira.AddMember(jiratest.LegacyAccessGroup, legacy.AccountID); err != nil {
		return err
	}
	fmt.Fprintln(d.out, "\nOne more complete pass with the leavers still missing: grace is over, they are deactivated")
	fmt.Fprintln(d.out, "(remove-access: out of every managed and every product-access group). An admin once gave")
	fmt.Fprintf(d.out, "%s the legacy product-access group %s by hand: it goes too.\n", leavers[0], jiratest.LegacyAccessGroup)
	run, err = d.pass(ctx, runner.RunOptions{Trigger: reconcile.TriggerCLI})
	if err != nil {
		return err
	}
	if err := check(run.Counts[reconcile.KindDeactivateUser][reconcile.ItemOK] == 2, "expected 2 deactivations, counts %v", run.Counts); err != nil {
		return err
	}
	after, _ := d.sims.Jira.Account(legacy.AccountID)
	fmt.Fprintf(d.out, "%s is now in %s.\n", leavers[0], groupList(after.Groups))
	return check(len(after.Groups) == 0, "leaver %s is still in %v after remove-access", leavers[0], after.Groups)
}

// groupList names groups for the narration.
func groupList(gs []string) string {
	if len(gs) == 0 {
		return "no group"
	}
	return strings.Join(gs, ", ")
}

// Step 3.
func (d *demo) scimPush(ctx context.Context) error {
	d.heading("a SCIM push of a new hire through the real listener")
	// miniOrange pushes people it has: hire in the IdP first (no pull runs), then push.
	hire := d.sims.MiniOrange.HireN(1)[0]
	if err := d.sims.MiniOrange.AddToGroup(hire.UserName, "Engineering"); err != nil {
		return err
	}
	user := map[string]any{
		"schemas":  []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName": hire.UserName, "active": true,
		"name":        map[string]string{"givenName": hire.FirstName, "familyName": hire.LastName},
		"displayName": hire.FirstName + " " + hire.LastName,
		"emails":      []map[string]any{{"value": hire.Email, "type": "work", "primary": true}},
	}
	seen := d.runIDs()
	var created struct{ ID string }
	if err := d.scimCall(ctx, http.MethodPost, "/Users", user, &created); err != nil {
		return err
	}
	group := map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": "Engineering",
		"members":     []map[string]string{{"value": created.ID}},
	}
	if err := d.scimCall(ctx, http.MethodPost, "/Groups", group, nil); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "POST %s/Users (%s) and /Groups (Engineering with them as member): 201 each.\n", d.scim, hire.UserName)
	fmt.Fprintln(d.out, "The listener stored both durably before answering, and after a quiet window triggers a targeted pass:")
	run, err := d.waitRun(ctx, seen, reconcile.TriggerPush, 15*time.Second)
	if err != nil {
		return err
	}
	cli.Summary(indent(d.out), run)
	acc, ok := d.sims.Jira.AccountByEmail(hire.Email)
	if err := check(ok, "the pushed hire has no Jira account"); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "%s now has a Jira account in %s.\n", hire.UserName, strings.Join(acc.Groups, ", "))
	return check(slices.Contains(acc.Groups, "engineering") && slices.Contains(acc.Groups, "developers"),
		"pushed hire is in %v, want engineering and developers", acc.Groups)
}

// Step 5.
func (d *demo) massRemoval(ctx context.Context) error {
	d.heading("a mass removal at the IdP trips the circuit breaker")
	mo := d.sims.MiniOrange
	// Leave the hires of steps 2 and 3 alone, so the pushed hire visibly keeps her access.
	var active []miniorangetest.User
	for _, u := range activeUsers(mo) {
		if !strings.Contains(u.UserName, ".h") {
			active = append(active, u)
		}
	}
	n := 40
	for _, u := range active[len(active)-n:] {
		if err := mo.Disable(u.UserName); err != nil {
			return err
		}
	}
	fmt.Fprintf(d.out, "%d users were disabled at the IdP at once (an explicit deprovision: no grace period).\n", n)
	fmt.Fprintln(d.out, "That is more than max_deactivations (25): every deactivation and removal of the pass is held.")
	run, err := d.pass(ctx, runner.RunOptions{Trigger: reconcile.TriggerCLI})
	if err != nil {
		return err
	}
	if err := check(run.Result == reconcile.ResultHeld, "pass result %s, want held", run.Result); err != nil {
		return err
	}
	hold, err := d.app.Store.HeldPlan()
	if err != nil {
		return fmt.Errorf("demo check failed: no held plan: %w", err)
	}
	fmt.Fprintf(d.out, "Held plan of run %s: %d deactivations, %d removals (%s).\n", hold.RunID, hold.Deactivations, hold.Removals, hold.Reason)
	fmt.Fprintf(d.out, "`reconcile` exits 3, idsync_held_changes shows %d, and nobody loses access until an admin approves:\n", run.Held)
	fmt.Fprintf(d.out, "  $ idsync approve -c idsync.yaml %s\n", hold.RunID)
	fmt.Fprintf(d.out, "  approving %s\n", hold.Summary(3))
	if _, err := d.app.Runner.Approve(hold.RunID, "demo"); err != nil {
		return err
	}
	fmt.Fprintln(d.out, "The next pass re-plans from fresh data and applies exactly the approved items it still plans:")
	run, err = d.pass(ctx, runner.RunOptions{Trigger: reconcile.TriggerCLI})
	if err != nil {
		return err
	}
	return check(run.Counts[reconcile.KindDeactivateUser][reconcile.ItemOK] == n, "expected %d deactivations after approval, counts %v", n, run.Counts)
}

// Step 7.
func (d *demo) summary(context.Context) error {
	d.heading("summary")
	js := d.sims.Jira
	accounts, active, suspended := 0, 0, 0
	for _, a := range js.Accounts() {
		accounts++
		switch {
		case a.Suspended:
			suspended++
		case a.Active && len(a.Groups) > 0:
			active++
		}
	}
	groups, members := 0, 0
	for _, g := range js.Groups() {
		groups++
		members += len(g.Members)
	}
	desk, _ := js.Desk("DEMO")
	fmt.Fprintf(d.out, "Jira: %d accounts (%d active with groups, %d suspended), %d groups, %d memberships, %d DEMO customers\n",
		accounts, active, suspended, groups, members, len(desk.Customers))
	fmt.Fprintf(d.out, "API calls: Jira %d reads, %d writes, %d throttled; miniOrange %d\n",
		js.Reads(), js.Writes(), js.Throttled(), d.sims.MiniOrange.TotalCalls())
	dup := len(js.DuplicateEmails()) + len(js.DuplicateGroupNames())
	fmt.Fprintf(d.out, "Duplicate accounts or groups: %d. Time: %s.\n", dup, time.Since(d.start).Round(100*time.Millisecond))
	fmt.Fprintln(d.out, "\nNext: `idsync sim` in one terminal and `idsync run -c configs/demo.yaml` in another to try the")
	fmt.Fprintln(d.out, "daemon, its admin API, /metrics and SCIM by hand (see the README).")
	return check(dup == 0, "duplicates in Jira: %v %v", js.DuplicateEmails(), js.DuplicateGroupNames())
}

type untouchable struct {
	active bool
	groups string
}

// untouchables snapshots the accounts idsync must never change: the site admin and the app.
func (d *demo) untouchables() map[string]untouchable {
	out := map[string]untouchable{}
	for _, id := range []string{jiratest.SiteAdminID, jiratest.AppID} {
		if a, ok := d.sims.Jira.Account(id); ok {
			out[id] = untouchable{a.Active, strings.Join(a.Groups, ",")}
		}
	}
	return out
}

func (d *demo) sameUntouchables(before map[string]untouchable) error {
	after := d.untouchables()
	for id, b := range before {
		if after[id] != b {
			return fmt.Errorf("demo check failed: account %s changed: %+v -> %+v", id, b, after[id])
		}
	}
	return check(len(before) == 2, "expected a site admin and an app account in the simulator")
}

func (d *demo) accountsWithEmail(emails ...string) int {
	n := 0
	for _, a := range d.sims.Jira.Accounts() {
		for _, e := range emails {
			if strings.EqualFold(a.Email, e) {
				n++
			}
		}
	}
	return n
}

func activeUsers(mo *miniorangetest.Sim) []miniorangetest.User {
	var out []miniorangetest.User
	for _, u := range mo.Users() {
		if !u.Disabled {
			out = append(out, u)
		}
	}
	return out
}

func (d *demo) scimCall(ctx context.Context, method, path string, body, out any) error {
	return d.scimCallTo(ctx, d.scim, SCIMToken, method, path, body, out)
}

// scimCallTo sends one SCIM request to a source's base URL with its token.
func (d *demo) scimCallTo(ctx context.Context, base, token, method, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("SCIM %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("SCIM %s %s: %d %s", method, path, resp.StatusCode, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// waitRun waits for a finished run of trigger that is not among the ones seen before.
func (d *demo) runIDs() map[string]bool {
	seen := map[string]bool{}
	if runs, err := d.app.Store.Runs(20); err == nil {
		for _, r := range runs {
			seen[r.ID] = true
		}
	}
	return seen
}

func (d *demo) waitRun(ctx context.Context, seen map[string]bool, trigger string, timeout time.Duration) (reconcile.Run, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		runs, err := d.app.Store.Runs(5)
		if err != nil {
			return reconcile.Run{}, err
		}
		for _, r := range runs {
			if !seen[r.ID] && r.Trigger == trigger && !r.Finished.IsZero() {
				return r, nil
			}
		}
		select {
		case <-ctx.Done():
			return reconcile.Run{}, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return reconcile.Run{}, fmt.Errorf("demo check failed: no %s pass within %s", trigger, timeout)
}
