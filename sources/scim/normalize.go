package scim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/idsync/idsync/sources/scim/filter"
)

// maxDepth bounds JSON nesting of request bodies; SCIM resources nest four levels at most.
const maxDepth = 32

// SCIM error types (RFC 7644 section 3.12).
const (
	errInvalidFilter = "invalidFilter"
	errTooMany       = "tooMany"
	errUniqueness    = "uniqueness"
	errMutability    = "mutability"
	errInvalidSyntax = "invalidSyntax"
	errInvalidPath   = "invalidPath"
	errNoTarget      = "noTarget"
	errInvalidValue  = "invalidValue"
	errInvalidVers   = "invalidVers"
)

// Error is a SCIM error answer: status, scimType and a detail that names the problem.
type Error struct {
	Status   int
	ScimType string
	Detail   string
}

func (e *Error) Error() string {
	if e.ScimType != "" {
		return fmt.Sprintf("%d %s: %s", e.Status, e.ScimType, e.Detail)
	}
	return fmt.Sprintf("%d: %s", e.Status, e.Detail)
}

func badRequest(typ, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, ScimType: typ, Detail: fmt.Sprintf(format, args...)}
}

// decodeBody parses a request body into a JSON object, refusing invalid UTF-8, nesting
// deeper than maxDepth, trailing data and anything but an object. Numbers stay json.Number.
func decodeBody(body []byte) (map[string]any, *Error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, badRequest(errInvalidSyntax, "the request body is empty; a JSON object is required")
	}
	if !utf8.Valid(body) {
		return nil, badRequest(errInvalidSyntax, "the request body is not valid UTF-8")
	}
	if d := jsonDepth(body); d > maxDepth {
		return nil, badRequest(errInvalidSyntax, "the request body nests deeper than %d levels", maxDepth)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, badRequest(errInvalidSyntax, "the request body is not valid JSON: %v", err)
	}
	if dec.More() {
		return nil, badRequest(errInvalidSyntax, "the request body has data after the JSON object")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, badRequest(errInvalidSyntax, "the request body must be a JSON object")
	}
	return m, nil
}

// jsonDepth returns the deepest nesting of objects and arrays, ignoring brackets in strings.
// It does not validate; the decoder does that afterwards.
func jsonDepth(b []byte) int {
	depth, maxD := 0, 0
	inStr := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inStr {
			switch c {
			case '\\':
				i++
			case '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case '{', '[':
			depth++
			if depth > maxD {
				maxD = depth
			}
		case '}', ']':
			depth--
		}
	}
	return maxD
}

// getFold returns m's value for key, matching key case-insensitively (exact match first).
func getFold(m map[string]any, key string) (any, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

// normalize validates a resource body against the resource type and returns it with
// canonical attribute names, booleans as booleans, multi-valued attributes as lists of
// objects and nothing the listener does not keep:
//
//   - unknown attributes and attributes of unknown extension schemas are dropped (IdPs send
//     attributes an app never asked for; refusing them would break provisioning), as is
//     "password" (never stored) and every read-only attribute (id, meta, User.groups: the
//     caller checks id itself);
//   - a value of the wrong type is an invalidValue error naming the attribute;
//   - of several values marked primary, the last one stays primary (RFC 7643 allows one).
//
// The result carries a "schemas" list naming the core schema and the extensions in use.
func normalize(rt *resourceType, in map[string]any) (map[string]any, *Error) {
	out := make(map[string]any, len(in))
	for k, v := range in {
		if strings.EqualFold(k, "schemas") {
			continue
		}
		if ext := rt.extension(k); ext != nil {
			if v == nil {
				continue
			}
			obj, ok := v.(map[string]any)
			if !ok {
				return nil, badRequest(errInvalidValue, "%s must be a JSON object", ext.ID)
			}
			em, _ := out[ext.ID].(map[string]any)
			if em == nil {
				em = map[string]any{}
			}
			for ek, ev := range obj {
				a := ext.attr(ek)
				if a == nil {
					continue
				}
				if err := setNormalized(em, a, ev, ext.ID+":"+a.Name); err != nil {
					return nil, err
				}
			}
			if len(em) > 0 {
				out[ext.ID] = em
			}
			continue
		}
		var (
			extID string
			a     *attrDef
		)
		if i := strings.LastIndexByte(k, ':'); i >= 0 {
			// A fully qualified attribute name at the top level.
			extID, a = rt.lookupAttr(k[:i], k[i+1:])
		} else {
			extID, a = rt.lookupAttr("", k)
		}
		if a == nil || a.Mutability == "readOnly" {
			continue
		}
		target := out
		name := a.Name
		if extID != "" {
			em, _ := out[extID].(map[string]any)
			if em == nil {
				em = map[string]any{}
				out[extID] = em
			}
			target = em
			name = extID + ":" + a.Name
		}
		if _, dup := target[a.Name]; dup {
			return nil, badRequest(errInvalidSyntax, "attribute %s is given twice (attribute names are case-insensitive)", name)
		}
		if err := setNormalized(target, a, v, name); err != nil {
			return nil, err
		}
		if extID != "" && len(target) == 0 {
			delete(out, extID)
		}
	}
	for _, a := range rt.Schema.Attrs {
		if a.Required {
			if s, _ := out[a.Name].(string); strings.TrimSpace(s) == "" {
				return nil, badRequest(errInvalidValue, "%s is required and must be a non-empty string", a.Name)
			}
		}
	}
	schemas := []any{rt.Schema.ID}
	for _, e := range rt.Extensions {
		if _, ok := out[e.ID]; ok {
			schemas = append(schemas, e.ID)
		}
	}
	out["schemas"] = schemas
	return out, nil
}

// setNormalized stores the normalized value of attribute a into m (or removes it when the
// value is null or empty).
func setNormalized(m map[string]any, a *attrDef, v any, name string) *Error {
	nv, err := normalizeValue(a, v, name)
	if err != nil {
		return err
	}
	if nv == nil {
		delete(m, a.Name)
		return nil
	}
	m[a.Name] = nv
	return nil
}

func normalizeValue(a *attrDef, v any, name string) (any, *Error) {
	if v == nil {
		return nil, nil
	}
	if a.Multi {
		list, ok := v.([]any)
		if !ok {
			list = []any{v} // a single value where a list belongs
		}
		out := make([]any, 0, len(list))
		for i, el := range list {
			nv, err := normalizeSingle(a, el, fmt.Sprintf("%s[%d]", name, i))
			if err != nil {
				return nil, err
			}
			if nv != nil {
				out = append(out, nv)
			}
		}
		if len(out) == 0 {
			return nil, nil
		}
		if a.Type == filter.TypeComplex {
			onePrimary(out)
			if a.sub("value") != nil && a.Name == "members" {
				out = dedupeByValue(out)
			}
		}
		return out, nil
	}
	if _, ok := v.([]any); ok {
		return nil, badRequest(errInvalidValue, "%s is single-valued; a list was given", name)
	}
	return normalizeSingle(a, v, name)
}

func normalizeSingle(a *attrDef, v any, name string) (any, *Error) {
	if v == nil {
		return nil, nil
	}
	switch a.Type {
	case filter.TypeComplex:
		var obj map[string]any
		switch x := v.(type) {
		case map[string]any:
			obj = x
		case string:
			// A bare id where an object belongs: a member as "id", Entra's manager as "id".
			if a.sub("value") == nil {
				return nil, badRequest(errInvalidValue, "%s must be a JSON object", name)
			}
			obj = map[string]any{"value": x}
		default:
			return nil, badRequest(errInvalidValue, "%s must be a JSON object", name)
		}
		out := make(map[string]any, len(obj))
		for k, sv := range obj {
			s := a.sub(k)
			if s == nil || (s.Mutability == "readOnly" && a.Mutability != "readOnly") {
				continue
			}
			if _, dup := out[s.Name]; dup {
				return nil, badRequest(errInvalidSyntax, "%s.%s is given twice (attribute names are case-insensitive)", name, s.Name)
			}
			nv, err := normalizeSingle(s, sv, name+"."+s.Name)
			if err != nil {
				return nil, err
			}
			if nv != nil {
				out[s.Name] = nv
			}
		}
		if len(out) == 0 {
			return nil, nil
		}
		return out, nil
	case filter.TypeBoolean:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			switch strings.ToLower(strings.TrimSpace(x)) {
			case "true":
				return true, nil
			case "false":
				return false, nil
			}
		}
		return nil, badRequest(errInvalidValue, "%s must be a boolean (true or false), got %s", name, describe(v))
	case filter.TypeDateTime:
		s, ok := v.(string)
		if !ok {
			return nil, badRequest(errInvalidValue, "%s must be an RFC 3339 time string, got %s", name, describe(v))
		}
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			return nil, badRequest(errInvalidValue, "%s: %q is not an RFC 3339 time", name, s)
		}
		return s, nil
	case filter.TypeInteger, filter.TypeDecimal:
		if n, ok := v.(json.Number); ok {
			return n, nil
		}
		return nil, badRequest(errInvalidValue, "%s must be a number, got %s", name, describe(v))
	}
	// string, reference, binary
	switch x := v.(type) {
	case string:
		return x, nil
	case json.Number:
		// Some IdPs send ids such as employeeNumber as JSON numbers.
		return x.String(), nil
	}
	return nil, badRequest(errInvalidValue, "%s must be a string, got %s", name, describe(v))
}

func describe(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number, float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// onePrimary keeps at most one primary=true value: the last one.
func onePrimary(list []any) {
	last := -1
	for i, el := range list {
		if m, ok := el.(map[string]any); ok && m["primary"] == true {
			last = i
		}
	}
	for i, el := range list {
		if m, ok := el.(map[string]any); ok && i != last && m["primary"] == true {
			m["primary"] = false
		}
	}
}

// dedupeByValue drops repeated members (same value), keeping the first.
func dedupeByValue(list []any) []any {
	seen := make(map[string]bool, len(list))
	out := list[:0]
	for _, el := range list {
		m, _ := el.(map[string]any)
		v, _ := m["value"].(string)
		if v != "" {
			if seen[v] {
				continue
			}
			seen[v] = true
		}
		out = append(out, el)
	}
	return out
}

// deepCopy copies decoded JSON so a patch never mutates the indexed resource.
func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = deepCopy(e)
		}
		return l
	}
	return v
}

// redact returns a copy of decoded JSON with every secret-looking value replaced, for debug
// logs of raw request bodies.
func redact(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			lk := strings.ToLower(k)
			if strings.Contains(lk, "password") || strings.Contains(lk, "secret") || strings.Contains(lk, "token") {
				m[k] = "[redacted]"
				continue
			}
			m[k] = redact(e)
		}
		// A PATCH operation {"path":"password","value":"..."} hides the secret in value.
		if p, ok := x["path"].(string); ok && strings.Contains(strings.ToLower(p), "password") {
			if _, has := m["value"]; has {
				m["value"] = "[redacted]"
			}
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = redact(e)
		}
		return l
	}
	return v
}
