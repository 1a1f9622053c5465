package reconciletest

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
)

// Apply performs one change, validating it like Jira.
func (f *FakeSink) Apply(ctx context.Context, c reconcile.Change) (reconcile.Result, error) {
	if err := ctx.Err(); err != nil {
		return reconcile.Result{}, err
	}
	f.mu.Lock()
	f.applyCalls++
	n := f.applyCalls
	f.calls[c.Kind]++
	fail := f.Fail
	f.mu.Unlock()
	if fail != nil {
		if err := fail(c, n); err != nil {
			return reconcile.Result{}, err
		}
	}
	f.mu.Lock()
	res, err := f.apply(c)
	after := f.AfterApply
	f.mu.Unlock()
	if err == nil && after != nil {
		after(c, n)
	}
	return res, err
}

func (f *FakeSink) account(id string) (*reconcile.Account, error) {
	if id == "" {
		return nil, fmt.Errorf("no accountId: %w", ErrBadChange)
	}
	a := f.accounts[id]
	if a == nil {
		return nil, fmt.Errorf("account %s: %w", id, ErrNotFound)
	}
	return a, nil
}

func (f *FakeSink) group(ref *reconcile.GroupRef) (*fgroup, error) {
	if ref == nil || ref.ID == "" {
		return nil, fmt.Errorf("no groupId: %w", ErrBadChange)
	}
	g := f.groups[ref.ID]
	if g == nil {
		return nil, fmt.Errorf("group %s: %w", ref.ID, ErrNotFound)
	}
	return g, nil
}

func (f *FakeSink) apply(c reconcile.Change) (reconcile.Result, error) {
	switch c.Kind {
	case reconcile.KindCreateGroup:
		return f.applyCreateGroup(c)
	case reconcile.KindCreateUser, reconcile.KindCreateCustomer:
		return f.applyCreateAccount(c)
	case reconcile.KindUpdateUser:
		return f.applyUpdate(c)
	case reconcile.KindReactivateUser:
		return f.applyReactivate(c)
	case reconcile.KindDeactivateUser:
		return f.applyDeactivate(c)
	case reconcile.KindAddMember, reconcile.KindRemoveMember:
		return f.applyMember(c)
	case reconcile.KindAddCustomer, reconcile.KindRemoveCustomer:
		return f.applyCustomer(c)
	case reconcile.KindAddOrganizationMember, reconcile.KindRemoveOrganizationMember:
		return f.applyOrgMember(c)
	default:
		return reconcile.Result{}, fmt.Errorf("kind %q: %w", c.Kind, ErrBadChange)
	}
}

// applyCreateGroup creates a group.
func (f *FakeSink) applyCreateGroup(c reconcile.Change) (res reconcile.Result, err error) {
	if c.Group == nil || c.Group.Name == "" {
		return res, fmt.Errorf("create group without a name: %w", ErrBadChange)
	}
	if f.groupByName(c.Group.Name) != nil {
		return res, fmt.Errorf("creating group %q: %w", c.Group.Name, ErrNameInUse)
	}
	res.GroupID = f.addGroup(c.Group.Name, false)
	return res, nil
}

// applyCreateAccount creates an account or customer, adopting one of the same email.
func (f *FakeSink) applyCreateAccount(c reconcile.Change) (res reconcile.Result, err error) {
	typ, prefix := reconcile.AccountAtlassian, "acc-"
	if c.Kind == reconcile.KindCreateCustomer {
		typ, prefix = reconcile.AccountCustomer, "qm:"
	}
	if c.Email == "" {
		return res, fmt.Errorf("create without an email: %w", ErrBadChange)
	}
	if a := f.accountByEmail(c.Email, typ); a != nil {
		f.duplicates++
		return reconcile.Result{AccountID: a.AccountID, Adopted: true, Writes: 1}, nil
	}
	id := f.next(prefix)
	f.accounts[id] = &reconcile.Account{AccountID: id, AccountType: typ, Email: c.Email, DisplayName: c.DisplayName, Active: true}
	f.accOrder = append(f.accOrder, id)
	if typ == reconcile.AccountAtlassian {
		for _, g := range f.CreateAddsTo {
			if fg := f.groupByName(g); fg != nil {
				fg.members[id] = true
				if !f.HideCreateJoins {
					res.Groups = append(res.Groups, reconcile.GroupRef{ID: fg.id, Name: fg.name})
				}
			}
		}
	}
	res.AccountID, res.Writes = id, 1
	return res, nil
}

// applyUpdate changes profile fields.
func (f *FakeSink) applyUpdate(c reconcile.Change) (res reconcile.Result, err error) {
	if c.Unsupported != "" {
		return res, fmt.Errorf("unsupported update sent: %w", ErrBadChange)
	}
	a, err := f.account(c.AccountID)
	if err != nil {
		return res, err
	}
	for _, fc := range c.Fields {
		switch fc.Field {
		case "displayName":
			a.DisplayName = fc.New
		case "email":
			a.Email = fc.New
		default:
			return res, fmt.Errorf("field %q: %w", fc.Field, ErrBadChange)
		}
		res.Writes++
	}
	return res, nil
}

// applyReactivate reactivates an account and restores its groups.
func (f *FakeSink) applyReactivate(c reconcile.Change) (res reconcile.Result, err error) {
	a := f.accounts[c.AccountID]
	if a == nil {
		if f.method() != configs.DeactivateDelete || c.Email == "" {
			return res, fmt.Errorf("account %s: %w", c.AccountID, ErrNotFound)
		}
		id := f.next("acc-")
		a = &reconcile.Account{AccountID: id, AccountType: reconcile.AccountAtlassian, Email: c.Email, DisplayName: c.DisplayName}
		f.accounts[id] = a
		f.accOrder = append(f.accOrder, id)
	}
	a.Active = true
	for _, ref := range c.Groups {
		g := f.groups[ref.ID]
		if g == nil {
			g = f.groupByName(ref.Name)
		}
		if g == nil {
			return res, fmt.Errorf("group %q: %w", ref.Name, ErrNotFound)
		}
		if !g.members[a.AccountID] {
			g.members[a.AccountID] = true
			res.Groups = append(res.Groups, reconcile.GroupRef{ID: g.id, Name: g.name})
		}
	}
	res.AccountID, res.Method = a.AccountID, f.method()
	return res, nil
}

// applyDeactivate deactivates an account by the configured method.
func (f *FakeSink) applyDeactivate(c reconcile.Change) (res reconcile.Result, err error) {
	a, err := f.account(c.AccountID)
	if err != nil {
		return res, err
	}
	res.Method = f.method()
	switch res.Method {
	case configs.DeactivateRemoveAccess:
		var errs []error
		for _, ref := range c.Groups {
			g, err := f.group(&ref)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if f.FailLeave != nil {
				if err := f.FailLeave(a.AccountID, g.name); err != nil {
					errs = append(errs, fmt.Errorf("leaving %s: %w", g.name, err))
					continue
				}
			}
			if g.members[a.AccountID] {
				delete(g.members, a.AccountID)
				res.Groups = append(res.Groups, reconcile.GroupRef{ID: g.id, Name: g.name})
				res.Writes++
			}
		}
		if err := errors.Join(errs...); err != nil {
			return res, err
		}
	case configs.DeactivateAdminAPI:
		a.Active = false
	case configs.DeactivateDelete:
		for _, g := range f.groups {
			delete(g.members, a.AccountID)
		}
		delete(f.accounts, a.AccountID)
		f.accOrder = slices.DeleteFunc(f.accOrder, func(id string) bool { return id == a.AccountID })
	}
	return res, nil
}

// applyMember adds or removes a group member.
func (f *FakeSink) applyMember(c reconcile.Change) (res reconcile.Result, err error) {
	g, err := f.group(c.Group)
	if err != nil {
		return res, err
	}
	if _, err := f.account(c.AccountID); err != nil {
		return res, err
	}
	if c.Kind == reconcile.KindAddMember {
		if g.members[c.AccountID] {
			f.redundantAdds++ // Jira: 400 "already a member", still a call
		}
		g.members[c.AccountID] = true
	} else {
		delete(g.members, c.AccountID)
	}
	res.Writes = 1
	return res, nil
}

// applyCustomer grants or removes desk customer access.
func (f *FakeSink) applyCustomer(c reconcile.Change) (res reconcile.Result, err error) {
	d := f.desk(c.ServiceDesk)
	if d == nil {
		return res, fmt.Errorf("service desk %q: %w", c.ServiceDesk, ErrNotFound)
	}
	if _, err := f.account(c.AccountID); err != nil {
		return res, err
	}
	if c.Kind == reconcile.KindAddCustomer {
		d.customers[c.AccountID] = true
	} else {
		delete(d.customers, c.AccountID)
	}
	res.Writes = 1
	return res, nil
}

// applyOrgMember adds or removes an organization member, creating the organization by name.
func (f *FakeSink) applyOrgMember(c reconcile.Change) (res reconcile.Result, err error) {
	if _, err := f.account(c.AccountID); err != nil {
		return res, err
	}
	var o *forg
	if c.OrganizationID != "" {
		o = f.orgs[c.OrganizationID]
		if o == nil {
			return res, fmt.Errorf("organization %s: %w", c.OrganizationID, ErrNotFound)
		}
	} else if c.Kind == reconcile.KindAddOrganizationMember {
		// Like POST /organization: returns the existing organization of that name.
		if o = f.orgByName(c.Organization); o == nil {
			o = f.orgs[f.addOrg(c.Organization)]
		}
	} else {
		return res, fmt.Errorf("remove from organization without an id: %w", ErrBadChange)
	}
	if c.Kind == reconcile.KindAddOrganizationMember {
		o.members[c.AccountID] = true
	} else {
		delete(o.members, c.AccountID)
	}
	res.OrganizationID, res.Writes = o.id, 1
	return res, nil
}

func (f *FakeSink) method() string {
	if f.Method == "" {
		return configs.DeactivateRemoveAccess
	}
	return f.Method
}
