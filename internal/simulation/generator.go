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
