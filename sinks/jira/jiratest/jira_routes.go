package jiratest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// --- response helpers ----------------------------------------------------------------------

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

// errorCollection is Jira's error body (ErrorCollection).
type errorCollection struct {
	ErrorMessages []string          `json:"errorMessages"`
	Errors        map[string]string `json:"errors"`
}

func writeJira(w http.ResponseWriter, status int, msgs ...string) {
	if msgs == nil {
		msgs = []string{}
	}
	writeJSON(w, status, errorCollection{ErrorMessages: msgs, Errors: map[string]string{}})
}

func writeJiraField(w http.ResponseWriter, status int, field, msg string) {
	writeJSON(w, status, errorCollection{ErrorMessages: []string{}, Errors: map[string]string{field: msg}})
}

// jsmError is JSM's error body (ErrorResponse).
type jsmError struct {
	ErrorMessage     string  `json:"errorMessage"`
	I18nErrorMessage i18nMsg `json:"i18nErrorMessage"`
}

type i18nMsg struct {
	I18nKey    string   `json:"i18nKey"`
	Parameters []string `json:"parameters"`
}

func writeJSM(w http.ResponseWriter, status int, key, msg string) {
	writeJSON(w, status, jsmError{ErrorMessage: msg, I18nErrorMessage: i18nMsg{I18nKey: key, Parameters: []string{}}})
}

func writeFamily(w http.ResponseWriter, fam family, status int, msg string) {
	switch fam {
	case famJSM:
		writeJSM(w, status, "sd.error."+strconv.Itoa(status), msg)
	case famAdmin:
		writeJSON(w, status, map[string]any{"key": strings.ToLower(strings.ReplaceAll(http.StatusText(status), " ", "")), "message": msg})
	case famOrg:
		writeOrgError(w, status, strings.ToUpper(strings.ReplaceAll(http.StatusText(status), " ", "_")), msg)
	default:
		writeJira(w, status, msg)
	}
}

func readAll(r io.Reader) ([]byte, error) { return io.ReadAll(r) }

func baseURL(r *http.Request) string { return "http://" + r.Host }

// badParam is a parameter error worded as the API words it (a sentence, shown to clients).
type badParam string

func (b badParam) Error() string { return string(b) }

// intParam reads a non-negative integer query parameter.
func intParam(q url.Values, name string, def int) (int, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, badParam(fmt.Sprintf("The value '%s' is invalid for the parameter '%s'.", v, name))
	}
	return n, nil
}

func boolParam(q url.Values, name string, def bool) (bool, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badParam(fmt.Sprintf("The value '%s' is invalid for the parameter '%s'.", v, name))
	}
	return b, nil
}

// paging reads startAt/maxResults, capping maxResults at cap (Jira echoes the cap).
func paging(q url.Values, cap int) (start, max int, err error) {
	if start, err = intParam(q, "startAt", 0); err != nil {
		return
	}
	if max, err = intParam(q, "maxResults", 50); err != nil {
		return
	}
	if max > cap {
		max = cap
	}
	return
}

func window[T any](all []T, start, max int) []T {
	if start >= len(all) {
		return []T{}
	}
	end := min(len(all), start+max)
	return all[start:end]
}

// gdprStrict answers the dead username/key parameters as Jira does.
func gdprStrict(w http.ResponseWriter, q url.Values) bool {
	for _, p := range []string{"username", "key"} {
		if q.Has(p) {
			writeJira(w, http.StatusBadRequest, "The query parameter '"+p+"' is not supported in GDPR strict mode.")
			return true
		}
	}
	return false
}

// msgNoUser is Jira's answer for an unknown (or invisible) account.
const msgNoUser = "Specified user does not exist or you do not have required permissions"

// accountIDParam reads the required accountId query parameter (GDPR strict mode: username
// and key are refused); false means an error was written.
func accountIDParam(w http.ResponseWriter, q url.Values) (string, bool) {
	if gdprStrict(w, q) {
		return "", false
	}
	id := q.Get("accountId")
	if id == "" {
		writeJira(w, http.StatusBadRequest, "The query parameter 'accountId' is required.")
		return "", false
	}
	return id, true
}

// onSite returns the account if it is on the site, else answers 404. The caller holds s.mu.
func (s *Sim) onSite(w http.ResponseWriter, id string) *account {
	a := s.st.accounts[id]
	if a == nil || !a.onSite {
		writeJira(w, http.StatusNotFound, msgNoUser)
		return nil
	}
	return a
}

// --- JSON shapes ---------------------------------------------------------------------------

type avatarURLs struct {
	X16 string `json:"16x16"`
	X24 string `json:"24x24"`
	X32 string `json:"32x32"`
	X48 string `json:"48x48"`
}

func avatars(id string) avatarURLs {
	b := "https://avatar-management.example.invalid/initials/" + url.PathEscape(id) + ".png?size="
	return avatarURLs{X16: b + "16", X24: b + "24", X32: b + "32", X48: b + "48"}
}

// userJSON is the platform User (and, without AppType/Locale/Groups, UserDetails).
type userJSON struct {
	Self             string          `json:"self"`
	AccountID        string          `json:"accountId"`
	AccountType      string          `json:"accountType"`
	AppType          string          `json:"appType,omitempty"`
	EmailAddress     string          `json:"emailAddress,omitempty"`
	DisplayName      string          `json:"displayName"`
	Active           bool            `json:"active"`
	TimeZone         string          `json:"timeZone"`
	Locale           string          `json:"locale,omitempty"`
	AvatarURLs       avatarURLs      `json:"avatarUrls"`
	Groups           *listWrapper    `json:"groups,omitempty"`
	ApplicationRoles *listWrapperAny `json:"applicationRoles,omitempty"`
	Expand           string          `json:"expand,omitempty"`
}

type listWrapper struct {
	Size       int         `json:"size"`
	Items      []groupName `json:"items"`
	MaxResults int         `json:"max-results"`
}

type listWrapperAny struct {
	Size  int               `json:"size"`
	Items []applicationRole `json:"items"`
}

type groupName struct {
	GroupID string `json:"groupId"`
	Name    string `json:"name"`
	Self    string `json:"self"`
}

func (s *Sim) userJSON(base string, a *account, details bool) userJSON {
	u := userJSON{
		Self:        base + "/rest/api/3/user?accountId=" + url.QueryEscape(a.id),
		AccountID:   a.id,
		AccountType: a.typ,
		DisplayName: a.displayName,
		Active:      a.usable(),
		TimeZone:    "Etc/UTC",
		AvatarURLs:  avatars(a.id),
	}
	if !a.hideEmail {
		u.EmailAddress = a.email
	}
	if !details {
		u.Locale = "en_US"
		u.AppType = a.appType
	}
	return u
}

func groupSelf(base, id string) string {
	return base + "/rest/api/3/group?groupId=" + url.QueryEscape(id)
}

// pageBean is Jira's PageBean.
type pageBean[T any] struct {
	Self       string `json:"self"`
	NextPage   string `json:"nextPage,omitempty"`
	MaxResults int    `json:"maxResults"`
	StartAt    int    `json:"startAt"`
	Total      int    `json:"total"`
	IsLast     bool   `json:"isLast"`
	Values     []T    `json:"values"`
}

func newPageBean[T any](r *http.Request, all []T, start, max int) pageBean[T] {
	vals := window(all, start, max)
	p := pageBean[T]{MaxResults: max, StartAt: start, Total: len(all), Values: vals,
		IsLast: start+len(vals) >= len(all)}
	q := r.URL.Query()
	q.Set("startAt", strconv.Itoa(start))
	q.Set("maxResults", strconv.Itoa(max))
	p.Self = baseURL(r) + r.URL.Path + "?" + q.Encode()
	if !p.IsLast {
		q.Set("startAt", strconv.Itoa(start+len(vals)))
		p.NextPage = baseURL(r) + r.URL.Path + "?" + q.Encode()
	}
	return p
}

func decodeBody(r *http.Request, v any) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return errors.New("request body is empty")
	}
	return json.Unmarshal(b, v)
}

// --- users ---------------------------------------------------------------------------------

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

// --- groups --------------------------------------------------------------------------------

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

// --- application roles ---------------------------------------------------------------------

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
