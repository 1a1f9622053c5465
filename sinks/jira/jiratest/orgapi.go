package jiratest

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The organization API (https://api.atlassian.com/admin, so /admin/v2/... on this listener):
// the v2 directory endpoints idsync uses for sink.jira.deactivate: suspend. Facts come from
// the vendored admin-organizations spec; where it is silent the choice is noted.
//
// The site belongs to one organization (DefaultOrgID) with one directory
// (DefaultDirectoryID) that holds every Atlassian account of the site; app and portal-only
// customer accounts are in no directory. AddDirectory adds empty directories, for clients
// that must pick one.

// The simulated organization.
const (
	DefaultOrgID         = "00000000-0000-4000-8000-0000000000a1"
	DefaultDirectoryID   = "00000000-0000-4000-8000-0000000000d1"
	DefaultDirectoryName = "Default directory"
)

// Page size of the organization API's cursor listings (limitParam: default 20, 1..100).
const (
	orgPageDefault = 20
	orgPageMax     = 100
	// orgFilterMax is the documented maxItems of the accountIds and directoryIds filters.
	orgFilterMax = 10
)

type directory struct {
	id, name string
}

// AddDirectory adds an empty user directory to the organization (a second identity
// provider's, say); its id is generated when empty. It returns the id.
func (s *Sim) AddDirectory(id, name string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id == "" {
		id = s.st.uuid()
	}
	if s.st.dir(id) != nil {
		return "", fmt.Errorf("directory %s exists", id)
	}
	s.st.dirs = append(s.st.dirs, &directory{id: id, name: name})
	return id, nil
}

func (st *site) dir(id string) *directory {
	for _, d := range st.dirs {
		if d.id == id {
			return d
		}
	}
	return nil
}

// inDirectory reports whether the account is a member of directory d: the first directory
// holds every Atlassian account.
func (st *site) inDirectory(a *account, d *directory) bool {
	return a.typ == TypeAtlassian && len(st.dirs) > 0 && d == st.dirs[0]
}

// --- bodies --------------------------------------------------------------------------------

// orgError is the organization API's Error; Errors wraps a list of them.
type orgError struct {
	ID     string `json:"id,omitempty"`
	Status string `json:"status"`
	Code   string `json:"code"`
	Title  string `json:"title"`
	Detail string `json:"detail,omitempty"`
}

func writeOrgError(w http.ResponseWriter, status int, code, detail string) {
	writeJSON(w, status, map[string][]orgError{"errors": {{
		Status: strconv.Itoa(status), Code: code, Title: http.StatusText(status), Detail: detail}}})
}

type pageLinks struct {
	Self string `json:"self,omitempty"`
	Next string `json:"next,omitempty"`
	Prev string `json:"prev,omitempty"`
}

type directoryJSON struct {
	DirectoryID string `json:"directoryId"`
	Name        string `json:"name"`
	Icon        string `json:"icon,omitempty"`
}

// orgUser is MultiDirectoryUser.
type orgUser struct {
	AccountID        string `json:"accountId"`
	AccountType      string `json:"accountType"`
	AccountStatus    string `json:"accountStatus"`
	MembershipStatus string `json:"membershipStatus"`
	Status           string `json:"status"`
	ClaimStatus      string `json:"claimStatus"`
	Email            string `json:"email,omitempty"`
	EmailVerified    bool   `json:"emailVerified"`
	Name             string `json:"name"`
	Nickname         string `json:"nickname,omitempty"`
	AddedToOrg       string `json:"addedToOrg,omitempty"`
	Avatar           string `json:"avatar,omitempty"`
	Links            struct {
		Self string `json:"self"`
	} `json:"links"`
}

// Statuses of MultiDirectoryUser (membershipStatus, accountStatus and their composite).
const (
	orgActive      = "active"
	orgSuspended   = "suspended"
	orgInactive    = "inactive"
	orgDeactivated = "deactivated"
)

func orgUserJSON(a *account) orgUser {
	u := orgUser{AccountID: a.id, AccountType: TypeAtlassian, AccountStatus: orgActive, MembershipStatus: orgActive,
		Status: orgActive, ClaimStatus: "managed", Email: a.email, EmailVerified: true, Name: a.displayName,
		Nickname: a.nickname, Avatar: avatars(a.id).X48}
	if a.suspended {
		u.MembershipStatus, u.Status = orgSuspended, orgSuspended
	}
	if !a.active {
		u.AccountStatus, u.Status = orgInactive, orgDeactivated
	}
	if !a.created.IsZero() {
		u.AddedToOrg = a.created.UTC().Format("2006-01-02T15:04:05.000Z")
	} else {
		u.AddedToOrg = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Format("2006-01-02T15:04:05.000Z")
	}
	u.Links.Self = cursorOf("u:" + a.id)
	return u
}

// --- cursors and paging --------------------------------------------------------------------

// Cursors are opaque to clients; here they encode an offset into the listing.
func cursorOf(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func offsetCursor(n int) string { return cursorOf("o:" + strconv.Itoa(n)) }

// orgPaging reads cursor and limit; false means a 400 was written.
func orgPaging(w http.ResponseWriter, q url.Values) (offset, limit int, ok bool) {
	limit = orgPageDefault
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > orgPageMax {
			writeOrgError(w, http.StatusBadRequest, "INVALID_LIMIT", fmt.Sprintf("limit must be an integer between 1 and %d.", orgPageMax))
			return 0, 0, false
		}
		limit = n
	}
	if c := q.Get("cursor"); c != "" {
		raw, err := base64.RawURLEncoding.DecodeString(c)
		v, found := strings.CutPrefix(string(raw), "o:")
		n, aerr := strconv.Atoi(v)
		if err != nil || !found || aerr != nil || n < 0 {
			writeOrgError(w, http.StatusBadRequest, "INVALID_PAGE_CURSOR", "The page cursor is not valid.")
			return 0, 0, false
		}
		offset = n
	}
	return offset, limit, true
}

func pageOf[T any](all []T, offset, limit int) ([]T, pageLinks) {
	page := window(all, offset, limit)
	links := pageLinks{Self: offsetCursor(offset)}
	if offset+len(page) < len(all) {
		links.Next = offsetCursor(offset + len(page))
	}
	if offset > 0 {
		links.Prev = offsetCursor(max(0, offset-limit))
	}
	return page, links
}

// --- handlers ------------------------------------------------------------------------------

// atlassianOrgOr404 checks the path's orgId (the organization of the API key); the caller
// holds s.mu. Another organization is not found (404), except on the directory listing,
// whose spec documents no 404: there the key is not authenticated for it (401).
func (s *Sim) atlassianOrgOr404(w http.ResponseWriter, r *http.Request) bool {
	if r.PathValue("orgId") == s.st.orgID {
		return true
	}
	if strings.HasSuffix(r.URL.Path, "/directories") {
		writeOrgError(w, http.StatusUnauthorized, "UNAUTHORIZED", "The API key is not valid for this organization.")
	} else {
		writeOrgError(w, http.StatusNotFound, "ORG_NOT_FOUND", "The organization was not found.")
	}
	return false
}

// getDirectories serves GET /v2/orgs/{orgId}/directories: the organization's directories,
// filtered by accountId (directories the user is in), directoryIds and searchTerm (a
// case-insensitive substring of the name), paged by cursor and limit.
func (s *Sim) getDirectories(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	offset, limit, ok := orgPaging(w, q)
	if !ok {
		return
	}
	ids := q["directoryIds"]
	if len(ids) > orgFilterMax {
		writeOrgError(w, http.StatusBadRequest, "INVALID_FILTER", fmt.Sprintf("directoryIds takes at most %d ids.", orgFilterMax))
		return
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.atlassianOrgOr404(w, r) {
		return
	}
	var member *account
	if id := q.Get("accountId"); id != "" {
		if member = s.st.accounts[id]; member == nil {
			member = &account{} // an unknown account is in no directory
		}
	}
	term := strings.ToLower(q.Get("searchTerm"))
	all := []directoryJSON{}
	for _, d := range s.st.dirs {
		if len(ids) > 0 && !slices.Contains(ids, d.id) || member != nil && !s.st.inDirectory(member, d) ||
			term != "" && !strings.Contains(strings.ToLower(d.name), term) {
			continue
		}
		all = append(all, directoryJSON{DirectoryID: d.id, Name: d.name})
	}
	page, links := pageOf(all, offset, limit)
	writeJSON(w, http.StatusOK, map[string]any{"data": page, "links": links})
}

var orgStatuses = []string{orgActive, orgSuspended, "not_invited", orgDeactivated, "for_deletion"}

// getDirectoryUsers serves GET /v2/orgs/{orgId}/directories/{directoryId}/users: the
// directory's users ("-": every directory) in creation order, paged by cursor and limit,
// filtered by accountIds and status. The other filters of the spec are not modelled and are
// ignored (idsync sends none of them).
func (s *Sim) getDirectoryUsers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	offset, limit, ok := orgPaging(w, q)
	if !ok {
		return
	}
	ids, statuses := q["accountIds"], q["status"]
	if len(ids) > orgFilterMax {
		writeOrgError(w, http.StatusBadRequest, "INVALID_FILTER", fmt.Sprintf("accountIds takes at most %d ids.", orgFilterMax))
		return
	}
	for _, st := range statuses {
		if !slices.Contains(orgStatuses, st) {
			writeOrgError(w, http.StatusBadRequest, "INVALID_FILTER", "Unknown status "+strconv.Quote(st)+".")
			return
		}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.atlassianOrgOr404(w, r) {
		return
	}
	dirs := s.st.dirs
	if id := r.PathValue("directoryId"); id != "-" {
		d := s.st.dir(id)
		if d == nil {
			writeOrgError(w, http.StatusNotFound, "DIRECTORY_NOT_FOUND", "The directory was not found.")
			return
		}
		dirs = []*directory{d}
	}
	all := []orgUser{}
	for _, id := range s.st.order {
		a := s.st.accounts[id]
		if len(ids) > 0 && !slices.Contains(ids, a.id) ||
			!slices.ContainsFunc(dirs, func(d *directory) bool { return s.st.inDirectory(a, d) }) {
			continue
		}
		u := orgUserJSON(a)
		if len(statuses) > 0 && !slices.Contains(statuses, u.Status) {
			continue
		}
		all = append(all, u)
	}
	page, links := pageOf(all, offset, limit)
	writeJSON(w, http.StatusOK, map[string]any{"data": page, "links": links})
}

// MsgAlreadySuspended and MsgNotSuspended are the details of the 400 that suspend and restore
// answer for an account already in the state asked for. The spec documents 204 and 400 for
// both operations and says nothing of a repeat; the simulator refuses it, so a client must
// settle a repeat by reading the account's membershipStatus, never by the wording.
const (
	MsgAlreadySuspended = "The user's access is already suspended in this directory."
	MsgNotSuspended     = "The user's access is not suspended in this directory."
)

// suspendUser serves POST .../users/{accountId}/suspend: the account keeps its groups and
// roles, loses product access on the site (Jira reports it inactive, it holds no licensed
// seat) and is listed as suspended, until restored.
func (s *Sim) suspendUser(w http.ResponseWriter, r *http.Request) { s.setSuspension(w, r, true) }

// restoreUser serves POST .../users/{accountId}/restore: access comes back with the groups
// the account kept. With a seat limit and no seat left for an account in a product-access
// group it answers 400, and the account stays suspended.
func (s *Sim) restoreUser(w http.ResponseWriter, r *http.Request) { s.setSuspension(w, r, false) }

func (s *Sim) setSuspension(w http.ResponseWriter, r *http.Request, suspend bool) {
	seats := s.knobs().Seats
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.atlassianOrgOr404(w, r) {
		return
	}
	d := s.st.dir(r.PathValue("directoryId"))
	if d == nil {
		writeOrgError(w, http.StatusNotFound, "DIRECTORY_NOT_FOUND", "The directory was not found.")
		return
	}
	a := s.st.accounts[r.PathValue("accountId")]
	if a == nil || !s.st.inDirectory(a, d) {
		writeOrgError(w, http.StatusNotFound, "USER_NOT_FOUND", "The user was not found in this directory.")
		return
	}
	switch {
	case suspend && a.suspended:
		writeOrgError(w, http.StatusBadRequest, "USER_ALREADY_SUSPENDED", MsgAlreadySuspended)
		return
	case !suspend && !a.suspended:
		writeOrgError(w, http.StatusBadRequest, "USER_NOT_SUSPENDED", MsgNotSuspended)
		return
	case !suspend && seats > 0 && a.active && a.onSite && s.st.inProductGroup(a) && s.st.licensed()+1 > seats:
		writeOrgError(w, http.StatusBadRequest, "LICENSE_LIMIT_EXCEEDED", MsgSeatLimit)
		return
	}
	if suspend {
		a.suspensions++
	}
	a.suspended = suspend
	w.WriteHeader(http.StatusNoContent)
}
