package googletest

import (
	"fmt"
	"slices"
	"strings"
)

// Hire adds a user and makes them a direct member of the groups named (emails or ids).
func (s *Sim) Hire(u User, groups ...string) (User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.addUser(u); err != nil {
		return User{}, err
	}
	nu := s.users[len(s.users)-1]
	for _, g := range groups {
		if err := s.addMember(g, nu.PrimaryEmail); err != nil {
			return User{}, err
		}
	}
	return nu.User, nil
}

// Delete removes a user (a leaver): gone from listings, memberships and users.get.
func (s *Sim) Delete(email string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.byKey[strings.ToLower(email)]
	if u == nil || u.deleted {
		return fmt.Errorf("googletest: no user %q", email)
	}
	u.deleted = true
	for _, g := range s.groups {
		g.members = slices.DeleteFunc(g.members, func(m memberRef) bool { return m.u == u })
	}
	return nil
}

// SetSuspended suspends or restores a user.
func (s *Sim) SetSuspended(email string, suspended bool) error {
	return s.setUser(email, func(u *user) { u.Suspended = suspended })
}

// SetArchived archives or unarchives a user.
func (s *Sim) SetArchived(email string, archived bool) error {
	return s.setUser(email, func(u *user) { u.Archived = archived })
}

// SetName changes a user's given and family names (a rename; the primary email stays).
func (s *Sim) SetName(email, given, family string) error {
	return s.setUser(email, func(u *user) { u.GivenName, u.FamilyName = given, family })
}

// SetOrgUnit moves a user to another organizational unit.
func (s *Sim) SetOrgUnit(email, path string) error {
	return s.setUser(email, func(u *user) { u.OrgUnitPath = path })
}

func (s *Sim) setUser(email string, fn func(*user)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.byKey[strings.ToLower(email)]
	if u == nil || u.deleted {
		return fmt.Errorf("googletest: no user %q", email)
	}
	fn(u)
	return nil
}

// AddGroup adds an empty group.
func (s *Sim) AddGroup(g Group) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.addGroup(g); err != nil {
		return err
	}
	for _, m := range g.Members {
		if err := s.addMember(g.Email, m); err != nil {
			return err
		}
	}
	return nil
}

// DeleteGroup deletes a group (email or id): gone from groups.list and from every group it
// was a member of; its members stay, without it.
func (s *Sim) DeleteGroup(key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.byGroup[strings.ToLower(key)]
	if g == nil {
		return fmt.Errorf("googletest: no group %q", key)
	}
	s.groups = slices.DeleteFunc(s.groups, func(x *group) bool { return x == g })
	delete(s.byGroup, strings.ToLower(g.id))
	delete(s.byGroup, strings.ToLower(g.email))
	for _, parent := range s.groups {
		parent.members = slices.DeleteFunc(parent.members, func(m memberRef) bool { return m.g == g })
	}
	return nil
}

// AddMember makes member (a user's or group's email or id, or CustomerMember) a direct
// member of group (email or id).
func (s *Sim) AddMember(group, member string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addMember(group, member)
}

// RemoveMember takes a direct member out of a group.
func (s *Sim) RemoveMember(group, member string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.byGroup[strings.ToLower(group)]
	if g == nil {
		return fmt.Errorf("googletest: no group %q", group)
	}
	u, sg := s.byKey[strings.ToLower(member)], s.byGroup[strings.ToLower(member)]
	before := len(g.members)
	g.members = slices.DeleteFunc(g.members, func(m memberRef) bool {
		return (u != nil && m.u == u) || (sg != nil && m.g == sg) || (member == CustomerMember && m.customer)
	})
	if len(g.members) == before {
		return fmt.Errorf("googletest: %q is not a direct member of %q", member, group)
	}
	return nil
}

// Users returns the users that exist, in listing order.
func (s *Sim) Users() []User {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []User
	for _, u := range s.users {
		if !u.deleted {
			c := u.User
			c.Aliases = slices.Clone(u.Aliases)
			out = append(out, c)
		}
	}
	return out
}

// Groups returns the groups with their direct members (emails; CustomerMember for the
// account), in listing order.
func (s *Sim) Groups() []Group {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Group, 0, len(s.groups))
	for _, g := range s.groups {
		og := Group{ID: g.id, Email: g.email, Name: g.name, Description: g.desc}
		for _, m := range g.members {
			switch {
			case m.customer:
				og.Members = append(og.Members, CustomerMember)
			case m.u != nil && !m.u.deleted:
				og.Members = append(og.Members, m.u.PrimaryEmail)
			case m.g != nil:
				og.Members = append(og.Members, m.g.email)
			}
		}
		out = append(out, og)
	}
	return out
}

// EffectiveMembers returns the users (primary emails) of a group with nested groups
// expanded, each once: what a correct reader must report.
func (s *Sim) EffectiveMembers(groupKey string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	g := s.byGroup[strings.ToLower(groupKey)]
	if g == nil {
		return nil
	}
	var out []string
	seen := map[*user]bool{}
	visited := map[*group]bool{g: true}
	queue := []*group{g}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, m := range cur.members {
			switch {
			case m.customer:
				for _, u := range s.users {
					if !u.deleted && !seen[u] {
						seen[u] = true
						out = append(out, u.PrimaryEmail)
					}
				}
			case m.u != nil && !m.u.deleted && !seen[m.u]:
				seen[m.u] = true
				out = append(out, m.u.PrimaryEmail)
			case m.g != nil && !visited[m.g]:
				visited[m.g] = true
				queue = append(queue, m.g)
			}
		}
	}
	slices.Sort(out)
	return out
}
