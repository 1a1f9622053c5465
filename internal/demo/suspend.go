package demo

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/reconcile/runner"
	"github.com/idsync/idsync/sinks/jira/jiratest"
	"github.com/idsync/idsync/sources/miniorange/miniorangetest"
)

// Step 6: idsync restarted with sink.jira.deactivate: suspend; two leavers are suspended
// (keeping every group), then one of them comes back and is restored.
func (d *demo) suspend(ctx context.Context) error {
	d.heading("suspend instead of remove-access: leavers suspended, a returning person restored")
	cfg := d.config(configs.DeactivateSuspend)
	fmt.Fprintln(d.out, "The admin sets sink.jira.deactivate: suspend with admin_api.org_id (directory_id unset: the")
	fmt.Fprintln(d.out, "organization has one directory, which the first pass finds) and restarts idsync.")
	fmt.Fprintln(d.out, "`idsync validate` says:")
	for _, w := range cfg.Warnings() {
		if w.Path == "sink.jira.deactivate" {
			fmt.Fprintf(d.out, "  warning: %s\n", w.Error())
		}
	}
	d.close()
	if err := d.open(ctx, cfg); err != nil {
		return fmt.Errorf("restarting with suspend: %w", err)
	}

	people, accs, err := d.suspendCandidates(2)
	if err != nil {
		return err
	}
	// An admin once gave the first of them the legacy product-access group by hand.
	if err := d.sims.Jira.AddMember(jiratest.LegacyAccessGroup, accs[0].AccountID); err != nil {
		return err
	}
	before := make([][]string, len(accs))
	for i, a := range accs {
		got, _ := d.sims.Jira.Account(a.AccountID)
		before[i] = got.Groups
		if err := d.sims.MiniOrange.Disable(people[i].UserName); err != nil {
			return err
		}
	}
	fmt.Fprintln(d.out, "\nDisabled at the IdP (an explicit deprovision: no grace):")
	for i, p := range people {
		fmt.Fprintf(d.out, "  %s, in %s\n", p.UserName, groupList(before[i]))
	}
	fmt.Fprintf(d.out, "(%s was given %s by hand.) The next pass suspends both\n", people[0].UserName, jiratest.LegacyAccessGroup)
	fmt.Fprintln(d.out, "accounts instead of removing their groups:")
	run, err := d.pass(ctx, runner.RunOptions{Trigger: reconcile.TriggerCLI})
	if err != nil {
		return err
	}
	if err := check(run.Counts[reconcile.KindDeactivateUser][reconcile.ItemOK] == 2, "expected 2 suspensions, counts %v", run.Counts); err != nil {
		return err
	}
	for i, a := range accs {
		got, _ := d.sims.Jira.Account(a.AccountID)
		if err := check(got.Suspended && slices.Equal(got.Groups, before[i]), "after suspend: %+v, want suspended in %v", got, before[i]); err != nil {
			return err
		}
	}
	fmt.Fprintln(d.out, "Both are suspended and keep every group; Jira reports them inactive and they hold no")
	fmt.Fprintln(d.out, "licensed seat.")

	fmt.Fprintf(d.out, "\n%s returns (enabled again at the IdP): the next pass restores the account, with the\n", people[0].UserName)
	fmt.Fprintln(d.out, "groups it kept; nothing is added back one by one.")
	if err := d.sims.MiniOrange.Enable(people[0].UserName); err != nil {
		return err
	}
	if run, err = d.pass(ctx, runner.RunOptions{Trigger: reconcile.TriggerCLI}); err != nil {
		return err
	}
	if err := check(run.Counts[reconcile.KindReactivateUser][reconcile.ItemOK] == 1, "expected 1 restore, counts %v", run.Counts); err != nil {
		return err
	}
	got, _ := d.sims.Jira.Account(accs[0].AccountID)
	fmt.Fprintf(d.out, "%s: active again, in %s.\n", people[0].UserName, groupList(got.Groups))
	if err := check(!got.Suspended && slices.Equal(got.Groups, before[0]), "after restore: %+v, want active in %v", got, before[0]); err != nil {
		return err
	}
	if still, _ := d.sims.Jira.Account(accs[1].AccountID); !still.Suspended {
		return check(false, "%s was restored though still disabled at the IdP", people[1].UserName)
	}
	run, err = d.current().RunOnce(ctx, runner.RunOptions{Trigger: reconcile.TriggerCLI})
	if err != nil {
		return err
	}
	return check(run.Result == reconcile.ResultOK && applied(run) == 0, "the pass after the restore still had work: %v", run.Counts)
}

// suspendCandidates are n active people (not the demo's hires) whose Jira accounts are
// active and in more than one group.
func (d *demo) suspendCandidates(n int) ([]miniorangetest.User, []jiratest.Account, error) {
	var people []miniorangetest.User
	var accs []jiratest.Account
	for _, u := range activeUsers(d.sims.MiniOrange) {
		if len(people) == n {
			break
		}
		if strings.Contains(u.UserName, ".h") || len(u.Groups) == 0 || u.Groups[0] == "Jira-Service-group" {
			continue
		}
		if a, ok := d.sims.Jira.AccountByEmail(u.Email); ok && a.Active && !a.Suspended && len(a.Groups) > 1 {
			people, accs = append(people, u), append(accs, a)
		}
	}
	if len(people) < n {
		return nil, nil, fmt.Errorf("demo check failed: %d active people to suspend, want %d", len(people), n)
	}
	return people, accs, nil
}

// applied counts the items a run applied.
func applied(run reconcile.Run) int {
	n := 0
	for _, byResult := range run.Counts {
		n += byResult[reconcile.ItemOK]
	}
	return n
}
