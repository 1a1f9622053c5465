package jiratest

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

type groupDetails struct {
	GroupID string `json:"groupId"`
	Name    string `json:"name"`
}

func (s *Sim) bulkGetGroups(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	start, max, err := paging(q, s.knobs().Caps.GroupBulk)
	if err != nil {
		writeJira(w, http.StatusBadRequest, err.Error())
		return
	}
	access := q.Get("accessType")
	if access != "" && access != AccessSiteAdmin && access != AccessAdmin && access != AccessUser {
		writeJira(w, http.StatusBadRequest, "Invalid access type: "+access+".")
		return
	}
	appKey := q.Get("applicationKey")
	if appKey != "" && !slices.Contains(validProducts, appKey) {
		writeJira(w, http.StatusBadRequest, "Invalid application key: "+appKey+".")
		return
	}
	ids, names := q["groupId"], q["groupName"]
	s.mu.RLock()
	defer s.mu.RUnlock()
	product := s.st.productGroups()
	var roleGroups map[string]bool
	if appKey != "" {
		roleGroups = map[string]bool{}
		for _, rl := range s.st.roles {
			if rl.Key == appKey {
				for _, g := range rl.Groups {
					roleGroups[strings.ToLower(g)] = true
				}
			}
		}
	}
	all := []groupDetails{}
	for _, gid := range s.st.groupSeq {
		g := s.st.groups[gid]
		lname := strings.ToLower(g.name)
		if len(ids) > 0 || len(names) > 0 {
			hit := slices.Contains(ids, g.id) || slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(n, g.name) })
			if !hit {
				continue
			}
		}
		switch access {
		case AccessSiteAdmin, AccessAdmin:
			if g.accessType != access {
				continue
			}
		case AccessUser:
			if !product[lname] {
				continue
			}
		}
		if roleGroups != nil && !roleGroups[lname] {
			continue
		}
		all = append(all, groupDetails{GroupID: g.id, Name: g.name})
	}
	writeJSON(w, http.StatusOK, newPageBean(r, all, start, max))
}

// groupResponse is the Group body of POST /group and POST /group/user.
type groupResponse struct {
	Expand  string    `json:"expand"`
	GroupID string    `json:"groupId"`
	Name    string    `json:"name"`
	Self    string    `json:"self"`
	Users   groupList `json:"users"`
}

type groupList struct {
	EndIndex   int        `json:"end-index"`
	Items      []userJSON `json:"items"`
	MaxResults int        `json:"max-results"`
	Size       int        `json:"size"`
	StartIndex int        `json:"start-index"`
}

func (s *Sim) groupResponse(base string, g *group) groupResponse {
	return groupResponse{Expand: "users", GroupID: g.id, Name: g.name, Self: groupSelf(base, g.id),
		Users: groupList{Items: []userJSON{}, MaxResults: 50, Size: len(g.members.m)}}
}

// MsgGroupExists is the 400 message of POST /group for a name in use (wording chosen here;
// the spec says only "the group name is in use").
const MsgGroupExists = "A group with this name already exists."

func (s *Sim) createGroup(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name *string `json:"name"`
	}
	if err := decodeBody(r, &body); err != nil {
		writeJira(w, http.StatusBadRequest, "Invalid request payload. Refer to the REST API documentation and try again.")
		return
	}
	if body.Name == nil || strings.TrimSpace(*body.Name) == "" {
		writeJiraField(w, http.StatusBadRequest, "name", "You must specify a group name.")
		return
	}
	if len(*body.Name) > 255 {
		writeJiraField(w, http.StatusBadRequest, "name", "The group name must not exceed 255 characters.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.groupByName(*body.Name) != nil {
		writeJira(w, http.StatusBadRequest, MsgGroupExists)
		return
	}
	g, err := s.st.addGroup(*body.Name, "")
	if err != nil {
		writeJira(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, s.groupResponse(baseURL(r), g))
}

// lookupGroup resolves groupname or groupId (exactly one of them) and writes the error if it
// cannot.
func (s *Sim) lookupGroup(w http.ResponseWriter, q url.Values) *group {
	name, id := q.Get("groupname"), q.Get("groupId")
	switch {
	case name != "" && id != "":
		writeJira(w, http.StatusBadRequest, "You must provide either the groupname or the groupId, not both.")
		return nil
	case name == "" && id == "":
		writeJira(w, http.StatusBadRequest, "You must specify a group name or group ID.")
		return nil
	}
	var g *group
	if id != "" {
		g = s.st.groups[id]
	} else {
		g = s.st.groupByName(name)
	}
	if g == nil {
		writeJira(w, http.StatusNotFound, "The specified group does not exist.")
	}
	return g
}

func (s *Sim) removeGroup(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.lookupGroup(w, q)
	if g == nil {
		return
	}
	if g.accessType == AccessSiteAdmin {
		writeJira(w, http.StatusBadRequest, "The site administrators group cannot be deleted.")
		return
	}
	delete(s.st.groups, g.id)
	delete(s.st.groupName, strings.ToLower(g.name))
	s.st.groupSeq = slices.DeleteFunc(s.st.groupSeq, func(id string) bool { return id == g.id })
	w.WriteHeader(http.StatusOK)
}

// getGroupMembers serves group/member: members ordered by accountId (Jira orders by the
// username it does not return), index lag applied, inactive users only on request.
func (s *Sim) getGroupMembers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	start, max, err := paging(q, s.knobs().Caps.GroupMember)
	if err == nil && max == 0 {
		err = badParam("The maxResults parameter must be between 1 and 50.")
	}
	if err != nil {
		writeJira(w, http.StatusBadRequest, err.Error())
		return
	}
	inactive, err := boolParam(q, "includeInactiveUsers", false)
	if err != nil {
		writeJira(w, http.StatusBadRequest, err.Error())
		return
	}
	now := s.clock.Now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	g := s.lookupGroup(w, q)
	if g == nil {
		return
	}
	base := baseURL(r)
	var all []*account
	for _, id := range g.members.list() {
		a := s.st.accounts[id]
		if a == nil || !a.onSite || !s.st.indexed(a, now) || (!a.usable() && !inactive) {
			continue
		}
		all = append(all, a)
	}
	page := window(all, start, max)
	vals := make([]userJSON, 0, len(page))
	for _, a := range page {
		vals = append(vals, s.userJSON(base, a, true))
	}
	p := newPageBean(r, make([]userJSON, len(all)), start, max)
	p.Values = vals
	writeJSON(w, http.StatusOK, p)
}

// MsgAlreadyMember is the 400 message of POST /rest/api/3/group/user for an account already
// in the group (wording chosen here; the spec does not document the case).
const MsgAlreadyMember = "Cannot add user. User is already a member of the group."

// MsgNotMember is the message of the 404 that DELETE /rest/api/3/group/user answers for an
// account that is on the site but not in the group. It is the wording Jira is reported to
// use for an unknown user on this endpoint (msgNoUser), so a client cannot tell the two
// cases apart by text, and must not try: see removeUserFromGroup.
const MsgNotMember = msgNoUser

func (s *Sim) addUserToGroup(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var body struct {
		AccountID string `json:"accountId"`
	}
	if err := decodeBody(r, &body); err != nil {
		writeJira(w, http.StatusBadRequest, "Invalid request payload. Refer to the REST API documentation and try again.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.lookupGroup(w, q)
	if g == nil || s.membershipFault(w, r.Method, g) {
		return
	}
	if body.AccountID == "" {
		writeJiraField(w, http.StatusBadRequest, "accountId", "You must specify the accountId of the user.")
		return
	}
	a := s.onSite(w, body.AccountID)
	if a == nil {
		return
	}
	if g.members.has(a.id) {
		writeJira(w, http.StatusBadRequest, MsgAlreadyMember)
		return
	}
	if seats := s.knobs().Seats; seats > 0 && s.st.productGroups()[strings.ToLower(g.name)] &&
		a.typ == TypeAtlassian && a.usable() && !s.st.hasAccess(a) && s.st.licensed()+1 > seats {
		writeJira(w, http.StatusBadRequest, MsgSeatLimit)
		return
	}
	g.members.add(a.id)
	writeJSON(w, http.StatusCreated, s.groupResponse(baseURL(r), g))
}

// removeUserFromGroup serves DELETE /group/user: 200 when the account left the group; 400
// without groupname/groupId or accountId; 404 when the group or the user is not found, as
// the spec documents. The spec is silent on an account that is on the site but not in the
// group; the simulator answers 404 with the unknown-user message (MsgNotMember), the nearest
// documented answer: there is no such membership to remove. Whether an account is still a
// member is for clients to read (user/groups, group/member), not to infer from the message.
func (s *Sim) removeUserFromGroup(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Has("username") {
		writeJira(w, http.StatusBadRequest, "The query parameter 'username' is not supported in GDPR strict mode.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.lookupGroup(w, q)
	if g == nil || s.membershipFault(w, r.Method, g) {
		return
	}
	id := q.Get("accountId")
	if id == "" {
		writeJira(w, http.StatusBadRequest, "The query parameter 'accountId' is required.")
		return
	}
	if s.onSite(w, id) == nil {
		return
	}
	if !g.members.remove(id) {
		writeJira(w, http.StatusNotFound, MsgNotMember)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// membershipFault answers a POST or DELETE /group/user on g with the status of a matching
// MembershipFault, if one is set; true means it answered. The caller holds s.mu.
func (s *Sim) membershipFault(w http.ResponseWriter, method string, g *group) bool {
	k := s.knobs()
	for _, f := range k.MembershipFaults {
		if f.Status == 0 || f.Method != "" && !strings.EqualFold(f.Method, method) {
			continue
		}
		if f.Group != g.id && !strings.EqualFold(f.Group, g.name) {
			continue
		}
		if f.Status == http.StatusTooManyRequests || f.Status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", strconv.Itoa(ceilSeconds(k.RetryAfter)))
		}
		msg := http.StatusText(f.Status)
		if msg == "" {
			msg = "Status " + strconv.Itoa(f.Status)
		}
		writeJira(w, f.Status, "Membership of group "+g.name+" cannot be changed now: "+msg+".")
		return true
	}
	return false
}
