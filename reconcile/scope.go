package reconcile

import "slices"

// BuildScope says what a pass must read from Jira: members of every managed group (mapped,
// default, on-the-fly and owned ones), customers of mapped and owned desks, members of mapped
// and owned organizations, and every linked account. A targeted scope narrows accounts to the
// targeted people (their links, else their emails). The sink adds product-access groups
// itself: it is the one that discovers them.
func BuildScope(d Desired, own Ownership, targeted bool) Scope {
	s := Scope{Targeted: targeted}
	seen := map[string]bool{}
	addName := func(list *[]string, name string) {
		k := lower(name)
		if name == "" || seen[k] {
			return
		}
		seen[k] = true
		*list = append(*list, name)
	}
	for _, g := range d.Groups {
		addName(&s.Groups, g.Name)
	}
	seenID := map[string]bool{}
	lastC := "\x00"
	for i := range own.Owned {
		o := &own.Owned[i]
		// Records come grouped by container: one lookup per run.
		if (o.Kind != OwnedMembership && o.Kind != OwnedGroup) || o.Container == lastC {
			continue
		}
		lastC = o.Container
		if !seenID[o.Container] {
			seenID[o.Container] = true
			s.GroupIDs = append(s.GroupIDs, o.Container)
			addName(&s.Groups, o.ContainerName)
		}
	}
	clear(seen)
	for _, desk := range d.Desks {
		addName(&s.ServiceDesks, desk)
	}
	for i := range own.Owned {
		if o := &own.Owned[i]; o.Kind == OwnedCustomer {
			addName(&s.ServiceDesks, o.Container)
		}
	}
	clear(seen)
	for _, org := range d.Orgs {
		addName(&s.Organizations, org)
	}
	for i := range own.Owned {
		if o := &own.Owned[i]; o.Kind == OwnedOrganization {
			addName(&s.Organizations, o.ContainerName)
		}
	}
	accSeen := make(map[string]bool, len(own.Links))
	if !targeted {
		for _, l := range own.Links {
			if !accSeen[l.AccountID] {
				accSeen[l.AccountID] = true
				s.Accounts = append(s.Accounts, l.AccountID)
			}
		}
		return s
	}
	byRec := make(map[Record]string, len(own.Links))
	for _, l := range own.Links {
		byRec[Record{Source: l.Source, Key: l.Key}] = l.AccountID
	}
	emailSeen := map[string]bool{}
	for _, p := range d.People {
		for _, r := range p.Records {
			if id, ok := byRec[r]; ok {
				if !accSeen[id] {
					accSeen[id] = true
					s.Accounts = append(s.Accounts, id)
				}
			}
		}
		// Email too when linked: a stale link (account gone) falls back to email matching.
		if p.Email != "" && !emailSeen[lower(p.Email)] {
			emailSeen[lower(p.Email)] = true
			s.Emails = append(s.Emails, p.Email)
		}
	}
	slices.Sort(s.Accounts)
	return s
}
