package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/reconcile/runner"
	"github.com/idsync/idsync/sinks/jira/jiratest"
)

// driftIncrementalPasses is how many incremental passes the drift scenario runs between the
// hand-made changes and the full read that repairs them.
const driftIncrementalPasses = 3

// handRemoval is one membership an admin removed by hand in Jira.
type handRemoval struct{ group, account string }

// runDrift measures how drift made by hand in Jira is found: after a first sync and a full
// pass in the measured app, an admin removes DriftChanges managed memberships in Jira; the
// next incremental passes (the IdP did not change) must write nothing, and the full pass
// after them (`reconcile --full`, as the interval would) must put every one back.
func runDrift(ctx context.Context, o Options) (*Result, error) {
	sims, org, res, err := o.startInProcess()
	if err != nil {
		return nil, err
	}
	defer sims.Close()
	if err := o.setupInProcess(ctx, sims); err != nil {
		return nil, err
	}
	before := org
	res.setShape(ShapeOf(&before, org, o.caps()), o) // the full pass's reads: a no-op's
	cfg, err := o.config(sims.JiraURL, sims.MiniOrangeURL, true)
	if err != nil {
		return nil, err
	}
	b, err := o.open(cfg, nil)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	scheduled := runner.RunOptions{Trigger: reconcile.TriggerSchedule}
	warm, err := b.pass(ctx, scheduled)
	if err != nil {
		return nil, err
	}
	if err := setupOK(warm); err != nil {
		return nil, err
	}

	removed, err := o.driftByHand(org, sims.Jira.AccountByEmail, sims.Jira.RemoveMember)
	if err != nil {
		return nil, err
	}
	res.DriftChanges = len(removed)
	res.MinWrites = len(removed)

	sims.Jira.Reset()
	for range driftIncrementalPasses {
		out, err := b.pass(ctx, scheduled)
		if err != nil {
			return nil, err
		}
		res.DriftIncrementalPasses++
		if out.run.JiraRead != reconcile.ReadIncremental {
			return nil, fmt.Errorf("drift: pass %s read Jira %s, want incremental", out.run.ID, out.run.JiraRead)
		}
	}
	res.DriftIncrementalReads, res.DriftIncrementalWrites = sims.Jira.Reads(), sims.Jira.Writes()

	sims.Jira.Reset()
	sims.MiniOrange.Reset()
	out, err := b.pass(ctx, runner.RunOptions{Trigger: reconcile.TriggerSchedule, Full: true})
	res.DriftRepairReads, res.DriftRepairWrites = sims.Jira.Reads(), sims.Jira.Writes()
	res.SourceReads = int64(sims.MiniOrange.TotalCalls())
	res.Reads, res.Writes, res.Throttled = res.DriftRepairReads, res.DriftRepairWrites, sims.Jira.Throttled()
	res.DriftPassesToRepair = res.DriftIncrementalPasses + 1
	repaired := true
	for _, r := range removed {
		g, ok := sims.Jira.Group(r.group)
		repaired = repaired && ok && slices.Contains(g.Members, r.account)
	}
	res.DriftRepaired = &repaired
	res.Calls = callTable(sims.Jira.Calls(), sims.MiniOrange.Calls())
	res.setPass(out)
	res.finish()
	return res, err
}

// driftByHand removes DriftChanges managed memberships (people's IdP groups, which idsync
// synced to same-name Jira groups), chosen by the seed.
func (o Options) driftByHand(org Org, byEmail func(string) (jiratest.Account, bool), remove func(group, account string) error) ([]handRemoval, error) {
	var all []handRemoval
	for _, u := range org.Users {
		if u.Disabled {
			continue
		}
		a, ok := byEmail(u.Email)
		if !ok {
			continue
		}
		for _, g := range u.Groups {
			all = append(all, handRemoval{group: g, account: a.AccountID})
		}
	}
	if len(all) < o.DriftChanges {
		return nil, fmt.Errorf("%w: --drift-changes %d: the org has only %d memberships", ErrUsage, o.DriftChanges, len(all))
	}
	rng := rand.New(rand.NewPCG(uint64(o.Seed), 0xd71f7))
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	out := all[:o.DriftChanges]
	for _, r := range out {
		if err := remove(r.group, r.account); err != nil {
			return nil, fmt.Errorf("drift: removing by hand: %w", err)
		}
	}
	return out, nil
}
