package simulation

import (
	"fmt"
	"time"

	"github.com/idsync/idsync/sources/miniorange/miniorangetest"
)

// applyIdP makes a step happen at the IdP: the change in miniOrange (as an admin would make
// it in the console) and, for a pushed change, the SCIM requests miniOrange would send. The
// oracle model follows, and every push is recorded on the timeline.
func (r *run) applyIdP(s Step) error {
	w, m := r.w, r.m
	pushedBefore := map[string]bool{}
	for _, id := range append(append([]string(nil), s.People...), s.Back...) {
		pushedBefore[id] = m.people[id].Pushed
	}
	var err error
	who := func() *person { return m.people[s.People[0]] }
	switch s.Kind {
	case evHire:
		p := s.Hire
		_, err = w.mo.Hire(miniorangetest.User{ID: p.ID, UserName: p.UserName, Email: p.Email,
			FirstName: p.First, LastName: p.Last, Groups: p.groupList()})
		w.dir.addPerson(p)
	case evLeave, evMassLeave:
		for _, id := range s.People {
			if err = w.mo.Leave(m.people[id].UserName); err != nil {
				break
			}
		}
	case evMove:
		p := who()
		switch {
		case s.From != "" && s.To != "":
			err = w.mo.Move(p.UserName, s.From, s.To)
		case s.From != "":
			err = w.mo.RemoveFromGroup(p.UserName, s.From)
		default:
			err = w.mo.AddToGroup(p.UserName, s.To)
		}
	case evRename:
		err = w.mo.Rename(who().UserName, miniorangetest.Profile{FirstName: s.First, LastName: s.Last})
	case evEmail:
		err = w.mo.Rename(who().UserName, miniorangetest.Profile{Email: s.Email})
		w.dir.addEmail(who().ID, s.Email)
	case evDisable:
		err = w.mo.Disable(who().UserName)
	case evEnable:
		err = w.mo.Enable(who().UserName)
	case evMassDisable, evSwap:
		for _, id := range s.Back {
			if err = w.mo.Enable(m.people[id].UserName); err != nil {
				break
			}
		}
		for _, id := range s.People {
			if err == nil {
				err = w.mo.Disable(m.people[id].UserName)
			}
		}
	case evGroupCreate:
		_, err = w.mo.CreateGroup(s.Group, "")
	case evGroupDelete:
		err = w.mo.DeleteGroup(s.Group)
	}
	if err != nil {
		return fmt.Errorf("%s: miniOrange: %w", s, err)
	}
	m.apply(s)
	if s.Via == viaPull {
		return nil
	}
	if err := r.push(s, pushedBefore); err != nil {
		return fmt.Errorf("%s: %w", s, err)
	}
	return nil
}

// push sends what miniOrange's provisioning would for the step (the model is already
// updated), and records each person's statement.
func (r *run) push(s Step, pushedBefore map[string]bool) error {
	w, m := r.w, r.m
	// ensure provisions a person the IdP had not pushed yet, as they are now, with their
	// pushed groups; it reports whether it did.
	ensure := func(p *person) (bool, error) {
		created, err := w.pushUser(p)
		if err != nil || !created {
			return created, err
		}
		for _, g := range p.groupList() {
			if m.pushGroups[g] {
				if err := w.pushMember(g, p, true); err != nil {
					return true, err
				}
			}
		}
		return true, nil
	}
	var touched []string
	switch s.Kind {
	case evHire:
		p := m.people[s.Hire.ID]
		if _, err := ensure(p); err != nil {
			return err
		}
		touched = append(touched, p.ID)
	case evLeave, evMassLeave:
		for _, id := range s.People {
			if pushedBefore[id] {
				if err := w.pushDeleteUser(m.people[id]); err != nil {
					return err
				}
				touched = append(touched, id)
			}
		}
	case evMassDisable, evSwap:
		for _, id := range append(append([]string(nil), s.Back...), s.People...) {
			if pushedBefore[id] {
				p := m.people[id]
				if err := w.pushPatchUser(p, map[string]any{"op": "replace", "path": "active", "value": p.Status == active}); err != nil {
					return err
				}
				touched = append(touched, id)
			}
		}
	case evMove, evRename, evEmail, evDisable, evEnable:
		p := m.people[s.People[0]]
		created, err := ensure(p)
		if err != nil {
			return err
		}
		touched = append(touched, p.ID)
		if created {
			break
		}
		switch s.Kind {
		case evMove:
			if s.From != "" && m.pushGroups[s.From] {
				err = w.pushMember(s.From, p, false)
			}
			if err == nil && s.To != "" && m.pushGroups[s.To] {
				err = w.pushMember(s.To, p, true)
			}
		case evRename:
			err = w.pushPatchUser(p,
				map[string]any{"op": "replace", "path": "name.givenName", "value": p.First},
				map[string]any{"op": "replace", "path": "name.familyName", "value": p.Last},
				map[string]any{"op": "replace", "path": "displayName", "value": p.First + " " + p.Last})
		case evEmail:
			err = w.pushPatchUser(p, map[string]any{"op": "replace", "path": `emails[type eq "work"].value`, "value": p.Email})
		default:
			err = w.pushPatchUser(p, map[string]any{"op": "replace", "path": "active", "value": p.Status == active})
		}
		if err != nil {
			return err
		}
	case evGroupCreate:
		if m.pushGroups[s.Group] {
			if _, err := w.pushGroupID(s.Group); err != nil {
				return err
			}
		}
	case evGroupDelete:
		if err := w.pushDeleteGroup(s.Group); err != nil {
			return err
		}
	}
	now := r.clock.Now()
	for _, id := range touched {
		r.tl.push(statement{At: now, Person: id, Status: m.people[id].Status})
	}
	r.stats.Pushes++
	return nil
}

// raceFire returns the push a race step sends while the next full pass reads the users
// listing: a second later than the pass's start, so it is newer than that pass's pull.
func (r *run) raceFire(s Step) func() {
	return func() {
		r.raceMu.Lock()
		defer r.raceMu.Unlock()
		r.clock.Advance(time.Second)
		if err := r.applyIdP(s); err != nil && r.harness == nil {
			r.harness = err
		}
		r.raced = true
	}
}
