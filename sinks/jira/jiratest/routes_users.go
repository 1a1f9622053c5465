package jiratest

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
)

// getAllUsers serves users/search (and /users): every account of the site, active or not,
// including app and customer accounts, in creation order, as a bare array.
func (s *Sim) getAllUsers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	start, max, err := paging(q, s.knobs().Caps.UsersSearch)
	if err != nil {
		writeJira(w, http.StatusBadRequest, err.Error())
		return
	}
	now := s.clock.Now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	base := baseURL(r)
	var all []*account
	for _, id := range s.st.order {
		a := s.st.accounts[id]
		if a.onSite && s.st.indexed(a, now) {
			all = append(all, a)
		}
	}
	out := []userJSON{}
	for _, a := range window(all, start, max) {
		out = append(out, s.userJSON(base, a, false))
	}
	writeJSON(w, http.StatusOK, out)
}

// findUsers serves user/search: active users only, query is a case-insensitive prefix match
// on the display name (or any word of it) and the email; filtered first, then paged, up to the
// thousandth user.
func (s *Sim) findUsers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Has("username") {
		writeJira(w, http.StatusBadRequest, "The query parameter 'username' is not supported in GDPR strict mode.")
		return
	}
	query, accountID, property := q.Get("query"), q.Get("accountId"), q.Get("property")
	switch {
	case query == "" && accountID == "" && property == "":
		writeJira(w, http.StatusBadRequest, "One of 'query', 'accountId' or 'property' query parameters must be provided.")
		return
	case query != "" && accountID != "":
		writeJira(w, http.StatusBadRequest, "The 'query' and 'accountId' query parameters cannot be used together.")
		return
	case property != "":
		writeJira(w, http.StatusBadRequest, "The 'property' query parameter is not supported by this site.")
		return
	}
	k := s.knobs()
	start, max, err := paging(q, k.Caps.UserSearch)
	if err != nil {
		writeJira(w, http.StatusBadRequest, err.Error())
		return
	}
	now := s.clock.Now()
	needle := strings.ToLower(query)
	s.mu.RLock()
	defer s.mu.RUnlock()
	var all []*account
	for _, id := range s.st.order {
		a := s.st.accounts[id]
		if !a.onSite || !a.usable() || !s.st.indexed(a, now) {
			continue
		}
		if accountID != "" {
			if a.id == accountID {
				all = append(all, a)
			}
			continue
		}
		if matchesQuery(a, needle, k.HiddenEmailSearchable) {
			all = append(all, a)
		}
	}
	if len(all) > k.Caps.UserSearch {
		all = all[:k.Caps.UserSearch]
	}
	base := baseURL(r)
	out := []userJSON{}
	for _, a := range window(all, start, max) {
		out = append(out, s.userJSON(base, a, false))
	}
	writeJSON(w, http.StatusOK, out)
}

func matchesQuery(a *account, needle string, hiddenSearchable bool) bool {
	if a.email != "" && (!a.hideEmail || hiddenSearchable) && strings.HasPrefix(strings.ToLower(a.email), needle) {
		return true
	}
	name := strings.ToLower(a.displayName)
	if strings.HasPrefix(name, needle) {
		return true
	}
	for _, word := range strings.Fields(name) {
		if strings.HasPrefix(word, needle) {
			return true
		}
	}
	return false
}

// getUser serves GET /user?accountId= (read-your-writes: no index lag).
func (s *Sim) getUser(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	id, ok := accountIDParam(w, q)
	if !ok {
		return
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	a := s.onSite(w, id)
	if a == nil {
		return
	}
	u := s.userJSON(baseURL(r), a, false)
	u.Expand = "groups,applicationRoles"
	for _, e := range strings.Split(q.Get("expand"), ",") {
		switch strings.TrimSpace(e) {
		case "groups":
			items := s.userGroups(baseURL(r), a.id)
			u.Groups = &listWrapper{Size: len(items), Items: items, MaxResults: 1000}
		case "applicationRoles":
			var roles []applicationRole
			for _, role := range s.st.roles {
				if a.suspended {
					break // no product access while suspended
				}
				for _, g := range role.Groups {
					if gr := s.st.groupByName(g); gr != nil && gr.members.has(a.id) {
						roles = append(roles, s.roleJSON(baseURL(r), role))
						break
					}
				}
			}
			if roles == nil {
				roles = []applicationRole{}
			}
			u.ApplicationRoles = &listWrapperAny{Size: len(roles), Items: roles}
		}
	}
	writeJSON(w, http.StatusOK, u)
}

func (s *Sim) myself(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.st.byEmail[strings.ToLower(s.email)]
	if !ok {
		writeJira(w, http.StatusNotFound, msgNoUser)
		return
	}
	writeJSON(w, http.StatusOK, s.userJSON(baseURL(r), s.st.accounts[id], false))
}

// Messages of POST /rest/api/3/user. The missing-products one is quoted from public reports;
// the others are this simulator's wording for cases the spec names without a body.
const (
	MsgProductsRequired = "You must specify the products that user can access."
	MsgSeatLimit        = "Unable to create or add the user: you have exceeded the number of licensed users for your site."
	MsgExistsNoAccess   = "The user already exists but does not have access to Jira."
)

var validProducts = []string{"jira-core", "jira-servicedesk", "jira-product-discovery", "jira-software"}

// createUser serves POST /user: the account is created (or, when the email already has an
// Atlassian account that left the site, brought back with the same accountId) and added to the
// default groups of each product. An existing user with access gets 201 and the same account; an
// existing user without access gets 400, as the spec says.
func (s *Sim) createUser(w http.ResponseWriter, r *http.Request) {
	var body map[string]json.RawMessage
	if err := decodeBody(r, &body); err != nil {
		writeJira(w, http.StatusBadRequest, "Invalid request payload. Refer to the REST API documentation and try again.")
		return
	}
	var email string
	if raw, ok := body["emailAddress"]; ok {
		_ = json.Unmarshal(raw, &email)
	}
	email = strings.TrimSpace(email)
	if email == "" {
		writeJiraField(w, http.StatusBadRequest, "emailAddress", "You must specify an email address.")
		return
	}
	if !strings.Contains(email, "@") || strings.ContainsAny(email, " \t") {
		writeJiraField(w, http.StatusBadRequest, "emailAddress", "You must specify a valid email address.")
		return
	}
	raw, ok := body["products"]
	if !ok {
		writeJira(w, http.StatusBadRequest, MsgProductsRequired)
		return
	}
	var products []string
	if err := json.Unmarshal(raw, &products); err != nil {
		writeJira(w, http.StatusBadRequest, "The products field must be a list of product keys.")
		return
	}
	k := s.knobs()
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var roles []*Role
	for _, p := range products {
		if !slices.Contains(validProducts, p) {
			writeJira(w, http.StatusBadRequest, "Invalid product: "+p+". Valid products are: "+strings.Join(validProducts, ", ")+".")
			return
		}
		role := s.st.role(p)
		if role == nil {
			writeJira(w, http.StatusBadRequest, "The product "+p+" is not available on this site.")
			return
		}
		roles = append(roles, role)
	}
	base := baseURL(r)
	if id, ok := s.st.byEmail[strings.ToLower(email)]; ok {
		a := s.st.accounts[id]
		switch {
		case a.typ != TypeAtlassian:
			writeJira(w, http.StatusBadRequest, "A "+a.typ+" account already exists for this email address.")
			return
		case a.onSite && s.st.hasAccess(a):
			writeJSON(w, http.StatusCreated, s.userJSON(base, a, false))
			return
		case a.onSite:
			writeJira(w, http.StatusBadRequest, MsgExistsNoAccess)
			return
		}
		// An Atlassian account that left the site comes back with its own accountId.
		if len(roles) > 0 && k.Seats > 0 && s.st.licensed()+1 > k.Seats {
			writeJira(w, http.StatusBadRequest, MsgSeatLimit)
			return
		}
		a.onSite = true
		a.created = now
		s.addDefaultGroups(a, roles)
		writeJSON(w, http.StatusCreated, s.userJSON(base, a, false))
		return
	}
	if len(roles) > 0 && k.Seats > 0 && s.st.licensed()+1 > k.Seats {
		writeJira(w, http.StatusBadRequest, MsgSeatLimit)
		return
	}
	// The API ignores displayName: an invited person is shown by the local part of the
	// address until they set their profile up.
	a := &account{typ: TypeAtlassian, email: email, displayName: localPart(email), active: true, onSite: true, created: now}
	a.nickname = a.displayName
	if err := s.st.addAccount(a); err != nil {
		writeJira(w, http.StatusInternalServerError, err.Error())
		return
	}
	s.addDefaultGroups(a, roles)
	writeJSON(w, http.StatusCreated, s.userJSON(base, a, false))
}

func (s *Sim) addDefaultGroups(a *account, roles []*Role) {
	for _, role := range roles {
		for _, name := range role.DefaultGroups {
			if g := s.st.groupByName(name); g != nil {
				g.members.add(a.id)
			}
		}
	}
}

// removeUser serves DELETE /user: the account leaves the site's user base (and its groups);
// the Atlassian account itself lives on.
func (s *Sim) removeUser(w http.ResponseWriter, r *http.Request) {
	id, ok := accountIDParam(w, r.URL.Query())
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.onSite(w, id)
	if a == nil {
		return
	}
	if a.typ == TypeApp || strings.EqualFold(a.email, s.email) {
		writeJira(w, http.StatusBadRequest, "The user cannot be removed.")
		return
	}
	a.onSite = false
	for _, g := range s.st.groups {
		g.members.remove(id)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Sim) userGroups(base, id string) []groupName {
	out := []groupName{}
	for _, gid := range s.st.groupSeq {
		g := s.st.groups[gid]
		if g.members.has(id) {
			out = append(out, groupName{GroupID: g.id, Name: g.name, Self: groupSelf(base, g.id)})
		}
	}
	return out
}

func (s *Sim) getUserGroups(w http.ResponseWriter, r *http.Request) {
	id, ok := accountIDParam(w, r.URL.Query())
	if !ok {
		return
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	a := s.onSite(w, id)
	if a == nil {
		return
	}
	writeJSON(w, http.StatusOK, s.userGroups(baseURL(r), id))
}
