package reconcile

import (
	"slices"
	"strings"
)

// refuseOnTheFly keeps mapping.import_groups away from Jira groups that grant admin rights
// (LiveGroup.Admin) or product access (LiveGroup.ProductAccess). Same-name import would let
// whoever can create a group in the IdP make people site admins by naming it site-admins,
// silently. Only Live knows which groups these are, so the planner decides, not the mapping:
//
//   - a grant through an on-the-fly IdP group (Desired.OnTheFly) whose Jira group is such a
//     group is refused: no add, and no removal of a member who holds it (the membership is
//     left as it is, whoever made it);
//   - a Jira group only the on-the-fly rule manages (neither a mapping.groups target nor a
//     default group) is left out of the diff entirely: no create, add or remove; its
//     members stay as they are;
//   - a note names the IdP group and the Jira group, and says how to sync it on purpose.
//
// It runs in indexGroups, once desired groups are matched to live ones. Explicit
// mapping.groups targets and mapping.default_groups are an admin's choice and keep working: the mapping gives a person an explicit or default grant in preference to an
// on-the-fly one for the same group. Whether an IdP group named like an access group makes
// its members licensed users (customer-only or not) is unchanged: any on-the-fly group does
// that, whatever its name.
func (p *planner) refuseOnTheFly() {
	// Desired groups whose Jira group grants admin rights or product access: a few (the
	// default group is one on every site), so vias are matched against them by name without
	// lowercasing ten thousand names per plan.
	var prot []int32
	for di, li := range p.dgLive {
		if li >= 0 && (p.live.Groups[li].Admin || p.live.Groups[li].ProductAccess) {
			prot = append(prot, int32(di))
		}
	}
	if len(prot) == 0 {
		return
	}
	start := len(p.out.Notes)
	for v, on := range p.d.OnTheFly {
		if !on || v >= len(p.d.Via) {
			continue
		}
		via := strings.TrimSpace(p.d.Via[v])
		for _, di := range prot {
			dg := &p.d.Groups[di]
			if !strings.EqualFold(dg.Name, via) {
				continue
			}
			if p.refusedVia == nil {
				p.refusedVia = make([]bool, len(p.d.Via))
			}
			p.refusedVia[v] = true
			lg := &p.live.Groups[p.dgLive[di]]
			what := "product access"
			if lg.Admin {
				what = "admin rights"
			}
			how := "import_groups leaves it alone (no create, add or remove; its members stay as they are)"
			if dg.Explicit || dg.Default {
				how = "import_groups does not grant it (only mapping.groups and mapping.default_groups do)"
			}
			p.note("IdP group " + via + " matches Jira group " + lg.Name + ", which grants " + what + ": " +
				how + "; map it explicitly under mapping.groups to sync it")
			break
		}
	}
	// These notes lead the list: they are about who may administer the site.
	if start > 0 && len(p.out.Notes) > start {
		p.out.Notes = append(slices.Clone(p.out.Notes[start:]), p.out.Notes[:start]...)
	}
}

// refusedGroup reports whether the live group li makes desired group dg one that only the
// on-the-fly rule manages and that it may not touch (see refuseOnTheFly).
func refusedGroup(dg *DesiredGroup, lg *LiveGroup) bool {
	return (lg.Admin || lg.ProductAccess) && !dg.Explicit && !dg.Default
}

// refusedGroupGrant reports whether a group grant is one refuseOnTheFly refused.
func (p *planner) refusedGroupGrant(g Grant) bool {
	if p.dgRefused != nil && p.dgRefused[g.Target] {
		return true
	}
	return p.refusedVia != nil && g.Via >= 0 && int(g.Via) < len(p.refusedVia) && p.refusedVia[g.Via]
}

// heldByRefusal reports whether the account's person holds a refused grant of desired group
// di: the membership is left as it is rather than removed.
func (p *planner) heldByRefusal(a int32, di int) bool {
	if p.refusedVia == nil {
		return false
	}
	pi := p.accPers[a]
	if pi < 0 {
		return false
	}
	for _, g := range p.d.People[pi].Groups {
		if int(g.Target) == di && p.refusedGroupGrant(g) {
			return true
		}
	}
	return false
}
