package simulation

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
)

// The IdP as the history makes it: people and groups, and how a step changes them. The
// oracle (oracle.go) keeps what a pass could have read of it.

// person is one IdP user.
type person struct {
	ID       string // miniOrange id: the key a pull links by
	UserName string // never changes (pushes join by it)
	Email    string
	Emails   []string // every email the person ever had, the current one last
	First    string
	Last     string
	Status   status
	Groups   map[string]bool // IdP groups, DEFAULT left out
	// Pushed is set once the IdP provisioned the person over SCIM: from then on every change
	// of theirs is pushed too, as an IdP with provisioning on does.
	Pushed bool
	// Seeded marks a person whose Jira account existed before idsync ran.
	Seeded bool
}

func (p *person) clone() *person {
	c := *p
	c.Emails = append([]string(nil), p.Emails...)
	c.Groups = make(map[string]bool, len(p.Groups))
	for g := range p.Groups {
		c.Groups[g] = true
	}
	return &c
}

func (p *person) groupList() []string {
	out := make([]string, 0, len(p.Groups))
	for g := range p.Groups {
		out = append(out, g)
	}
	sort.Strings(out)
	return out
}

// model is the IdP: people, groups, and which groups the SCIM client pushes.
type model struct {
	people     map[string]*person
	order      []string // person ids in hire order
	groups     map[string]bool
	pushGroups map[string]bool
	params     Params // the config in force
	seq        int    // names, ids and emails are numbered from it
}

func (m *model) clone() *model {
	c := &model{people: make(map[string]*person, len(m.people)), order: append([]string(nil), m.order...),
		groups: map[string]bool{}, pushGroups: map[string]bool{}, params: m.params.clone(), seq: m.seq}
	for id, p := range m.people {
		c.people[id] = p.clone()
	}
	for g := range m.groups {
		c.groups[g] = true
	}
	for g := range m.pushGroups {
		c.pushGroups[g] = true
	}
	return c
}

// ids lists people with status in ss, in hire order.
func (m *model) ids(ss ...status) []string {
	var out []string
	for _, id := range m.order {
		p := m.people[id]
		for _, s := range ss {
			if p.Status == s {
				out = append(out, id)
				break
			}
		}
	}
	return out
}

func (m *model) groupList() []string {
	return sortedKeys(m.groups)
}

// desiredGroups are the Jira groups (lower-cased) an active person should be in under the
// mapping in force: the default group and the targets of their mapped IdP groups.
func (m *model) desiredGroups(p *person, params Params) map[string]bool {
	out := map[string]bool{}
	if p.Status != active {
		return out
	}
	out[strings.ToLower(defaultGroup)] = true
	for g := range p.Groups {
		for _, j := range params.Mappings[g] {
			out[strings.ToLower(j)] = true
		}
	}
	return out
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
