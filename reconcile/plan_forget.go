package reconcile

import (
	"hash/maphash"
	"strings"
)

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
