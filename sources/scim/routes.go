package scim

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/idsync/idsync/internal/logging"
)

// statusWriter records the answer's status for metrics.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// ServeHTTP routes /scim/v2/{source}/{endpoint}[/{id}]. The prefix may also have been
// stripped by the caller.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w}
	rest := strings.TrimPrefix(r.URL.Path, strings.TrimSuffix(Prefix, "/"))
	rest = strings.TrimPrefix(rest, "/")
	srcName, rest, _ := strings.Cut(rest, "/")
	s := h.sources[srcName]
	label := srcName
	if s == nil {
		label = "unknown"
	}
	defer func() {
		code := sw.code
		if code == 0 {
			code = http.StatusOK
		}
		h.opts.Metrics.SCIMRequest(label, methodLabel(r.Method), code)
	}()
	var ok, usedPrevious bool
	if s != nil {
		ok, usedPrevious = s.authorized(r)
	}
	if !ok {
		// An unknown source answers like a wrong token, so source names cannot be probed.
		h.log.Warn().Str(logging.FieldSource, label).Str("remote", r.RemoteAddr).Str("path", r.URL.Path).
			Bool("known_source", s != nil).Msg("SCIM request refused: bad or missing bearer token")
		sw.Header().Set("WWW-Authenticate", `Bearer realm="idsync SCIM"`)
		writeError(sw, &Error{Status: http.StatusUnauthorized, Detail: "authentication required: send the source's bearer token"})
		return
	}
	if usedPrevious && s.notePrevious(h.now()) {
		h.log.Warn().Str(logging.FieldSource, s.name).Str("remote", r.RemoteAddr).
			Msg("SCIM request authenticated with push.previous_token: move the IdP to the new token, then remove previous_token")
	}
	if retry, ok := s.admit(h.now()); !ok {
		sw.Header().Set("Retry-After", strconv.Itoa(retry))
		writeError(sw, &Error{Status: http.StatusTooManyRequests, Detail: "too many requests for this source; retry after " + strconv.Itoa(retry) + "s"})
		return
	}
	if s.sem != nil {
		select {
		case s.sem <- struct{}{}:
			defer func() { <-s.sem }()
		default:
			sw.Header().Set("Retry-After", "1")
			writeError(sw, &Error{Status: http.StatusTooManyRequests, Detail: "too many concurrent requests for this source; retry after 1s"})
			return
		}
	}
	h.route(sw, r, s, rest)
}

// methodLabel bounds the method label of metrics to the methods SCIM uses.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return m
	}
	return "other"
}

// route dispatches an authenticated request of source s by endpoint and method.
func (h *Handler) route(w http.ResponseWriter, r *http.Request, s *source, rest string) {
	endpoint, id, hasID := strings.Cut(rest, "/")
	if hasID && id == "" {
		hasID = false // "/Users/" is the collection
	}
	if endpoint == "" && r.Method == http.MethodGet {
		// The source's base URL itself: some clients probe it to test a connection.
		writeJSON(w, http.StatusOK, h.spConfig(s))
		return
	}
	if hasID && strings.Contains(id, "/") {
		writeError(w, &Error{Status: http.StatusNotFound, Detail: "no such endpoint: " + r.URL.Path})
		return
	}
	switch strings.ToLower(endpoint) {
	case "users", "groups":
		if hasID && id == ".search" {
			writeError(w, &Error{Status: http.StatusNotImplemented, Detail: "POST .search is not supported by this listener; use GET with filter"})
			return
		}
		rt := userType
		if strings.EqualFold(endpoint, "groups") {
			rt = groupType
		}
		if !hasID {
			switch r.Method {
			case http.MethodGet:
				h.list(w, r, s, rt)
			case http.MethodPost:
				h.create(w, r, s, rt)
			default:
				methodNotAllowed(w, "GET, POST")
			}
			return
		}
		switch r.Method {
		case http.MethodGet:
			h.get(w, r, s, rt, id)
		case http.MethodPut:
			h.update(w, r, s, rt, id, false)
		case http.MethodPatch:
			h.update(w, r, s, rt, id, true)
		case http.MethodDelete:
			h.delete(w, r, s, rt, id)
		default:
			methodNotAllowed(w, "GET, PUT, PATCH, DELETE")
		}
	case "serviceproviderconfig", "resourcetypes", "schemas":
		if r.Method != http.MethodGet {
			methodNotAllowed(w, "GET")
			return
		}
		h.discovery(w, s, strings.ToLower(endpoint), id, hasID)
	case "bulk", "me", ".search":
		// RFC 7644 answers 501 for optional features a provider leaves out.
		writeError(w, &Error{Status: http.StatusNotImplemented, Detail: "/" + endpoint + " is not supported by this listener (see /ServiceProviderConfig)"})
	default:
		writeError(w, &Error{Status: http.StatusNotFound, Detail: "no such endpoint: " + r.URL.Path})
	}
}

// methodNotAllowed answers 405 with the allowed methods.
func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, &Error{Status: http.StatusMethodNotAllowed, Detail: "method not allowed; allowed: " + allow})
}
