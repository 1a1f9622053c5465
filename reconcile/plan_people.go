package reconcile

import (
	"cmp"
	"slices"
	"strconv"

	"github.com/idsync/idsync/configs"
)

// People: matching, creates, updates, reactivations and deprovisions.

func (p *planner) users() {
	// At most one create per active person without an account: size the list once (a first
	// sync creates every person).
	nCreate := 0
	for pi := range p.d.People {
		if p.pAcc[pi] < 0 && p.pState[pi]&pSkip == 0 && p.d.People[pi].Active {
			nCreate++
		}
	}
	p.out.CreateUsers = growChanges(p.out.CreateUsers, nCreate)
	var createWhy map[string]string // per source: one reason string shared by its creates
	for pi := range p.d.People {
		per := &p.d.People[pi]
		if p.pState[pi]&pSkip != 0 {
			for _, r := range per.Records {
				if li, ok := p.linkByRec[r]; ok {
					if ai, ok := p.accByID[p.own.Links[li].AccountID]; ok {
						p.accFlag[ai] |= accNoRemove
					}
				}
			}
			continue
		}
		ai, li := p.pAcc[pi], p.pLink[pi]
		if ai >= 0 {
			p.accFlag[ai] |= accTargeted
		}
		var l *Link
		if li >= 0 {
			l = &p.own.Links[li]
		}
		if !per.Active {
			if ai >= 0 {
				p.accFlag[ai] |= accNoRemove
			}
			if l != nil && ai >= 0 && !l.Deactivated {
				p.deprovision(ai, l, per, DeprovisionExplicit, "disabled or deleted in source "+per.Source)
			}
			continue
		}
		if ai >= 0 {
			acc := &p.live.Accounts[ai]
			p.pState[pi] |= pAdds
			if l != nil && !per.CustomerOnly && acc.AccountType != AccountCustomer &&
				(l.Deactivated || len(l.PendingGroups) > 0 || !acc.Active) {
				p.reactivate(pi, l, acc)
			} else if l == nil && !per.CustomerOnly && !acc.Active && acc.AccountType != AccountCustomer {
				p.out.ReactivateUsers = append(p.out.ReactivateUsers, p.personChange(KindReactivateUser, pi,
					"active in source "+per.Source+"; the Jira account is inactive"))
			}
			p.update(pi, acc)
			p.linkUpkeep(pi, l, acc)
			continue
		}
		if l != nil && l.Deactivated && !per.CustomerOnly {
			// Linked account deactivated by deletion: reactivation re-creates it.
			p.pState[pi] |= pAdds | pPending
			p.reactivate(pi, l, nil)
			continue
		}
		if per.CustomerOnly && len(per.Desks) == 0 && len(per.Orgs) == 0 {
			// Known only to customers_only sources and reached by no mapping.customers entry:
			// nothing to grant, and never a licensed account.
			continue
		}
		if !p.d.ImportUsers {
			p.note(per.UserName + ": no Jira account matches " + orDash(per.Email) + "; not created (import_users is off)")
			continue
		}
		if per.Email == "" {
			p.note(per.UserName + ": no Jira account is linked and the source gives no valid email; cannot match or create")
			continue
		}
		p.pState[pi] |= pAdds | pPending
		if per.CustomerOnly {
			c := p.personChange(KindCreateCustomer, pi, "only in customer-mapped IdP groups ("+p.viaList(per.Desks, per.Orgs)+"); no JSM customer with this email")
			p.out.CreateCustomers = append(p.out.CreateCustomers, c)
		} else {
			why, ok := createWhy[per.Source]
			if !ok {
				why = "in source " + per.Source + "; no Jira account with this email"
				if createWhy == nil {
					createWhy = map[string]string{}
				}
				createWhy[per.Source] = why
			}
			p.out.CreateUsers = append(p.out.CreateUsers, p.personChange(KindCreateUser, pi, why))
		}
	}
}

// growChanges makes room for n more changes in one allocation (slices.Grow would build a temporary
// of n items besides the list where the compiler does not elide it, as under -race).
func growChanges(l []Change, n int) []Change {
	if n <= 0 || cap(l)-len(l) >= n {
		return l
	}
	out := make([]Change, len(l), len(l)+n)
	copy(out, l)
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (p *planner) viaList(gs ...[]Grant) string {
	out := ""
	seen := map[int32]bool{}
	for _, g := range gs {
		for _, x := range g {
			if seen[x.Via] {
				continue
			}
			seen[x.Via] = true
			if out != "" {
				out += ", "
			}
			out += p.d.viaName(x.Via)
		}
	}
	return out
}

func (p *planner) personChange(k Kind, pi int, reason string) Change {
	per := &p.d.People[pi]
	c := Change{Kind: k, Source: per.Source, UserKey: per.Key, UserName: per.UserName,
		Email: per.Email, DisplayName: per.DisplayName, Reason: reason}
	if ai := p.pAcc[pi]; ai >= 0 && p.pState[pi]&pPending == 0 {
		c.AccountID = p.accIDs[ai]
	}
	return c
}

func (p *planner) reactivate(pi int, l *Link, acc *Account) {
	per := &p.d.People[pi]
	why := "active again in source " + per.Source
	switch {
	case l.Deactivated && l.Method != "":
		why += "; idsync deactivated the account (" + l.Method + ")"
	case l.Deactivated || len(l.PendingGroups) > 0:
		why += "; idsync deactivated the account"
	default:
		why += "; the Jira account is inactive"
	}
	c := p.personChange(KindReactivateUser, pi, why)
	c.AccountID = l.AccountID
	if l.Deactivated {
		c.Method = l.Method
	}
	// Managed groups come back through AddMembers (owned); reactivation restores the other
	// groups the deactivation took away (product access).
	seen := map[string]bool{}
	for _, gs := range [][]GroupRef{l.RemovedGroups, l.PendingGroups} {
		for _, g := range gs {
			if p.managedNames[lower(g.Name)] || seen[lower(g.Name)] {
				continue
			}
			if gi, ok := p.lgByID[g.ID]; ok && acc != nil {
				if ai, ok := p.accByID[acc.AccountID]; ok && hasAcc(p.lgMem[gi], ai) {
					continue
				}
			}
			seen[lower(g.Name)] = true
			c.Groups = append(c.Groups, g)
		}
	}
	p.out.ReactivateUsers = append(p.out.ReactivateUsers, c)
}

func (p *planner) update(pi int, acc *Account) {
	per := &p.d.People[pi]
	if acc.AccountType != AccountAtlassian && acc.AccountType != "" {
		return
	}
	var fields []FieldChange
	if per.DisplayName != "" && acc.DisplayName != per.DisplayName {
		fields = append(fields, FieldChange{Field: "displayName", Old: acc.DisplayName, New: per.DisplayName})
	}
	// A hidden (empty) live email says nothing: never "update" it.
	if per.Email != "" && acc.Email != "" && lower(acc.Email) != lower(per.Email) {
		fields = append(fields, FieldChange{Field: "email", Old: acc.Email, New: per.Email})
	}
	if len(fields) == 0 {
		return
	}
	what := fields[0].Field
	if len(fields) > 1 {
		what += " and " + fields[1].Field
	}
	c := p.personChange(KindUpdateUser, pi, what+" changed in source "+per.Source)
	c.Fields = fields
	if !p.opts.ProfileWritable {
		c.Unsupported = "needs admin_api"
	}
	p.out.UpdateUsers = append(p.out.UpdateUsers, c)
}

// linkUpkeep records links for further source records of a matched person and keeps stored
// names, emails and the customer flag current. Email matches were recorded by match.
func (p *planner) linkUpkeep(pi int, l *Link, acc *Account) {
	if l == nil {
		return
	}
	per := &p.d.People[pi]
	customer := per.CustomerOnly
	for _, r := range per.Records {
		li, ok := p.linkByRec[r]
		if !ok {
			// Another record of a linked person: same account, so the same origin (Created).
			p.out.Links = append(p.out.Links, Link{
				Source: r.Source, Key: r.Key, UserName: per.UserName, Email: per.Email,
				AccountID: acc.AccountID, Created: l.Created, Customer: customer, LinkedAt: p.opts.Now, UpdatedAt: p.opts.Now,
			})
			continue
		}
		cur := p.own.Links[li]
		if cur.AccountID != acc.AccountID {
			continue // noted by match
		}
		wantCustomer := cur.Customer
		if !customer && acc.AccountType != AccountCustomer {
			wantCustomer = false
		}
		if cur.UserName != per.UserName || cur.Email != per.Email || cur.Customer != wantCustomer {
			cur.UserName, cur.Email, cur.Customer, cur.UpdatedAt = per.UserName, per.Email, wantCustomer, p.opts.Now
			p.out.Links = append(p.out.Links, cur)
		}
	}
}

// deprovItem is one planned deprovision, emitted once every person has been matched.
type deprovItem struct {
	ai       int32
	l        *Link
	per      *Person
	how, why string
}

// deprovision plans what takes access from a person the sources no longer want: deactivation
// of a licensed account, and removal of customer access in managed desks and organizations.
// Customer-only links are never deactivated: losing the customer access is their deprovision.
// The account's memberships are left alone from here on (deactivation takes care of them).
func (p *planner) deprovision(ai int32, l *Link, per *Person, how, why string) {
	if p.accFlag[ai]&accDeprov != 0 {
		return
	}
	p.accFlag[ai] |= accDeprov | accNoRemove
	p.deprov = append(p.deprov, deprovItem{ai: ai, l: l, per: per, how: how, why: why})
}

// emitDeprovisions enforces the planner's safety invariant before emitting the deprovisions:
// an account that any active desired person matches (a link of any of their records, or
// their email) is never deactivated, nor stripped of customer access as part of a
// deprovision, whatever the reason the candidate came from (a stale link, a disabled record
// of another source, two people claiming one account). A note names the person.
func (p *planner) emitDeprovisions() {
	if len(p.deprov) == 0 {
		return
	}
	cand := make(map[string]int32, len(p.deprov))
	// Several candidates may share an email (duplicate accounts): an active person with that
	// email keeps every one of them.
	emails := make(map[string][]int32, len(p.deprov))
	for _, d := range p.deprov {
		acc := &p.live.Accounts[d.ai]
		cand[acc.AccountID] = d.ai
		if acc.Email != "" {
			emails[lower(acc.Email)] = append(emails[lower(acc.Email)], d.ai)
		}
	}
	wanted := map[int32]string{}
	for li := range p.own.Links {
		if p.linkActive[li] {
			if ai, ok := cand[p.own.Links[li].AccountID]; ok {
				wanted[ai] = "source record " + p.own.Links[li].LinkKey() + " of an active person is linked to it"
			}
		}
	}
	for pi := range p.d.People {
		per := &p.d.People[pi]
		if !per.Active || per.Email == "" {
			continue
		}
		for _, ai := range emails[lower(per.Email)] {
			if _, dup := wanted[ai]; !dup {
				wanted[ai] = "active person " + per.UserName + " has its email"
			}
		}
	}
	for _, d := range p.deprov {
		if why, ok := wanted[d.ai]; ok {
			p.note(cmp.Or(d.l.UserName, d.l.LinkKey()) + ": account " + d.l.AccountID + " is not deprovisioned (" + d.why + "): " + why)
			continue
		}
		p.emitDeprovision(d)
	}
}

func (p *planner) emitDeprovision(d deprovItem) {
	ai, l, per := d.ai, d.l, d.per
	acc := &p.live.Accounts[ai]
	base := Change{Source: l.Source, UserKey: l.Key, UserName: l.UserName, Email: l.Email,
		AccountID: l.AccountID, DisplayName: acc.DisplayName, Deprovision: d.how, Reason: d.why}
	if per != nil {
		base.UserName, base.Email, base.DisplayName = per.UserName, per.Email, per.DisplayName
	}
	for di := range p.live.ServiceDesks {
		if p.deskMan[di] && hasAcc(p.deskMem[di], ai) {
			c := base
			c.Kind = KindRemoveCustomer
			c.ServiceDesk, c.ServiceDeskKey = p.live.ServiceDesks[di].ID, p.live.ServiceDesks[di].Key
			p.out.RemoveCustomers = append(p.out.RemoveCustomers, c)
		}
	}
	for oi := range p.live.Organizations {
		if p.orgMan[oi] && hasAcc(p.orgMem[oi], ai) {
			c := base
			c.Kind = KindRemoveOrganizationMember
			c.Organization = p.live.Organizations[oi].Name
			c.OrganizationID = p.live.Organizations[oi].ID
			p.out.RemoveOrganizationMembers = append(p.out.RemoveOrganizationMembers, c)
		}
	}
	if l.Customer || acc.AccountType == AccountCustomer {
		return
	}
	c := base
	c.Kind = KindDeactivateUser
	p.out.DeactivateUsers = append(p.out.DeactivateUsers, c)
}

// missing plans deprovisions for linked accounts no source lists any more (grace decides).
func (p *planner) missing() {
	for li := range p.own.Links {
		l := &p.own.Links[li]
		if p.linkPresent[li] || l.Deactivated {
			continue
		}
		ai, ok := p.accByID[l.AccountID]
		if !ok || int(ai) >= p.nLive {
			continue // nothing left in Jira to deprovision
		}
		if p.accPers[ai] >= 0 {
			continue // the account belongs to a person still present (re-keyed or merged)
		}
		p.accFlag[ai] |= accNoRemove
		passes := l.MissingPasses
		why := "not in any source for " + strconv.Itoa(passes) + " complete passes"
		if passes == 1 {
			why = "not in any source for 1 complete pass"
		}
		p.deprovision(ai, l, nil, DeprovisionMissing, why)
	}
}

// fillDeactivationGroups lists, for remove-access deactivations, every managed and every
// product-access group the account is in.
func (p *planner) fillDeactivationGroups() {
	if len(p.out.DeactivateUsers) == 0 {
		return
	}
	if m := p.opts.DeactivateMethod; m != "" && m != configs.DeactivateRemoveAccess {
		return
	}
	idx := make(map[int32]int, len(p.out.DeactivateUsers))
	for i, c := range p.out.DeactivateUsers {
		if ai, ok := p.accByID[c.AccountID]; ok {
			idx[ai] = i
		}
	}
	for gi := range p.live.Groups {
		g := &p.live.Groups[gi]
		if !(p.lgMan[gi] || g.ProductAccess) {
			continue
		}
		for _, ai := range p.lgMem[gi] {
			if i, ok := idx[ai]; ok {
				c := &p.out.DeactivateUsers[i]
				c.Groups = append(c.Groups, GroupRef{ID: g.ID, Name: g.Name})
			}
		}
	}
	p.lagDeactivationGroups(idx)
}

// lagDeactivationGroups covers Jira's search-index lag: the member listings may not show an
// account created moments ago, and a deactivation with nothing to remove would leave a leaver
// their access while recording them as deactivated. For an account no read group lists, the
// deactivation also removes the groups idsync added it to, and every product-access group:
// removing a non-member is a no-op, leaving access is not.
func (p *planner) lagDeactivationGroups(idx map[int32]int) {
	unseen := map[string]int{}
	for ai, i := range idx {
		if !p.inGroup(ai) {
			unseen[p.accIDs[ai]] = i
		}
	}
	if len(unseen) == 0 {
		return
	}
	for _, i := range unseen {
		p.out.DeactivateUsers[i].Unlisted = true
	}
	add := func(i int, g GroupRef) {
		c := &p.out.DeactivateUsers[i]
		if !slices.ContainsFunc(c.Groups, func(x GroupRef) bool { return x.ID == g.ID }) {
			c.Groups = append(c.Groups, g)
		}
	}
	for oi := range p.own.Owned {
		o := &p.own.Owned[oi]
		if o.Kind != OwnedMembership {
			continue
		}
		if i, ok := unseen[o.AccountID]; ok {
			if li, ok := p.lgByID[o.Container]; ok {
				add(i, GroupRef{ID: o.Container, Name: p.live.Groups[li].Name})
			}
		}
	}
	for gi := range p.live.Groups {
		if g := &p.live.Groups[gi]; g.ProductAccess {
			for _, i := range unseen {
				add(i, GroupRef{ID: g.ID, Name: g.Name})
			}
		}
	}
}
