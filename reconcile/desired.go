package reconcile

// Record names one source record: the source and the source's user key. A person merged from
// several sources carries one Record per source.
type Record struct {
	Source string `json:"source"`
	Key    string `json:"key"`
}

// Grant is one thing a person should have: a Jira group, a service desk or an organization
// (Target indexes Desired.Groups, Desired.Desks or Desired.Orgs) and the IdP group that grants
// it (Via indexes Desired.Via; ViaDefault for default_groups). Grants are compact indexes
// because a large org has millions of them.
type Grant struct {
	Target int32 `json:"target"`
	Via    int32 `json:"via"`
}

// ViaDefault marks a grant made by mapping.default_groups rather than by an IdP group.
const ViaDefault int32 = -1

// Person is one human as the mapping sees them, merged across sources.
type Person struct {
	// Source and Key are the winning record (the highest-priority source).
	Source string `json:"source"`
	Key    string `json:"key"`
	// Records are every source record merged into this person, the winner first.
	Records     []Record `json:"records"`
	UserName    string   `json:"userName"`
	Email       string   `json:"email,omitempty"`
	DisplayName string   `json:"displayName,omitempty"`
	// Active false means the IdP deprovisioned the person explicitly.
	Active bool `json:"active"`
	// CustomerOnly people are only in customer-mapped IdP groups: they get a portal-only
	// JSM customer, never a licensed account and never default groups.
	CustomerOnly bool    `json:"customerOnly,omitempty"`
	Groups       []Grant `json:"groups,omitempty"`
	Desks        []Grant `json:"desks,omitempty"`
	Orgs         []Grant `json:"orgs,omitempty"`
}

// DesiredGroup is one Jira group the mapping manages.
type DesiredGroup struct {
	Name string `json:"name"`
	// Authoritative groups are owned whole (mapping.groups[].authoritative).
	Authoritative bool `json:"authoritative,omitempty"`
	// Explicit: the target of a mapping.groups entry; Default: in default_groups; otherwise
	// the group is an on-the-fly same-name import.
	Explicit bool `json:"explicit,omitempty"`
	Default  bool `json:"default,omitempty"`
}

// Ignored is a source record the mapping left alone on purpose (exclude_users) or because its
// data is unusable (duplicate email, empty user name). Its links are neither missing nor
// changed: nothing is deactivated or removed because of bad data.
type Ignored struct {
	Record
	UserName string `json:"userName,omitempty"`
	Email    string `json:"email,omitempty"`
	Reason   string `json:"reason"`
}

// Desired is the Jira state the sources and the mapping ask for.
type Desired struct {
	People []Person `json:"people"`
	// Groups are every managed Jira group: explicit targets and default groups always,
	// on-the-fly groups when someone is granted them.
	Groups []DesiredGroup `json:"groups"`
	// Desks are service desks (project keys or ids as configured); Orgs are JSM organization
	// names.
	Desks []string `json:"desks,omitempty"`
	Orgs  []string `json:"orgs,omitempty"`
	// Via are the IdP group names grants refer to.
	Via []string `json:"via,omitempty"`
	// OnTheFly[v] is true when IdP group Via[v] maps to the Jira group of the same name by
	// mapping.import_groups rather than through mapping.groups. Such an IdP group has no other
	// group target, so every group grant through it is an on-the-fly grant; the planner
	// refuses those whose Jira group grants admin rights or product access. A person granted
	// one Jira group both on the fly and by an explicit mapping or default_groups holds the
	// explicit or default grant (see Mapper.Map). Shorter than Via (or nil) means false.
	OnTheFly []bool `json:"onTheFly,omitempty"`

	Ignored []Ignored `json:"ignored,omitempty"`
	// ImportUsers is mapping.import_users: create accounts for unmatched people.
	ImportUsers bool `json:"importUsers"`
}

// viaName names the IdP group of a grant for reasons.
func (d *Desired) viaName(v int32) string {
	if v < 0 || int(v) >= len(d.Via) {
		return ""
	}
	return d.Via[v]
}
