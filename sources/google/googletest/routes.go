package googletest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strings"
)

// scopeCheck answers the customer/domain parameters of a listing: nil when they name this
// account, else the error answer.
func (s *Sim) scopeCheck(q map[string][]string, required bool) *reply {
	c, d := first(q, "customer"), first(q, "domain")
	switch {
	case c == "" && d == "" && required:
		k := badRequest("Bad Request")
		return &k
	case c != "" && c != "my_customer" && c != s.customerID:
		k := reply{code: http.StatusForbidden, body: errorBody(http.StatusForbidden, "forbidden", "global", "Not Authorized to access this resource/api")}
		return &k
	case d != "" && !strings.EqualFold(d, s.domain):
		k := reply{code: http.StatusForbidden, body: errorBody(http.StatusForbidden, "forbidden", "global", "Not Authorized to access this resource/api")}
		return &k
	}
	return nil
}

// listingID names a listing by everything but its paging, for page tokens.
func listingID(ep string, q map[string][]string, keys ...string) string {
	h := sha256.New()
	h.Write([]byte(ep))
	for _, k := range keys {
		h.Write([]byte{0})
		h.Write([]byte(first(q, k)))
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

func (s *Sim) usersList(q map[string][]string) reply {
	if bad := s.scopeCheck(q, true); bad != nil {
		return *bad
	}
	terms, err := parseQuery(first(q, "query"), userFields)
	if err != nil {
		return badRequest("Invalid Input: " + err.Error())
	}
	if ob := first(q, "orderBy"); ob != "" && ob != "email" && ob != "givenName" && ob != "familyName" {
		return badRequest("Invalid Input: orderBy")
	}
	hook := s.hook()
	s.mu.RLock()
	defer s.mu.RUnlock()
	var match []*user
	for _, u := range s.users {
		if !u.deleted && matchUser(u, terms) {
			match = append(match, u)
		}
	}
	if ob := first(q, "orderBy"); ob != "" {
		keyOf := func(u *user) string {
			switch ob {
			case "givenName":
				return strings.ToLower(u.GivenName)
			case "familyName":
				return strings.ToLower(u.FamilyName)
			}
			return strings.ToLower(u.PrimaryEmail)
		}
		desc := first(q, "sortOrder") == "DESCENDING"
		sort.SliceStable(match, func(i, j int) bool {
			if desc {
				return keyOf(match[i]) > keyOf(match[j])
			}
			return keyOf(match[i]) < keyOf(match[j])
		})
	}
	lo, hi, next, page, bad := s.pageOf(EndpointUsersList, listingID(EndpointUsersList, q, "customer", "domain", "query", "orderBy", "sortOrder"), q, len(match), 100, CapUsers)
	if bad != nil {
		return *bad
	}
	var b strings.Builder
	b.WriteString(`{"kind":"admin#directory#users","etag":"\"sim-users\""`)
	if hi > lo {
		b.WriteString(`,"users":[`)
		for i, u := range match[lo:hi] {
			if i > 0 {
				b.WriteByte(',')
			}
			b.Write(s.userJSON(u, hook))
		}
		b.WriteByte(']')
	}
	if next != "" {
		nb, _ := json.Marshal(next)
		b.WriteString(`,"nextPageToken":`)
		b.Write(nb)
	}
	b.WriteByte('}')
	return reply{code: http.StatusOK, body: []byte(b.String()), page: page}
}

func (s *Sim) usersGet(key string) reply {
	hook := s.hook()
	s.mu.RLock()
	defer s.mu.RUnlock()
	u := s.byKey[strings.ToLower(key)]
	if u == nil || u.deleted {
		return notFound("userKey")
	}
	return reply{code: http.StatusOK, body: s.userJSON(u, hook)}
}

// userJSON is a user as users.list and users.get answer it (projection basic, admin view).
func (s *Sim) userJSON(u *user, hook UserHook) []byte {
	full := strings.TrimSpace(u.GivenName + " " + u.FamilyName)
	m := map[string]any{
		"kind":                       "admin#directory#user",
		"id":                         u.ID,
		"etag":                       `"sim-` + u.ID + `"`,
		"primaryEmail":               u.PrimaryEmail,
		"name":                       map[string]any{"givenName": u.GivenName, "familyName": u.FamilyName, "fullName": full},
		"isAdmin":                    u.IsAdmin,
		"isDelegatedAdmin":           false,
		"lastLoginTime":              "1970-01-01T00:00:00.000Z",
		"creationTime":               "2024-01-15T09:30:00.000Z",
		"agreedToTerms":              true,
		"suspended":                  u.Suspended,
		"archived":                   u.Archived,
		"changePasswordAtNextLogin":  false,
		"ipWhitelisted":              false,
		"emails":                     []map[string]any{{"address": u.PrimaryEmail, "primary": true}},
		"customerId":                 s.customerID,
		"orgUnitPath":                u.OrgUnitPath,
		"isMailboxSetup":             true,
		"isEnrolledIn2Sv":            false,
		"isEnforcedIn2Sv":            false,
		"includeInGlobalAddressList": true,
	}
	if u.Suspended {
		m["suspensionReason"] = "ADMIN"
	}
	if len(u.Aliases) > 0 {
		m["aliases"] = u.Aliases
	}
	if hook != nil {
		hook(u.PrimaryEmail, m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return []byte("null")
	}
	return b
}

func (s *Sim) groupsList(q map[string][]string) reply {
	userKey := first(q, "userKey")
	if bad := s.scopeCheck(q, userKey == ""); bad != nil {
		return *bad
	}
	terms, err := parseQuery(first(q, "query"), groupFields)
	if err != nil {
		return badRequest("Invalid Input: " + err.Error())
	}
	if ob := first(q, "orderBy"); ob != "" && ob != "email" {
		return badRequest("Invalid Input: orderBy")
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var match []*group
	if userKey != "" {
		u := s.byKey[strings.ToLower(userKey)]
		g := s.byGroup[strings.ToLower(userKey)]
		if (u == nil || u.deleted) && g == nil {
			return notFound("userKey")
		}
		for _, gr := range s.groups {
			for _, m := range gr.members {
				if (u != nil && m.u == u) || (g != nil && m.g == g) {
					match = append(match, gr)
					break
				}
			}
		}
	} else {
		match = slices.Clone(s.groups)
	}
	filtered := match[:0:0]
	for _, g := range match {
		if matchGroup(g, terms) {
			filtered = append(filtered, g)
		}
	}
	if first(q, "orderBy") == "email" {
		desc := first(q, "sortOrder") == "DESCENDING"
		sort.SliceStable(filtered, func(i, j int) bool {
			if desc {
				return filtered[i].email > filtered[j].email
			}
			return filtered[i].email < filtered[j].email
		})
	}
	lo, hi, next, page, bad := s.pageOf(EndpointGroupsList, listingID(EndpointGroupsList, q, "customer", "domain", "query", "userKey", "orderBy", "sortOrder"), q, len(filtered), CapGroups, CapGroups)
	if bad != nil {
		return *bad
	}
	type wireGroup struct {
		Kind               string   `json:"kind"`
		ID                 string   `json:"id"`
		Etag               string   `json:"etag"`
		Email              string   `json:"email"`
		Name               string   `json:"name"`
		DirectMembersCount string   `json:"directMembersCount"`
		Description        string   `json:"description"`
		AdminCreated       bool     `json:"adminCreated"`
		NonEditableAliases []string `json:"nonEditableAliases,omitempty"`
	}
	out := struct {
		Kind          string      `json:"kind"`
		Etag          string      `json:"etag"`
		Groups        []wireGroup `json:"groups,omitempty"`
		NextPageToken string      `json:"nextPageToken,omitempty"`
	}{Kind: "admin#directory#groups", Etag: `"sim-groups"`, NextPageToken: next}
	for _, g := range filtered[lo:hi] {
		out.Groups = append(out.Groups, wireGroup{
			Kind: "admin#directory#group", ID: g.id, Etag: `"sim-` + g.id + `"`, Email: g.email, Name: g.name,
			DirectMembersCount: itoa(len(g.members)), Description: g.desc, AdminCreated: true,
		})
	}
	b, _ := json.Marshal(out)
	return reply{code: http.StatusOK, body: b, page: page}
}

// wireMember is a member as members.list answers it.
type wireMember struct {
	Kind             string `json:"kind"`
	Etag             string `json:"etag"`
	ID               string `json:"id"`
	Email            string `json:"email,omitempty"`
	Role             string `json:"role"`
	Type             string `json:"type"`
	Status           string `json:"status,omitempty"`
	DeliverySettings string `json:"delivery_settings,omitempty"`
}

func (s *Sim) membersList(key string, q map[string][]string) reply {
	derived := false
	switch v := first(q, "includeDerivedMembership"); v {
	case "", "false":
	case "true":
		derived = true
	default:
		return badRequest("Invalid value for includeDerivedMembership")
	}
	roles := map[string]bool{}
	if r := first(q, "roles"); r != "" {
		for _, x := range strings.Split(r, ",") {
			x = strings.ToUpper(strings.TrimSpace(x))
			if x != "OWNER" && x != "MANAGER" && x != "MEMBER" {
				return badRequest("Invalid Input: roles")
			}
			roles[x] = true
		}
	}
	if len(roles) > 0 && !roles["MEMBER"] {
		// Every simulated member has role MEMBER.
		b, _ := json.Marshal(map[string]any{"kind": "admin#directory#members", "etag": `"sim-members"`})
		return reply{code: http.StatusOK, body: b}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	g := s.byGroup[strings.ToLower(key)]
	if g == nil {
		return notFound("groupKey")
	}
	list := s.memberList(g, derived)
	lo, hi, next, page, bad := s.pageOf(EndpointMembersList, listingID(EndpointMembersList, q, "includeDerivedMembership", "roles")+":"+g.id, q, len(list), CapMembers, CapMembers)
	if bad != nil {
		return *bad
	}
	out := struct {
		Kind          string       `json:"kind"`
		Etag          string       `json:"etag"`
		Members       []wireMember `json:"members,omitempty"`
		NextPageToken string       `json:"nextPageToken,omitempty"`
	}{Kind: "admin#directory#members", Etag: `"sim-members"`, Members: list[lo:hi], NextPageToken: next}
	if hi == lo {
		out.Members = nil
	}
	b, _ := json.Marshal(out)
	return reply{code: http.StatusOK, body: b, page: page}
}

// memberList is a group's members in listing order: its direct members, and with derived the
// users of every group nested in it (each once, after the direct ones).
func (s *Sim) memberList(g *group, derived bool) []wireMember {
	var out []wireMember
	seen := map[string]bool{}
	add := func(m memberRef) {
		var w wireMember
		switch {
		case m.customer:
			w = wireMember{ID: s.customerID, Type: "CUSTOMER"}
		case m.u != nil:
			if m.u.deleted {
				return
			}
			status := "ACTIVE"
			if m.u.Suspended {
				status = "SUSPENDED"
			}
			w = wireMember{ID: m.u.ID, Email: m.u.PrimaryEmail, Type: "USER", Status: status, DeliverySettings: "ALL_MAIL"}
		case m.g != nil:
			w = wireMember{ID: m.g.id, Email: m.g.email, Type: "GROUP"}
		}
		if seen[w.ID] {
			return
		}
		seen[w.ID] = true
		w.Kind, w.Etag, w.Role = "admin#directory#member", `"sim-m-`+w.ID+`"`, "MEMBER"
		out = append(out, w)
	}
	for _, m := range g.members {
		add(m)
	}
	if !derived {
		return out
	}
	visited := map[*group]bool{g: true}
	queue := []*group{g}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, m := range cur.members {
			if m.g != nil && !visited[m.g] {
				visited[m.g] = true
				queue = append(queue, m.g)
			}
			if cur != g && m.u != nil {
				add(m)
			}
		}
	}
	return out
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
