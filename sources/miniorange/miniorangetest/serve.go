package miniorangetest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/idsync/idsync/internal/simkit"
)

// request is the union of every endpoint's body.
type request struct {
	CustomerKey json.RawMessage `json:"customerKey"`
	StartIndex  *int            `json:"startIndex"`
	BatchSize   *int            `json:"batchSize"`
	GroupName   string          `json:"groupName"`
	UserName    string          `json:"username"`
}

type errorBody struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func (s *Sim) serve(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	switch path {
	case PathUsersList, PathGroupsList, PathGroupMembers, PathUserGet, PathUserSearch, PathTimestamp:
	default:
		s.count(path)
		writeJSON(w, http.StatusNotFound, errorBody{"ERROR", "Resource not found: " + path})
		return
	}
	if !s.knobs.Delay(r.Context()) { // the client went away
		return
	}
	if s.throttle(w) {
		return
	}
	s.count(path)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{"ERROR", "Method " + r.Method + " not allowed"})
		return
	}
	if path == PathTimestamp {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = fmt.Fprintf(w, "%d", s.serverNow().UnixMilli())
		return
	}
	if code, msg, ok := s.authenticate(r); !ok {
		s.fail(w, code, msg)
		return
	}
	var req request
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	if err := dec.Decode(&req); err != nil {
		s.fail(w, http.StatusBadRequest, "Invalid request body: "+err.Error())
		return
	}
	if ck := strings.Trim(string(req.CustomerKey), `"`); ck != s.customerKey {
		s.fail(w, http.StatusBadRequest, "customerKey in the body is missing or does not match the Customer-Key header")
		return
	}
	if s.randomFault(w) {
		return
	}
	switch path {
	case PathUsersList:
		s.usersList(w, r, req)
	case PathGroupsList:
		s.groupsList(w, r, req)
	case PathGroupMembers:
		s.groupMembers(w, r, req)
	case PathUserGet:
		s.userGet(w, req)
	case PathUserSearch:
		s.userSearch(w, req)
	}
}

func (s *Sim) count(path string) {
	s.knobs.Count(path)
}

// fail answers an application error the miniOrange way.
func (s *Sim) fail(w http.ResponseWriter, code int, msg string) {
	if s.errorsAsOK {
		code = http.StatusOK
	}
	writeJSON(w, code, errorBody{"ERROR", msg})
}

// contentType is the Content-Type of every JSON answer.
const contentType = "application/json"

func writeJSON(w http.ResponseWriter, code int, v any) { simkit.WriteJSON(w, contentType, code, v) }

func writeRaw(w http.ResponseWriter, code int, b []byte) { simkit.WriteRaw(w, contentType, code, b) }
