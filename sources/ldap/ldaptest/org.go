package ldaptest

import (
	"fmt"
	"strings"
)

// OrgSpec sizes a generated organisation under ou=<OU>,dc=example,dc=com.
type OrgSpec struct {
	OU       string // default "org"
	Users    int
	Disabled int // the first Disabled users of every fortieth are locked (pwdAccountLockedTime)
}

// GroupNames are the generated groups, in order; NestedGroups lists child -> parent edges
// among them (Platform and QA are in Engineering, Security is in IT).
var GroupNames = []string{
	"Engineering", "Sales", "Support", "Marketing", "Finance", "HR", "Legal", "Operations",
	"Product", "Design", "QA", "IT", "Security", "Platform", "Jira-Service-group",
}

// NestedGroups are the child -> parent edges of a generated org.
var NestedGroups = map[string]string{"Platform": "Engineering", "QA": "Engineering", "Security": "IT"}

// Org is a generated organisation.
type Org struct {
	Spec OrgSpec
	// Entries (the OU, its people and groups OUs, the users) load with slapadd; Groups load
	// online, so the memberof overlay sees them.
	Entries, Groups []Entry
	// Members maps each group to its direct user members (uids).
	Members map[string][]string
	// DisabledUIDs are the locked users.
	DisabledUIDs []string
}

// PeopleDN is the OU of an org's users; GroupsDN of its groups.
func (s OrgSpec) base() string     { return "ou=" + s.ou() + "," + BaseDN }
func (s OrgSpec) ou() string       { return or(s.OU, "org") }
func (s OrgSpec) PeopleDN() string { return "ou=people," + s.base() }
func (s OrgSpec) GroupsDN() string { return "ou=groups," + s.base() }
func (s OrgSpec) BaseDN() string   { return s.base() }
func (s OrgSpec) UID(i int) string { return fmt.Sprintf("user.%03d", i) }
func (s OrgSpec) UserDN(uid string) string {
	return "uid=" + uid + "," + s.PeopleDN()
}
func (s OrgSpec) GroupDN(name string) string { return "cn=" + name + "," + s.GroupsDN() }

func or(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

// Email is the generated user's address.
func Email(uid string) string { return uid + "@example.com" }

// GenerateOrg builds a deterministic org: every user in one or two of the leaf groups
// (nested groups add their parents), a few locked users.
func GenerateOrg(spec OrgSpec) Org {
	o := Org{Spec: spec, Members: map[string][]string{}}
	o.Entries = append(o.Entries,
		Entry{DN: spec.base(), Attrs: []Attr{{"objectClass", []string{"organizationalUnit"}}, {"ou", []string{spec.ou()}}}},
		Entry{DN: spec.PeopleDN(), Attrs: []Attr{{"objectClass", []string{"organizationalUnit"}}, {"ou", []string{"people"}}}},
		Entry{DN: spec.GroupsDN(), Attrs: []Attr{{"objectClass", []string{"organizationalUnit"}}, {"ou", []string{"groups"}}}},
	)
	first := []string{"Ada", "Bo", "Cy", "Di", "Ed", "Flo", "Gus", "Hal", "Ivy", "Jo", "Kai", "Lu", "Mo"}
	last := []string{"Stone", "Rivers", "Hill", "Field", "Brook", "Wood", "Lake", "Marsh", "Dale"}
	disabled := 0
	for i := range spec.Users {
		uid := spec.UID(i)
		fn, ln := first[i%len(first)], last[(i/len(first))%len(last)]
		attrs := []Attr{
			{"objectClass", []string{"inetOrgPerson"}}, {"uid", []string{uid}},
			{"cn", []string{fn + " " + ln + " " + uid}}, {"sn", []string{ln}}, {"givenName", []string{fn}},
			{"displayName", []string{fn + " " + ln}}, {"mail", []string{Email(uid)}},
		}
		if i%40 == 7 && disabled < spec.Disabled {
			attrs = append(attrs, Attr{"pwdAccountLockedTime", []string{"000001010000Z"}})
			o.DisabledUIDs = append(o.DisabledUIDs, uid)
			disabled++
		}
		o.Entries = append(o.Entries, Entry{DN: spec.UserDN(uid), Attrs: attrs})
		// Leaf groups only: the parents get their members through nesting.
		leaves := leafGroups()
		o.Members[leaves[i%len(leaves)]] = append(o.Members[leaves[i%len(leaves)]], uid)
		if i%3 == 0 {
			g := leaves[(i/3+5)%len(leaves)]
			if g != leaves[i%len(leaves)] {
				o.Members[g] = append(o.Members[g], uid)
			}
		}
	}
	// Children before their parents: the memberof overlay sets memberOf only on entries
	// that exist when the group naming them is added.
	ordered := make([]string, 0, len(GroupNames))
	for _, g := range GroupNames {
		if _, child := NestedGroups[g]; child {
			ordered = append(ordered, g)
		}
	}
	for _, g := range GroupNames {
		if _, child := NestedGroups[g]; !child {
			ordered = append(ordered, g)
		}
	}
	for _, g := range ordered {
		var member []string
		for _, uid := range o.Members[g] {
			member = append(member, spec.UserDN(uid))
		}
		for child, parent := range NestedGroups {
			if parent == g {
				member = append(member, spec.GroupDN(child))
			}
		}
		if len(member) == 0 {
			// groupOfNames needs a member: the usual placeholder is a DN outside the users.
			member = []string{"cn=nobody," + BaseDN}
		}
		o.Groups = append(o.Groups, Entry{DN: spec.GroupDN(g), Attrs: []Attr{
			{"objectClass", []string{"groupOfNames"}}, {"cn", []string{g}}, {"member", member},
		}})
	}
	return o
}

// leafGroups are the groups that are nobody's parent.
func leafGroups() []string {
	var out []string
	for _, g := range GroupNames {
		parent := false
		for _, p := range NestedGroups {
			if p == g {
				parent = true
			}
		}
		if !parent {
			out = append(out, g)
		}
	}
	return out
}

// ExpectedGroups returns a user's groups with nesting resolved.
func (o Org) ExpectedGroups(uid string) []string {
	var out []string
	add := func(g string) {
		for _, x := range out {
			if strings.EqualFold(x, g) {
				return
			}
		}
		out = append(out, g)
	}
	for _, g := range GroupNames {
		for _, m := range o.Members[g] {
			if m == uid {
				add(g)
				for p, ok := NestedGroups[g]; ok; p, ok = NestedGroups[p] {
					add(p)
				}
			}
		}
	}
	return out
}
