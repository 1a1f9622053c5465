package jiratest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// jsmPage is JSM's paged shape (PagedDTO...): start/limit/size/isLastPage plus _links.
type jsmPage[T any] struct {
	Expands    []string     `json:"_expands"`
	Size       int          `json:"size"`
	Start      int          `json:"start"`
	Limit      int          `json:"limit"`
	IsLastPage bool         `json:"isLastPage"`
	Links      pagedLinkDTO `json:"_links"`
	Values     []T          `json:"values"`
}

type pagedLinkDTO struct {
	Base    string `json:"base"`
	Context string `json:"context"`
	Next    string `json:"next,omitempty"`
	Prev    string `json:"prev,omitempty"`
	Self    string `json:"self"`
}

func (s *Sim) jsmPaging(q url.Values) (start, limit int, err error) {
	if start, err = intParam(q, "start", 0); err != nil {
		return
	}
	if limit, err = intParam(q, "limit", 50); err != nil {
		return
	}
	if c := s.knobs().Caps.JSM; limit > c {
		limit = c
	}
	return
}

func newJSMPage[T any](r *http.Request, all []T, start, limit int) jsmPage[T] {
	vals := window(all, start, limit)
	p := jsmPage[T]{Expands: []string{}, Size: len(vals), Start: start, Limit: limit, Values: vals,
		IsLastPage: start+len(vals) >= len(all)}
	base := baseURL(r)
	q := r.URL.Query()
	p.Links = pagedLinkDTO{Base: base, Context: "", Self: base + r.URL.RequestURI()}
	if !p.IsLastPage {
		q.Set("start", strconv.Itoa(start+len(vals)))
		q.Set("limit", strconv.Itoa(limit))
		p.Links.Next = base + r.URL.Path + "?" + q.Encode()
	}
	if start > 0 {
		q.Set("start", strconv.Itoa(max(0, start-limit)))
		q.Set("limit", strconv.Itoa(limit))
		p.Links.Prev = base + r.URL.Path + "?" + q.Encode()
	}
	return p
}

// experimental enforces X-ExperimentalApi: opt-in (412 without it).
func (s *Sim) experimental(w http.ResponseWriter, r *http.Request) bool {
	if s.knobs().ExperimentalOptional || strings.EqualFold(r.Header.Get("X-ExperimentalApi"), "opt-in") {
		return true
	}
	writeJSM(w, http.StatusPreconditionFailed, "sd.api.experimental.required",
		"This API is experimental. Experimental APIs are not guaranteed to be stable within the preview period. You must set the header 'X-ExperimentalApi: opt-in' to opt into using this API.")
	return false
}

type selfLink struct {
	Self string `json:"self"`
}

type serviceDeskDTO struct {
	ID          string   `json:"id"`
	ProjectID   string   `json:"projectId"`
	ProjectKey  string   `json:"projectKey"`
	ProjectName string   `json:"projectName"`
	Links       selfLink `json:"_links"`
}

func deskJSON(base string, d *desk) serviceDeskDTO {
	return serviceDeskDTO{ID: d.id, ProjectID: d.projectID, ProjectKey: d.key, ProjectName: d.name,
		Links: selfLink{Self: base + "/rest/servicedeskapi/servicedesk/" + d.id}}
}

type userDTO struct {
	AccountID    string      `json:"accountId"`
	Active       bool        `json:"active"`
	DisplayName  string      `json:"displayName"`
	EmailAddress string      `json:"emailAddress,omitempty"`
	TimeZone     string      `json:"timeZone"`
	Links        userLinkDTO `json:"_links"`
}

type userLinkDTO struct {
	AvatarURLs map[string]string `json:"avatarUrls"`
	JiraRest   string            `json:"jiraRest"`
	Self       string            `json:"self"`
}

func userDTOJSON(base string, a *account) userDTO {
	av := avatars(a.id)
	u := userDTO{AccountID: a.id, Active: a.usable(), DisplayName: a.displayName, TimeZone: "Etc/UTC",
		Links: userLinkDTO{
			AvatarURLs: map[string]string{"16x16": av.X16, "24x24": av.X24, "32x32": av.X32, "48x48": av.X48},
			JiraRest:   base + "/rest/api/2/user?accountId=" + url.QueryEscape(a.id),
			Self:       base + "/rest/api/2/user?accountId=" + url.QueryEscape(a.id),
		}}
	if !a.hideEmail {
		u.EmailAddress = a.email
	}
	return u
}

func (s *Sim) getServiceDesks(w http.ResponseWriter, r *http.Request) {
	start, limit, err := s.jsmPaging(r.URL.Query())
	if err != nil {
		writeJSM(w, http.StatusBadRequest, "sd.api.pagination.invalid", err.Error())
		return
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	all := []serviceDeskDTO{}
	for _, d := range s.st.desks {
		all = append(all, deskJSON(baseURL(r), d))
	}
	writeJSON(w, http.StatusOK, newJSMPage(r, all, start, limit))
}

func (s *Sim) deskOr404(w http.ResponseWriter, r *http.Request) *desk {
	d := s.st.resolveDesk(r.PathValue("serviceDeskId"))
	if d == nil {
		writeJSM(w, http.StatusNotFound, "sd.servicedesk.error.not.found", "The service desk does not exist.")
	}
	return d
}

func (s *Sim) getServiceDesk(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if d := s.deskOr404(w, r); d != nil {
		writeJSON(w, http.StatusOK, deskJSON(baseURL(r), d))
	}
}

// getCustomers is experimental; query matches display name, name or email.
func (s *Sim) getCustomers(w http.ResponseWriter, r *http.Request) {
	if !s.experimental(w, r) {
		return
	}
	q := r.URL.Query()
	start, limit, err := s.jsmPaging(q)
	if err != nil {
		writeJSM(w, http.StatusBadRequest, "sd.api.pagination.invalid", err.Error())
		return
	}
	needle := strings.ToLower(q.Get("query"))
	s.mu.RLock()
	defer s.mu.RUnlock()
	d := s.deskOr404(w, r)
	if d == nil {
		return
	}
	base := baseURL(r)
	all := []userDTO{}
	for _, id := range d.customers.list() {
		a := s.st.accounts[id]
		if a == nil || !a.onSite {
			continue
		}
		if needle != "" && !strings.Contains(strings.ToLower(a.displayName), needle) &&
			!strings.Contains(strings.ToLower(a.email), needle) {
			continue
		}
		all = append(all, userDTOJSON(base, a))
	}
	writeJSON(w, http.StatusOK, newJSMPage(r, all, start, limit))
}

type accountIDsBody struct {
	AccountIDs []string `json:"accountIds"`
	Usernames  []string `json:"usernames"`
}

func (s *Sim) readAccountIDs(w http.ResponseWriter, r *http.Request) (accountIDsBody, bool) {
	var body accountIDsBody
	if err := decodeBody(r, &body); err != nil {
		writeJSM(w, http.StatusBadRequest, "sd.api.request.invalid", "The request body is not valid JSON.")
		return body, false
	}
	if len(body.Usernames) > 0 {
		writeJSM(w, http.StatusBadRequest, "sd.api.usernames.unsupported", "The usernames field is no longer supported; use accountIds.")
		return body, false
	}
	if len(body.AccountIDs) == 0 {
		writeJSM(w, http.StatusBadRequest, "sd.api.accountids.required", "You must provide at least one accountId.")
		return body, false
	}
	return body, true
}

// addCustomers returns 204 even when nothing changed; unknown accountIds give 400 after the
// valid ones were added, as JSM documents.
func (s *Sim) addCustomers(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.deskOr404(w, r)
	if d == nil {
		return
	}
	body, ok := s.readAccountIDs(w, r)
	if !ok {
		return
	}
	var unknown []string
	for _, id := range body.AccountIDs {
		if a := s.st.accounts[id]; a == nil || !a.onSite || a.typ == TypeApp {
			unknown = append(unknown, id)
			continue
		}
		d.customers.add(id)
	}
	if len(unknown) > 0 {
		writeJSM(w, http.StatusBadRequest, "sd.customer.error.not.found", "The following customers do not exist: "+strings.Join(unknown, ", "))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Sim) removeCustomers(w http.ResponseWriter, r *http.Request) {
	if !s.experimental(w, r) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.deskOr404(w, r)
	if d == nil {
		return
	}
	body, ok := s.readAccountIDs(w, r)
	if !ok {
		return
	}
	if d.openAccess {
		writeJSM(w, http.StatusBadRequest, "sd.customer.remove.open.access", "Customers cannot be removed from a service project with open access or public signup.")
		return
	}
	for _, id := range body.AccountIDs {
		d.customers.remove(id)
	}
	w.WriteHeader(http.StatusNoContent)
}

// MsgCustomerExists answers POST /customer for an email that already has an account.
const MsgCustomerExists = "An account already exists for this email."

// createCustomer creates a portal-only (qm:) account; a duplicate email gives 400, or 409 with
// strictConflictStatusCode=true.
func (s *Sim) createCustomer(w http.ResponseWriter, r *http.Request) {
	strict, err := boolParam(r.URL.Query(), "strictConflictStatusCode", false)
	if err != nil {
		writeJSM(w, http.StatusBadRequest, "sd.api.param.invalid", err.Error())
		return
	}
	var body struct {
		Email       string `json:"email"`
		DisplayName string `json:"displayName"`
		FullName    string `json:"fullName"`
	}
	if err := decodeBody(r, &body); err != nil {
		writeJSM(w, http.StatusBadRequest, "sd.api.request.invalid", "The request body is not valid JSON.")
		return
	}
	email := strings.TrimSpace(body.Email)
	if email == "" || !strings.Contains(email, "@") || strings.ContainsAny(email, " \t") {
		writeJSM(w, http.StatusBadRequest, "sd.customer.email.invalid", "The email address is not valid.")
		return
	}
	name := body.DisplayName
	if name == "" {
		name = body.FullName
	}
	if name == "" {
		name = localPart(email)
	}
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.st.byEmail[strings.ToLower(email)]; ok {
		status := http.StatusBadRequest
		if strict {
			status = http.StatusConflict
		}
		writeJSM(w, status, "sd.customer.email.exists", MsgCustomerExists)
		return
	}
	a := &account{typ: TypeCustomer, email: email, displayName: name, nickname: name, active: true, onSite: true, created: now}
	if err := s.st.addAccount(a); err != nil {
		writeJSM(w, http.StatusInternalServerError, "sd.error", err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, userDTOJSON(baseURL(r), a))
}

type organizationDTO struct {
	ID    string   `json:"id"`
	Name  string   `json:"name"`
	Links selfLink `json:"_links"`
}

func orgJSON(base string, o *org) organizationDTO {
	return organizationDTO{ID: o.id, Name: o.name, Links: selfLink{Self: base + "/rest/servicedeskapi/organization/" + o.id}}
}

func (s *Sim) getOrganizations(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	start, limit, err := s.jsmPaging(q)
	if err != nil {
		writeJSM(w, http.StatusBadRequest, "sd.api.pagination.invalid", err.Error())
		return
	}
	member := q.Get("accountId")
	s.mu.RLock()
	defer s.mu.RUnlock()
	all := []organizationDTO{}
	for _, o := range s.st.orgs {
		if member != "" && !o.members.has(member) {
			continue
		}
		all = append(all, orgJSON(baseURL(r), o))
	}
	writeJSON(w, http.StatusOK, newJSMPage(r, all, start, limit))
}

// createOrganization returns the existing organization for a name already in use (201).
func (s *Sim) createOrganization(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name string `json:"name"`
	}
	if err := decodeBody(r, &body); err != nil {
		writeJSM(w, http.StatusBadRequest, "sd.api.request.invalid", "The request body is not valid JSON.")
		return
	}
	name := strings.TrimSpace(body.Name)
	if name == "" || len(name) > 200 {
		writeJSM(w, http.StatusBadRequest, "sd.organization.name.invalid", "The organization name must be between 1 and 200 characters.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	writeJSON(w, http.StatusCreated, orgJSON(baseURL(r), s.st.createOrg(name)))
}

func (s *Sim) orgOr404(w http.ResponseWriter, r *http.Request) *org {
	raw := r.PathValue("organizationId")
	if _, err := strconv.ParseInt(raw, 10, 32); err != nil {
		writeJSM(w, http.StatusNotFound, "sd.organization.error.not.found", "The organization does not exist.")
		return nil
	}
	o := s.st.orgByID(raw)
	if o == nil {
		writeJSM(w, http.StatusNotFound, "sd.organization.error.not.found", "The organization does not exist.")
	}
	return o
}

// getOrganizationUsers lists members ordered by accountId.
func (s *Sim) getOrganizationUsers(w http.ResponseWriter, r *http.Request) {
	start, limit, err := s.jsmPaging(r.URL.Query())
	if err != nil {
		writeJSM(w, http.StatusBadRequest, "sd.api.pagination.invalid", err.Error())
		return
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	o := s.orgOr404(w, r)
	if o == nil {
		return
	}
	all := []userDTO{}
	for _, id := range o.members.list() {
		if a := s.st.accounts[id]; a != nil && a.onSite {
			all = append(all, userDTOJSON(baseURL(r), a))
		}
	}
	writeJSON(w, http.StatusOK, newJSMPage(r, all, start, limit))
}

func (s *Sim) changeOrganizationUsers(w http.ResponseWriter, r *http.Request, add bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.orgOr404(w, r)
	if o == nil {
		return
	}
	body, ok := s.readAccountIDs(w, r)
	if !ok {
		return
	}
	if i := slices.IndexFunc(body.AccountIDs, func(id string) bool {
		a := s.st.accounts[id]
		return a == nil || !a.onSite
	}); i >= 0 {
		writeJSM(w, http.StatusBadRequest, "sd.organization.users.unknown", "One or more usernames are unknown: "+body.AccountIDs[i])
		return
	}
	for _, id := range body.AccountIDs {
		if add {
			o.members.add(id)
		} else {
			o.members.remove(id)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Sim) addOrganizationUsers(w http.ResponseWriter, r *http.Request) {
	s.changeOrganizationUsers(w, r, true)
}

func (s *Sim) removeOrganizationUsers(w http.ResponseWriter, r *http.Request) {
	s.changeOrganizationUsers(w, r, false)
}

// --- admin user management -----------------------------------------------------------------

type adminAccount struct {
	AccountID     string `json:"account_id"`
	AccountType   string `json:"account_type"`
	AccountStatus string `json:"account_status"`
	Name          string `json:"name"`
	Picture       string `json:"picture"`
	Email         string `json:"email"`
	Nickname      string `json:"nickname"`
	ZoneInfo      string `json:"zoneinfo"`
	Locale        string `json:"locale"`
}

func adminJSON(a *account) map[string]adminAccount {
	status := "active"
	if !a.active {
		status = "inactive"
	}
	return map[string]adminAccount{"account": {AccountID: a.id, AccountType: a.typ, AccountStatus: status,
		Name: a.displayName, Picture: avatars(a.id).X48, Email: a.email, Nickname: a.nickname,
		ZoneInfo: "Etc/UTC", Locale: "en-US"}}
}

// managed finds the account of an admin route; customer and app accounts are not managed
// accounts of the organization (403), unknown ones 404.
func (s *Sim) managed(w http.ResponseWriter, r *http.Request) *account {
	a := s.st.accounts[r.PathValue("account_id")]
	if a == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"key": "accountNotFound"})
		return nil
	}
	if a.typ != TypeAtlassian {
		writeJSON(w, http.StatusForbidden, map[string]string{"key": "forbidden"})
		return nil
	}
	return a
}

func (s *Sim) getProfile(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if a := s.managed(w, r); a != nil {
		writeJSON(w, http.StatusOK, adminJSON(a))
	}
}

func (s *Sim) patchProfile(w http.ResponseWriter, r *http.Request) {
	var body map[string]json.RawMessage
	if err := decodeBody(r, &body); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"key": "bodyParseFailure"})
		return
	}
	str := func(k string) (string, bool, bool) {
		raw, ok := body[k]
		if !ok {
			return "", false, true
		}
		var v string
		if json.Unmarshal(raw, &v) != nil {
			return "", true, false
		}
		return v, true, true
	}
	name, hasName, ok1 := str("name")
	nick, hasNick, ok2 := str("nickname")
	if !ok1 || !ok2 || (hasName && strings.TrimSpace(name) == "") || (hasNick && (nick == "" || len(nick) > 30)) {
		writeJSON(w, http.StatusBadRequest, fieldViolation("name", "invalid"))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.managed(w, r)
	if a == nil {
		return
	}
	if hasName {
		a.displayName = name
	}
	if hasNick {
		a.nickname = nick
	}
	writeJSON(w, http.StatusOK, adminJSON(a))
}

func fieldViolation(field, key string) map[string]any {
	return map[string]any{"key": "fieldConstraintsViolated", "context": map[string]any{
		"fieldViolations": []any{map[string]any{"field": field, "violations": []any{map[string]string{"key": key}}}},
	}}
}

func (s *Sim) putEmail(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Email string `json:"email"`
	}
	if err := decodeBody(r, &body); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"key": "bodyParseFailure"})
		return
	}
	email := strings.TrimSpace(body.Email)
	if email == "" || !strings.Contains(email, "@") {
		writeJSON(w, http.StatusBadRequest, fieldViolation("email", "invalid"))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.managed(w, r)
	if a == nil {
		return
	}
	if other, ok := s.st.byEmail[strings.ToLower(email)]; ok && other != a.id {
		writeJSON(w, http.StatusBadRequest, fieldViolation("email", "conflict"))
		return
	}
	delete(s.st.byEmail, strings.ToLower(a.email))
	a.email = email
	s.st.byEmail[strings.ToLower(email)] = a.id
	w.WriteHeader(http.StatusNoContent)
}

func (s *Sim) setLifecycle(w http.ResponseWriter, r *http.Request, active bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.managed(w, r)
	if a == nil {
		return
	}
	if !active && strings.EqualFold(a.email, s.email) {
		writeJSON(w, http.StatusForbidden, map[string]any{"key": "forbidden.action",
			"context": map[string]any{"allowed": false, "reason": map[string]string{"key": "administrative.notMyself"}}})
		return
	}
	a.active = active
	w.WriteHeader(http.StatusNoContent)
}

// disableUser requires a JSON body (the message is optional), as the spec does.
func (s *Sim) disableUser(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Message string `json:"message"`
	}
	if err := decodeBody(r, &body); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"key": "bodyParseFailure"})
		return
	}
	s.setLifecycle(w, r, false)
}

func (s *Sim) enableUser(w http.ResponseWriter, r *http.Request) {
	s.setLifecycle(w, r, true)
}
