package simulation

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// generator draws a history's steps one by one, from the model as earlier steps left it.
type generator struct {
	r       *rand.Rand
	m       *model
	caps    capabilities
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

// kind draws an event kind the IdP can make happen, by weight.
func (g *generator) kind() eventKind {
	total := 0
	for _, w := range stepWeights {
		if g.caps.can(w.kind) {
			total += w.w
		}
	}
	n := g.r.IntN(total)
	for _, w := range stepWeights {
		if !g.caps.can(w.kind) {
			continue
		}
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
	switch s.Kind {
	case evHire, evLeave, evMassLeave, evMove, evRename, evEmail, evDisable, evEnable:
		g.drawPeople(&s)
	case evGroupCreate, evGroupDelete:
		g.drawGroup(&s)
	case evAdmin:
		s.Admin = g.admin()
		if s.Admin == nil {
			s.Kind = evIdle
		}
	case evReconfigure:
		p := g.reconfigure()
		s.Params = &p
	}
	if !g.caps.push {
		s.Via = viaPull // an IdP that cannot push tells idsync everything by the next pull
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

// chooseVia draws how a change about one person reaches idsync: a person the IdP provisions
// over SCIM has every change pushed; others are pulled, or pushed from now on.
func (g *generator) chooseVia(s *Step, id string, raceable bool) {
	p := g.m.people[id]
	switch x := g.r.IntN(20); {
	case raceable && x < 4:
		s.Via = viaRace
	case p.Pushed || x < 10:
		s.Via = viaPush
	default:
		s.Via = viaPull
	}
}

// one picks a person with a status in ss as the step's person.
func (g *generator) one(s *Step, ss ...status) (string, bool) {
	ids := g.m.ids(ss...)
	if len(ids) == 0 {
		return "", false
	}
	id := pick(g.r, ids)
	s.People = []string{id}
	return id, true
}

// drawPeople fills in a step about people: who, what changes, and how it reaches idsync.
func (g *generator) drawPeople(s *Step) {
	r, m := g.r, g.m
	switch s.Kind {
	case evHire:
		p := m.newPerson(r)
		s.Hire = p.clone()
		if r.IntN(2) == 0 {
			s.Via = viaPush
		}
	case evLeave:
		id, ok := g.one(s, active, disabled)
		if !ok {
			s.Kind = evIdle
			return
		}
		g.chooseVia(s, id, false)
	case evMassLeave:
		ids := m.ids(active)
		r.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		k := min(len(ids), 3+r.IntN(6))
		if k < 2 {
			s.Kind = evIdle
			return
		}
		s.People = ids[:k]
		s.Via = viaForPeople(m, s.People)
	case evMove:
		g.drawMove(s)
	case evRename:
		id, ok := g.one(s, active, disabled)
		if !ok {
			s.Kind = evIdle
			return
		}
		s.First, s.Last = pick(r, firstNames), pick(r, lastNames)
		g.chooseVia(s, id, true)
	case evEmail:
		id, ok := g.one(s, active, disabled)
		if !ok {
			s.Kind = evIdle
			return
		}
		m.seq++
		p := m.people[id]
		s.Email = fmt.Sprintf("%s.%s.%d@example.com", strings.ToLower(p.First), strings.ToLower(p.Last), m.seq)
		g.chooseVia(s, id, true)
	case evDisable, evEnable:
		from := active
		if s.Kind == evEnable {
			from = disabled
		}
		id, ok := g.one(s, from)
		if !ok {
			s.Kind = evIdle
			return
		}
		g.chooseVia(s, id, true)
	}
}

// drawMove moves an active person out of one of their groups, into another, or both.
func (g *generator) drawMove(s *Step) {
	r, m := g.r, g.m
	id, ok := g.one(s, active)
	gs := m.groupList()
	if !ok || len(gs) < 2 {
		s.Kind = evIdle
		return
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
		return
	}
	g.chooseVia(s, id, false)
}

// drawGroup fills in a group created (a free base name or a new team) or deleted.
func (g *generator) drawGroup(s *Step) {
	r, m := g.r, g.m
	if s.Kind == evGroupCreate {
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
	} else {
		gs := m.groupList()
		if len(gs) < 3 {
			s.Kind = evIdle
			return
		}
		s.Group = pick(r, gs)
	}
	if m.pushGroups[s.Group] && r.IntN(2) == 0 {
		s.Via = viaPush
	}
}
