package jiratest

import (
	"errors"
	"fmt"
	"strconv"
)

// AddUser creates an account (indexed at once, as if it had existed for long) and puts it in
// its groups, creating missing groups. It returns the accountId.
func (s *Sim) AddUser(u User) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	typ := u.Type
	if typ == "" {
		typ = TypeAtlassian
	}
	a := &account{id: u.AccountID, typ: typ, email: u.Email, displayName: u.DisplayName,
		hideEmail: u.HideEmail, active: !u.Inactive, onSite: true}
	if typ == TypeApp {
		a.appType = "service"
	}
	if a.displayName == "" {
		a.displayName = localPart(u.Email)
	}
	a.nickname = a.displayName
	if err := s.st.addAccount(a); err != nil {
		return "", err
	}
	for _, name := range u.Groups {
		g := s.st.groupByName(name)
		if g == nil {
			var err error
			if g, err = s.st.addGroup(name, ""); err != nil {
				return "", err
			}
		}
		g.members.add(a.id)
	}
	return a.id, nil
}

// AddGroup creates a group and returns its id.
func (s *Sim) AddGroup(name, accessType string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.st.addGroup(name, accessType)
	if err != nil {
		return "", err
	}
	return g.id, nil
}

// AddMember puts an account into a group (by name).
func (s *Sim) AddMember(groupName, accountID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.st.groupByName(groupName)
	if g == nil {
		return fmt.Errorf("no group %q", groupName)
	}
	if s.st.accounts[accountID] == nil {
		return fmt.Errorf("no account %s", accountID)
	}
	g.members.add(accountID)
	return nil
}

// AddDesk creates a service desk and returns its id.
func (s *Sim) AddDesk(d Desk) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d.Key == "" {
		return "", errors.New("desk needs a project key")
	}
	if s.st.resolveDesk(d.Key) != nil {
		return "", fmt.Errorf("desk %s exists", d.Key)
	}
	if d.ID == "" {
		d.ID = strconv.Itoa(s.st.nextDesk)
	}
	if n, err := strconv.Atoi(d.ID); err == nil && n >= s.st.nextDesk {
		s.st.nextDesk = n + 1
	}
	if d.ProjectID == "" {
		d.ProjectID = strconv.Itoa(10000 + len(s.st.desks))
	}
	if d.Name == "" {
		d.Name = d.Key
	}
	dk := &desk{id: d.ID, projectID: d.ProjectID, key: d.Key, name: d.Name, openAccess: d.OpenAccess, customers: newSet()}
	for _, c := range d.Customers {
		dk.customers.add(c)
	}
	s.st.desks = append(s.st.desks, dk)
	return dk.id, nil
}

// AddDeskCustomer grants an account customer access to a desk (id or key).
func (s *Sim) AddDeskCustomer(deskRef, accountID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.st.resolveDesk(deskRef)
	if d == nil {
		return fmt.Errorf("no desk %q", deskRef)
	}
	d.customers.add(accountID)
	return nil
}

// AddOrg creates (or finds) an organization by name and returns its id.
func (s *Sim) AddOrg(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.createOrg(name).id
}

// AddOrgMember adds an account to an organization (by id).
func (s *Sim) AddOrgMember(orgID, accountID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.st.orgByID(orgID)
	if o == nil {
		return fmt.Errorf("no organization %s", orgID)
	}
	o.members.add(accountID)
	return nil
}

// SetEmailHidden sets an account's email-privacy flag.
func (s *Sim) SetEmailHidden(accountID string, hidden bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.st.accounts[accountID]
	if a == nil {
		return fmt.Errorf("no account %s", accountID)
	}
	a.hideEmail = hidden
	return nil
}

// SetActive sets an account's lifecycle state (as the admin API would).
func (s *Sim) SetActive(accountID string, active bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.st.accounts[accountID]
	if a == nil {
		return fmt.Errorf("no account %s", accountID)
	}
	a.active = active
	return nil
}
