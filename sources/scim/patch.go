package scim

import (
	"errors"
	"fmt"
	"strings"

	"github.com/idsync/idsync/sources/scim/filter"
)

// patchOp is one PATCH operation as received.
type patchOp struct {
	Op       string // lower case: add | remove | replace
	Path     string
	Value    any
	HasValue bool
}

// maxPatchOps bounds the operations of one PATCH request.
const maxPatchOps = 1000

// parsePatch reads a PatchOp body, tolerating the dialects IdPs send: "Operations" or
// "operations" (any case), "op" in any case, a single operation object where a list belongs.
func parsePatch(body map[string]any) ([]patchOp, *Error) {
	raw, ok := getFold(body, "Operations")
	if !ok {
		return nil, badRequest(errInvalidSyntax, "a PATCH body needs an Operations list")
	}
	list, ok := raw.([]any)
	if !ok {
		if m, isObj := raw.(map[string]any); isObj {
			list = []any{m}
		} else {
			return nil, badRequest(errInvalidSyntax, "Operations must be a list of operations")
		}
	}
	if len(list) == 0 {
		return nil, badRequest(errInvalidSyntax, "Operations is empty")
	}
	if len(list) > maxPatchOps {
		return nil, badRequest(errInvalidSyntax, "more than %d operations in one PATCH", maxPatchOps)
	}
	ops := make([]patchOp, 0, len(list))
	for i, el := range list {
		m, ok := el.(map[string]any)
		if !ok {
			return nil, badRequest(errInvalidSyntax, "Operations[%d] must be an object", i)
		}
		opv, _ := getFold(m, "op")
		op, ok := opv.(string)
		if !ok {
			return nil, badRequest(errInvalidSyntax, "Operations[%d].op must be a string (add, remove or replace)", i)
		}
		op = strings.ToLower(strings.TrimSpace(op))
		switch op {
		case "add", "remove", "replace":
		default:
			return nil, badRequest(errInvalidSyntax, "Operations[%d].op %q is not add, remove or replace", i, opv)
		}
		var path string
		if pv, has := getFold(m, "path"); has && pv != nil {
			p, ok := pv.(string)
			if !ok {
				return nil, badRequest(errInvalidPath, "Operations[%d].path must be a string", i)
			}
			path = strings.TrimSpace(p)
		}
		v, has := getFold(m, "value")
		ops = append(ops, patchOp{Op: op, Path: path, Value: v, HasValue: has && v != nil})
	}
	return ops, nil
}

// applyPatch applies ops to a copy of res (a stored resource without id and meta) and
// returns the normalized result. id is the resource's id: an operation that sets id to
// anything else is a mutability error; setting it to itself (Okta sends that) is ignored.
func applyPatch(rt *resourceType, res map[string]any, id string, ops []patchOp) (map[string]any, *Error) {
	cur, _ := deepCopy(res).(map[string]any)
	if cur == nil {
		cur = map[string]any{}
	}
	for i, op := range ops {
		if err := applyOp(rt, cur, id, op); err != nil {
			err.Detail = fmt.Sprintf("Operations[%d] (%s): %s", i, op.Op, err.Detail)
			return nil, err
		}
	}
	return normalize(rt, cur)
}

func applyOp(rt *resourceType, res map[string]any, id string, op patchOp) *Error {
	if op.Path == "" {
		if op.Op == "remove" {
			return badRequest(errNoTarget, "remove needs a path")
		}
		if !op.HasValue {
			return badRequest(errInvalidValue, "%s without a path needs a value object", op.Op)
		}
		objs, ok := op.Value.([]any)
		if !ok {
			objs = []any{op.Value}
		}
		for _, o := range objs {
			m, ok := o.(map[string]any)
			if !ok {
				return badRequest(errInvalidValue, "%s without a path needs a value object of attributes, got %s", op.Op, describe(o))
			}
			for k, v := range m {
				if err := applyAttrValue(rt, res, id, op.Op, k, v); err != nil {
					return err
				}
			}
		}
		return nil
	}
	p, err := filter.ParsePath(op.Path)
	if err != nil {
		return badRequest(errInvalidPath, "path %q: %v", op.Path, err)
	}
	if op.Op != "remove" && !op.HasValue {
		return badRequest(errInvalidValue, "%s %q needs a value", op.Op, op.Path)
	}
	if ext := rt.extension(p.Attr.URI + ":" + p.Attr.Name); ext != nil && p.Filter == nil && p.Attr.Sub == "" {
		// The path names a whole extension object.
		return applyExtension(rt, res, ext, op.Op, op.Value, op.HasValue)
	}
	return applyPath(rt, res, id, op.Op, p, op.Value, op.HasValue)
}

// applyAttrValue handles one attribute of a path-less add/replace value object.
func applyAttrValue(rt *resourceType, res map[string]any, id, op, key string, v any) *Error {
	switch {
	case strings.EqualFold(key, "schemas"):
		return nil
	case strings.EqualFold(key, "id"):
		if s, ok := v.(string); ok && s == id {
			return nil
		}
		return badRequest(errMutability, "id is read-only")
	case strings.EqualFold(key, "meta"):
		return nil // read-only; clients echo it back
	}
	if ext := rt.extension(key); ext != nil {
		return applyExtension(rt, res, ext, op, v, true)
	}
	p, err := filter.ParsePath(key)
	if err != nil {
		return badRequest(errInvalidPath, "attribute %q: %v", key, err)
	}
	if _, a := rt.lookupAttr(p.Attr.URI, p.Attr.Name); a == nil {
		return nil // unknown attributes in a value object are ignored, as in POST and PUT
	}
	return applyPath(rt, res, id, op, p, v, true)
}

// applyExtension adds, replaces or removes a whole extension object.
func applyExtension(rt *resourceType, res map[string]any, ext *schemaDef, op string, v any, hasValue bool) *Error {
	if op == "remove" {
		delete(res, ext.ID)
		return nil
	}
	if !hasValue {
		return badRequest(errInvalidValue, "%s %s needs a value", op, ext.ID)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return badRequest(errInvalidValue, "%s must be a JSON object", ext.ID)
	}
	for k, ev := range obj {
		a := ext.attr(k)
		if a == nil {
			continue
		}
		if err := applyPath(rt, res, "", op, filter.Path{Attr: filter.AttrPath{URI: ext.ID, Name: a.Name}}, ev, true); err != nil {
			return err
		}
	}
	return nil
}

// container returns the object holding attributes of ext ("" for core), creating it when
// create is set.
func container(res map[string]any, ext string, create bool) map[string]any {
	if ext == "" {
		return res
	}
	m, _ := res[ext].(map[string]any)
	if m == nil && create {
		m = map[string]any{}
		res[ext] = m
	}
	return m
}

// applyPath applies one operation that has a path: checks the path against the schema, then
// applies it through a value filter, as a removal, or as an add or replace.
func applyPath(rt *resourceType, res map[string]any, id, op string, p filter.Path, v any, hasValue bool) *Error {
	ext, a := rt.lookupAttr(p.Attr.URI, p.Attr.Name)
	if a == nil && rt == userType && strings.EqualFold(p.Attr.Name, "password") &&
		(p.Attr.URI == "" || strings.EqualFold(p.Attr.URI, rt.Schema.ID)) {
		return nil // password changes are accepted and never stored
	}
	if a == nil {
		if p.Attr.URI != "" && rt.extension(p.Attr.URI) == nil && !strings.EqualFold(p.Attr.URI, rt.Schema.ID) {
			return nil // an attribute of an extension this listener does not keep: ignored
		}
		return badRequest(errInvalidPath, "%s has no attribute %q", rt.Name, p.Attr.String())
	}
	if a == idAttr || a == metaAttr || a.Mutability == "readOnly" {
		if a == idAttr && op != "remove" {
			if s, ok := v.(string); ok && s == id {
				return nil
			}
		}
		return badRequest(errMutability, "%s is read-only", a.Name)
	}
	name := a.Name
	if ext != "" {
		name = ext + ":" + a.Name
	}
	var sub *attrDef
	if p.Attr.Sub != "" {
		if a.Type != filter.TypeComplex {
			return badRequest(errInvalidPath, "%s has no sub-attributes", name)
		}
		if sub = a.sub(p.Attr.Sub); sub == nil {
			return badRequest(errInvalidPath, "%s has no sub-attribute %q", name, p.Attr.Sub)
		}
	}
	if p.Filter != nil {
		if !a.Multi || a.Type != filter.TypeComplex {
			return badRequest(errInvalidPath, "%s is not a multi-valued complex attribute; a value filter needs one", name)
		}
		if p.Sub != "" {
			if sub = a.sub(p.Sub); sub == nil {
				return badRequest(errInvalidPath, "%s has no sub-attribute %q", name, p.Sub)
			}
		}
		return applyFiltered(res, ext, a, sub, name, op, p.Filter, v, hasValue)
	}
	c := container(res, ext, op != "remove")
	if op == "remove" {
		if c == nil {
			return nil
		}
		return removePlain(c, a, sub, v, hasValue, name)
	}
	return setPlain(res, c, ext, a, sub, op, name, v)
}

// setPlain applies an add or replace without a value filter to attribute a (or its
// sub-attribute sub) in c, the resource res or its extension ext.
func setPlain(res, c map[string]any, ext string, a, sub *attrDef, op, name string, v any) *Error {
	defer func() {
		if ext != "" && len(c) == 0 {
			delete(res, ext)
		}
	}()
	if sub != nil {
		nv, err := normalizeSingle(sub, v, name+"."+sub.Name)
		if err != nil {
			return err
		}
		if a.Multi {
			// emails.value without a filter: every value (RFC 7644 3.5.2.3).
			for _, el := range elements(c[a.Name]) {
				if m, ok := el.(map[string]any); ok {
					setOrDelete(m, sub.Name, nv)
				}
			}
			return nil
		}
		obj, _ := c[a.Name].(map[string]any)
		if obj == nil {
			obj = map[string]any{}
		}
		setOrDelete(obj, sub.Name, nv)
		setOrDelete(c, a.Name, nonEmpty(obj))
		return nil
	}
	nv, err := normalizeValue(a, v, name)
	if err != nil {
		return err
	}
	switch {
	case a.Multi && op == "add":
		// add appends values not already there.
		cur := elements(c[a.Name])
		for _, nel := range elements(nv) {
			if !containsValue(cur, nel) {
				cur = append(cur, nel)
			}
		}
		setOrDelete(c, a.Name, nonEmptyList(cur))
	case a.Type == filter.TypeComplex && !a.Multi:
		// add and replace on a complex attribute merge sub-attributes (RFC 7644 3.5.2.1, 3.5.2.3).
		obj, _ := c[a.Name].(map[string]any)
		if obj == nil {
			obj = map[string]any{}
		}
		if m, ok := nv.(map[string]any); ok {
			for k, sv := range m {
				obj[k] = sv
			}
		}
		setOrDelete(c, a.Name, nonEmpty(obj))
	default:
		// replace on anything, and add on a single-valued attribute (Entra sends "Add" for
		// those), set the value.
		setOrDelete(c, a.Name, nv)
	}
	return nil
}

// removePlain removes an attribute, a sub-attribute, or (for a multi-valued attribute with
// a value list, as Entra removes members) the listed values.
func removePlain(c map[string]any, a, sub *attrDef, v any, hasValue bool, name string) *Error {
	if sub != nil {
		if a.Multi {
			for _, el := range elements(c[a.Name]) {
				if m, ok := el.(map[string]any); ok {
					delete(m, sub.Name)
				}
			}
			return nil
		}
		if obj, ok := c[a.Name].(map[string]any); ok {
			delete(obj, sub.Name)
			setOrDelete(c, a.Name, nonEmpty(obj))
		}
		return nil
	}
	if a.Multi && hasValue {
		nv, err := normalizeValue(a, v, name)
		if err != nil {
			return err
		}
		var keep []any
		for _, el := range elements(c[a.Name]) {
			if !containsValue(elements(nv), el) {
				keep = append(keep, el)
			}
		}
		setOrDelete(c, a.Name, nonEmptyList(keep))
		return nil
	}
	delete(c, a.Name)
	return nil
}

// applyFiltered handles attr[filter] and attr[filter].sub paths.
func applyFiltered(res map[string]any, ext string, a, sub *attrDef, name, op string, f filter.Expr, v any, hasValue bool) *Error {
	m, err := filter.Compile(f, singleAttrSchema{a})
	if err != nil {
		var fe *filter.Error
		if errors.As(err, &fe) {
			return badRequest(errInvalidPath, "value filter of %s: %s", name, fe.Msg)
		}
		return badRequest(errInvalidPath, "value filter of %s: %v", name, err)
	}
	// Inside the brackets names are sub-attributes of a: resolve them against a itself.
	c := container(res, ext, op != "remove")
	if c == nil {
		return nil
	}
	defer func() {
		if ext != "" && len(c) == 0 {
			delete(res, ext)
		}
	}()
	list := elements(c[a.Name])
	matched := 0
	if op == "remove" {
		var keep []any
		for _, el := range list {
			obj, ok := el.(map[string]any)
			if !ok || !m(obj) {
				keep = append(keep, el)
				continue
			}
			matched++
			if sub != nil {
				delete(obj, sub.Name)
				if len(obj) > 0 {
					keep = append(keep, obj)
				}
			}
		}
		// Removing what is not there succeeds: removals are idempotent, and IdPs retry.
		setOrDelete(c, a.Name, nonEmptyList(keep))
		return nil
	}
	var (
		nv   any
		nerr *Error
	)
	if sub != nil {
		nv, nerr = normalizeSingle(sub, v, name+"."+sub.Name)
	} else {
		nv, nerr = normalizeSingle(a, v, name)
	}
	if nerr != nil {
		return nerr
	}
	for i, el := range list {
		obj, ok := el.(map[string]any)
		if !ok || !m(obj) {
			continue
		}
		matched++
		if sub != nil {
			setOrDelete(obj, sub.Name, nv)
			continue
		}
		if nm, ok := nv.(map[string]any); ok {
			list[i] = nm
		}
	}
	if matched == 0 {
		// Entra sets emails[type eq "work"].value with add or replace when the user has no
		// work email yet: create the value from the filter's equality terms.
		seed, ok := seedFromFilter(f, a)
		if !ok {
			return badRequest(errNoTarget, "no value of %s matches %s", name, f.String())
		}
		if sub != nil {
			setOrDelete(seed, sub.Name, nv)
		} else if nm, ok := nv.(map[string]any); ok {
			for k, x := range nm {
				seed[k] = x
			}
		}
		list = append(list, seed)
	}
	setOrDelete(c, a.Name, nonEmptyList(list))
	return nil
}

// seedFromFilter turns `type eq "work"` (or an and of such terms) into {"type":"work"}.
func seedFromFilter(f filter.Expr, a *attrDef) (map[string]any, bool) {
	out := map[string]any{}
	var walk func(e filter.Expr) bool
	walk = func(e filter.Expr) bool {
		switch x := e.(type) {
		case *filter.LogExpr:
			return x.Op == "and" && walk(x.Left) && walk(x.Right)
		case *filter.AttrExpr:
			s := a.sub(x.Path.Name)
			if x.Op != filter.OpEq || s == nil || x.Path.Sub != "" || x.Value == nil {
				return false
			}
			nv, err := normalizeSingle(s, x.Value, a.Name+"."+s.Name)
			if err != nil {
				return false
			}
			out[s.Name] = nv
			return true
		}
		return false
	}
	return out, walk(f) && len(out) > 0
}

// singleAttrSchema resolves the names inside a value filter as sub-attributes of one
// attribute.
type singleAttrSchema struct{ a *attrDef }

func (s singleAttrSchema) Resolve(uri, name string) (string, *filter.Attr, bool) {
	if uri != "" {
		return "", nil, false
	}
	sub := s.a.sub(name)
	if sub == nil {
		return "", nil, false
	}
	return "", sub.filterAttr, true
}

func elements(v any) []any {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		return x
	}
	return []any{v}
}

func setOrDelete(m map[string]any, k string, v any) {
	if v == nil {
		delete(m, k)
		return
	}
	m[k] = v
}

func nonEmpty(m map[string]any) any {
	if len(m) == 0 {
		return nil
	}
	return m
}

func nonEmptyList(l []any) any {
	if len(l) == 0 {
		return nil
	}
	return l
}

// containsValue reports whether list holds el: complex values with a "value" compare by it
// (members by id; emails by address, case-insensitively), others by equal JSON.
func containsValue(list []any, el any) bool {
	ev := valueKey(el)
	for _, x := range list {
		if valueKey(x) == ev {
			return true
		}
	}
	return false
}

func valueKey(v any) string {
	if m, ok := v.(map[string]any); ok {
		if s, ok := m["value"].(string); ok {
			return "v:" + strings.ToLower(s)
		}
	}
	return fmt.Sprintf("j:%v", v)
}
