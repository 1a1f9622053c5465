package scim

import (
	"encoding/json"
	"net/url"
	"strings"

	"github.com/idsync/idsync/sources/scim/filter"
)

// projItem is one entry of attributes / excludedAttributes, resolved to stored keys.
type projItem struct {
	ext   string // extension key, "" for core
	name  string // attribute key; "" for a whole extension
	sub   string // sub-attribute key or ""
	multi bool
}

// projection is what the attributes and excludedAttributes parameters ask for.
type projection struct {
	include, exclude []projItem
}

func (p projection) empty() bool { return len(p.include) == 0 && len(p.exclude) == 0 }

func parseProjection(q url.Values, rt *resourceType) (projection, *Error) {
	inc, err := parseProjList(rt, "attributes", q.Get("attributes"))
	if err != nil {
		return projection{}, err
	}
	exc, err := parseProjList(rt, "excludedAttributes", q.Get("excludedAttributes"))
	if err != nil {
		return projection{}, err
	}
	return projection{include: inc, exclude: exc}, nil
}

// parseProjList resolves a comma-separated attribute list; names this listener does not
// know are ignored (they could not be returned anyway).
func parseProjList(rt *resourceType, param, v string) ([]projItem, *Error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	var out []projItem
	for _, raw := range strings.Split(v, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		if e := rt.extension(raw); e != nil {
			out = append(out, projItem{ext: e.ID})
			continue
		}
		p, err := filter.ParsePath(raw)
		if err != nil || p.Filter != nil {
			return nil, badRequest(errInvalidValue, "%s: %q is not an attribute name", param, raw)
		}
		ext, a := rt.lookupAttr(p.Attr.URI, p.Attr.Name)
		if a == nil {
			continue
		}
		it := projItem{ext: ext, name: a.Name, multi: a.Multi}
		if p.Attr.Sub != "" {
			s := a.sub(p.Attr.Sub)
			if s == nil {
				continue
			}
			it.sub = s.Name
		}
		out = append(out, it)
	}
	return out, nil
}

// apply returns a projected copy of a full resource view. id and schemas are always
// returned (RFC 7643 "returned": "always").
func (p projection) apply(full map[string]any) map[string]any {
	if len(p.include) > 0 {
		out := map[string]any{"id": full["id"], "schemas": full["schemas"]}
		for _, it := range p.include {
			if it.name == "" {
				if v, ok := full[it.ext]; ok {
					out[it.ext] = v
				}
				continue
			}
			src := full
			if it.ext != "" {
				src, _ = full[it.ext].(map[string]any)
			}
			v, ok := src[it.name]
			if !ok {
				continue
			}
			if it.sub != "" {
				v = pick(v, it.sub, out, it)
				if v == nil {
					continue
				}
			}
			dst := out
			if it.ext != "" {
				m, _ := out[it.ext].(map[string]any)
				if m == nil {
					m = map[string]any{}
					out[it.ext] = m
				}
				dst = m
			}
			dst[it.name] = v
		}
		full = out
	}
	if len(p.exclude) == 0 {
		return full
	}
	out := shallow(full)
	for _, it := range p.exclude {
		if it.name == "id" && it.ext == "" {
			continue
		}
		if it.name == "" {
			delete(out, it.ext)
			continue
		}
		dst := out
		if it.ext != "" {
			m, ok := out[it.ext].(map[string]any)
			if !ok {
				continue
			}
			dst = shallow(m)
			out[it.ext] = dst
		}
		if it.sub == "" {
			delete(dst, it.name)
			continue
		}
		dst[it.name] = dropSub(dst[it.name], it.sub)
	}
	return out
}

// pick keeps only sub of a complex value (each element of a list), merging with what an
// earlier item of the same attribute already picked.
func pick(v any, sub string, out map[string]any, it projItem) any {
	switch x := v.(type) {
	case map[string]any:
		sv, ok := x[sub]
		if !ok {
			return nil
		}
		prev, _ := lookupIn(out, it).(map[string]any)
		m := map[string]any{}
		for k, pv := range prev {
			m[k] = pv
		}
		m[sub] = sv
		return m
	case []any:
		prev, _ := lookupIn(out, it).([]any)
		l := make([]any, len(x))
		for i, el := range x {
			m := map[string]any{}
			if i < len(prev) {
				if pm, ok := prev[i].(map[string]any); ok {
					for k, pv := range pm {
						m[k] = pv
					}
				}
			}
			if em, ok := el.(map[string]any); ok {
				if sv, ok := em[sub]; ok {
					m[sub] = sv
				}
			}
			l[i] = m
		}
		return l
	}
	return nil
}

func lookupIn(out map[string]any, it projItem) any {
	if it.ext != "" {
		m, _ := out[it.ext].(map[string]any)
		return m[it.name]
	}
	return out[it.name]
}

func dropSub(v any, sub string) any {
	switch x := v.(type) {
	case map[string]any:
		m := shallow(x)
		delete(m, sub)
		return m
	case []any:
		l := make([]any, len(x))
		for i, el := range x {
			l[i] = dropSub(el, sub)
		}
		return l
	}
	return v
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte(`{}`)
	}
	return b
}
