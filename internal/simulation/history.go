package simulation

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// A history is drawn from the seed before anything runs: the initial org and every step.
// It depends on the IdP model only, never on what idsync did, so the faulty run and its
// fault-free twin live through exactly the same events.

type eventKind string

const (
	evHire        eventKind = "hire"
	evLeave       eventKind = "leave"
	evMassLeave   eventKind = "mass-leave"
	evMove        eventKind = "move"
	evRename      eventKind = "rename"
	evEmail       eventKind = "email"
	evDisable     eventKind = "disable"
	evEnable      eventKind = "enable"
	evGroupCreate eventKind = "group-create"
	evGroupDelete eventKind = "group-delete"
	evAdmin       eventKind = "admin"
	evApprove     eventKind = "approve"
	evReconfigure eventKind = "reconfigure"
	evIdle        eventKind = "idle"
	// Scenario steps: several people at once, drawn as part of a chain (see scenario).
	evMassDisable eventKind = "mass-disable"
	evSwap        eventKind = "swap" // some disabled people come back, as many others go
)

// via says how the IdP tells idsync about a change.
type via int

const (
	viaPull via = iota // only the next pull sees it
	viaPush            // pushed over SCIM at once (and listed by the next pull)
	viaRace            // pushed while the next full pass reads the users listing
)

func (v via) String() string { return [...]string{"pull", "push", "race"}[v] }

// passMode says which passes follow a step.
type passMode int

const (
	passFull     passMode = iota // the targeted passes of any pushes, then a full pass
	passPushOnly                 // only the targeted passes of pushes
	passNone                     // nothing: the next step's change lands first
)

// adminKind is an edit an admin makes in Jira by hand.
type adminKind string

const (
	adminUnowned       adminKind = "create-unowned"     // an account no source knows
	adminContractor    adminKind = "add-contractor"     // an unmanaged group membership
	adminServiceDesk   adminKind = "grant-servicedesk"  // product access granted by hand
	adminRemoveManaged adminKind = "remove-managed"     // a managed membership taken away
	adminUnownedMapped adminKind = "unowned-to-mapped"  // an unowned account in a mapped group
	adminDeleteAccount adminKind = "delete-account"     // an account removed from the site
	adminDeleteUnowned adminKind = "delete-unowned"     // an unowned account removed
	adminMisc          adminKind = "add-unowned-access" // an unowned account gets product access
)

type adminAction struct {
	Kind   adminKind
	Person string // person id, for actions on a person's account
	Email  string // the unowned account's email
	Group  string // Jira group
}

// Step is one event of a history and the passes that follow it.
type Step struct {
	N      int
	Kind   eventKind
	Via    via
	People []string
	Hire   *person
	From   string // move: IdP group left
	To     string // move: IdP group joined
	Group  string // group create and delete
	First  string // rename
	Last   string
	Email  string // email change
	Params *Params
	Admin  *adminAction
	Pass   passMode
	// RaceAfter fires a race push just after the users listing's first page is served
	// (else just before the pass's first miniOrange request).
	RaceAfter bool
	// Back are the people a swap enables again (People are those it disables).
	Back []string
}

func (s Step) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "step %d %s", s.N, s.Kind)
	switch s.Kind {
	case evHire:
		fmt.Fprintf(&b, " %s %v", s.Hire.UserName, s.Hire.groupList())
	case evMove:
		fmt.Fprintf(&b, " %v %q->%q", s.People, s.From, s.To)
	case evGroupCreate, evGroupDelete:
		fmt.Fprintf(&b, " %q", s.Group)
	case evRename:
		fmt.Fprintf(&b, " %v %s %s", s.People, s.First, s.Last)
	case evEmail:
		fmt.Fprintf(&b, " %v %s", s.People, s.Email)
	case evReconfigure:
		fmt.Fprintf(&b, " %s", s.Params)
	case evSwap:
		fmt.Fprintf(&b, " back %v, out %v", s.Back, s.People)
	case evAdmin:
		fmt.Fprintf(&b, " %s person=%s email=%s group=%s", s.Admin.Kind, s.Admin.Person, s.Admin.Email, s.Admin.Group)
	default:
		if len(s.People) > 0 {
			fmt.Fprintf(&b, " %v", s.People)
		}
	}
	switch s.Kind {
	case evHire, evLeave, evMassLeave, evMove, evRename, evEmail, evDisable, evEnable, evGroupCreate, evGroupDelete, evMassDisable, evSwap:
		fmt.Fprintf(&b, " via %s", s.Via)
	}
	fmt.Fprintf(&b, " pass=%d", s.Pass)
	return b.String()
}

// History is an initial org and its steps.
type History struct {
	Initial *model
	// Unowned are the emails of accounts no source knows, seeded in Jira.
	Unowned []string
	// Locked is a managed Jira group whose members idsync may not remove (Jira answers 403,
	// as for a group another system manages); "" for none. It is part of the world, in both
	// runs: a deactivation must still take every other group, product access first.
	Locked string
	Steps  []Step
}

// Sizes bound a history.
type Sizes struct {
	MinUsers, MaxUsers int
	Steps              int
}

var (
	firstNames = []string{"Ada", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lea",
		"Mo", "Nia", "Oto", "Pia", "Quinn", "Rui", "Sol", "Tess", "Uma", "Vic", "Wes", "Xia", "Yan", "Zoe"}
	lastNames = []string{"Abe", "Berg", "Cruz", "Diaz", "Eng", "Fox", "Gray", "Holm", "Ito", "Jain", "Koch",
		"Lund", "Moss", "Nair", "Ortiz", "Park", "Qu", "Ruiz", "Shah", "Tan", "Ueda", "Vogel", "Wu", "Xu", "Yoon", "Zhou"}
	baseGroups = []string{"Engineering", "Sales", "Support", "Marketing", "Finance", "HR", "Legal", "Operations"}
)

// Jira groups of every world.
const (
	defaultGroup     = "jira-software-users"    // product access, default group of new accounts
	serviceDeskGroup = "jira-servicedesk-users" // product access of a second product
	contractorsGroup = "contractors"            // a group idsync never manages
)

// initialParams is the mapping every history starts from; thresholds are drawn.
func initialParams(r *rand.Rand) Params {
	return Params{
		Mappings: map[string][]string{
			"Engineering": {"engineering", "developers"},
			"Sales":       {"sales"},
			// A mapping onto a product-access group: leaving Support takes that access away
			// by a removal, not a deactivation.
			"Support": {"support", serviceDeskGroup},
		},
		Grace:       r.IntN(3),
		MaxDeact:    pick(r, []int{0, 2, 3, 5, 25}),
		MaxPercent:  pick(r, []float64{0, 10, 25, 50, 100}),
		MaxRemovals: pick(r, []int{0, 3, 6, 20, 250}),
	}
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// Generate draws a history from r.
func Generate(r *rand.Rand, sz Sizes) History {
	m := &model{people: map[string]*person{}, groups: map[string]bool{}, pushGroups: map[string]bool{}, params: initialParams(r)}
	ng := 5 + r.IntN(len(baseGroups)-4)
	for _, g := range baseGroups[:ng] {
		m.groups[g] = true
	}
	// The SCIM client pushes some groups; the others only the pull knows (so a push about a
	// person never says everything about them).
	m.pushGroups["Engineering"] = true
	m.pushGroups["Support"] = true
	nu := sz.MinUsers + r.IntN(sz.MaxUsers-sz.MinUsers+1)
	for range nu {
		p := m.newPerson(r)
		if r.IntN(20) == 0 {
			p.Status = disabled
		}
		m.add(p)
	}
	// A few people had Jira accounts before idsync: matched by email, not created.
	for _, id := range m.ids(active) {
		if r.IntN(10) == 0 {
			m.people[id].Seeded = true
		}
	}
	h := History{Initial: m.clone()}
	for i := range 2 + r.IntN(3) {
		h.Unowned = append(h.Unowned, fmt.Sprintf("ext-%d@partner.example", i+1))
	}
	if r.IntN(3) == 0 {
		h.Locked = pick(r, []string{"developers", "engineering", "support", "sales"})
	}
	g := &generator{r: r, m: m, unowned: append([]string(nil), h.Unowned...)}
	for n := range sz.Steps {
		h.Steps = append(h.Steps, g.step(n))
	}
	return h
}

func (m *model) newPerson(r *rand.Rand) *person {
	m.seq++
	first, last := pick(r, firstNames), pick(r, lastNames)
	email := fmt.Sprintf("%s.%s.%d@example.com", strings.ToLower(first), strings.ToLower(last), m.seq)
	p := &person{ID: fmt.Sprintf("%d", 7100000+m.seq), UserName: email, Email: email, Emails: []string{email},
		First: first, Last: last, Groups: map[string]bool{}}
	gs := m.groupList()
	for range 1 + r.IntN(2) {
		if len(gs) > 0 {
			p.Groups[pick(r, gs)] = true
		}
	}
	return p
}

func (m *model) add(p *person) {
	m.people[p.ID] = p
	m.order = append(m.order, p.ID)
}

type generator struct {
	r       *rand.Rand
	m       *model
	unowned []string
	nextExt int
	// queue holds the rest of a scenario: steps built when their turn comes, from the
	// model as it is then.
	queue []func(n int) (Step, bool)
}

type weighted struct {
	kind eventKind
	w    int
}

var stepWeights = []weighted{
	{evHire, 10}, {evLeave, 8}, {evMassLeave, 2}, {evMove, 9}, {evRename, 5}, {evEmail, 5},
	{evDisable, 7}, {evEnable, 5}, {evGroupCreate, 2}, {evGroupDelete, 2}, {evAdmin, 9},
	{evApprove, 6}, {evReconfigure, 3}, {evIdle, 3},
}

func (g *generator) kind() eventKind {
	total := 0
	for _, w := range stepWeights {
		total += w.w
	}
	n := g.r.IntN(total)
	for _, w := range stepWeights {
		if n < w.w {
			return w.kind
		}
		n -= w.w
	}
	return evIdle
}

// step draws one step and applies it to the model. A step that cannot happen (nobody to
// move, say) becomes an idle one.
func (g *generator) step(n int) Step {
	r, m := g.r, g.m
	for len(g.queue) > 0 {
		next := g.queue[0]
		g.queue = g.queue[1:]
		if s, ok := next(n); ok {
			s.N = n
			m.apply(s)
			return s
		}
		g.queue = nil
	}
	if r.IntN(100) < 6 {
		g.scenario()
		if len(g.queue) > 0 {
			return g.step(n)
		}
	}
	s := Step{N: n, Kind: g.kind()}
	// How the change reaches idsync: a person the IdP provisions over SCIM has every change
	// pushed; others are pulled, or pushed from now on.
	chooseVia := func(id string, raceable bool) {
		p := m.people[id]
		switch x := r.IntN(20); {
		case raceable && x < 4:
			s.Via = viaRace
		case p.Pushed || x < 10:
			s.Via = viaPush
		default:
			s.Via = viaPull
		}
	}
	one := func(ss ...status) (string, bool) {
		ids := m.ids(ss...)
		if len(ids) == 0 {
			return "", false
		}
		id := pick(r, ids)
		s.People = []string{id}
		return id, true
	}
	switch s.Kind {
	case evHire:
		p := m.newPerson(r)
		s.Hire = p.clone()
		if r.IntN(2) == 0 {
			s.Via = viaPush
		}
	case evLeave:
		id, ok := one(active, disabled)
		if !ok {
			s.Kind = evIdle
			break
		}
		chooseVia(id, false)
	case evMassLeave:
		ids := m.ids(active)
		r.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		k := min(len(ids), 3+r.IntN(6))
		if k < 2 {
			s.Kind = evIdle
			break
		}
		s.People = ids[:k]
		s.Via = viaPull
		for _, id := range s.People {
			if m.people[id].Pushed {
				s.Via = viaPush
			}
		}
	case evMove:
		id, ok := one(active)
		gs := m.groupList()
		if !ok || len(gs) < 2 {
			s.Kind = evIdle
			break
		}
		p := m.people[id]
		if cur := p.groupList(); len(cur) > 0 {
			s.From = pick(r, cur)
		}
		s.To = pick(r, gs)
		if s.To == s.From || p.Groups[s.To] {
			s.To = ""
		}
		if s.From == "" && s.To == "" {
			s.Kind = evIdle
			break
		}
		chooseVia(id, false)
	case evRename:
		id, ok := one(active, disabled)
		if !ok {
			s.Kind = evIdle
			break
		}
		s.First, s.Last = pick(r, firstNames), pick(r, lastNames)
		chooseVia(id, true)
	case evEmail:
		id, ok := one(active, disabled)
		if !ok {
			s.Kind = evIdle
			break
		}
		m.seq++
		p := m.people[id]
		s.Email = fmt.Sprintf("%s.%s.%d@example.com", strings.ToLower(p.First), strings.ToLower(p.Last), m.seq)
		chooseVia(id, true)
	case evDisable:
		id, ok := one(active)
		if !ok {
			s.Kind = evIdle
			break
		}
		chooseVia(id, true)
	case evEnable:
		id, ok := one(disabled)
		if !ok {
			s.Kind = evIdle
			break
		}
		chooseVia(id, true)
	case evGroupCreate:
		var free []string
		for _, b := range baseGroups {
			if !m.groups[b] {
				free = append(free, b)
			}
		}
		if len(free) == 0 || r.IntN(2) == 0 {
			m.seq++
			free = append(free, fmt.Sprintf("Team-%d", m.seq))
		}
		s.Group = pick(r, free)
		if m.pushGroups[s.Group] && r.IntN(2) == 0 {
			s.Via = viaPush
		}
	case evGroupDelete:
		gs := m.groupList()
		if len(gs) < 3 {
			s.Kind = evIdle
			break
		}
		s.Group = pick(r, gs)
		if m.pushGroups[s.Group] && r.IntN(2) == 0 {
			s.Via = viaPush
		}
	case evAdmin:
		s.Admin = g.admin()
		if s.Admin == nil {
			s.Kind = evIdle
		}
	case evReconfigure:
		p := g.reconfigure()
		s.Params = &p
	}
	s.Pass = passFull
	switch x := r.IntN(10); {
	case s.Via == viaRace:
	case s.Via == viaPush && x < 4:
		s.Pass = passPushOnly
	case x == 0 && s.Kind != evHire:
		s.Pass = passNone
	}
	if s.Kind == evApprove && r.IntN(3) == 0 {
		s.Pass = passNone // the IdP changes again before the approved pass
	}
	s.RaceAfter = r.IntN(2) == 0
	m.apply(s)
	return s
}

// scenario queues a chain of steps that only together reach a state worth checking:
//
//   - push chain: a person provisioned over SCIM is deleted by a push, then a push about a
//     group they were in follows before any pull (a targeted pass that must not bring them
//     back from an older pulled snapshot, even when the push store cannot be read);
//   - approval swap: several people are disabled at once (the breaker holds them), the
//     hold is approved, and before the next pass half of them come back while as many others
//     are disabled (the approval covers the people it showed, not a number).
func (g *generator) scenario() {
	r, m := g.r, g.m
	if r.IntN(2) == 0 {
		var cands []string
		for _, id := range m.ids(active) {
			p := m.people[id]
			if !p.Pushed {
				continue
			}
			for grp := range p.Groups {
				if m.pushGroups[grp] {
					cands = append(cands, id)
					break
				}
			}
		}
		if len(cands) == 0 {
			return
		}
		x := pick(r, cands)
		var grp string
		for _, gname := range m.people[x].groupList() {
			if m.pushGroups[gname] {
				grp = gname
				break
			}
		}
		g.queue = append(g.queue,
			func(int) (Step, bool) {
				return Step{Kind: evLeave, Via: viaPush, People: []string{x}, Pass: passPushOnly}, true
			},
			func(int) (Step, bool) {
				var ys []string
				for _, id := range m.ids(active) {
					if !m.people[id].Groups[grp] {
						ys = append(ys, id)
					}
				}
				if len(ys) == 0 {
					return Step{}, false
				}
				y := pick(r, ys)
				return Step{Kind: evMove, Via: viaPush, People: []string{y}, To: grp, Pass: passPushOnly}, true
			})
		return
	}
	k := 4 + r.IntN(5)
	var out []string
	g.queue = append(g.queue,
		func(int) (Step, bool) {
			ids := m.ids(active)
			if len(ids) < 2*k {
				return Step{}, false
			}
			r.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
			out = append([]string(nil), ids[:k]...)
			return Step{Kind: evMassDisable, Via: viaForPeople(m, out), People: out, Pass: passFull}, true
		},
		func(int) (Step, bool) { return Step{Kind: evApprove, Pass: passNone}, true },
		func(int) (Step, bool) {
			back := out[:k/2]
			others := m.ids(active)
			if len(others) < len(back) {
				return Step{}, false
			}
			r.Shuffle(len(others), func(i, j int) { others[i], others[j] = others[j], others[i] })
			people := others[:len(back)]
			return Step{Kind: evSwap, Via: viaForPeople(m, append(append([]string(nil), back...), people...)),
				People: people, Back: back, Pass: passFull}, true
		})
}

// viaForPeople pushes a change about several people when any of them is provisioned over
// SCIM (each provisioned one gets their push), else leaves it to the pull.
func viaForPeople(m *model, ids []string) via {
	for _, id := range ids {
		if m.people[id].Pushed {
			return viaPush
		}
	}
	return viaPull
}

// admin draws an edit by hand. Edits on people's accounts use accounts that exist from the
// start (seeded people, unowned accounts), so the faulty run and its twin make the same ones.
func (g *generator) admin() *adminAction {
	r, m := g.r, g.m
	var seeded, seededActive []string
	for _, id := range m.order {
		if p := m.people[id]; p.Seeded {
			seeded = append(seeded, id)
			if p.Status == active {
				seededActive = append(seededActive, id)
			}
		}
	}
	switch r.IntN(8) {
	case 0:
		g.nextExt++
		e := fmt.Sprintf("manual-%d@partner.example", g.nextExt)
		g.unowned = append(g.unowned, e)
		return &adminAction{Kind: adminUnowned, Email: e}
	case 1:
		if len(seeded) > 0 && r.IntN(2) == 0 {
			return &adminAction{Kind: adminContractor, Person: pick(r, seeded), Group: contractorsGroup}
		}
		return &adminAction{Kind: adminContractor, Email: pick(r, g.unowned), Group: contractorsGroup}
	case 2:
		// Product access by hand only for someone the IdP wants: an inactive person's
		// deactivation is done and would not be made again.
		if len(seededActive) == 0 {
			return nil
		}
		return &adminAction{Kind: adminServiceDesk, Person: pick(r, seededActive), Group: serviceDeskGroup}
	case 3:
		ids := m.ids(active, disabled, gone)
		if len(ids) == 0 {
			return nil
		}
		return &adminAction{Kind: adminRemoveManaged, Person: pick(r, ids), Group: pick(r, []string{defaultGroup, "engineering", "sales"})}
	case 4:
		return &adminAction{Kind: adminUnownedMapped, Email: pick(r, g.unowned), Group: "engineering"}
	case 5:
		if len(seeded) == 0 {
			return nil
		}
		return &adminAction{Kind: adminDeleteAccount, Person: pick(r, seeded)}
	case 6:
		if len(g.unowned) < 2 {
			return nil
		}
		i := r.IntN(len(g.unowned))
		e := g.unowned[i]
		g.unowned = append(g.unowned[:i:i], g.unowned[i+1:]...)
		return &adminAction{Kind: adminDeleteUnowned, Email: e}
	default:
		return &adminAction{Kind: adminMisc, Email: pick(r, g.unowned), Group: serviceDeskGroup}
	}
}

// reconfigure draws a config change: thresholds (0 included: "hold every one"), grace, and
// a mapping switched on or off.
func (g *generator) reconfigure() Params {
	r := g.r
	p := g.m.params.clone()
	switch r.IntN(4) {
	case 0:
		p.MaxDeact = pick(r, []int{0, 1, 3, 25})
		p.MaxPercent = pick(r, []float64{0, 10, 50, 100})
		p.MaxRemovals = pick(r, []int{0, 2, 10, 250})
	case 1:
		p.Grace = r.IntN(3)
	case 2:
		if _, ok := p.Mappings["Marketing"]; ok {
			delete(p.Mappings, "Marketing")
		} else {
			p.Mappings["Marketing"] = []string{"marketing"}
		}
	default:
		if _, ok := p.Mappings["Sales"]; ok {
			delete(p.Mappings, "Sales")
		} else {
			p.Mappings["Sales"] = []string{"sales"}
		}
	}
	return p
}

// apply changes the model as the step changes the IdP.
func (m *model) apply(s Step) {
	switch s.Kind {
	case evHire:
		p := s.Hire.clone()
		p.Pushed = s.Via != viaPull
		m.add(p)
	case evLeave, evMassLeave:
		for _, id := range s.People {
			m.people[id].Status = gone
		}
	case evMove:
		p := m.people[s.People[0]]
		delete(p.Groups, s.From)
		if s.To != "" {
			p.Groups[s.To] = true
		}
	case evRename:
		p := m.people[s.People[0]]
		p.First, p.Last = s.First, s.Last
	case evEmail:
		p := m.people[s.People[0]]
		p.Email = s.Email
		p.Emails = append(p.Emails, s.Email)
	case evDisable, evMassDisable:
		for _, id := range s.People {
			m.people[id].Status = disabled
		}
	case evEnable:
		m.people[s.People[0]].Status = active
	case evSwap:
		for _, id := range s.Back {
			m.people[id].Status = active
		}
		for _, id := range s.People {
			m.people[id].Status = disabled
		}
	case evGroupCreate:
		m.groups[s.Group] = true
	case evGroupDelete:
		delete(m.groups, s.Group)
		for _, p := range m.people {
			delete(p.Groups, s.Group)
		}
	case evReconfigure:
		m.params = s.Params.clone()
	}
	if s.Via != viaPull && s.Kind != evMassLeave && s.Kind != evMassDisable && s.Kind != evSwap {
		for _, id := range s.People {
			m.people[id].Pushed = true
		}
	}
}
