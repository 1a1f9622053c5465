package scim

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/idsync/idsync/sources/scim/filter"
)

// get answers GET of one resource; If-None-Match naming its version answers 304.
func (h *Handler) get(w http.ResponseWriter, r *http.Request, s *source, rt *resourceType, id string) {
	proj, perr := parseProjection(r.URL.Query(), rt)
	if perr != nil {
		writeError(w, perr)
		return
	}
	s.mu.RLock()
	e := s.table(rt)[id]
	if e == nil {
		s.mu.RUnlock()
		writeError(w, notFound(rt, id))
		return
	}
	var b []byte
	if proj.empty() {
		b = h.render(s, rt, e)
	} else {
		b, _ = json.Marshal(proj.apply(h.fullView(s, rt, e)))
	}
	s.mu.RUnlock()
	w.Header().Set("ETag", etag(e.rec.Version))
	if inm := r.Header.Get("If-None-Match"); inm != "" && matchETag(inm, e.rec.Version) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	writeRaw(w, http.StatusOK, b)
}

// list answers GET of a collection: filtered, paged, in creation order.
func (h *Handler) list(w http.ResponseWriter, r *http.Request, s *source, rt *resourceType) {
	// sortBy and sortOrder are ignored, as /ServiceProviderConfig announces: lists come in
	// creation order, which keeps paging stable.
	q := r.URL.Query()
	start, count, perr := h.paging(q.Get("startIndex"), q.Get("count"))
	if perr != nil {
		writeError(w, perr)
		return
	}
	proj, perr := parseProjection(q, rt)
	if perr != nil {
		writeError(w, perr)
		return
	}
	var (
		match     filter.Matcher
		indexed   bool
		indexedID string
		withGroup bool
	)
	if fs := q.Get("filter"); strings.TrimSpace(fs) != "" {
		expr, err := filter.Parse(fs)
		if err != nil {
			writeError(w, badRequest(errInvalidFilter, "filter %q: %v", fs, err))
			return
		}
		// Equality on id, userName (users) or displayName (groups) is answered from the
		// index without compiling the filter: it is the lookup IdPs make before every write.
		if v, ok := filter.EqualityOn(expr, rt.Schema.ID, "id"); ok {
			indexed, indexedID = true, v
		}
		switch rt {
		case userType:
			if v, ok := filter.EqualityOn(expr, rt.Schema.ID, "userName"); ok {
				s.mu.RLock()
				indexedID = s.userByName[strings.ToLower(v)]
				s.mu.RUnlock()
				indexed = true
			}
		case groupType:
			if v, ok := filter.EqualityOn(expr, rt.Schema.ID, "displayName"); ok {
				s.mu.RLock()
				indexedID = s.groupByName[strings.ToLower(v)]
				s.mu.RUnlock()
				indexed = true
			}
		}
		if !indexed {
			if match, err = filter.Compile(expr, rt); err != nil {
				writeError(w, badRequest(errInvalidFilter, "filter %q: %v", fs, errMsg(err)))
				return
			}
			withGroup = rt == userType && mentions(expr, "groups")
		}
	}
	s.mu.RLock()
	var hits []*entry
	table := s.table(rt)
	if indexed {
		if e := table[indexedID]; e != nil {
			hits = append(hits, e)
		}
	} else {
		for _, id := range s.order(rt) {
			e := table[id]
			if e == nil {
				continue
			}
			if match != nil {
				v := e.view
				if withGroup {
					v = h.fullView(s, rt, e)
				}
				if !match(v) {
					continue
				}
			}
			hits = append(hits, e)
		}
	}
	total := len(hits)
	lo := min(start-1, total)
	page := hits[lo:min(lo+count, total)]
	var buf []byte
	buf = append(buf, `{"schemas":["`+schemaListResp+`"],"totalResults":`...)
	buf = strconv.AppendInt(buf, int64(total), 10)
	buf = append(buf, `,"startIndex":`...)
	buf = strconv.AppendInt(buf, int64(start), 10)
	buf = append(buf, `,"itemsPerPage":`...)
	buf = strconv.AppendInt(buf, int64(len(page)), 10)
	buf = append(buf, `,"Resources":[`...)
	for i, e := range page {
		if i > 0 {
			buf = append(buf, ',')
		}
		if proj.empty() {
			buf = append(buf, h.render(s, rt, e)...)
		} else {
			b, _ := json.Marshal(proj.apply(h.fullView(s, rt, e)))
			buf = append(buf, b...)
		}
	}
	s.mu.RUnlock()
	buf = append(buf, "]}"...)
	writeRaw(w, http.StatusOK, buf)
}

// errMsg is an error's message; for a filter error, without its offset.
func errMsg(err error) string {
	var fe *filter.Error
	if errors.As(err, &fe) {
		return fe.Msg
	}
	return err.Error()
}

// mentions reports whether a filter names the top-level attribute name.
func mentions(e filter.Expr, name string) bool {
	switch x := e.(type) {
	case *filter.AttrExpr:
		return strings.EqualFold(x.Path.Name, name)
	case *filter.ValuePathExpr:
		return strings.EqualFold(x.Path.Name, name)
	case *filter.LogExpr:
		return mentions(x.Left, name) || mentions(x.Right, name)
	case *filter.NotExpr:
		return mentions(x.X, name)
	}
	return false
}

// paging reads startIndex (1-based; below 1 means 1) and count (capped; below 0 means 0).
func (h *Handler) paging(startS, countS string) (int, int, *Error) {
	start, count := 1, h.opts.MaxCount
	if startS != "" {
		v, err := strconv.Atoi(startS)
		if err != nil {
			return 0, 0, badRequest(errInvalidValue, "startIndex %q is not an integer", startS)
		}
		start = max(v, 1)
	}
	if countS != "" {
		v, err := strconv.Atoi(countS)
		if err != nil {
			return 0, 0, badRequest(errInvalidValue, "count %q is not an integer", countS)
		}
		count = min(max(v, 0), h.opts.MaxCount)
	}
	return start, count, nil
}
