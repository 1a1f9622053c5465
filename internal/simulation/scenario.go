package simulation

import "fmt"

// Steps drawn beyond the single events: chains of steps (scenarios), admins' edits by hand
// and config changes.

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
