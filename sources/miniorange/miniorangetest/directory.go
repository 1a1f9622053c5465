package miniorangetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

type user struct {
	id, userName, email, first, last, phone string
	disabled                                bool
	groups                                  []*group // without DEFAULT
	attrs                                   map[string]string
	// js is the user's users/list entry, encoded at every change: listing pages are then
	// concatenations, which keeps the simulator's CPU out of the way of what is measured.
	js []byte
}

// refresh re-encodes the user's listing entry; callers hold mu for writing.
func (u *user) refresh() {
	b, err := json.Marshal(u.wire())
	if err != nil {
		b = []byte("null")
	}
	u.js = b
}

type group struct {
	id, name, desc string
	auto           bool    // DEFAULT: members are every user
	members        []*user // join order; unused for DEFAULT
}

func (s *Sim) load(org Org) {
	s.users = make([]*user, 0, len(org.Users))
	s.byName = make(map[string]*user, len(org.Users))
	s.byID = make(map[string]*user, len(org.Users))
	def := &group{id: "0", name: DefaultGroup, desc: "Every user", auto: true}
	s.groups = []*group{def}
	s.byGrp = map[string]*group{DefaultGroup: def}
	for _, g := range org.Groups {
		if g.Name == DefaultGroup || s.byGrp[g.Name] != nil {
			continue
		}
		id := g.ID
		if id == "" {
			id = s.newID()
		}
		ng := &group{id: id, name: g.Name, desc: g.Description}
		s.groups = append(s.groups, ng)
		s.byGrp[g.Name] = ng
	}
	for _, u := range org.Users {
		_, _ = s.addUser(u)
	}
}

func (s *Sim) newID() string {
	s.nextID++
	return strconv.Itoa(s.nextID)
}

// addUser inserts u; groups it names that do not exist are created. Caller holds mu.
func (s *Sim) addUser(u User) (User, error) {
	if u.UserName == "" {
		return User{}, errors.New("miniorangetest: user without a username")
	}
	key := strings.ToLower(u.UserName)
	if s.byName[key] != nil {
		return User{}, fmt.Errorf("miniorangetest: username %q exists", u.UserName)
	}
	if u.ID == "" {
		u.ID = s.newID()
	}
	if s.byID[u.ID] != nil {
		return User{}, fmt.Errorf("miniorangetest: user id %q exists", u.ID)
	}
	nu := &user{
		id: u.ID, userName: u.UserName, email: u.Email, first: u.FirstName, last: u.LastName,
		phone: u.Phone, disabled: u.Disabled,
	}
	if len(u.Attributes) > 0 {
		nu.attrs = make(map[string]string, len(u.Attributes))
		for k, v := range u.Attributes {
			nu.attrs[k] = v
		}
	}
	for _, name := range u.Groups {
		if name == DefaultGroup {
			continue
		}
		g := s.byGrp[name]
		if g == nil {
			g = &group{id: s.newID(), name: name}
			s.groups = append(s.groups, g)
			s.byGrp[name] = g
		}
		if nu.in(g) {
			continue
		}
		nu.groups = append(nu.groups, g)
		g.members = append(g.members, nu)
	}
	nu.refresh()
	s.users = append(s.users, nu)
	s.byName[key] = nu
	s.byID[nu.id] = nu
	return nu.export(), nil
}

func (u *user) in(g *group) bool {
	for _, x := range u.groups {
		if x == g {
			return true
		}
	}
	return false
}

func (u *user) export() User {
	out := User{
		ID: u.id, UserName: u.userName, Email: u.email, FirstName: u.first, LastName: u.last,
		Phone: u.phone, Disabled: u.disabled, Groups: make([]string, len(u.groups)),
	}
	for i, g := range u.groups {
		out.Groups[i] = g.name
	}
	if u.attrs != nil {
		out.Attributes = make(map[string]string, len(u.attrs))
		for k, v := range u.attrs {
			out.Attributes[k] = v
		}
	}
	return out
}
