package scim

import (
	"net/http"
	"strings"
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
	// The bearer token, then the source's rate limit and concurrency bound (auth.go).
	if !h.authenticate(sw, r, s, label) {
		return
	}
	release, ok := h.throttle(sw, s)
	if !ok {
		return
	}
	defer release()
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
