package reconcile

import (
	"slices"
	"strings"
	"time"
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
