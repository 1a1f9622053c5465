package bench

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/sinks/jira/jiratest"
	"github.com/idsync/idsync/sources/miniorange/miniorangetest"
)

// runPlan maps and plans a big org in this process without any HTTP, to measure memory and
// planning time (goal: 100,000 users, 10,000 groups, 1,000,000 memberships under 1 GiB peak
// RSS). It holds at once what a daemon holds during a pass: the source directory (as the
// miniOrange source converts it, DEFAULT included), the desired state, Jira's live state and
// the ownership records (as a complete earlier pass left them: one account, link and owned
// membership per person and group), and the plan after the policy and ownership guards. PlanLive "synced" plans 1% churn at the IdP
// (PlanChurn) against that Jira; "empty" plans the first sync against the seeded site.
// planned_writes counts the Jira calls the plan stands for (a deactivation counts its
// groups) and is compared with min_writes of the same change.
func runPlan(ctx context.Context, o Options) (*Result, error) {
	gen := miniorangetest.GenerateOrg(miniorangetest.OrgSpec{Users: o.Users, Groups: o.Groups,
		MembershipsPerUser: o.MembershipsPerUser, DisabledCount: o.Disabled, Seed: o.Seed})
	org := orgFromSim(gen.Users, gen.Groups)
	gen = miniorangetest.Org{}
	res := o.newResult("plan-only", "none")
	res.LatencyMS, res.Rate = 0, 0
	res.PlanLive = o.PlanLive
	res.Users, res.Groups, res.Memberships = len(org.Users), len(org.Groups), org.Memberships()

	var before *Org
	after := org
	live, own := seededLive(), reconcile.Ownership{}
	if o.PlanLive == "synced" {
		c, err := PlanChurn(org, o.Seed)
		if err != nil {
			return nil, err
		}
		before, after = &org, org.Apply(c)
		res.Changed = c.Size()
		live, own = syncedLive(org)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	shape := ShapeOf(before, after, o.caps())
	res.MinSourceReads, res.MinJiraReads = shape.MinSourceReads(), shape.MinJiraReads()
	res.MinReads, res.MinWrites = res.MinSourceReads+res.MinJiraReads, shape.MinWrites()

	cfg := configs.MappingConfig{ImportUsers: true, ImportGroups: true, DefaultGroups: []string{defaultGroup},
		DisplayName: configs.DefaultDisplayName}
	mapper, err := reconcile.NewMapper(cfg)
	if err != nil {
		return nil, fmt.Errorf("mapping config: %w", err)
	}
	src := []reconcile.SourceData{{Directory: directoryOf(after), Priority: 10}}
	start := time.Now()
	desired, _ := mapper.Map(src)
	mapped := time.Now()
	_ = reconcile.BuildScope(desired, own, false)
	planned := reconcile.Plan(desired, live, own, reconcile.PlanOptions{Now: start,
		DeactivateMethod: configs.DeactivateRemoveAccess})
	// The guards a pass runs next, except grace and the breaker (the scenario deactivates
	// leavers at once, as churn does with grace_passes 0 and a high breaker).
	plan, _ := reconcile.PolicyGuard(planned, configs.PolicySync)
	plan, _ = reconcile.OwnershipGuard(plan, reconcile.OwnershipView{Links: own.Links, Owned: own.Owned,
		Accounts: live.Accounts})
	done := time.Now()
	res.MapSeconds = mapped.Sub(start).Seconds()
	res.PlanSeconds = done.Sub(mapped).Seconds()
	res.WallSeconds = done.Sub(start).Seconds()
	res.PlannedItems = plan.Len()
	res.PlannedWrites = plannedWrites(plan)
	// Adds of a new account to the product's default group are done by POST /user itself:
	// the executor settles them without a call (done_by_create), so they are not writes.
	for _, ch := range plan.AddMembers {
		if ch.AccountID == "" && ch.Group != nil && strings.EqualFold(ch.Group.Name, defaultGroup) {
			res.PlannedWrites--
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.HeapBytes = ms.HeapAlloc
	// Everything above stays reachable until here, as it does in a daemon's pass.
	runtime.KeepAlive(src)
	runtime.KeepAlive(live)
	return res, nil
}

// plannedWrites is the number of Jira calls a plan stands for: one per item, and one per
// group of a remove-access deactivation.
func plannedWrites(c reconcile.Changes) int {
	n := 0
	for _, k := range reconcile.Kinds {
		for _, ch := range *c.List(k) {
			switch {
			case ch.Unsupported != "":
			case k == reconcile.KindDeactivateUser:
				n += len(ch.Groups)
			default:
				n++
			}
		}
	}
	return n
}

// directoryOf is the org as the miniOrange source hands it over: every user in DEFAULT too.
func directoryOf(o Org) reconcile.Directory {
	d := reconcile.Directory{Source: sourceName, Users: make([]reconcile.User, len(o.Users)),
		Groups: make([]reconcile.Group, 0, len(o.Groups)+1)}
	d.Groups = append(d.Groups, reconcile.Group{Key: "0", Name: miniorangetest.DefaultGroup})
	for _, g := range o.Groups {
		d.Groups = append(d.Groups, reconcile.Group{Key: g, Name: g})
	}
	for i, u := range o.Users {
		gs := make([]string, 0, len(u.Groups)+1)
		gs = append(gs, miniorangetest.DefaultGroup)
		gs = append(gs, u.Groups...)
		d.Users[i] = reconcile.User{Key: u.Name, UserName: u.Name, Email: u.Email,
			DisplayName: displayName(u.Email), Active: !u.Disabled, Groups: gs}
	}
	return d
}

// displayName matches what the planner would compare; profiles are not part of the bench.
func displayName(email string) string {
	local, _, _ := strings.Cut(email, "@")
	return local
}

// seededLive is the simulator's seeded site as the sink reads it.
func seededLive() reconcile.Live {
	seed := jiratest.DefaultSeed(jiratest.DefaultEmail)
	var live reconcile.Live
	members := map[string][]string{}
	for _, u := range seed.Users {
		typ := u.Type
		if typ == "" {
			typ = reconcile.AccountAtlassian
		}
		admin := false
		for _, g := range u.Groups {
			members[strings.ToLower(g)] = append(members[strings.ToLower(g)], u.AccountID)
			admin = admin || g == "site-admins"
		}
		live.Accounts = append(live.Accounts, reconcile.Account{AccountID: u.AccountID, AccountType: typ,
			Email: u.Email, DisplayName: u.DisplayName, Active: true, SiteAdmin: admin})
	}
	for i, g := range seed.Groups {
		lg := reconcile.LiveGroup{ID: fmt.Sprintf("seed-%d", i), Name: g.Name}
		if g.AccessType == jiratest.AccessSiteAdmin || strings.EqualFold(g.Name, defaultGroup) {
			lg.Members, lg.MembersRead = members[strings.ToLower(g.Name)], true
		}
		lg.ProductAccess = strings.EqualFold(g.Name, defaultGroup)
		live.Groups = append(live.Groups, lg)
	}
	return live
}

// syncedLive is the seeded site after a complete pass over o, and the ownership that pass
// recorded: an account and a link per active user, a group per IdP group with an active
// member, and owned memberships of every IdP group and of the default group.
func syncedLive(o Org) (reconcile.Live, reconcile.Ownership) {
	live := seededLive()
	var def *reconcile.LiveGroup
	for i := range live.Groups {
		if strings.EqualFold(live.Groups[i].Name, defaultGroup) {
			def = &live.Groups[i]
		}
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	gi := make(map[string]int, len(o.Groups))
	groups := make([]reconcile.LiveGroup, 0, len(o.Groups))
	var own reconcile.Ownership
	for _, u := range o.Users {
		if u.Disabled {
			continue
		}
		id := "acc-" + u.Name
		live.Accounts = append(live.Accounts, reconcile.Account{AccountID: id, AccountType: reconcile.AccountAtlassian,
			Email: u.Email, DisplayName: displayName(u.Email), Active: true})
		own.Links = append(own.Links, reconcile.Link{Source: sourceName, Key: u.Name, UserName: u.Name, Email: u.Email,
			AccountID: id, Created: true, LinkedAt: now, UpdatedAt: now})
		for _, g := range u.Groups {
			i, ok := gi[g]
			if !ok {
				i = len(groups)
				gi[g] = i
				groups = append(groups, reconcile.LiveGroup{ID: fmt.Sprintf("gid-%06d", i), Name: g, MembersRead: true})
			}
			groups[i].Members = append(groups[i].Members, id)
			own.Owned = append(own.Owned, reconcile.Owned{Kind: reconcile.OwnedMembership, Container: groups[i].ID,
				ContainerName: g, AccountID: id})
		}
		def.Members = append(def.Members, id)
		own.Owned = append(own.Owned, reconcile.Owned{Kind: reconcile.OwnedMembership, Container: def.ID,
			ContainerName: def.Name, AccountID: id})
	}
	live.Groups = append(live.Groups, groups...)
	return live, own
}
