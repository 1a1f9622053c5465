package jiratest

import "net/http"

type applicationRole struct {
	Key                  string      `json:"key"`
	Name                 string      `json:"name"`
	Groups               []string    `json:"groups"`
	GroupDetails         []groupName `json:"groupDetails"`
	DefaultGroups        []string    `json:"defaultGroups"`
	DefaultGroupsDetails []groupName `json:"defaultGroupsDetails"`
	SelectedByDefault    bool        `json:"selectedByDefault"`
	Defined              bool        `json:"defined"`
	NumberOfSeats        int         `json:"numberOfSeats"`
	RemainingSeats       int         `json:"remainingSeats"`
	UserCount            int         `json:"userCount"`
	UserCountDescription string      `json:"userCountDescription"`
	HasUnlimitedSeats    bool        `json:"hasUnlimitedSeats"`
	Platform             bool        `json:"platform"`
}

func (s *Sim) roleJSON(base string, rl *Role) applicationRole {
	details := func(names []string) []groupName {
		out := []groupName{}
		for _, n := range names {
			if g := s.st.groupByName(n); g != nil {
				out = append(out, groupName{GroupID: g.id, Name: g.name, Self: groupSelf(base, g.id)})
			}
		}
		return out
	}
	seats := s.knobs().Seats
	used := s.st.licensed()
	ar := applicationRole{Key: rl.Key, Name: rl.Name, Groups: nonNil(rl.Groups), GroupDetails: details(rl.Groups),
		DefaultGroups: nonNil(rl.DefaultGroups), DefaultGroupsDetails: details(rl.DefaultGroups),
		SelectedByDefault: false, Defined: true, UserCount: used, UserCountDescription: "users",
		HasUnlimitedSeats: seats == 0, Platform: rl.Key == "jira-core"}
	if seats > 0 {
		ar.NumberOfSeats, ar.RemainingSeats = seats, max(0, seats-used)
	} else {
		ar.NumberOfSeats, ar.RemainingSeats = -1, -1
	}
	return ar
}

func nonNil(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

func (s *Sim) getApplicationRoles(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []applicationRole{}
	for _, rl := range s.st.roles {
		out = append(out, s.roleJSON(baseURL(r), rl))
	}
	writeJSON(w, http.StatusOK, out)
}
