package reconciletest

import (
	"fmt"
	"strings"

	"github.com/idsync/idsync/reconcile"
)

// AddAccount seeds an account (an id is made when AccountID is empty) and returns its id.
func (f *FakeSink) AddAccount(a reconcile.Account) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a.AccountType == "" {
		a.AccountType = reconcile.AccountAtlassian
	}
	if a.AccountID == "" {
		if a.AccountType == reconcile.AccountCustomer {
			a.AccountID = f.next("qm:")
		} else {
			a.AccountID = f.next("acc-")
		}
	}
	cp := a
	f.accounts[a.AccountID] = &cp
	f.accOrder = append(f.accOrder, a.AccountID)
	return a.AccountID
}

// AddGroup seeds a group and returns its id.
func (f *FakeSink) AddGroup(name string, productAccess bool) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addGroup(name, productAccess)
}

func (f *FakeSink) addGroup(name string, productAccess bool) string {
	id := f.next("grp-")
	f.groups[id] = &fgroup{id: id, name: name, members: map[string]bool{}, productAccess: productAccess}
	f.grpOrder = append(f.grpOrder, id)
	return id
}

// SetAdmin marks a group as one that grants admin rights (Jira's site-admin or admin access
// type): Live reports it with LiveGroup.Admin.
func (f *FakeSink) SetAdmin(groupName string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	g := f.groupByName(groupName)
	if g == nil {
		return fmt.Errorf("group %q: %w", groupName, ErrNotFound)
	}
	g.admin = true
	return nil
}

// AddToGroup seeds a membership.
func (f *FakeSink) AddToGroup(groupName, accountID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	g := f.groupByName(groupName)
	if g == nil {
		return fmt.Errorf("group %q: %w", groupName, ErrNotFound)
	}
	if f.accounts[accountID] == nil {
		return fmt.Errorf("account %q: %w", accountID, ErrNotFound)
	}
	g.members[accountID] = true
	return nil
}

// AddDesk seeds a service desk and returns its id.
func (f *FakeSink) AddDesk(key, name string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := fmt.Sprint(len(f.desks) + 1)
	f.desks[id] = &fdesk{id: id, key: key, name: name, customers: map[string]bool{}}
	f.dskOrder = append(f.dskOrder, id)
	return id
}

// AddCustomerTo seeds a desk customer.
func (f *FakeSink) AddCustomerTo(desk, accountID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.desk(desk)
	if d == nil || f.accounts[accountID] == nil {
		return fmt.Errorf("desk %q or account %q: %w", desk, accountID, ErrNotFound)
	}
	d.customers[accountID] = true
	return nil
}

// AddOrg seeds an organization and returns its id.
func (f *FakeSink) AddOrg(name string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addOrg(name)
}

func (f *FakeSink) addOrg(name string) string {
	id := f.next("org-")
	f.orgs[id] = &forg{id: id, name: name, members: map[string]bool{}}
	f.orgOrder = append(f.orgOrder, id)
	return id
}

func (f *FakeSink) groupByName(name string) *fgroup {
	for _, id := range f.grpOrder {
		if g := f.groups[id]; g != nil && strings.EqualFold(g.name, name) {
			return g
		}
	}
	return nil
}

func (f *FakeSink) desk(keyOrID string) *fdesk {
	if d := f.desks[keyOrID]; d != nil {
		return d
	}
	for _, id := range f.dskOrder {
		if d := f.desks[id]; strings.EqualFold(d.key, keyOrID) {
			return d
		}
	}
	return nil
}

func (f *FakeSink) orgByName(name string) *forg {
	for _, id := range f.orgOrder {
		if o := f.orgs[id]; o != nil && strings.EqualFold(o.name, name) {
			return o
		}
	}
	return nil
}

func (f *FakeSink) accountByEmail(email, typ string) *reconcile.Account {
	for _, id := range f.accOrder {
		a := f.accounts[id]
		if a != nil && a.AccountType == typ && a.Email != "" && strings.EqualFold(a.Email, email) {
			return a
		}
	}
	return nil
}

// SetActive flips an account's active flag (an admin deactivating it by hand).
func (f *FakeSink) SetActive(accountID string, active bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a := f.accounts[accountID]; a != nil {
		a.Active = active
	}
}

// RemoveFromGroup removes a membership by hand.
func (f *FakeSink) RemoveFromGroup(group, accountID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if g := f.groupByName(group); g != nil {
		delete(g.members, accountID)
	}
}
