package filter

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseRoundTrip(t *testing.T) {
	cases := []struct{ in, want string }{
		{`userName eq "bjensen"`, `userName eq "bjensen"`},
		{`USERNAME EQ "Bjensen"`, `USERNAME eq "Bjensen"`},
		{`name.familyName co "O'Malley"`, `name.familyName co "O'Malley"`},
		{`userName sw "J"`, `userName sw "J"`},
		{`userName ew "son"`, `userName ew "son"`},
		{`title pr`, `title pr`},
		{`meta.lastModified gt "2011-05-13T04:42:34Z"`, `meta.lastModified gt "2011-05-13T04:42:34Z"`},
		{`meta.lastModified ge "2011-05-13T04:42:34Z"`, `meta.lastModified ge "2011-05-13T04:42:34Z"`},
		{`meta.lastModified lt "2011-05-13T04:42:34Z"`, `meta.lastModified lt "2011-05-13T04:42:34Z"`},
		{`meta.lastModified le "2011-05-13T04:42:34Z"`, `meta.lastModified le "2011-05-13T04:42:34Z"`},
		{`title pr and userType eq "Employee"`, `title pr and userType eq "Employee"`},
		{`title pr or userType eq "Intern"`, `title pr or userType eq "Intern"`},
		{`schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"`, `schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"`},
		{`userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")`,
			`userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")`},
		{`userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")`,
			`userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")`},
		{`userType eq "Employee" and (emails.type eq "work")`, `userType eq "Employee" and emails.type eq "work"`},
		{`userType eq "Employee" and emails[type eq "work" and value co "@example.com"]`,
			`userType eq "Employee" and emails[type eq "work" and value co "@example.com"]`},
		{`emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]`,
			`emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]`},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "Sales"`,
			`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "Sales"`},
		{`active eq true`, `active eq true`},
		{`active eq FALSE`, `active eq false`},
		{`manager eq null`, `manager eq null`},
		{`age gt -1.5e3`, `age gt -1.5e3`},
		{`a pr or b pr and c pr`, `a pr or b pr and c pr`},
		{`(a pr or b pr) and c pr`, `(a pr or b pr) and c pr`},
		{`a pr and (b pr and c pr)`, `a pr and (b pr and c pr)`},
		{`userName eq "a \"quoted\" \u00e9"`, `userName eq "a \"quoted\" é"`},
		{`members[value eq "2819c223"]`, `members[value eq "2819c223"]`},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			e, err := Parse(c.in)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := e.String(); got != c.want {
				t.Fatalf("String() = %q, want %q", got, c.want)
			}
			e2, err := Parse(e.String())
			if err != nil || e2.String() != e.String() {
				t.Fatalf("re-parse of %q: %v / %q", e.String(), err, e2)
			}
		})
	}
}

func TestParsePrecedence(t *testing.T) {
	e, err := Parse(`a pr or b pr and c pr`)
	if err != nil {
		t.Fatal(err)
	}
	or, ok := e.(*LogExpr)
	if !ok || or.Op != "or" {
		t.Fatalf("top node = %#v, want or", e)
	}
	if and, ok := or.Right.(*LogExpr); !ok || and.Op != "and" {
		t.Fatalf("right of or = %#v, want and", or.Right)
	}
}

func TestParseErrors(t *testing.T) {
	cases := map[string]string{
		``:                          "expected an attribute name",
		`userName`:                  "expected an operator",
		`userName eq`:               "expected a value",
		`userName xx "a"`:           "unknown operator",
		`userName eq bob`:           "expected a value",
		`userName eq "unterminated`: "unterminated string",
		`(userName pr`:              "expected )",
		`userName pr)`:              "unexpected )",
		`not userName pr`:           "not must be followed",
		`emails[type eq "work"`:     "expected ]",
		`emails[type[value pr] pr]`: "cannot be nested",
		`emails.value[type pr]`:     "sub-attribute",
		`1userName pr`:              "invalid attribute name",
		`userName eq "a" and`:       "expected an attribute name",
		`userName eq 01`:            "expected a value",
		`userName eq "a" # x`:       "unexpected character",
		"userName eq \"\xff\"":      "UTF-8",
		strings.Repeat("(", 40) + "a pr" + strings.Repeat(")", 40): "deeper than",
		`userName eq "bad \x escape"`:                              "invalid string",
		strings.Repeat("a", MaxLength+1):                           "longer than",
		`urn::x:userName pr`:                                       "invalid schema URI",
	}
	for in, want := range cases {
		name := in
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			_, err := Parse(in)
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("Parse(%q) error = %v, want *Error", in, err)
			}
			if !strings.Contains(fe.Msg, want) {
				t.Fatalf("Parse(%q) = %q, want it to mention %q", in, fe.Msg, want)
			}
		})
	}
}

func TestParsePath(t *testing.T) {
	cases := []struct{ in, want, sub string }{
		{`userName`, `userName`, ""},
		{`name.givenName`, `name.givenName`, ""},
		{`members[value eq "2819c223-7f76-453a-919d-413861904646"]`, `members[value eq "2819c223-7f76-453a-919d-413861904646"]`, ""},
		{`emails[type eq "work"].value`, `emails[type eq "work"].value`, "value"},
		{`addresses[type eq "work"].streetAddress`, `addresses[type eq "work"].streetAddress`, "streetAddress"},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager`, `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager`, ""},
	}
	for _, c := range cases {
		p, err := ParsePath(c.in)
		if err != nil {
			t.Fatalf("ParsePath(%q): %v", c.in, err)
		}
		if p.String() != c.want || p.Sub != c.sub {
			t.Fatalf("ParsePath(%q) = %q sub %q", c.in, p.String(), p.Sub)
		}
	}
	for _, bad := range []string{``, `emails[type eq "work"`, `emails[type eq "work"]value`, `name.givenName[x pr]`, `a b`, `emails[type eq "work"].1x`} {
		if _, err := ParsePath(bad); err == nil {
			t.Fatalf("ParsePath(%q) succeeded", bad)
		}
	}
}

// testSchema is a small User schema for evaluation tests.
type testSchema map[string]*Attr

func (s testSchema) Resolve(uri, name string) (string, *Attr, bool) {
	const ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	if strings.EqualFold(uri, ent) {
		if strings.EqualFold(name, "department") {
			return ent, &Attr{Name: "department", Type: TypeString}, true
		}
		return "", nil, false
	}
	for k, a := range s {
		if strings.EqualFold(k, name) {
			return "", a, true
		}
	}
	return "", nil, false
}

var schema = testSchema{
	"id":       {Name: "id", Type: TypeString, CaseExact: true},
	"userName": {Name: "userName", Type: TypeString},
	"title":    {Name: "title", Type: TypeString},
	"active":   {Name: "active", Type: TypeBoolean},
	"age":      {Name: "age", Type: TypeInteger},
	"name": {Name: "name", Type: TypeComplex, Sub: []*Attr{
		{Name: "givenName", Type: TypeString}, {Name: "familyName", Type: TypeString}}},
	"emails": {Name: "emails", Type: TypeComplex, Multi: true, Sub: []*Attr{
		{Name: "value", Type: TypeString}, {Name: "type", Type: TypeString}, {Name: "primary", Type: TypeBoolean}}},
	"meta": {Name: "meta", Type: TypeComplex, Sub: []*Attr{
		{Name: "lastModified", Type: TypeDateTime}, {Name: "resourceType", Type: TypeString, CaseExact: true}}},
}

func testUser() map[string]any {
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(`{
		"id": "2819c223-7f76-453a-919d-413861904646",
		"userName": "BJensen@example.com",
		"active": true,
		"age": 42,
		"name": {"givenName": "Barbara", "familyName": "Jensen"},
		"emails": [
			{"value": "bjensen@example.com", "type": "work", "primary": true},
			{"value": "babs@jensen.org", "type": "home"}
		],
		"meta": {"lastModified": "2024-05-13T04:42:34Z", "resourceType": "User"},
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Sales"}
	}`))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		panic(err)
	}
	return m
}

func TestEvaluate(t *testing.T) {
	cases := map[string]bool{
		`userName eq "bjensen@example.com"`:            true, // caseExact false
		`userName eq "nobody"`:                         false,
		`userName ne "nobody"`:                         true,
		`userName ne "BJENSEN@example.com"`:            false,
		`userName co "JENSEN"`:                         true,
		`userName sw "bj"`:                             true,
		`userName sw "jensen"`:                         false,
		`userName ew "EXAMPLE.COM"`:                    true,
		`userName gt "a"`:                              true,
		`userName lt "a"`:                              false,
		`userName ge "bjensen@example.com"`:            true,
		`userName le "bjensen@example.com"`:            true,
		`id eq "2819C223-7F76-453A-919D-413861904646"`: false, // caseExact
		`id eq "2819c223-7f76-453a-919d-413861904646"`: true,
		`title pr`:                          false,
		`userName pr`:                       true,
		`emails pr`:                         true,
		`name pr`:                           true,
		`title eq null`:                     true,
		`userName ne null`:                  true,
		`active eq true`:                    true,
		`active eq false`:                   false,
		`active ne false`:                   true,
		`active eq "True"`:                  true,
		`age gt 40`:                         true,
		`age le 41.5`:                       false,
		`age eq 42`:                         true,
		`name.givenName eq "barbara"`:       true,
		`NAME.FAMILYNAME sw "Jen"`:          true,
		`emails co "jensen.org"`:            true,
		`emails.value eq "babs@jensen.org"`: true,
		`emails.type eq "other"`:            false,
		`emails[type eq "work" and primary eq true]`:                                       true,
		`emails[type eq "home" and primary eq true]`:                                       false,
		`emails[type eq "home" and value ew ".org"]`:                                       true,
		`emails[not (type eq "work")]`:                                                     true,
		`meta.lastModified gt "2024-05-13T04:42:33Z"`:                                      true,
		`meta.lastModified gt "2024-05-13T04:42:34Z"`:                                      false,
		`meta.lastModified ge "2024-05-13T06:42:34+02:00"`:                                 true, // same instant
		`meta.lastModified lt "2025-01-01T00:00:00Z"`:                                      true,
		`meta.lastModified le "2020-01-01T00:00:00Z"`:                                      false,
		`meta.lastModified eq "2024-05-13T04:42:34.000Z"`:                                  true,
		`meta.resourceType eq "user"`:                                                      false, // caseExact
		`userName pr and not (title pr)`:                                                   true,
		`title pr or (active eq true and age gt 18)`:                                       true,
		`not (userName pr)`:                                                                false,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "sales"`: true,
	}
	u := testUser()
	for f, want := range cases {
		t.Run(f, func(t *testing.T) {
			e, err := Parse(f)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			m, err := Compile(e, schema)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			if got := m(u); got != want {
				t.Fatalf("match = %v, want %v", got, want)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	cases := map[string]string{
		`nosuch eq "x"`:                    "unknown attribute",
		`name.nosuch eq "x"`:               "unknown attribute",
		`active gt true`:                   "only eq and ne",
		`active eq 1`:                      "boolean",
		`age co 4`:                         "strings only",
		`age eq "x"`:                       "number",
		`userName eq 1`:                    "quoted string",
		`meta.lastModified gt "yesterday"`: "RFC 3339",
		`meta.lastModified gt 5`:           "dateTime",
		`name eq "x"`:                      "complex",
		`userName[value pr]`:               "not a complex",
		`emails[nosuch pr]`:                "no sub-attribute",
		`emails[value.x pr]`:               "sub-attribute",
		`userName gt null`:                 "null",
		`urn:x:y:department eq "x"`:        "unknown attribute",
	}
	for f, want := range cases {
		e, err := Parse(f)
		if err != nil {
			t.Fatalf("Parse(%q): %v", f, err)
		}
		_, err = Compile(e, schema)
		var fe *Error
		if !errors.As(err, &fe) || !strings.Contains(fe.Msg, want) {
			t.Fatalf("Compile(%q) = %v, want *Error mentioning %q", f, err, want)
		}
	}
}

func TestEqualityOn(t *testing.T) {
	const core = "urn:ietf:params:scim:schemas:core:2.0:User"
	for f, want := range map[string]bool{
		`userName eq "x"`:           true,
		`USERNAME eq "x"`:           true,
		core + `:userName eq "x"`:   true,
		`urn:other:userName eq "x"`: false,
		`userName co "x"`:           false,
		`userName eq "x" and a pr`:  false,
		`userName.sub eq "x"`:       false,
		`userName eq true`:          false,
	} {
		e, err := Parse(f)
		if err != nil {
			t.Fatal(err)
		}
		v, ok := EqualityOn(e, core, "userName")
		if ok != want || (ok && v != "x") {
			t.Fatalf("EqualityOn(%q) = %q, %v", f, v, ok)
		}
	}
}

// FuzzFilter: the parser never panics; what it accepts prints to a filter that parses to
// the same text; what it refuses is an *Error.
func FuzzFilter(f *testing.F) {
	for _, s := range []string{
		`userName eq "bjensen"`, `title pr and not (userType eq "x")`,
		`emails[type eq "work" and primary eq true]`, `meta.lastModified gt "2011-05-13T04:42:34Z"`,
		`a pr or b pr and (c pr or d pr)`, `x eq -1.5e+3`, `urn:a:b:c eq null`, `((((a pr))))`,
		`userName eq "\u00e9\"\\"`, `not(a pr)`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := Parse(s)
		if err != nil {
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("Parse(%q) error %T is not *Error", s, err)
			}
			return
		}
		out := e.String()
		e2, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(%q) ok but its String %q fails: %v", s, out, err)
		}
		if e2.String() != out {
			t.Fatalf("round trip of %q: %q != %q", s, e2.String(), out)
		}
		// Evaluation of anything parsed must not panic either.
		if m, err := Compile(e, schema); err == nil {
			m(testUser())
		}
	})
}
