package googletest

import (
	"fmt"
	"strings"
)

// The subset of Google's search syntax the simulator understands: space-separated clauses
// field:value (prefix match when value ends in *, else word or exact match) and field=value
// (exact), values optionally in single quotes. Unknown fields are an error, as at Google.

type term struct {
	field, op, value string
	prefix           bool
}

var (
	userFields  = []string{"email", "givenName", "familyName", "orgUnitPath", "isSuspended", "isArchived", "isAdmin"}
	groupFields = []string{"email", "name"}
)

func parseQuery(q string, fields []string) ([]term, error) {
	var out []term
	for _, clause := range splitClauses(q) {
		i := strings.IndexAny(clause, ":=")
		if i <= 0 {
			return nil, fmt.Errorf("query clause %q", clause)
		}
		t := term{field: clause[:i], op: clause[i : i+1], value: strings.Trim(clause[i+1:], "'")}
		known := false
		for _, f := range fields {
			known = known || f == t.field
		}
		if !known {
			return nil, fmt.Errorf("unknown query field %q", t.field)
		}
		if t.op == ":" && strings.HasSuffix(t.value, "*") {
			t.prefix, t.value = true, strings.TrimSuffix(t.value, "*")
		}
		out = append(out, t)
	}
	return out, nil
}

// splitClauses splits on spaces outside single quotes.
func splitClauses(q string) []string {
	var out []string
	var cur strings.Builder
	quoted := false
	for _, r := range q {
		switch {
		case r == '\'':
			quoted = !quoted
			cur.WriteRune(r)
		case r == ' ' && !quoted:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

func (t term) match(v string) bool {
	switch {
	case t.prefix:
		return strings.HasPrefix(strings.ToLower(v), strings.ToLower(t.value))
	case t.op == "=":
		return strings.EqualFold(v, t.value)
	}
	return strings.EqualFold(v, t.value) || strings.Contains(strings.ToLower(v), strings.ToLower(t.value))
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func matchUser(u *user, terms []term) bool {
	for _, t := range terms {
		var v string
		switch t.field {
		case "email":
			v = u.PrimaryEmail
		case "givenName":
			v = u.GivenName
		case "familyName":
			v = u.FamilyName
		case "orgUnitPath":
			// orgUnitPath='/Staff' matches the unit and everything below it, as at Google.
			if t.op == "=" {
				if !strings.EqualFold(u.OrgUnitPath, t.value) && !strings.HasPrefix(strings.ToLower(u.OrgUnitPath), strings.ToLower(strings.TrimSuffix(t.value, "/"))+"/") {
					return false
				}
				continue
			}
			v = u.OrgUnitPath
		case "isSuspended":
			v = boolString(u.Suspended)
		case "isArchived":
			v = boolString(u.Archived)
		case "isAdmin":
			v = boolString(u.IsAdmin)
		}
		if !t.match(v) {
			return false
		}
	}
	return true
}

func matchGroup(g *group, terms []term) bool {
	for _, t := range terms {
		v := g.email
		if t.field == "name" {
			v = g.name
		}
		if !t.match(v) {
			return false
		}
	}
	return true
}
