package reconcile

import (
	"cmp"
	"hash/maphash"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/idsync/idsync/configs"
)

// Ownership is what the store says idsync owns: links to accounts and ownership records.
type Ownership struct {
	Links []Link  `json:"links"`
	Owned []Owned `json:"owned"`
}

// PlanOptions are the inputs of Plan besides the three states.
type PlanOptions struct {
	// Now stamps new links (the planner never reads the clock).
	Now time.Time
	// ProfileWritable is true when the sink can change display names and emails
	// (sink.jira.admin_api); otherwise profile drift is planned as unsupported.
	ProfileWritable bool
	// DeactivateMethod is sink.jira.deactivate; remove-access (the default) fills
	// DeactivateUser.Groups.
	DeactivateMethod string
	// Targeted plans only the people in Desired: no missing-user logic, no removals for
	// anyone else, no ownership clean-up (the live read was narrow).
	Targeted bool
}

// Account flags.
const (
	accNoRemove uint8 = 1 << iota // deprovisioned, missing, ignored or conflicting: leave memberships alone
	accTargeted                   // belongs to a person of a targeted pass
	accDeprov                     // deprovision planned (deduplicates missing links)
)

// Person states.
const (
	pSkip    uint8 = 1 << iota // cannot be planned (conflict); a note says why
	pPending                   // account created or re-created in this pass: AccountID resolved by the executor
	pAdds                      // gets membership adds
)

// pendingAcc marks desired entries of people whose account does not exist yet; it sorts last.
const pendingAcc = uint32(0xFFFFFFFF)

type planner struct {
	d    *Desired
	live *Live
	own  *Ownership
	opts PlanOptions
	out  Changes

	accIDs  []string
	accByID map[string]int32
	nLive   int
	accFlag []uint8
	accPers []int32 // account -> claiming person, -1
	// accInGroup: the account is among the members of some read group. A linked account in
	// none may be one Jira's search index does not show yet (created moments ago).
	accInGroup  []bool
	deactivated map[string]bool // accounts of deactivated links, built on first use

	pAcc   []int32
	pLink  []int32
	pState []uint8

	linkByRec   map[Record]int32
	linkPresent []bool
	linkActive  []bool // the link's record belongs to an active desired person

	deprov []deprovItem // candidates, emitted by emitDeprovisions

	// groups
	lgByName map[string]int32
	lgByID   map[string]int32
	lgDes    []int32 // live group -> desired group, -1
	lgMan    []bool
	lgMem    [][]int32 // sorted member account indexes of read groups
	dgLive   []int32   // desired group -> live group, -1
	dgEnt    [][]uint64

	// desks and orgs
	deskLive []int32
	deskMem  [][]int32
	deskMan  []bool
	deskDes  []int32
	deskEnt  [][]uint64
	orgLive  []int32
	orgMem   [][]int32
	orgMan   []bool
	orgDes   []int32
	orgEnt   [][]uint64
	orgByNm  map[string]int32

	managedNames map[string]bool // lower names of managed groups (for reactivation filtering)

	// On-the-fly grants refused because their Jira group grants admin rights or product
	// access (see refuseOnTheFly); nil when there are none.
	refusedVia []bool // by Desired.Via index
	dgRefused  []bool // desired groups only the on-the-fly rule manages, left out of the diff
}

// Plan computes the raw diff between the desired state and Jira, given what idsync owns. It is
// a pure function: no I/O, no logging, no clock. Guards filter its result afterwards.
func Plan(d Desired, live Live, own Ownership, opts PlanOptions) Changes {
	p := &planner{d: &d, live: &live, own: &own, opts: opts}
	p.indexAccounts()
	p.indexLinks()
	p.match()
	p.indexGroups()
	p.indexDesksOrgs()
	p.users()
	if !opts.Targeted {
		p.missing()
	}
	p.emitDeprovisions()
	p.buildEntries()
	p.groupDiff()
	p.deskDiff()
	p.orgDiff()
	p.fillDeactivationGroups()
	if !opts.Targeted {
		p.forget()
	}
	sortChanges(&p.out)
	return p.out
}

// ---- indexes ----

func (p *planner) indexAccounts() {
	n := len(p.live.Accounts)
	p.nLive = n
	p.accIDs = make([]string, n, n+n/16)
	p.accByID = make(map[string]int32, n)
	for i := range p.live.Accounts {
		id := p.live.Accounts[i].AccountID
		p.accIDs[i] = id
		if _, dup := p.accByID[id]; !dup {
			p.accByID[id] = int32(i)
		}
	}
}

// accIndex returns the index of an accountId, adding a placeholder for ids the account
// listing did not return (members of groups whose account is unknown).
func (p *planner) accIndex(id string) int32 {
	if i, ok := p.accByID[id]; ok {
		return i
	}
	i := int32(len(p.accIDs))
	p.accIDs = append(p.accIDs, id)
	p.accByID[id] = i
	return i
}

func (p *planner) account(i int32) *Account {
	if i < 0 || int(i) >= p.nLive {
		return nil
	}
	return &p.live.Accounts[i]
}

func (p *planner) indexLinks() {
	p.linkByRec = make(map[Record]int32, len(p.own.Links))
	for i, l := range p.own.Links {
		p.linkByRec[Record{Source: l.Source, Key: l.Key}] = int32(i)
	}
	p.linkPresent = make([]bool, len(p.own.Links))
	p.linkActive = make([]bool, len(p.own.Links))
}

// match finds each person's account: a stored link first, then email, never display name.
func (p *planner) match() {
	np := len(p.d.People)
	p.pAcc = make([]int32, np)
	p.pLink = make([]int32, np)
	p.pState = make([]uint8, np)
	p.accFlag = make([]uint8, p.nLive, p.nLive+p.nLive/16)
	p.accPers = make([]int32, p.nLive)
	for i := range p.accPers {
		p.accPers[i] = -1
	}
	// Links first, so an email match can never take an account a link already claims; active
	// people before inactive ones, so that when records of an active and a deprovisioned
	// person are linked to one account, the active person keeps it.
	for pi := range p.pAcc {
		p.pAcc[pi], p.pLink[pi] = -1, -1
	}
	for _, active := range []bool{true, false} {
		for pi := range p.d.People {
			if p.d.People[pi].Active == active {
				p.matchLink(pi)
			}
		}
	}
	// Email, for active people without a usable link.
	var atl, cust map[string]int32
	for pi := range p.d.People {
		per := &p.d.People[pi]
		if p.pAcc[pi] >= 0 || p.pLink[pi] >= 0 || p.pState[pi]&pSkip != 0 || !per.Active || per.Email == "" {
			continue
		}
		if atl == nil {
			atl, cust = p.emailIndex()
		}
		e := lower(per.Email)
		ai, ok := int32(-1), false
		if per.CustomerOnly {
			ai, ok = cust[e]
		}
		if !ok {
			ai, ok = atl[e]
		}
		if !ok {
			continue
		}
		if other := p.accPers[ai]; other >= 0 {
			p.note(per.UserName + ": the Jira account with email " + per.Email + " is linked to " + p.d.People[other].UserName + "; left alone")
			p.pState[pi] |= pSkip
			continue
		}
		p.pAcc[pi] = ai
		p.accPers[ai] = int32(pi)
		acc := &p.live.Accounts[ai]
		for _, r := range per.Records {
			p.out.Links = append(p.out.Links, Link{
				Source: r.Source, Key: r.Key, UserName: per.UserName, Email: per.Email,
				AccountID: acc.AccountID, Customer: per.CustomerOnly,
				LinkedAt: p.opts.Now, UpdatedAt: p.opts.Now,
			})
		}
	}
	// Accounts of ignored records (excluded users, bad data) are left alone entirely.
	var atlIgn map[string]int32
	for _, ig := range p.d.Ignored {
		if li, ok := p.linkByRec[ig.Record]; ok {
			p.linkPresent[li] = true
			if ai, ok := p.accByID[p.own.Links[li].AccountID]; ok {
				p.accFlag[ai] |= accNoRemove
			}
		}
		if ig.Email != "" {
			if atlIgn == nil {
				a, c := p.emailIndex()
				atlIgn = a
				for k, v := range c {
					if _, ok := atlIgn[k]; !ok {
						atlIgn[k] = v
					}
				}
			}
			if ai, ok := atlIgn[lower(ig.Email)]; ok {
				p.accFlag[ai] |= accNoRemove
			}
		}
	}
}

// matchLink finds a person's account through the stored links of their records.
func (p *planner) matchLink(pi int) {
	per := &p.d.People[pi]
	for _, r := range per.Records {
		li, ok := p.linkByRec[r]
		if !ok {
			continue
		}
		p.linkPresent[li] = true
		if per.Active {
			p.linkActive[li] = true
		}
		if p.pLink[pi] < 0 {
			p.pLink[pi] = li
		} else if l0 := p.own.Links[p.pLink[pi]]; l0.AccountID != p.own.Links[li].AccountID {
			p.note(per.UserName + ": source records are linked to different accounts (" + l0.AccountID + ", " + p.own.Links[li].AccountID + "); using the first")
		}
	}
	li := p.pLink[pi]
	if li < 0 {
		return
	}
	l := &p.own.Links[li]
	ai, ok := p.accByID[l.AccountID]
	if !ok {
		if !l.Deactivated {
			p.note(per.UserName + ": linked account " + l.AccountID + " is not in Jira any more; matching again by email")
			p.pLink[pi] = -1
		}
		return
	}
	acc := &p.live.Accounts[ai]
	if !per.CustomerOnly && acc.AccountType == AccountCustomer {
		// A portal-only customer cannot become licensed: find or create a real account.
		p.pLink[pi] = -1
		return
	}
	if other := p.accPers[ai]; other >= 0 {
		p.note(per.UserName + ": account " + l.AccountID + " is already linked to " + p.d.People[other].UserName + "; left alone")
		p.pState[pi] |= pSkip
		return
	}
	p.pAcc[pi] = ai
	p.accPers[ai] = int32(pi)
}

func (p *planner) emailIndex() (atl, cust map[string]int32) {
	atl = make(map[string]int32, p.nLive)
	cust = map[string]int32{}
	for i := range p.live.Accounts {
		a := &p.live.Accounts[i]
		if a.Email == "" {
			continue
		}
		switch a.AccountType {
		case AccountAtlassian, "":
			atl[lower(a.Email)] = int32(i)
		case AccountCustomer:
			cust[lower(a.Email)] = int32(i)
		}
	}
	return atl, cust
}

func (p *planner) note(s string) { p.out.Notes = append(p.out.Notes, s) }

func (p *planner) indexGroups() {
	lg := p.live.Groups
	p.lgByName = make(map[string]int32, len(lg))
	p.lgByID = make(map[string]int32, len(lg))
	for i := range lg {
		p.lgByName[lower(lg[i].Name)] = int32(i)
		if lg[i].ID != "" {
			p.lgByID[lg[i].ID] = int32(i)
		}
	}
	p.lgDes = make([]int32, len(lg))
	for i := range p.lgDes {
		p.lgDes[i] = -1
	}
	p.lgMan = make([]bool, len(lg))
	p.dgLive = make([]int32, len(p.d.Groups))
	p.managedNames = make(map[string]bool, len(p.d.Groups))
	for di := range p.d.Groups {
		g := &p.d.Groups[di]
		k := lower(g.Name)
		p.dgLive[di] = -1
		li, ok := p.lgByName[k]
		refused := ok && refusedGroup(g, &lg[li])
		if refused {
			if p.dgRefused == nil {
				p.dgRefused = make([]bool, len(p.d.Groups))
			}
			p.dgRefused[di] = true
		} else {
			p.managedNames[k] = true
		}
		if ok {
			p.dgLive[di] = li
			// A refused group keeps its desired index, so it never counts as a group that
			// is "no longer mapped", but it is managed only through what idsync owns in it.
			p.lgDes[li] = int32(di)
			p.lgMan[li] = !refused
		}
	}
	p.refuseOnTheFly()
	// Ownership records come grouped by container (store key order): one lookup per run.
	lastC := "\x00"
	for i := range p.own.Owned {
		o := &p.own.Owned[i]
		if (o.Kind != OwnedMembership && o.Kind != OwnedGroup) || o.Container == lastC {
			continue
		}
		lastC = o.Container
		if li, ok := p.lgByID[o.Container]; ok && !p.lgMan[li] {
			p.lgMan[li] = true
			p.managedNames[lower(lg[li].Name)] = true
		}
	}
	p.lgMem = make([][]int32, len(lg))
	p.accInGroup = make([]bool, len(p.accIDs), cap(p.accIDs))
	total := 0
	for i := range lg {
		if lg[i].MembersRead && (p.lgMan[i] || lg[i].ProductAccess) {
			total += len(lg[i].Members)
		}
	}
	buf := make([]int32, 0, total)
	for i := range lg {
		if !lg[i].MembersRead || !(p.lgMan[i] || lg[i].ProductAccess) {
			continue
		}
		start := len(buf)
		for _, m := range lg[i].Members {
			buf = append(buf, p.accIndex(m))
		}
		for _, a := range buf[start:] {
			if int(a) >= len(p.accInGroup) {
				p.accInGroup = append(p.accInGroup, make([]bool, int(a)+1-len(p.accInGroup))...)
			}
			p.accInGroup[a] = true
		}
		seg := buf[start:len(buf):len(buf)]
		slices.Sort(seg)
		p.lgMem[i] = slices.Compact(seg)
	}
	p.growAccFlags()
}

// deactivatedAccount reports whether idsync deactivated the account (a link says so): then
// its absence from every group is explained.
func (p *planner) deactivatedAccount(id string) bool {
	if p.deactivated == nil {
		p.deactivated = map[string]bool{}
		for i := range p.own.Links {
			if p.own.Links[i].Deactivated {
				p.deactivated[p.own.Links[i].AccountID] = true
			}
		}
	}
	return p.deactivated[id]
}

// inGroup reports whether the account is among the members of some read group.
func (p *planner) inGroup(a int32) bool { return int(a) < len(p.accInGroup) && p.accInGroup[a] }

func (p *planner) growAccFlags() {
	for len(p.accFlag) < len(p.accIDs) {
		p.accFlag = append(p.accFlag, 0)
	}
	for len(p.accPers) < len(p.accIDs) {
		p.accPers = append(p.accPers, -1)
	}
}

func (p *planner) indexDesksOrgs() {
	desks, orgs := p.live.ServiceDesks, p.live.Organizations
	p.deskLive = make([]int32, len(p.d.Desks))
	p.deskMan = make([]bool, len(desks))
	p.deskDes = make([]int32, len(desks))
	for i := range p.deskDes {
		p.deskDes[i] = -1
	}
	deskByID := make(map[string]int32, len(desks))
	deskByKey := make(map[string]int32, len(desks))
	for i, d := range desks {
		deskByID[d.ID] = int32(i)
		deskByKey[lower(d.Key)] = int32(i)
	}
	for di, name := range p.d.Desks {
		li, ok := deskByID[name]
		if !ok {
			li, ok = deskByKey[lower(name)]
		}
		if !ok {
			p.deskLive[di] = -1
			p.note("service desk " + quote(name) + " of mapping.customers is not in Jira; its customers are not planned")
			continue
		}
		p.deskLive[di] = li
		p.deskDes[li] = int32(di)
		p.deskMan[li] = true
	}
	p.orgByNm = make(map[string]int32, len(orgs))
	orgByID := make(map[string]int32, len(orgs))
	for i, o := range orgs {
		p.orgByNm[lower(o.Name)] = int32(i)
		orgByID[o.ID] = int32(i)
	}
	p.orgLive = make([]int32, len(p.d.Orgs))
	p.orgMan = make([]bool, len(orgs))
	p.orgDes = make([]int32, len(orgs))
	for i := range p.orgDes {
		p.orgDes[i] = -1
	}
	for di, name := range p.d.Orgs {
		li, ok := p.orgByNm[lower(name)]
		if !ok {
			p.orgLive[di] = -1
			continue
		}
		p.orgLive[di] = li
		p.orgDes[li] = int32(di)
		p.orgMan[li] = true
	}
	for _, o := range p.own.Owned {
		switch o.Kind {
		case OwnedCustomer:
			if li, ok := deskByID[o.Container]; ok {
				p.deskMan[li] = true
			}
		case OwnedOrganization:
			li, ok := orgByID[o.Container]
			if !ok && strings.HasPrefix(o.Container, "name:") {
				li, ok = p.orgByNm[strings.TrimPrefix(o.Container, "name:")]
			}
			if ok {
				p.orgMan[li] = true
			}
		}
	}
	p.deskMem = make([][]int32, len(desks))
	for i, d := range desks {
		if p.deskMan[i] {
			p.deskMem[i] = p.sortedAccs(d.Customers)
		}
	}
	p.orgMem = make([][]int32, len(orgs))
	for i, o := range orgs {
		if p.orgMan[i] {
			p.orgMem[i] = p.sortedAccs(o.Members)
		}
	}
	p.growAccFlags()
}

func (p *planner) sortedAccs(ids []string) []int32 {
	s := make([]int32, len(ids))
	for i, id := range ids {
		s[i] = p.accIndex(id)
	}
	slices.Sort(s)
	return slices.Compact(s)
}

// ---- people ----

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
			} else if l == nil && !acc.Active && acc.AccountType != AccountCustomer {
				p.out.ReactivateUsers = append(p.out.ReactivateUsers, p.personChange(KindReactivateUser, pi,
					"active in source "+per.Source+"; the Jira account is inactive"))
			}
			p.update(pi, acc)
			p.linkUpkeep(pi, l, acc)
			continue
		}
		if l != nil && l.Deactivated {
			// Linked account deactivated by deletion: reactivation re-creates it.
			p.pState[pi] |= pAdds | pPending
			p.reactivate(pi, l, nil)
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
	emails := make(map[string]int32, len(p.deprov))
	for _, d := range p.deprov {
		acc := &p.live.Accounts[d.ai]
		cand[acc.AccountID] = d.ai
		if acc.Email != "" {
			emails[lower(acc.Email)] = d.ai
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
		if ai, ok := emails[lower(per.Email)]; ok {
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

// ---- memberships ----

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

// forget lists ownership records of memberships that are neither in Jira nor desired.
func (p *planner) forget() {
	start := len(p.out.Forget)
	if p.forgetIn(nil) {
		return
	}
	// A group's records were not consecutive: walk them regrouped.
	p.out.Forget = p.out.Forget[:start]
	p.forgetIn(membershipOrder(p.own.Owned))
}

// forgetIn walks the ownership records in the given order (nil: as stored). Walking them as
// stored, it gives up (false) on meeting a group whose records it has passed before.
func (p *planner) forgetIn(order []int32) bool {
	deskByID := make(map[string]int32, len(p.live.ServiceDesks))
	for i, d := range p.live.ServiceDesks {
		deskByID[d.ID] = int32(i)
	}
	orgByID := make(map[string]int32, len(p.live.Organizations))
	for i, o := range p.live.Organizations {
		orgByID[o.ID] = int32(i)
	}
	// Records come grouped by container (store key order), so one lookup serves a run, and
	// the run is checked against the group's members by hash: a million records cost a
	// million short hashes and searches in a small sorted array instead of a million lookups
	// in the account map (see memberHashes).
	var mh memberHashes
	lastC, lastLi, lastOK := "", int32(-1), false
	visited := make([]bool, len(p.live.Groups))
	for k := range p.own.Owned {
		i := k
		if order != nil {
			i = int(order[k])
		}
		o := &p.own.Owned[i]
		switch o.Kind {
		case OwnedGroup:
			if _, ok := p.lgByID[o.Container]; !ok {
				p.out.Forget = append(p.out.Forget, *o)
			}
		case OwnedMembership:
			if o.Container != lastC || lastLi < 0 && !lastOK {
				lastC = o.Container
				lastLi, lastOK = p.lgByID[o.Container]
				if lastOK {
					if visited[lastLi] && order == nil {
						return false // reloading the group at every turn would be quadratic
					}
					visited[lastLi] = true
					mh.load(p, p.lgMem[lastLi])
				}
			}
			li, ok := lastLi, lastOK
			if !ok {
				p.out.Forget = append(p.out.Forget, *o)
				continue
			}
			if !p.live.Groups[li].MembersRead {
				continue
			}
			if mh.has(o.AccountID) {
				continue
			}
			a, ok := p.accByID[o.AccountID]
			if ok && (hasAcc(p.lgMem[li], a) || (p.lgDes[li] >= 0 && wants(p.dgEnt[p.lgDes[li]], a))) {
				continue
			}
			if ok && !p.inGroup(a) && !p.deactivatedAccount(o.AccountID) {
				// No read group lists the account: the search index may not show it yet.
				// Keep the record; the pass after the lag sees the membership.
				continue
			}
			p.out.Forget = append(p.out.Forget, *o)
		case OwnedCustomer:
			li, ok := deskByID[o.Container]
			if !ok {
				continue // desks are never deleted by idsync; keep the record
			}
			a, ok := p.accByID[o.AccountID]
			if ok && (hasAcc(p.deskMem[li], a) || (p.deskDes[li] >= 0 && wants(p.deskEnt[p.deskDes[li]], a))) {
				continue
			}
			p.out.Forget = append(p.out.Forget, *o)
		case OwnedOrganization:
			li, ok := orgByID[o.Container]
			if !ok && strings.HasPrefix(o.Container, "name:") {
				li, ok = p.orgByNm[strings.TrimPrefix(o.Container, "name:")]
			}
			if !ok {
				continue
			}
			a, ok := p.accByID[o.AccountID]
			if ok && (hasAcc(p.orgMem[li], a) || (p.orgDes[li] >= 0 && wants(p.orgEnt[p.orgDes[li]], a))) {
				continue
			}
			p.out.Forget = append(p.out.Forget, *o)
		}
	}
	return true
}

// membershipOrder is a permutation of the ownership records that makes the membership
// records of each container consecutive, keeping their relative order, for records not in
// the store's key order (interleaved by account, as a caller may assemble them): forget would
// otherwise reload a group's member hashes at almost every record, quadratic in a
// 100k-member default group. A counting sort by container in order of first appearance;
// other kinds first (each is judged on its own).
func membershipOrder(owned []Owned) []int32 {
	bucket := make([]int32, len(owned))
	idx := map[string]int32{}
	last, lastB := "", int32(-1)
	for i := range owned {
		o := &owned[i]
		if o.Kind != OwnedMembership {
			continue
		}
		if lastB < 0 || o.Container != last {
			b, ok := idx[o.Container]
			if !ok {
				b = int32(len(idx)) + 1
				idx[o.Container] = b
			}
			last, lastB = o.Container, b
		}
		bucket[i] = lastB
	}
	start := make([]int32, len(idx)+2)
	for _, b := range bucket {
		start[b+1]++
	}
	for i := 1; i < len(start); i++ {
		start[i] += start[i-1]
	}
	order := make([]int32, len(owned))
	for i, b := range bucket {
		order[start[b]] = int32(i)
		start[b]++
	}
	return order
}

// memberHashes is a small hash set of one group's member ids (by their 64-bit hashes), so
// forget can tell that an ownership record's account is a member without the account map. A
// hash hit counts as membership: the only possible error (two different ids with one 64-bit
// hash) keeps a record that could have been forgotten, which is harmless; a miss goes through
// the exact check.
type memberHashes struct {
	seed  maphash.Seed
	acc   []uint64 // account index -> hash, 0 while not computed
	table []uint64 // open addressing, 0 = empty
	mask  uint64
}

func (m *memberHashes) load(p *planner, members []int32) {
	if m.acc == nil {
		m.seed = maphash.MakeSeed()
		m.acc = make([]uint64, len(p.accIDs))
	}
	size := 8
	for size < 2*len(members) {
		size *= 2
	}
	if cap(m.table) < size {
		m.table = make([]uint64, size)
	} else {
		m.table = m.table[:size]
		clear(m.table)
	}
	m.mask = uint64(size - 1)
	for _, a := range members {
		h := m.acc[a]
		if h == 0 {
			h = m.hash(p.accIDs[a])
			m.acc[a] = h
		}
		i := h & m.mask
		for m.table[i] != 0 && m.table[i] != h {
			i = (i + 1) & m.mask
		}
		m.table[i] = h
	}
}

func (m *memberHashes) hash(id string) uint64 {
	return maphash.String(m.seed, id) | 1 // never 0, the empty slot
}

func (m *memberHashes) has(id string) bool {
	if m.table == nil {
		return false
	}
	h := m.hash(id)
	for i := h & m.mask; m.table[i] != 0; i = (i + 1) & m.mask {
		if m.table[i] == h {
			return true
		}
	}
	return false
}
