package runner

import (
	"cmp"
	"fmt"
	"strings"
	"time"

	"github.com/idsync/idsync/reconcile"
)

// The executor's journal: what is written ahead of a change (pre), what its outcome records
// (post: links, ownership, audit), the joins a create settles, and the link bookkeeping.

// joinKey names a planned add of a person (winning source record) to a group (lower name).
type joinKey struct{ source, key, group string }

func mergeEntries(a, b reconcile.JournalEntry) reconcile.JournalEntry {
	a.Links = append(a.Links, b.Links...)
	a.Own = append(a.Own, b.Own...)
	a.Disown = append(a.Disown, b.Disown...)
	a.Audit = append(a.Audit, b.Audit...)
	return a
}

func entryEmpty(j reconcile.JournalEntry) bool {
	return len(j.Links)+len(j.Own)+len(j.Disown)+len(j.Audit) == 0
}

// joinedByCreate settles the planned adds a create already did: for each group the sink says
// the new account was put into (Result.Groups) and that the plan adds this person to, it
// records the ownership and a done_by_create audit record, and marks the add so the
// AddMember phase sends nothing for it. An adopted account is not trusted to have joined
// anything (it existed before), and a group without a known id is left to its add: ownership
// is recorded by id.
func (e *executor) joinedByCreate(ch reconcile.Change, res reconcile.Result) reconcile.JournalEntry {
	var j reconcile.JournalEntry
	if ch.Kind != reconcile.KindCreateUser || res.Adopted || len(res.Groups) == 0 {
		return j
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, g := range res.Groups {
		if g.Name == "" && g.ID == "" {
			continue
		}
		k := joinKey{ch.Source, ch.UserKey, lower(g.Name)}
		i, ok := e.plannedJoin(k)
		if !ok || e.byCreate[k] {
			continue
		}
		add := e.adds[i]
		ref := *add.Group
		switch {
		case ref.ID != "" && g.ID != "" && ref.ID != g.ID:
			continue // another group of that name than the plan's: let the add say
		case ref.ID == "":
			ref.ID = cmp.Or(g.ID, e.groups[k.group])
		}
		if ref.ID == "" {
			continue
		}
		add.AccountID, add.Group = res.AccountID, &ref
		j.Own = append(j.Own, reconcile.Owned{Kind: reconcile.OwnedMembership, Container: ref.ID, ContainerName: ref.Name, AccountID: res.AccountID})
		a := e.audit(add, reconcile.ItemDoneByCreate, nil)
		a.Reason += " (done by the account's creation: Jira put the new account into this group)"
		j.Audit = append(j.Audit, a)
		if e.byCreate == nil {
			e.byCreate = map[joinKey]bool{}
		}
		e.byCreate[k] = true
	}
	return j
}

// plannedJoin finds the planned add of a person created in this pass to a group (e.mu held).
// The index of a group is built the first time a create reports it: every create reports the
// same few default groups, so the plan's adds are scanned once per group.
func (e *executor) plannedJoin(k joinKey) (int32, bool) {
	if !e.joinNames[k.group] {
		if e.joinNames == nil {
			e.joinNames, e.joinIdx = map[string]bool{}, map[joinKey]int32{}
		}
		e.joinNames[k.group] = true
		for i := range e.adds {
			a := &e.adds[i]
			if a.AccountID == "" && a.Group != nil && strings.EqualFold(a.Group.Name, k.group) {
				e.joinIdx[joinKey{a.Source, a.UserKey, k.group}] = int32(i)
			}
		}
	}
	i, ok := e.joinIdx[k]
	return i, ok
}

// settledByCreate reports whether a create already did this add.
func (e *executor) settledByCreate(ch reconcile.Change) bool {
	if ch.Kind != reconcile.KindAddMember || ch.AccountID != "" || ch.Group == nil {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.byCreate[joinKey{ch.Source, ch.UserKey, lower(ch.Group.Name)}]
}

func (e *executor) audit(ch reconcile.Change, result string, err error) reconcile.AuditRecord {
	a := reconcile.AuditRecord{
		Time: e.o.Now(), RunID: e.o.RunID, Actor: e.o.Actor, Action: string(ch.Kind),
		Source: ch.Source, UserKey: ch.UserKey, UserName: ch.UserName, AccountID: ch.AccountID,
		Target: ch.Target(), Reason: ch.Reason, Result: result,
	}
	if actor := e.o.Approved[ch.ItemKey()]; actor != "" && ch.Kind.IsRemoval() {
		a.Actor = actor
	}
	switch {
	case ch.Kind == reconcile.KindCreateGroup:
		a.Target = ch.Group.Name
	case ch.Kind == reconcile.KindDeactivateUser && len(ch.Groups) > 0:
		a.Target = reconcile.GroupNames(ch.Groups) // what it is about to remove; the outcome says what it did
	}
	if err != nil {
		a.Error = err.Error()
	}
	return a
}

func (e *executor) journal(j reconcile.JournalEntry) error {
	if err := e.store.Journal(j); err != nil {
		e.stop.Store(true)
		e.mu.Lock()
		if e.res.Err == nil {
			e.res.Err = fmt.Errorf("%w: %w", ErrJournal, err)
		}
		e.mu.Unlock()
		return err
	}
	return nil
}

// pre is what must be durable before the change is sent: ownership of adds, and the groups a
// deactivation is about to remove.
func (e *executor) pre(ch reconcile.Change, now time.Time) (reconcile.JournalEntry, []reconcile.GroupRef) {
	var j reconcile.JournalEntry
	switch ch.Kind {
	case reconcile.KindAddMember:
		j.Own = append(j.Own, reconcile.Owned{Kind: reconcile.OwnedMembership, Container: ch.Group.ID, ContainerName: ch.Group.Name, AccountID: ch.AccountID})
	case reconcile.KindAddCustomer:
		j.Own = append(j.Own, reconcile.Owned{Kind: reconcile.OwnedCustomer, Container: ch.ServiceDesk, ContainerName: ch.ServiceDesk, AccountID: ch.AccountID})
	case reconcile.KindAddOrganizationMember:
		// An organization created by this very add has no id yet: own the membership under
		// its name until the id is known (see OrgPlaceholder).
		j.Own = append(j.Own, reconcile.Owned{Kind: reconcile.OwnedOrganization, Container: cmp.Or(ch.OrganizationID, reconcile.OrgPlaceholder(ch.Organization)),
			ContainerName: ch.Organization, AccountID: ch.AccountID})
	case reconcile.KindDeactivateUser:
		ls := e.linksOf(ch.AccountID)
		var prev []reconcile.GroupRef
		for _, l := range ls {
			prev = unionGroups(prev, l.PendingGroups)
		}
		if len(ch.Groups) > 0 {
			for _, l := range ls {
				l.PendingGroups = unionGroups(prev, ch.Groups)
				l.UpdatedAt = now
				j.Links = append(j.Links, l)
			}
			e.putLinks(j.Links)
		}
		return j, prev
	}
	return j, nil
}

// post is the journal entry of an applied change.
func (e *executor) post(ch reconcile.Change, res reconcile.Result, prevPending []reconcile.GroupRef, now time.Time) reconcile.JournalEntry {
	j := reconcile.JournalEntry{}
	a := e.audit(ch, reconcile.ItemOK, nil)
	pk := reconcile.PersonKey(ch)
	switch ch.Kind {
	case reconcile.KindCreateGroup:
		j.Own = append(j.Own, reconcile.Owned{Kind: reconcile.OwnedGroup, Container: res.GroupID, ContainerName: ch.Group.Name})
		e.mu.Lock()
		e.groups[lower(ch.Group.Name)] = res.GroupID
		e.mu.Unlock()
		a.Target = ch.Group.Name + " (" + res.GroupID + ")"
	case reconcile.KindCreateUser, reconcile.KindCreateCustomer:
		// A create retried after an interrupted pass adopts the account that pass created.
		retried := res.Adopted && e.o.Retried[pk]
		l := reconcile.Link{Source: ch.Source, Key: ch.UserKey, UserName: ch.UserName, Email: ch.Email,
			AccountID: res.AccountID, Created: !res.Adopted || retried, Customer: ch.Kind == reconcile.KindCreateCustomer,
			LinkedAt: now, UpdatedAt: now}
		j.Links = append(j.Links, l)
		e.mu.Lock()
		e.accounts[pk] = res.AccountID
		e.mu.Unlock()
		e.putLinks(j.Links)
		a.AccountID = res.AccountID
		switch {
		case retried:
			a.Reason += " (adopted the account an interrupted pass created)"
		case res.Adopted:
			a.Reason += " (adopted existing account)"
		}
	case reconcile.KindReactivateUser:
		id := cmp.Or(res.AccountID, ch.AccountID)
		e.mu.Lock()
		e.accounts[pk] = id
		e.mu.Unlock()
		for _, l := range e.linksOf(ch.AccountID) {
			l.AccountID = id
			l.Deactivated, l.DeactivatedAt, l.Method = false, time.Time{}, ""
			l.RemovedGroups, l.PendingGroups = nil, nil
			l.MissingPasses = 0
			l.UpdatedAt = now
			j.Links = append(j.Links, l)
		}
		e.putLinks(j.Links)
		a.AccountID = id
	case reconcile.KindAddOrganizationMember:
		id := cmp.Or(res.OrganizationID, ch.OrganizationID)
		if ch.OrganizationID == "" && id != "" {
			j.Own = append(j.Own, reconcile.Owned{Kind: reconcile.OwnedOrganization, Container: id, ContainerName: ch.Organization, AccountID: ch.AccountID})
			j.Disown = append(j.Disown, reconcile.Owned{Kind: reconcile.OwnedOrganization, Container: reconcile.OrgPlaceholder(ch.Organization), AccountID: ch.AccountID})
		}
		if id != "" {
			e.mu.Lock()
			e.orgs[lower(ch.Organization)] = id
			e.mu.Unlock()
		}
	case reconcile.KindRemoveMember:
		j.Disown = append(j.Disown, reconcile.Owned{Kind: reconcile.OwnedMembership, Container: ch.Group.ID, AccountID: ch.AccountID})
	case reconcile.KindRemoveCustomer:
		j.Disown = append(j.Disown, reconcile.Owned{Kind: reconcile.OwnedCustomer, Container: ch.ServiceDesk, AccountID: ch.AccountID})
	case reconcile.KindRemoveOrganizationMember:
		j.Disown = append(j.Disown, reconcile.Owned{Kind: reconcile.OwnedOrganization, Container: ch.OrganizationID, AccountID: ch.AccountID})
	case reconcile.KindDeactivateUser:
		for _, l := range e.linksOf(ch.AccountID) {
			l.Deactivated, l.DeactivatedAt = true, now
			l.Method = res.Method
			l.RemovedGroups = unionGroups(prevPending, res.Groups)
			l.PendingGroups = nil
			l.UpdatedAt = now
			j.Links = append(j.Links, l)
		}
		e.putLinks(j.Links)
		// After a deactivation the account is in none of the groups it was to leave, whether
		// this call removed it (res.Groups) or it was gone already: no ownership remains.
		for _, g := range unionGroups(ch.Groups, res.Groups) {
			if g.ID != "" {
				j.Disown = append(j.Disown, reconcile.Owned{Kind: reconcile.OwnedMembership, Container: g.ID, AccountID: ch.AccountID})
			}
		}
		if len(res.Groups) > 0 {
			a.Target = reconcile.GroupNames(res.Groups)
		}
		if res.Method != "" {
			a.Reason += " (" + res.Method + ")"
		}
	}
	j.Audit = append(j.Audit, a)
	return j
}

func unionGroups(a, b []reconcile.GroupRef) []reconcile.GroupRef {
	if len(a) == 0 {
		return append([]reconcile.GroupRef(nil), b...)
	}
	out := append([]reconcile.GroupRef(nil), a...)
	for _, g := range b {
		dup := false
		for _, x := range out {
			if (g.ID != "" && x.ID == g.ID) || strings.EqualFold(x.Name, g.Name) {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, g)
		}
	}
	return out
}

// linksOf returns copies of every link to an account.
func (e *executor) linksOf(accountID string) []reconcile.Link {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []reconcile.Link
	for _, k := range e.byAcc[accountID] {
		if l, ok := e.links[k]; ok && l.AccountID == accountID {
			out = append(out, l)
		}
	}
	return out
}

func (e *executor) putLinks(ls []reconcile.Link) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, l := range ls {
		k := l.LinkKey()
		if old, ok := e.links[k]; !ok || old.AccountID != l.AccountID {
			e.byAcc[l.AccountID] = append(e.byAcc[l.AccountID], k)
		}
		e.links[k] = l
	}
}
