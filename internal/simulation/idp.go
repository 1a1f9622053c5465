package simulation

import (
	"fmt"
	"time"
)

// idpSide is a world's IdP: its simulator, changed only through the simulator's control
// API (as an admin would in its console), the front or proxy that serves it with a pass's
// faults, and the source block of idsync's config that reads it. Methods that change a
// person get the person as they are before the change.
type idpSide interface {
	hire(p *person) error
	leave(p *person) error
	move(p *person, from, to string) error
	rename(p *person, first, last string) error
	setEmail(p *person, email string) error
	setActive(p *person, active bool) error
	createGroup(name string) error
	deleteGroup(name string) error
	// source is the config's sources item (YAML, indented as a list item of sources:);
	// dir is the run's folder, for files the source reads.
	source(dir string) (string, error)
	// arm sets the pass's IdP faults that live in the simulator or proxy, and returns how
	// often its sticky listing fault has fired (nil without one); disarm clears them.
	arm(plan passFaults) (stickyFired func() int)
	disarm()
	close()
}

// newIdP starts a world's IdP, loaded with the initial org m.
func newIdP(k IdP, w *world, m *model, seed uint64) (idpSide, error) {
	switch k {
	case IdPGoogle:
		return newGoogle(w, m, seed)
	case IdPLDAP:
		return newLDAP(w, m)
	case IdPMiniOrange, "":
		return newMiniOrange(w, m, seed)
	}
	return nil, fmt.Errorf("unknown IdP %q", k)
}

// applyIdP makes a step happen at the IdP: the change through the simulator's control API
// and, for a pushed change, the SCIM requests the IdP would send. The oracle model follows,
// and every push is recorded on the timeline.
func (r *run) applyIdP(s Step) error {
	w, m := r.w, r.m
	pushedBefore := map[string]bool{}
	for _, id := range append(append([]string(nil), s.People...), s.Back...) {
		pushedBefore[id] = m.people[id].Pushed
	}
	if err := r.changeIdP(s); err != nil {
		return fmt.Errorf("%s: %s: %w", s, r.h.IdP, err)
	}
	if s.Kind == evEmail {
		w.dir.addEmail(s.People[0], s.Email)
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

// changeIdP makes the step's change at the IdP (the model is not changed yet).
func (r *run) changeIdP(s Step) error {
	w, m := r.w, r.m
	idp := w.idp
	who := func() *person { return m.people[s.People[0]] }
	switch s.Kind {
	case evHire:
		w.dir.addPerson(s.Hire)
		return idp.hire(s.Hire)
	case evLeave, evMassLeave:
		for _, id := range s.People {
			if err := idp.leave(m.people[id]); err != nil {
				return err
			}
		}
	case evMove:
		return idp.move(who(), s.From, s.To)
	case evRename:
		return idp.rename(who(), s.First, s.Last)
	case evEmail:
		return idp.setEmail(who(), s.Email)
	case evDisable:
		return idp.setActive(who(), false)
	case evEnable:
		return idp.setActive(who(), true)
	case evMassDisable, evSwap:
		for _, id := range s.Back {
			if err := idp.setActive(m.people[id], true); err != nil {
				return err
			}
		}
		for _, id := range s.People {
			if err := idp.setActive(m.people[id], false); err != nil {
				return err
			}
		}
	case evGroupCreate:
		return idp.createGroup(s.Group)
	case evGroupDelete:
		return idp.deleteGroup(s.Group)
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
