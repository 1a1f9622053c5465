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
	lf, perr := s.parseListFilter(q.Get("filter"), rt)
	if perr != nil {
		writeError(w, perr)
		return
	}
	s.mu.RLock()
	hits := h.hits(s, rt, lf)
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

// listFilter is a list request's filter, ready to select resources. The zero value
// selects every resource.
type listFilter struct {
	match filter.Matcher
	// indexed says the filter is an equality answered from the index: at most the
	// resource indexedID matches ("" when none does).
	indexed   bool
	indexedID string
	// withGroup says match needs the full view of users (the filter names their groups).
	withGroup bool
}

// parseListFilter parses the filter parameter fs of a list request.
func (s *source) parseListFilter(fs string, rt *resourceType) (listFilter, *Error) {
	var lf listFilter
	if strings.TrimSpace(fs) == "" {
		return lf, nil
	}
	expr, err := filter.Parse(fs)
	if err != nil {
		return lf, badRequest(errInvalidFilter, "filter %q: %v", fs, err)
	}
	// Equality on id, userName (users) or displayName (groups) is answered from the
	// index without compiling the filter: it is the lookup IdPs make before every write.
	if v, ok := filter.EqualityOn(expr, rt.Schema.ID, "id"); ok {
		lf.indexed, lf.indexedID = true, v
	}
	switch rt {
	case userType:
		if v, ok := filter.EqualityOn(expr, rt.Schema.ID, "userName"); ok {
			s.mu.RLock()
			lf.indexedID = s.userByName[strings.ToLower(v)]
			s.mu.RUnlock()
			lf.indexed = true
		}
	case groupType:
		if v, ok := filter.EqualityOn(expr, rt.Schema.ID, "displayName"); ok {
			s.mu.RLock()
			lf.indexedID = s.groupByName[strings.ToLower(v)]
			s.mu.RUnlock()
			lf.indexed = true
		}
	}
	if lf.indexed {
		return lf, nil
	}
	if lf.match, err = filter.Compile(expr, rt); err != nil {
		return listFilter{}, badRequest(errInvalidFilter, "filter %q: %v", fs, errMsg(err))
	}
	lf.withGroup = rt == userType && mentions(expr, "groups")
	return lf, nil
}

// hits are the resources lf selects, in creation order. Call with s.mu held.
func (h *Handler) hits(s *source, rt *resourceType, lf listFilter) []*entry {
	var hits []*entry
	table := s.table(rt)
	if lf.indexed {
		if e := table[lf.indexedID]; e != nil {
			hits = append(hits, e)
		}
		return hits
	}
	for _, id := range s.order(rt) {
		e := table[id]
		if e == nil {
			continue
		}
		if lf.match != nil {
			v := e.view
			if lf.withGroup {
				v = h.fullView(s, rt, e)
			}
			if !lf.match(v) {
				continue
			}
		}
		hits = append(hits, e)
	}
	return hits
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
