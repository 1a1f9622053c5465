package filter

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Attribute types (RFC 7643 section 2.3).
const (
	TypeString    = "string"
	TypeBoolean   = "boolean"
	TypeDecimal   = "decimal"
	TypeInteger   = "integer"
	TypeDateTime  = "dateTime"
	TypeBinary    = "binary"
	TypeReference = "reference"
	TypeComplex   = "complex"
)

// Attr is what evaluation needs to know about one attribute.
type Attr struct {
	Name      string // the canonical key in stored resources
	Type      string
	CaseExact bool
	Multi     bool
	Sub       []*Attr
}

// SubAttr finds a sub-attribute by name, case-insensitively.
func (a *Attr) SubAttr(name string) *Attr {
	for _, s := range a.Sub {
		if strings.EqualFold(s.Name, name) {
			return s
		}
	}
	return nil
}

// Schema resolves the attribute a filter names.
type Schema interface {
	// Resolve finds the top-level attribute uri:name (uri may be empty). ext is the key of
	// the extension object that holds it in a resource ("" for core attributes).
	Resolve(uri, name string) (ext string, a *Attr, ok bool)
}

// Matcher reports whether a resource matches a compiled filter. Resources are decoded JSON
// (map[string]any, []any, string, bool, json.Number or float64) with canonical keys.
type Matcher func(res map[string]any) bool

// Compile checks e against the schema (every attribute exists, every operator suits its
// attribute's type, every value parses) and returns a Matcher. Its errors are *Error.
func Compile(e Expr, s Schema) (Matcher, error) {
	return compile(e, s, nil)
}

func compile(e Expr, s Schema, parent *Attr) (Matcher, error) {
	switch x := e.(type) {
	case *LogExpr:
		l, err := compile(x.Left, s, parent)
		if err != nil {
			return nil, err
		}
		r, err := compile(x.Right, s, parent)
		if err != nil {
			return nil, err
		}
		if x.Op == "and" {
			return func(res map[string]any) bool { return l(res) && r(res) }, nil
		}
		return func(res map[string]any) bool { return l(res) || r(res) }, nil
	case *NotExpr:
		m, err := compile(x.X, s, parent)
		if err != nil {
			return nil, err
		}
		return func(res map[string]any) bool { return !m(res) }, nil
	case *ValuePathExpr:
		ext, a, err := resolve(x.Path, s, parent)
		if err != nil {
			return nil, err
		}
		if a.Type != TypeComplex {
			return nil, &Error{Msg: fmt.Sprintf("%s is not a complex attribute; a value filter needs one", x.Path)}
		}
		inner, err := compile(x.Filter, s, a)
		if err != nil {
			return nil, err
		}
		key := a.Name
		return func(res map[string]any) bool {
			for _, el := range elements(lookup(res, ext, key)) {
				if m, ok := el.(map[string]any); ok && inner(m) {
					return true
				}
			}
			return false
		}, nil
	case *AttrExpr:
		return compileAttr(x, s, parent)
	}
	return nil, &Error{Msg: "unknown filter node"}
}

// resolve finds the attribute a path names; inside a value filter (parent set) names are
// sub-attributes of the parent.
func resolve(p AttrPath, s Schema, parent *Attr) (string, *Attr, error) {
	if parent != nil {
		if p.URI != "" || p.Sub != "" {
			return "", nil, &Error{Msg: fmt.Sprintf("%s: inside a value filter name a sub-attribute of %s only", p, parent.Name)}
		}
		a := parent.SubAttr(p.Name)
		if a == nil {
			return "", nil, &Error{Msg: fmt.Sprintf("%s has no sub-attribute %q", parent.Name, p.Name)}
		}
		return "", a, nil
	}
	ext, a, ok := s.Resolve(p.URI, p.Name)
	if !ok {
		return "", nil, &Error{Msg: fmt.Sprintf("unknown attribute %q", p.String())}
	}
	return ext, a, nil
}

func compileAttr(x *AttrExpr, s Schema, parent *Attr) (Matcher, error) {
	ext, top, err := resolve(AttrPath{URI: x.Path.URI, Name: x.Path.Name}, s, parent)
	if err != nil {
		return nil, err
	}
	if parent != nil && x.Path.Sub != "" {
		return nil, &Error{Msg: fmt.Sprintf("%s: inside a value filter name a sub-attribute of %s only", x.Path, parent.Name)}
	}
	leaf := top
	subKey := ""
	if x.Path.Sub != "" {
		leaf = top.SubAttr(x.Path.Sub)
		if top.Type != TypeComplex || leaf == nil {
			return nil, &Error{Msg: fmt.Sprintf("unknown attribute %q", x.Path.String())}
		}
		subKey = leaf.Name
	} else if top.Type == TypeComplex {
		// A complex attribute without a sub-attribute compares its "value" (RFC 7644
		// 3.4.2.2: "emails co \"example.com\"").
		if v := top.SubAttr("value"); v != nil {
			leaf = v
			subKey = v.Name
		}
	}
	key := top.Name
	get := func(res map[string]any) []any {
		return leaves(lookup(res, ext, key), subKey)
	}
	if x.Op == OpPr {
		if leaf.Type == TypeComplex {
			return func(res map[string]any) bool { return present(lookup(res, ext, key)) }, nil
		}
		return func(res map[string]any) bool {
			for _, v := range get(res) {
				if present(v) {
					return true
				}
			}
			return false
		}, nil
	}
	if x.Value == nil {
		switch x.Op {
		case OpEq, OpNe:
			want := x.Op == OpEq
			return func(res map[string]any) bool {
				for _, v := range get(res) {
					if present(v) {
						return !want
					}
				}
				return want
			}, nil
		}
		return nil, &Error{Msg: fmt.Sprintf("%s %s null: only eq and ne compare with null", x.Path, x.Op)}
	}
	if leaf.Type == TypeComplex {
		return nil, &Error{Msg: fmt.Sprintf("%s is complex; compare one of its sub-attributes", x.Path)}
	}
	cmp, err := comparator(x, leaf)
	if err != nil {
		return nil, err
	}
	if x.Op == OpNe {
		return func(res map[string]any) bool {
			for _, v := range get(res) {
				if cmp(v) {
					return false
				}
			}
			return true
		}, nil
	}
	return func(res map[string]any) bool {
		for _, v := range get(res) {
			if cmp(v) {
				return true
			}
		}
		return false
	}, nil
}

// comparator returns a test of one attribute value against the filter's value; for ne it
// tests equality (the caller negates).
func comparator(x *AttrExpr, a *Attr) (func(v any) bool, error) {
	op := x.Op
	if op == OpNe {
		op = OpEq
	}
	switch a.Type {
	case TypeBoolean:
		want, ok := boolValue(x.Value)
		if !ok {
			return nil, &Error{Msg: fmt.Sprintf("%s is a boolean; compare it with true or false", x.Path)}
		}
		if op != OpEq {
			return nil, &Error{Msg: fmt.Sprintf("%s is a boolean; only eq and ne apply", x.Path)}
		}
		return func(v any) bool {
			b, ok := boolValue(v)
			return ok && b == want
		}, nil
	case TypeInteger, TypeDecimal:
		want, ok := numValue(x.Value)
		if !ok {
			return nil, &Error{Msg: fmt.Sprintf("%s is a number; compare it with a number", x.Path)}
		}
		if op == OpCo || op == OpSw || op == OpEw {
			return nil, &Error{Msg: fmt.Sprintf("%s is a number; %s applies to strings only", x.Path, x.Op)}
		}
		return func(v any) bool {
			n, ok := numValue(v)
			return ok && ordered(op, cmpFloat(n, want))
		}, nil
	case TypeDateTime:
		str, ok := x.Value.(string)
		if !ok {
			return nil, &Error{Msg: fmt.Sprintf("%s is a dateTime; compare it with a quoted RFC 3339 time", x.Path)}
		}
		switch op {
		case OpCo, OpSw, OpEw:
			return stringComparator(op, str, false), nil
		}
		want, err := time.Parse(time.RFC3339Nano, str)
		if err != nil {
			return nil, &Error{Msg: fmt.Sprintf("%s: %q is not an RFC 3339 time", x.Path, str)}
		}
		return func(v any) bool {
			s, ok := v.(string)
			if !ok {
				return false
			}
			t, err := time.Parse(time.RFC3339Nano, s)
			return err == nil && ordered(op, t.Compare(want))
		}, nil
	}
	str, ok := x.Value.(string)
	if !ok {
		return nil, &Error{Msg: fmt.Sprintf("%s is a string; compare it with a quoted string", x.Path)}
	}
	return stringComparator(op, str, a.CaseExact), nil
}

func stringComparator(op, want string, caseExact bool) func(v any) bool {
	norm := func(s string) string { return s }
	if !caseExact {
		norm = strings.ToLower
	}
	w := norm(want)
	return func(v any) bool {
		s, ok := v.(string)
		if !ok {
			return false
		}
		s = norm(s)
		switch op {
		case OpEq:
			return s == w
		case OpCo:
			return strings.Contains(s, w)
		case OpSw:
			return strings.HasPrefix(s, w)
		case OpEw:
			return strings.HasSuffix(s, w)
		}
		return ordered(op, strings.Compare(s, w))
	}
}

func ordered(op string, c int) bool {
	switch op {
	case OpEq:
		return c == 0
	case OpGt:
		return c > 0
	case OpGe:
		return c >= 0
	case OpLt:
		return c < 0
	case OpLe:
		return c <= 0
	}
	return false
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// boolValue accepts a JSON boolean and, as some IdPs send them, the strings "true"/"false".
func boolValue(v any) (bool, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case string:
		switch strings.ToLower(x) {
		case "true":
			return true, true
		case "false":
			return false, true
		}
	}
	return false, false
}

func numValue(v any) (float64, bool) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case float64:
		return x, true
	case int:
		return float64(x), true
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	}
	return 0, false
}

func lookup(res map[string]any, ext, key string) any {
	if ext != "" {
		m, ok := res[ext].(map[string]any)
		if !ok {
			return nil
		}
		return m[key]
	}
	return res[key]
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

// leaves flattens an attribute value to the values a comparison looks at.
func leaves(v any, sub string) []any {
	els := elements(v)
	if sub == "" {
		return els
	}
	out := make([]any, 0, len(els))
	for _, el := range els {
		if m, ok := el.(map[string]any); ok {
			out = append(out, m[sub])
		}
	}
	return out
}

func present(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case string:
		return x != ""
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}

// EqualityOn reports whether e is exactly `name eq "value"` on a top-level attribute of the
// schema uri (the path may omit the uri; names compare case-insensitively), so a caller can
// answer it from an index instead of a scan.
func EqualityOn(e Expr, uri, name string) (string, bool) {
	x, ok := e.(*AttrExpr)
	if !ok || x.Op != OpEq || x.Path.Sub != "" || !strings.EqualFold(x.Path.Name, name) {
		return "", false
	}
	if x.Path.URI != "" && !strings.EqualFold(x.Path.URI, uri) {
		return "", false
	}
	s, ok := x.Value.(string)
	return s, ok
}
