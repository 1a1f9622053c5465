package reconcile

import (
	"slices"
	"strings"
)

// Memberships of groups, desks and organizations.

// buildEntries lays out every desired membership as account<<32|person, grouped by
// container, in three flat arrays (no allocation per membership).
func (p *planner) buildEntries() {
	p.dgEnt = p.entries(len(p.d.Groups), func(per *Person) []Grant { return per.Groups }, p.refusedVia != nil || p.dgRefused != nil)
	p.deskEnt = p.entries(len(p.d.Desks), func(per *Person) []Grant { return per.Desks }, false)
	p.orgEnt = p.entries(len(p.d.Orgs), func(per *Person) []Grant { return per.Orgs }, false)
}

// entries lays out one kind of container. With refusals set (groups only), grants
// refuseOnTheFly refused are left out.
func (p *planner) entries(n int, grants func(*Person) []Grant, refusals bool) [][]uint64 {
	cnt := make([]int, n+1)
	total := 0
	for pi := range p.d.People {
		if p.pState[pi]&pAdds == 0 {
			continue
		}
		for _, g := range grants(&p.d.People[pi]) {
			if refusals && p.refusedGroupGrant(g) {
				continue
			}
			cnt[g.Target]++
			total++
		}
	}
	buf := make([]uint64, total)
	out := make([][]uint64, n)
	off := 0
	for i := 0; i < n; i++ {
		out[i] = buf[off : off : off+cnt[i]]
		off += cnt[i]
	}
	for pi := range p.d.People {
		if p.pState[pi]&pAdds == 0 {
			continue
		}
		acc := pendingAcc
		if p.pState[pi]&pPending == 0 {
			acc = uint32(p.pAcc[pi])
		}
		for _, g := range grants(&p.d.People[pi]) {
			if refusals && p.refusedGroupGrant(g) {
				continue
			}
			out[g.Target] = append(out[g.Target], uint64(acc)<<32|uint64(uint32(pi)))
		}
	}
	for i := range out {
		slices.Sort(out[i])
	}
	return out
}

// diff walks one container's desired entries and live members (both sorted by account).
func diff(want []uint64, have []int32, add func(e uint64), remove func(acc int32)) {
	i, j := 0, 0
	for i < len(want) || j < len(have) {
		switch {
		case i < len(want) && uint32(want[i]>>32) == pendingAcc:
			add(want[i])
			i++
		case j >= len(have) || (i < len(want) && int64(want[i]>>32) < int64(have[j])):
			add(want[i])
			i++
		case i >= len(want) || int64(want[i]>>32) > int64(have[j]):
			remove(have[j])
			j++
		default: // equal
			a := have[j]
			for i < len(want) && int32(want[i]>>32) == a {
				i++
			}
			j++
		}
	}
}

// countAdds counts the entries diff would add: those of pending accounts and those whose
// account is not among the members.
func countAdds(want []uint64, have []int32) int {
	n, j := 0, 0
	for _, w := range want {
		a := int64(w >> 32)
		if uint32(a) == pendingAcc {
			n++
			continue
		}
		for j < len(have) && int64(have[j]) < a {
			j++
		}
		if j == len(have) || int64(have[j]) != a {
			n++
		}
	}
	return n
}

func hasAcc(s []int32, a int32) bool {
	_, ok := slices.BinarySearch(s, a)
	return ok
}

func wants(s []uint64, a int32) bool {
	i, _ := slices.BinarySearch(s, uint64(uint32(a))<<32)
	return i < len(s) && uint32(s[i]>>32) == uint32(a)
}

// mayRemove says whether an account's membership may be proposed for removal at all.
func (p *planner) mayRemove(a int32) bool {
	f := p.accFlag[a]
	if f&accNoRemove != 0 {
		return false
	}
	return !p.opts.Targeted || f&accTargeted != 0
}

func (p *planner) grantVia(per *Person, gs []Grant, target int) int32 {
	for _, g := range gs {
		if int(g.Target) == target {
			return g.Via
		}
	}
	return ViaDefault
}

func (p *planner) addReason(via int32, target string, defaultWhy string) string {
	if via == ViaDefault {
		return defaultWhy
	}
	return "in IdP group " + p.d.viaName(via) + " -> " + target
}

func (p *planner) removeChange(k Kind, a int32, why string) Change {
	c := Change{Kind: k, AccountID: p.accIDs[a], Reason: why}
	if pi := p.accPers[a]; pi >= 0 {
		per := &p.d.People[pi]
		c.Source, c.UserKey, c.UserName, c.Email, c.DisplayName = per.Source, per.Key, per.UserName, per.Email, per.DisplayName
	} else if acc := p.account(a); acc != nil {
		c.Email, c.DisplayName = acc.Email, acc.DisplayName
	}
	return c
}

// groupHave returns the live members a desired group's entries are compared with, and
// whether its memberships can be planned at all (members not read: no).
func (p *planner) groupHave(di int) ([]int32, bool) {
	li := p.dgLive[di]
	if li < 0 {
		return nil, true
	}
	if !p.live.Groups[li].MembersRead {
		return nil, false
	}
	return p.lgMem[li], true
}

// reasonCache hands out one reason string per IdP group a desired group's adds come through,
// so the million adds of a first sync share a few strings instead of building one each.
type reasonCache struct {
	via    []int32
	reason []string
}

func (rc *reasonCache) get(p *planner, via int32, target string) string {
	for i, v := range rc.via {
		if v == via {
			return rc.reason[i]
		}
	}
	r := p.addReason(via, target, "default group for licensed users")
	rc.via = append(rc.via, via)
	rc.reason = append(rc.reason, r)
	return r
}

func (p *planner) groupDiff() {
	// Adds are most of a first sync's plan (a million at 100k users): count them first so
	// the list is allocated once at its size instead of growing by copies.
	nAdd := 0
	for di := range p.d.Groups {
		if p.dgRefused != nil && p.dgRefused[di] {
			continue
		}
		if have, ok := p.groupHave(di); ok {
			nAdd += countAdds(p.dgEnt[di], have)
		}
	}
	p.out.AddMembers = growChanges(p.out.AddMembers, nAdd)
	var reasons reasonCache
	// Groups in name order, each group's changes sorted as they are emitted: the lists come
	// out in plan order, so sortChanges finds them sorted (a linear check) instead of moving
	// a million 300-byte items through a full sort.
	order := make([]int32, len(p.d.Groups))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return strings.Compare(p.d.Groups[a].Name, p.d.Groups[b].Name) })
	for _, gi := range order {
		di := int(gi)
		if p.dgRefused != nil && p.dgRefused[di] {
			continue // only the on-the-fly rule manages it, and it may not: see refuseOnTheFly
		}
		dg := &p.d.Groups[di]
		want := p.dgEnt[di]
		li := p.dgLive[di]
		have, ok := p.groupHave(di)
		if !ok {
			if len(want) > 0 {
				p.note("members of group " + quote(dg.Name) + " were not read; its memberships are not planned")
			}
			continue
		}
		// Every change of this group shares one GroupRef: nothing writes through it (the
		// executor copies before filling in the id of a group created in the pass).
		ref := &GroupRef{Name: dg.Name}
		if li >= 0 {
			ref.ID = p.live.Groups[li].ID
		} else if len(want) > 0 {
			why := "on the fly from IdP group " + dg.Name
			switch {
			case dg.Explicit:
				why = "target of mapping.groups"
			case dg.Default:
				why = "in mapping.default_groups"
			}
			p.out.CreateGroups = append(p.out.CreateGroups, Change{Kind: KindCreateGroup, Group: &GroupRef{Name: dg.Name}, Reason: why})
		}
		reasons.via, reasons.reason = reasons.via[:0], reasons.reason[:0]
		addFrom, removeFrom := len(p.out.AddMembers), len(p.out.RemoveMembers)
		diff(want, have, func(e uint64) {
			pi := int(uint32(e))
			per := &p.d.People[pi]
			c := p.personChange(KindAddMember, pi, reasons.get(p, p.grantVia(per, per.Groups, di), dg.Name))
			c.Group = ref
			p.out.AddMembers = append(p.out.AddMembers, c)
		}, func(a int32) {
			if !p.mayRemove(a) || p.heldByRefusal(a, di) {
				return
			}
			var why string
			if p.accPers[a] < 0 {
				why = "no source grants " + dg.Name
			} else {
				why = "not in any IdP group mapped to " + dg.Name
			}
			if dg.Authoritative {
				why += " (authoritative group)"
			}
			c := p.removeChange(KindRemoveMember, a, why)
			c.Group = ref
			p.out.RemoveMembers = append(p.out.RemoveMembers, c)
		})
		slices.SortFunc(p.out.AddMembers[addFrom:], compareChanges)
		slices.SortFunc(p.out.RemoveMembers[removeFrom:], compareChanges)
	}
	// Groups idsync owns memberships in but no longer maps.
	for li := range p.live.Groups {
		lg := &p.live.Groups[li]
		if !p.lgMan[li] || p.lgDes[li] >= 0 || !lg.MembersRead {
			continue
		}
		var ref *GroupRef
		why := "group " + lg.Name + " is no longer mapped"
		for _, a := range p.lgMem[li] {
			if !p.mayRemove(a) {
				continue
			}
			if ref == nil {
				ref = &GroupRef{ID: lg.ID, Name: lg.Name}
			}
			c := p.removeChange(KindRemoveMember, a, why)
			c.Group = ref
			p.out.RemoveMembers = append(p.out.RemoveMembers, c)
		}
	}
}

func (p *planner) deskDiff() {
	for di, name := range p.d.Desks {
		li := p.deskLive[di]
		if li < 0 {
			continue
		}
		desk := &p.live.ServiceDesks[li]
		label := name
		diff(p.deskEnt[di], p.deskMem[li], func(e uint64) {
			pi := int(uint32(e))
			per := &p.d.People[pi]
			c := p.personChange(KindAddCustomer, pi, p.addReason(p.grantVia(per, per.Desks, di), "service desk "+label, ""))
			c.ServiceDesk, c.ServiceDeskKey = desk.ID, desk.Key
			p.out.AddCustomers = append(p.out.AddCustomers, c)
		}, func(a int32) {
			if !p.mayRemove(a) {
				return
			}
			c := p.removeChange(KindRemoveCustomer, a, "not in any IdP group mapped to service desk "+label)
			c.ServiceDesk, c.ServiceDeskKey = desk.ID, desk.Key
			p.out.RemoveCustomers = append(p.out.RemoveCustomers, c)
		})
	}
	for li := range p.live.ServiceDesks {
		if !p.deskMan[li] || p.deskDes[li] >= 0 {
			continue
		}
		desk := &p.live.ServiceDesks[li]
		for _, a := range p.deskMem[li] {
			if !p.mayRemove(a) {
				continue
			}
			c := p.removeChange(KindRemoveCustomer, a, "service desk "+desk.Key+" is no longer mapped")
			c.ServiceDesk, c.ServiceDeskKey = desk.ID, desk.Key
			p.out.RemoveCustomers = append(p.out.RemoveCustomers, c)
		}
	}
}

func (p *planner) orgDiff() {
	for di, name := range p.d.Orgs {
		li := p.orgLive[di]
		var have []int32
		orgID := ""
		if li >= 0 {
			have = p.orgMem[li]
			orgID = p.live.Organizations[li].ID
			name = p.live.Organizations[li].Name
		}
		diff(p.orgEnt[di], have, func(e uint64) {
			pi := int(uint32(e))
			per := &p.d.People[pi]
			c := p.personChange(KindAddOrganizationMember, pi, p.addReason(p.grantVia(per, per.Orgs, di), "organization "+name, ""))
			c.Organization, c.OrganizationID = name, orgID
			p.out.AddOrganizationMembers = append(p.out.AddOrganizationMembers, c)
		}, func(a int32) {
			if !p.mayRemove(a) {
				return
			}
			c := p.removeChange(KindRemoveOrganizationMember, a, "not in any IdP group mapped to organization "+name)
			c.Organization, c.OrganizationID = name, orgID
			p.out.RemoveOrganizationMembers = append(p.out.RemoveOrganizationMembers, c)
		})
	}
	for li := range p.live.Organizations {
		if !p.orgMan[li] || p.orgDes[li] >= 0 {
			continue
		}
		o := &p.live.Organizations[li]
		for _, a := range p.orgMem[li] {
			if !p.mayRemove(a) {
				continue
			}
			c := p.removeChange(KindRemoveOrganizationMember, a, "organization "+o.Name+" is no longer mapped")
			c.Organization, c.OrganizationID = o.Name, o.ID
			p.out.RemoveOrganizationMembers = append(p.out.RemoveOrganizationMembers, c)
		}
	}
}
