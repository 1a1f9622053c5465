// Package filter parses and evaluates SCIM 2.0 filters (RFC 7644 section 3.4.2.2) and PATCH
// paths (section 3.5.2).
//
// The parser is hand-written rather than taken from a library so that it can promise what the
// listener needs from anything that reads outside input: it never panics, it bounds nesting
// (MaxDepth) and length (MaxLength), every error names the offending position, and a parsed
// filter prints back (Expr.String) to a filter that parses to the same tree.
//
// Grammar accepted (keywords, operators and attribute names are case-insensitive):
//
//	FILTER    = OR
//	OR        = AND *("or" AND)
//	AND       = UNARY *("and" UNARY)
//	UNARY     = "not" "(" FILTER ")" / "(" FILTER ")" / ATOM
//	ATOM      = attrPath "pr" / attrPath compareOp compValue / attrPath "[" FILTER "]"
//	compareOp = "eq" / "ne" / "co" / "sw" / "ew" / "gt" / "ge" / "lt" / "le"
//	compValue = "true" / "false" / "null" / number / string (JSON syntax)
//	attrPath  = [URI ":"] name ["." subName]
//
// A value path ("emails[type eq \"work\"]") may not nest another value path, as in the RFC.
package filter

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxDepth bounds the nesting of parentheses, "not" and value paths.
const MaxDepth = 32

// MaxLength bounds the length of a filter or path in bytes.
const MaxLength = 8192

// Error is a filter or path that cannot be parsed. The listener answers it with 400 and
// scimType invalidFilter (filters) or invalidPath (PATCH paths).
type Error struct {
	Pos int    // byte offset in the input
	Msg string // what is wrong
}

func (e *Error) Error() string { return fmt.Sprintf("at offset %d: %s", e.Pos, e.Msg) }

// Operators.
const (
	OpEq = "eq"
	OpNe = "ne"
	OpCo = "co"
	OpSw = "sw"
	OpEw = "ew"
	OpGt = "gt"
	OpGe = "ge"
	OpLt = "lt"
	OpLe = "le"
	OpPr = "pr"
)

var compareOps = map[string]bool{OpEq: true, OpNe: true, OpCo: true, OpSw: true, OpEw: true, OpGt: true, OpGe: true, OpLt: true, OpLe: true}

// AttrPath names an attribute: an optional schema URI, the attribute, and an optional
// sub-attribute. Names keep the case they were written in; evaluation compares them
// case-insensitively.
type AttrPath struct {
	URI  string
	Name string
	Sub  string
}

// String prints the path as it would appear in a filter.
func (p AttrPath) String() string {
	s := p.Name
	if p.URI != "" {
		s = p.URI + ":" + s
	}
	if p.Sub != "" {
		s += "." + p.Sub
	}
	return s
}

// Expr is a parsed filter.
type Expr interface {
	String() string
	expr()
}

// AttrExpr compares one attribute with a value ("userName eq \"x\"") or tests presence
// (Op == OpPr, Value nil).
type AttrExpr struct {
	Path AttrPath
	Op   string
	// Value is nil (null), bool, string or json.Number.
	Value any
}

// LogExpr joins two filters with "and" or "or".
type LogExpr struct {
	Op          string // "and" | "or"
	Left, Right Expr
}

// NotExpr negates a filter.
type NotExpr struct{ X Expr }

// ValuePathExpr filters the values of a multi-valued attribute: emails[type eq "work"].
type ValuePathExpr struct {
	Path   AttrPath // Sub is always empty
	Filter Expr
}

func (*AttrExpr) expr()      {}
func (*LogExpr) expr()       {}
func (*NotExpr) expr()       {}
func (*ValuePathExpr) expr() {}

func (e *AttrExpr) String() string {
	if e.Op == OpPr {
		return e.Path.String() + " pr"
	}
	return e.Path.String() + " " + e.Op + " " + formatValue(e.Value)
}

// String prints only the parentheses the tree needs ("and" binds tighter than "or", both
// associate to the left), so long chains print flat and re-parse within MaxDepth.
func (e *LogExpr) String() string {
	left := e.Left.String()
	if l, ok := e.Left.(*LogExpr); ok && l.Op == "or" && e.Op == "and" {
		left = "(" + left + ")"
	}
	right := e.Right.String()
	if r, ok := e.Right.(*LogExpr); ok && (r.Op == e.Op || r.Op == "or") {
		right = "(" + right + ")"
	}
	return left + " " + e.Op + " " + right
}

func (e *NotExpr) String() string { return "not (" + e.X.String() + ")" }

func (e *ValuePathExpr) String() string {
	return e.Path.String() + "[" + e.Filter.String() + "]"
}

func formatValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		if x {
			return "true"
		}
		return "false"
	case json.Number:
		return x.String()
	case string:
		b, _ := json.Marshal(x) // a string always marshals
		return string(b)
	}
	return "null"
}

// Parse parses a filter.
func Parse(s string) (Expr, error) {
	p, err := newParser(s)
	if err != nil {
		return nil, err
	}
	e, err := p.parseOr(0, false)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, &Error{Pos: t.pos, Msg: fmt.Sprintf("unexpected %s", t.describe())}
	}
	return e, nil
}

// Path is a PATCH path: attrPath, or attrPath "[" valFilter "]" ["." subName].
type Path struct {
	Attr   AttrPath // with Sub set for "name.givenName"
	Filter Expr     // nil without a value filter
	// Sub is the sub-attribute after a value filter: emails[type eq "work"].value.
	Sub string
}

// String prints the path.
func (p Path) String() string {
	if p.Filter == nil {
		return p.Attr.String()
	}
	s := p.Attr.String() + "[" + p.Filter.String() + "]"
	if p.Sub != "" {
		s += "." + p.Sub
	}
	return s
}

// ParsePath parses a PATCH path.
func ParsePath(s string) (Path, error) {
	p, err := newParser(s)
	if err != nil {
		return Path{}, err
	}
	t := p.next()
	if t.kind != tWord {
		return Path{}, &Error{Pos: t.pos, Msg: fmt.Sprintf("expected an attribute name, found %s", t.describe())}
	}
	ap, err := parseAttrPath(t)
	if err != nil {
		return Path{}, err
	}
	out := Path{Attr: ap}
	if p.peek().kind == tLBracket {
		if ap.Sub != "" {
			return Path{}, &Error{Pos: p.peek().pos, Msg: "a value filter must follow an attribute, not a sub-attribute"}
		}
		p.next()
		f, err := p.parseOr(1, true)
		if err != nil {
			return Path{}, err
		}
		if t := p.next(); t.kind != tRBracket {
			return Path{}, &Error{Pos: t.pos, Msg: fmt.Sprintf("expected ], found %s", t.describe())}
		}
		out.Filter = f
		if t := p.peek(); t.kind == tWord && strings.HasPrefix(t.text, ".") {
			p.next()
			sub := t.text[1:]
			if !validName(sub) {
				return Path{}, &Error{Pos: t.pos, Msg: fmt.Sprintf("invalid sub-attribute %q", sub)}
			}
			out.Sub = sub
		}
	}
	if t := p.peek(); t.kind != tEOF {
		return Path{}, &Error{Pos: t.pos, Msg: fmt.Sprintf("unexpected %s", t.describe())}
	}
	return out, nil
}

type tokKind int

const (
	tEOF tokKind = iota
	tWord
	tString
	tLParen
	tRParen
	tLBracket
	tRBracket
)

type token struct {
	kind tokKind
	text string // word text, or the decoded string
	raw  string // the source text of a string token
	pos  int
}

func (t token) describe() string {
	switch t.kind {
	case tEOF:
		return "end of filter"
	case tString:
		return "string " + t.raw
	case tLParen:
		return "("
	case tRParen:
		return ")"
	case tLBracket:
		return "["
	case tRBracket:
		return "]"
	}
	return fmt.Sprintf("%q", t.text)
}

type parser struct {
	toks []token
	i    int
}

func newParser(s string) (*parser, error) {
	if len(s) > MaxLength {
		return nil, &Error{Pos: MaxLength, Msg: fmt.Sprintf("longer than %d bytes", MaxLength)}
	}
	if !utf8.ValidString(s) {
		return nil, &Error{Pos: 0, Msg: "not valid UTF-8"}
	}
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	return &parser{toks: toks}, nil
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func isKeyword(t token, kw string) bool { return t.kind == tWord && strings.EqualFold(t.text, kw) }

func (p *parser) parseOr(depth int, inValuePath bool) (Expr, error) {
	left, err := p.parseAnd(depth, inValuePath)
	if err != nil {
		return nil, err
	}
	for isKeyword(p.peek(), "or") {
		p.next()
		right, err := p.parseAnd(depth, inValuePath)
		if err != nil {
			return nil, err
		}
		left = &LogExpr{Op: "or", Left: left, Right: right}
	}
	return left, nil
}

func (p *parser) parseAnd(depth int, inValuePath bool) (Expr, error) {
	left, err := p.parseUnary(depth, inValuePath)
	if err != nil {
		return nil, err
	}
	for isKeyword(p.peek(), "and") {
		p.next()
		right, err := p.parseUnary(depth, inValuePath)
		if err != nil {
			return nil, err
		}
		left = &LogExpr{Op: "and", Left: left, Right: right}
	}
	return left, nil
}

func (p *parser) parseUnary(depth int, inValuePath bool) (Expr, error) {
	t := p.peek()
	if depth >= MaxDepth {
		return nil, &Error{Pos: t.pos, Msg: fmt.Sprintf("nested deeper than %d levels", MaxDepth)}
	}
	if isKeyword(t, "not") && p.toks[p.i+1].kind == tLParen {
		p.next()
		p.next()
		x, err := p.parseOr(depth+1, inValuePath)
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tRParen {
			return nil, &Error{Pos: c.pos, Msg: fmt.Sprintf("expected ) to close not(, found %s", c.describe())}
		}
		return &NotExpr{X: x}, nil
	}
	if t.kind == tLParen {
		p.next()
		x, err := p.parseOr(depth+1, inValuePath)
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tRParen {
			return nil, &Error{Pos: c.pos, Msg: fmt.Sprintf("expected ), found %s", c.describe())}
		}
		return x, nil
	}
	return p.parseAtom(depth, inValuePath)
}

func (p *parser) parseAtom(depth int, inValuePath bool) (Expr, error) {
	t := p.next()
	if t.kind != tWord {
		return nil, &Error{Pos: t.pos, Msg: fmt.Sprintf("expected an attribute name, found %s", t.describe())}
	}
	path, err := parseAttrPath(t)
	if err != nil {
		return nil, err
	}
	if p.peek().kind == tLBracket {
		b := p.next()
		if inValuePath {
			return nil, &Error{Pos: b.pos, Msg: "value filters cannot be nested"}
		}
		if path.Sub != "" {
			return nil, &Error{Pos: b.pos, Msg: "a value filter must follow an attribute, not a sub-attribute"}
		}
		f, err := p.parseOr(depth+1, true)
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tRBracket {
			return nil, &Error{Pos: c.pos, Msg: fmt.Sprintf("expected ], found %s", c.describe())}
		}
		return &ValuePathExpr{Path: path, Filter: f}, nil
	}
	opTok := p.next()
	if opTok.kind != tWord {
		return nil, &Error{Pos: opTok.pos, Msg: fmt.Sprintf("expected an operator after %s, found %s", path, opTok.describe())}
	}
	op := strings.ToLower(opTok.text)
	if op == OpPr {
		return &AttrExpr{Path: path, Op: OpPr}, nil
	}
	if !compareOps[op] {
		if strings.EqualFold(path.String(), "not") {
			return nil, &Error{Pos: t.pos, Msg: "not must be followed by a filter in parentheses: not (...)"}
		}
		return nil, &Error{Pos: opTok.pos, Msg: fmt.Sprintf("unknown operator %q (want eq, ne, co, sw, ew, gt, ge, lt, le or pr)", opTok.text)}
	}
	vt := p.next()
	v, err := compValue(vt)
	if err != nil {
		return nil, err
	}
	return &AttrExpr{Path: path, Op: op, Value: v}, nil
}

func compValue(t token) (any, error) {
	switch t.kind {
	case tString:
		return t.text, nil
	case tWord:
		switch strings.ToLower(t.text) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		case "null":
			return nil, nil
		}
		if isNumber(t.text) {
			return json.Number(t.text), nil
		}
		return nil, &Error{Pos: t.pos, Msg: fmt.Sprintf("expected a value (quoted string, number, true, false or null), found %q", t.text)}
	}
	return nil, &Error{Pos: t.pos, Msg: fmt.Sprintf("expected a value, found %s", t.describe())}
}

// isNumber reports whether s is a JSON number.
func isNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	if i >= len(s) || !isDigit(s[i]) {
		return false
	}
	if s[i] == '0' {
		i++
	} else {
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || !isDigit(s[i]) {
			return false
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || !isDigit(s[i]) {
			return false
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	return i == len(s)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isAlpha(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

// validName checks ATTRNAME = ALPHA *(ALPHA / DIGIT / "-" / "_"), plus "$ref".
func validName(s string) bool {
	if s == "$ref" {
		return true
	}
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && !isDigit(c) && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// parseAttrPath splits a word into URI, name and sub-attribute. The URI is everything up to
// the last colon (URNs contain dots, as in "enterprise:2.0:User").
func parseAttrPath(t token) (AttrPath, error) {
	s := t.text
	var ap AttrPath
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		ap.URI = s[:i]
		s = s[i+1:]
		if !validURI(ap.URI) {
			return AttrPath{}, &Error{Pos: t.pos, Msg: fmt.Sprintf("invalid schema URI %q", ap.URI)}
		}
	}
	name, sub, hasSub := strings.Cut(s, ".")
	if !validName(name) {
		return AttrPath{}, &Error{Pos: t.pos, Msg: fmt.Sprintf("invalid attribute name %q", t.text)}
	}
	ap.Name = name
	if hasSub {
		if !validName(sub) {
			return AttrPath{}, &Error{Pos: t.pos, Msg: fmt.Sprintf("invalid sub-attribute in %q", t.text)}
		}
		ap.Sub = sub
	}
	return ap, nil
}

func validURI(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && !isDigit(c) && !strings.ContainsRune(":.-_", rune(c)) {
			return false
		}
	}
	return !strings.Contains(s, "::")
}

func isWordByte(c byte) bool {
	return isAlpha(c) || isDigit(c) || c == '-' || c == '_' || c == ':' || c == '.' || c == '$' || c == '+'
}

func lex(s string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			toks = append(toks, token{kind: tLParen, pos: i})
			i++
		case c == ')':
			toks = append(toks, token{kind: tRParen, pos: i})
			i++
		case c == '[':
			toks = append(toks, token{kind: tLBracket, pos: i})
			i++
		case c == ']':
			toks = append(toks, token{kind: tRBracket, pos: i})
			i++
		case c == '"':
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return nil, &Error{Pos: i, Msg: "unterminated string"}
			}
			raw := s[i : j+1]
			var v string
			if err := json.Unmarshal([]byte(raw), &v); err != nil {
				return nil, &Error{Pos: i, Msg: fmt.Sprintf("invalid string %s", raw)}
			}
			toks = append(toks, token{kind: tString, text: v, raw: raw, pos: i})
			i = j + 1
		case isWordByte(c):
			j := i
			for j < len(s) && isWordByte(s[j]) {
				j++
			}
			toks = append(toks, token{kind: tWord, text: s[i:j], pos: i})
			i = j
		default:
			r, _ := utf8.DecodeRuneInString(s[i:])
			return nil, &Error{Pos: i, Msg: fmt.Sprintf("unexpected character %q", r)}
		}
	}
	toks = append(toks, token{kind: tEOF, pos: len(s)})
	return toks, nil
}
