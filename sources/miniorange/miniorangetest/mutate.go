package miniorangetest

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Mutations change the directory the way an admin would in the miniOrange console. They are
// safe while the simulator serves; a listing in flight sees the change on its next page, as
// with the real service.

// Hire adds users (an empty ID gets a fresh one; unknown groups are created) and returns them
// as stored.
func (s *Sim) Hire(users ...User) ([]User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]User, 0, len(users))
	for _, u := range users {
		nu, err := s.addUser(u)
		if err != nil {
			return out, err
		}
		out = append(out, nu)
	}
	return out, nil
}

// HireN adds n generated users (realistic names, unique emails at example.com, in one random
// existing group when there is one).
func (s *Sim) HireN(n int) []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]User, 0, n)
	for range n {
		var first, last string
		gi := 0
		s.knobs.Rand(func(rng *rand.Rand) {
			first = firstNames[rng.IntN(len(firstNames))]
			last = lastNames[rng.IntN(len(lastNames))]
			if len(s.groups) > 1 {
				gi = 1 + rng.IntN(len(s.groups)-1)
			}
		})
		base := emailLocal(first) + "." + emailLocal(last)
		var email string
		for {
			s.hireN++
			email = base + ".h" + strconv.Itoa(s.hireN) + "@example.com"
			if s.byName[email] == nil {
				break
			}
		}
		u := User{UserName: email, Email: email, FirstName: first, LastName: last}
		if gi > 0 {
			u.Groups = []string{s.groups[gi].name}
		}
		nu, err := s.addUser(u)
		if err == nil {
			out = append(out, nu)
		}
	}
	return out
}

// Leave deletes the user (miniOrange has no soft delete; the listing closes the gap).
func (s *Sim) Leave(userName string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.lookup(userName)
	if err != nil {
		return err
	}
	for _, g := range u.groups {
		g.members = removeUser(g.members, u)
	}
	s.users = removeUser(s.users, u)
	delete(s.byName, strings.ToLower(u.userName))
	delete(s.byID, u.id)
	return nil
}

// Move takes the user out of from and puts them into to.
func (s *Sim) Move(userName, from, to string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.lookup(userName)
	if err != nil {
		return err
	}
	gf, gt := s.byGrp[from], s.byGrp[to]
	if gf == nil || gf.auto || !u.in(gf) {
		return fmt.Errorf("miniorangetest: %q is not in group %q", userName, from)
	}
	if gt == nil || gt.auto {
		return fmt.Errorf("miniorangetest: no group %q to move into", to)
	}
	s.leaveGroup(u, gf)
	s.joinGroup(u, gt)
	return nil
}

// Profile holds the fields Rename may change; empty fields stay as they are.
type Profile struct {
	UserName  string
	Email     string
	FirstName string
	LastName  string
	Phone     string
}

// Rename changes the user's profile. The id stays, as miniOrange keeps it.
func (s *Sim) Rename(userName string, p Profile) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.lookup(userName)
	if err != nil {
		return err
	}
	if p.UserName != "" && !strings.EqualFold(p.UserName, u.userName) {
		if s.byName[strings.ToLower(p.UserName)] != nil {
			return fmt.Errorf("miniorangetest: username %q exists", p.UserName)
		}
		delete(s.byName, strings.ToLower(u.userName))
		s.byName[strings.ToLower(p.UserName)] = u
	}
	if p.UserName != "" {
		u.userName = p.UserName
	}
	if p.Email != "" {
		u.email = p.Email
	}
	if p.FirstName != "" {
		u.first = p.FirstName
	}
	if p.LastName != "" {
		u.last = p.LastName
	}
	if p.Phone != "" {
		u.phone = p.Phone
	}
	u.refresh()
	return nil
}

// Disable marks the user DISABLED.
func (s *Sim) Disable(userName string) error { return s.setDisabled(userName, true) }

// Enable marks the user ACTIVE.
func (s *Sim) Enable(userName string) error { return s.setDisabled(userName, false) }

func (s *Sim) setDisabled(userName string, v bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.lookup(userName)
	if err != nil {
		return err
	}
	u.disabled = v
	u.refresh()
	return nil
}

// SetAttribute sets (or, with an empty value, removes) a custom attribute.
func (s *Sim) SetAttribute(userName, key, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.lookup(userName)
	if err != nil {
		return err
	}
	if value == "" {
		delete(u.attrs, key)
	} else {
		if u.attrs == nil {
			u.attrs = map[string]string{}
		}
		u.attrs[key] = value
	}
	u.refresh()
	return nil
}

// CreateGroup adds an empty group.
func (s *Sim) CreateGroup(name, description string) (Group, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if name == "" || s.byGrp[name] != nil {
		return Group{}, fmt.Errorf("miniorangetest: group %q exists or has no name", name)
	}
	g := &group{id: s.newID(), name: name, desc: description}
	s.groups = append(s.groups, g)
	s.byGrp[name] = g
	return Group{ID: g.id, Name: g.name, Description: g.desc}, nil
}

// DeleteGroup removes a group and its memberships.
func (s *Sim) DeleteGroup(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.byGrp[name]
	if g == nil || g.auto {
		return fmt.Errorf("miniorangetest: no group %q to delete", name)
	}
	for _, u := range g.members {
		for i, x := range u.groups {
			if x == g {
				u.groups = append(u.groups[:i:i], u.groups[i+1:]...)
				break
			}
		}
		u.refresh()
	}
	for i, x := range s.groups {
		if x == g {
			s.groups = append(s.groups[:i:i], s.groups[i+1:]...)
			break
		}
	}
	delete(s.byGrp, name)
	return nil
}

// AddToGroup puts the user into an existing group.
func (s *Sim) AddToGroup(userName, groupName string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.lookup(userName)
	if err != nil {
		return err
	}
	g := s.byGrp[groupName]
	if g == nil || g.auto {
		return fmt.Errorf("miniorangetest: no group %q to add to", groupName)
	}
	s.joinGroup(u, g)
	return nil
}

// RemoveFromGroup takes the user out of a group.
func (s *Sim) RemoveFromGroup(userName, groupName string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.lookup(userName)
	if err != nil {
		return err
	}
	g := s.byGrp[groupName]
	if g == nil || g.auto || !u.in(g) {
		return fmt.Errorf("miniorangetest: %q is not in group %q", userName, groupName)
	}
	s.leaveGroup(u, g)
	return nil
}

// Users returns a copy of every user in listing order.
func (s *Sim) Users() []User {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]User, len(s.users))
	for i, u := range s.users {
		out[i] = u.export()
	}
	return out
}

// User returns one user by username (case-insensitive).
func (s *Sim) User(userName string) (User, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u := s.byName[strings.ToLower(userName)]
	if u == nil {
		return User{}, false
	}
	return u.export(), true
}

// Groups returns every group in listing order, DEFAULT first.
func (s *Sim) Groups() []Group {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Group, len(s.groups))
	for i, g := range s.groups {
		out[i] = Group{ID: g.id, Name: g.name, Description: g.desc}
	}
	return out
}

func (s *Sim) lookup(userName string) (*user, error) {
	u := s.byName[strings.ToLower(userName)]
	if u == nil {
		return nil, fmt.Errorf("miniorangetest: no user %q", userName)
	}
	return u, nil
}

func (s *Sim) joinGroup(u *user, g *group) {
	if u.in(g) {
		return
	}
	u.groups = append(u.groups, g)
	g.members = append(g.members, u)
	u.refresh()
}

func (s *Sim) leaveGroup(u *user, g *group) {
	g.members = removeUser(g.members, u)
	for i, x := range u.groups {
		if x == g {
			u.groups = append(u.groups[:i:i], u.groups[i+1:]...)
			break
		}
	}
	u.refresh()
}

// removeUser returns list without u, in a fresh array so pages already built keep theirs.
func removeUser(list []*user, u *user) []*user {
	for i, x := range list {
		if x == u {
			return append(list[:i:i], list[i+1:]...)
		}
	}
	return list
}
