package bench

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/sinks/jira/jiratest"
	"github.com/idsync/idsync/sources/miniorange/miniorangetest"
)

// defaultGroup is mapping.default_groups of every scenario: the default group of the
// jira-software product on the simulated site, so POST /user puts new accounts there.
const defaultGroup = "jira-software-users"

// Org is an IdP directory as the minimums see it.
type Org struct {
	// Groups are the IdP group names, without miniOrange's automatic DEFAULT group.
	Groups []string
	Users  []OrgUser
}

// OrgUser is one person of an Org.
type OrgUser struct {
	Name     string // userName (also the email in generated orgs)
	Email    string
	Disabled bool
	Groups   []string // without DEFAULT
}

// Memberships counts the group memberships of every user.
func (o Org) Memberships() int {
	n := 0
	for _, u := range o.Users {
		n += len(u.Groups)
	}
	return n
}

func (o Org) clone() Org {
	c := Org{Groups: slices.Clone(o.Groups), Users: make([]OrgUser, len(o.Users))}
	for i, u := range o.Users {
		u.Groups = slices.Clone(u.Groups)
		c.Users[i] = u
	}
	return c
}

// orgFromSim reads the org the miniOrange simulator serves.
func orgFromSim(users []miniorangetest.User, groups []miniorangetest.Group) Org {
	o := Org{Users: make([]OrgUser, 0, len(users))}
	for _, g := range groups {
		if g.Name != miniorangetest.DefaultGroup {
			o.Groups = append(o.Groups, g.Name)
		}
	}
	for _, u := range users {
		o.Users = append(o.Users, OrgUser{Name: u.UserName, Email: u.Email, Disabled: u.Disabled,
			Groups: withoutDefault(u.Groups)})
	}
	return o
}

// orgFromDirectory reads an org from a source snapshot (remote mode).
func orgFromDirectory(d reconcile.Directory) Org {
	o := Org{Users: make([]OrgUser, 0, len(d.Users))}
	for _, g := range d.Groups {
		if g.Name != miniorangetest.DefaultGroup {
			o.Groups = append(o.Groups, g.Name)
		}
	}
	for _, u := range d.Users {
		o.Users = append(o.Users, OrgUser{Name: u.UserName, Email: u.Email, Disabled: !u.Active,
			Groups: withoutDefault(u.Groups)})
	}
	return o
}

func withoutDefault(gs []string) []string {
	out := make([]string, 0, len(gs))
	for _, g := range gs {
		if g != miniorangetest.DefaultGroup {
			out = append(out, g)
		}
	}
	return out
}

// Churn is the change the churn scenario applies to the IdP.
type Churn struct {
	Moves   []Move
	Leavers []string // userNames
	Hires   []OrgUser
}

// Move takes a user out of one group and into another.
type Move struct {
	User, From, To string
}

// Size is the number of people the change touches.
func (c Churn) Size() int { return len(c.Moves) + len(c.Leavers) + len(c.Hires) }

// PlanChurn picks, deterministically from seed, 1% of the users (at least 4, so that every
// kind of change happens on small orgs): half of them move from one of their groups to a
// group they are not in, a quarter leave, and as many people as a quarter are hired into one
// group each. Only active users move or leave.
func PlanChurn(o Org, seed int64) (Churn, error) {
	var active []int
	for i, u := range o.Users {
		if !u.Disabled {
			active = append(active, i)
		}
	}
	n := max(4, len(o.Users)/100)
	movers, leavers := n/2, n/4
	hires := n - movers - leavers
	if len(active) < movers+leavers {
		return Churn{}, fmt.Errorf("churn: %d active users cannot supply %d movers and %d leavers", len(active), movers, leavers)
	}
	if len(o.Groups) == 0 {
		return Churn{}, fmt.Errorf("churn: the org has no groups")
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x636875726e))
	rng.Shuffle(len(active), func(i, j int) { active[i], active[j] = active[j], active[i] })
	var c Churn
	for _, i := range active {
		if len(c.Moves) == movers {
			break
		}
		u := o.Users[i]
		if len(u.Groups) == 0 || len(u.Groups) >= len(o.Groups) {
			continue // nothing to move from, or no group left to move into
		}
		from := u.Groups[rng.IntN(len(u.Groups))]
		var free []string
		for _, g := range o.Groups {
			if !slices.Contains(u.Groups, g) {
				free = append(free, g)
			}
		}
		c.Moves = append(c.Moves, Move{User: u.Name, From: from, To: free[rng.IntN(len(free))]})
	}
	if len(c.Moves) < movers {
		return Churn{}, fmt.Errorf("churn: only %d of %d movers found (users need a group and a group they are not in: --groups must exceed --memberships-per-user)", len(c.Moves), movers)
	}
	moved := map[string]bool{}
	for _, m := range c.Moves {
		moved[m.User] = true
	}
	for _, i := range active {
		if len(c.Leavers) == leavers {
			break
		}
		if !moved[o.Users[i].Name] {
			c.Leavers = append(c.Leavers, o.Users[i].Name)
		}
	}
	for k := range hires {
		email := fmt.Sprintf("hire-%d-%04d@example.com", seed, k+1)
		c.Hires = append(c.Hires, OrgUser{Name: email, Email: email, Groups: []string{o.Groups[rng.IntN(len(o.Groups))]}})
	}
	return c, nil
}

// Apply returns the org after the change.
func (o Org) Apply(c Churn) Org {
	out := o.clone()
	idx := make(map[string]int, len(out.Users))
	for i, u := range out.Users {
		idx[strings.ToLower(u.Name)] = i
	}
	for _, m := range c.Moves {
		u := &out.Users[idx[strings.ToLower(m.User)]]
		u.Groups = slices.DeleteFunc(u.Groups, func(g string) bool { return g == m.From })
		u.Groups = append(u.Groups, m.To)
	}
	gone := map[string]bool{}
	for _, l := range c.Leavers {
		gone[strings.ToLower(l)] = true
	}
	out.Users = slices.DeleteFunc(out.Users, func(u OrgUser) bool { return gone[strings.ToLower(u.Name)] })
	for _, h := range c.Hires {
		h.Groups = slices.Clone(h.Groups)
		out.Users = append(out.Users, h)
	}
	return out
}

// site is the seeded Jira site of the simulator: what exists before idsync's first pass.
type site struct {
	accounts       int
	groups         int
	siteAdmins     []int // members of each site-admin group
	adminGroups    int   // groups of the admin access type
	defaultMembers int   // members of the default group
}

func seededSite() site {
	seed := jiratest.DefaultSeed(jiratest.DefaultEmail)
	s := site{accounts: len(seed.Users), groups: len(seed.Groups)}
	members := map[string]int{}
	for _, u := range seed.Users {
		for _, g := range u.Groups {
			members[strings.ToLower(g)]++
		}
	}
	for _, g := range seed.Groups {
		switch g.AccessType {
		case jiratest.AccessSiteAdmin:
			s.siteAdmins = append(s.siteAdmins, members[strings.ToLower(g.Name)])
		case jiratest.AccessAdmin:
			s.adminGroups++
		}
	}
	s.defaultMembers = members[defaultGroup]
	return s
}

// ShapeOf is the minimum-call shape of one pass from a Jira that a complete pass over
// before left (nil before: the freshly seeded site) to the org after. Every IdP group maps
// to the Jira group of the same name, default_groups is the product's default group, and
// no customers are mapped. Disabled users get no account and so no Jira work.
//
// Jira before the pass: the seeded accounts and groups, one account per active user of
// before, one group per IdP group with an active member in before, and the memberships of
// before. The pass then creates the users of after that before lacks, the groups after
// needs that do not exist, adds and removes the memberships that differ, and deactivates
// (remove-access) the active users of before that after no longer lists, one call per group
// they are in: their IdP groups plus the default (product-access) group.
func ShapeOf(before *Org, after Org, caps Caps) Shape {
	st := seededSite()
	var prev Org
	if before != nil {
		prev = *before
	}
	s := Shape{Caps: caps, DiscoverProductAccess: true, SiteAdminGroupMembers: st.siteAdmins, AdminGroups: st.adminGroups}

	// Source: the listing of after.
	s.SourceUsers = len(after.Users)
	members := map[string]int{}
	for _, u := range after.Users {
		for _, g := range u.Groups {
			members[g]++
		}
	}
	s.SourceGroups = append(s.SourceGroups, len(after.Users)) // DEFAULT
	for _, g := range after.Groups {
		s.SourceGroups = append(s.SourceGroups, members[g])
	}

	// Jira before the pass.
	type key struct{ user, group string }
	had := map[key]bool{}
	hadUser := map[string]OrgUser{}
	existing := map[string]int{} // group -> active members
	activeBefore := 0
	for _, u := range prev.Users {
		if u.Disabled {
			continue
		}
		activeBefore++
		hadUser[strings.ToLower(u.Name)] = u
		for _, g := range u.Groups {
			had[key{strings.ToLower(u.Name), g}] = true
			existing[g]++
		}
	}
	s.JiraAccounts = st.accounts + activeBefore
	s.JiraGroups = st.groups + len(existing)
	// Every existing IdP group is in scope: idsync owns memberships in it (it created them),
	// or after maps it.
	for _, g := range prev.Groups {
		if n, ok := existing[g]; ok {
			s.ScopedGroupMembers = append(s.ScopedGroupMembers, n)
		}
	}
	s.ScopedGroupMembers = append(s.ScopedGroupMembers, st.defaultMembers+activeBefore)

	// Writes.
	created := map[string]bool{}
	for _, u := range after.Users {
		if u.Disabled {
			continue
		}
		name := strings.ToLower(u.Name)
		old, linked := hadUser[name]
		if !linked {
			s.CreateUsers++
		}
		for _, g := range u.Groups {
			if _, ok := existing[g]; !ok && !created[g] {
				created[g] = true
				s.CreateGroups++
			}
			if !had[key{name, g}] {
				s.AddMembers++
			}
		}
		if linked {
			for _, g := range old.Groups {
				if !slices.Contains(u.Groups, g) {
					s.RemoveMembers++
				}
			}
		}
		delete(hadUser, name)
	}
	for _, gone := range hadUser {
		s.DeactivationSteps += len(gone.Groups) + 1 // + the default group
	}
	return s
}
