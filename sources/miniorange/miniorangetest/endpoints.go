package miniorangetest

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// pageBounds returns the [start, end) slice bounds a paged request asks for, moved one item
// early by a FaultShift f, or an error message.
func (s *Sim) pageBounds(req request, total int, f *Fault) (start, end int, msg string) {
	if req.StartIndex == nil || req.BatchSize == nil {
		return 0, 0, "startIndex and batchSize are required"
	}
	start, size := *req.StartIndex, *req.BatchSize
	if start < 0 || size < 1 {
		return 0, 0, "startIndex must be >= 0 and batchSize >= 1"
	}
	s.kmu.Lock()
	size = min(size, s.batchCap)
	s.kmu.Unlock()
	start = min(start, total)
	start, end = f.shift(start, min(start+size, total))
	return start, end, ""
}

type wireUser struct {
	ID               string            `json:"id"`
	UserName         string            `json:"username"`
	Email            string            `json:"email"`
	FirstName        string            `json:"firstName"`
	LastName         string            `json:"lastName"`
	Phone            string            `json:"phone,omitempty"`
	Status           string            `json:"status,omitempty"`
	UserStatus       string            `json:"userStatus,omitempty"`
	Groups           []string          `json:"groups"`
	CustomAttributes map[string]string `json:"customAttributes,omitempty"`
}

func (u *user) wire() wireUser {
	st := "ACTIVE"
	if u.disabled {
		st = "DISABLED"
	}
	groups := make([]string, 0, len(u.groups)+1)
	groups = append(groups, DefaultGroup)
	for _, g := range u.groups {
		groups = append(groups, g.name)
	}
	return wireUser{
		ID: u.id, UserName: u.userName, Email: u.email, FirstName: u.first, LastName: u.last,
		Phone: u.phone, Status: st, Groups: groups, CustomAttributes: u.attrs,
	}
}

type wireGroup struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

type groupsPage struct {
	Status     string      `json:"status"`
	TotalCount int         `json:"totalCount"`
	Groups     []wireGroup `json:"groups"`
}

type membersPage struct {
	Status     string   `json:"status"`
	TotalCount int      `json:"totalCount"`
	Members    []string `json:"members"`
}

func (s *Sim) usersList(w http.ResponseWriter, r *http.Request, req request) {
	f := s.pageFault(PathUsersList, "", req)
	s.mu.RLock()
	total := len(s.users)
	start, end, msg := s.pageBounds(req, total, f)
	if msg != "" {
		s.mu.RUnlock()
		s.fail(w, http.StatusBadRequest, msg)
		return
	}
	hook := s.hook()
	size := 64
	for _, u := range s.users[start:end] {
		size += len(u.js) + 1
	}
	buf := make([]byte, 0, size)
	buf = append(buf, `{"status":"SUCCESS","totalCount":`...)
	buf = strconv.AppendInt(buf, int64(total+f.totalDelta()), 10)
	buf = append(buf, `,"users":[`...)
	for i, u := range s.users[start:end] {
		if i > 0 {
			buf = append(buf, ',')
		}
		if hook != nil {
			buf = append(buf, hooked(hook, PathUsersList, u.userName, u.js)...)
			continue
		}
		buf = append(buf, u.js...)
	}
	buf = append(buf, "]}"...)
	s.mu.RUnlock()
	s.answerPage(w, f, buf)
}

func (s *Sim) groupsList(w http.ResponseWriter, r *http.Request, req request) {
	f := s.pageFault(PathGroupsList, "", req)
	s.mu.RLock()
	total := len(s.groups)
	start, end, msg := s.pageBounds(req, total, f)
	if msg != "" {
		s.mu.RUnlock()
		s.fail(w, http.StatusBadRequest, msg)
		return
	}
	page := groupsPage{Status: "SUCCESS", TotalCount: total + f.totalDelta(), Groups: make([]wireGroup, 0, end-start)}
	for _, g := range s.groups[start:end] {
		page.Groups = append(page.Groups, wireGroup{ID: g.id, Name: g.name, Description: g.desc})
	}
	s.mu.RUnlock()
	s.answerJSONPage(w, f, page)
}

func (s *Sim) groupMembers(w http.ResponseWriter, r *http.Request, req request) {
	f := s.pageFault(PathGroupMembers, req.GroupName, req)
	s.mu.RLock()
	g := s.byGrp[req.GroupName]
	if g == nil {
		s.mu.RUnlock()
		writeJSON(w, http.StatusOK, errorBody{"FAILED", "Group not found: " + req.GroupName})
		return
	}
	members := g.members
	if g.auto {
		members = s.users
	}
	total := len(members)
	start, end, msg := s.pageBounds(req, total, f)
	if msg != "" {
		s.mu.RUnlock()
		s.fail(w, http.StatusBadRequest, msg)
		return
	}
	page := membersPage{Status: "SUCCESS", TotalCount: total + f.totalDelta(), Members: make([]string, 0, end-start)}
	for _, u := range members[start:end] {
		page.Members = append(page.Members, u.userName)
	}
	s.mu.RUnlock()
	s.answerJSONPage(w, f, page)
}

// answerJSONPage encodes a page and answers it as answerPage does.
func (s *Sim) answerJSONPage(w http.ResponseWriter, f *Fault, page any) {
	b, err := json.Marshal(page)
	if err != nil {
		s.fail(w, http.StatusInternalServerError, err.Error())
		return
	}
	s.answerPage(w, f, b)
}

// answerPage writes an encoded page, applying a matched fault.
func (s *Sim) answerPage(w http.ResponseWriter, f *Fault, body []byte) {
	if f == nil {
		writeRaw(w, http.StatusOK, body)
		return
	}
	switch f.Kind {
	case FaultStatus:
		code := f.Status
		if code == 0 {
			code = http.StatusInternalServerError
		}
		writeJSON(w, code, errorBody{"ERROR", "Internal server error"})
	case FaultBodyError:
		writeJSON(w, http.StatusOK, errorBody{"ERROR", "Could not process the request"})
	case FaultReset:
		resetConn(w)
	case FaultTruncate:
		truncate(w, body)
	case FaultHireAfter:
		writeRaw(w, http.StatusOK, body)
		s.HireN(max(f.Delta, 1))
	default: // FaultTotalSkew, FaultShift: already applied to the page
		writeRaw(w, http.StatusOK, body)
	}
}

func (s *Sim) userGet(w http.ResponseWriter, req request) {
	s.mu.RLock()
	u := s.byName[strings.ToLower(req.UserName)]
	var wu wireUser
	if u != nil {
		wu = u.wire()
	}
	s.mu.RUnlock()
	if u == nil {
		writeJSON(w, http.StatusOK, errorBody{"FAILED", "User does not exist"})
		return
	}
	// The documented call answers flat; the user's own state is userStatus because status
	// is the call's result.
	wu.UserStatus, wu.Status = wu.Status, ""
	body, _ := json.Marshal(wu)
	var flat map[string]any
	_ = json.Unmarshal(body, &flat)
	if hook := s.hook(); hook != nil {
		hook(PathUserGet, wu.UserName, flat)
	}
	flat["status"] = "SUCCESS"
	flat["message"] = "User found"
	writeJSON(w, http.StatusOK, flat)
}

func (s *Sim) userSearch(w http.ResponseWriter, req request) {
	s.mu.RLock()
	u := s.byName[strings.ToLower(req.UserName)]
	s.mu.RUnlock()
	if u == nil {
		writeJSON(w, http.StatusOK, errorBody{"USER_NOT_FOUND", "User not found"})
		return
	}
	writeJSON(w, http.StatusOK, errorBody{"USER_FOUND", "User found"})
}
