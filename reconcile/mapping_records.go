package reconcile

import (
	"fmt"
	"strings"
)

// One source record's way into the mapping: validation and normalisation of its names and
// email, its IdP groups resolved to Jira groups, desks and organizations, its display name.

// rec is one validated source record.
type rec struct {
	src      int
	prio     int
	u        *User
	key      string
	aliases  []string // further keys of the same person (User.Aliases)
	userName string
	email    string
	uLower   string
	eLower   string
	bad      string // why the record is skipped
}

// validateSource checks and transforms one source's users, appending records and warnings.
func (r *mapRun) validateSource(si int, s SourceData, recs []rec, warns []Warning) ([]rec, []Warning) {
	dups := newDupIndex(s.Directory.Source)
	for ui := range s.Directory.Users {
		rc, fate, warn := r.newRec(si, s, &s.Directory.Users[ui])
		if warn != nil {
			warns = append(warns, *warn)
		}
		switch fate {
		case recBad:
			recs = append(recs, rc)
		case recKept:
			recs = append(recs, rc)
			dups.add(recs, len(recs)-1)
		}
	}
	return recs, warns
}

// recFate is what validateSource does with one user.
type recFate int

const (
	recDropped recFate = iota // left out: skipped with a warning, or out of include_groups
	recBad                    // kept with rec.bad set, out of the duplicate checks
	recKept                   // kept, and checked for duplicates
)

// newRec validates and transforms one user of source si: its user name, key and email, and
// whether mapping.exclude_users or mapping.include_groups leave it out. The warning, when
// not nil, is the caller's to report.
func (r *mapRun) newRec(si int, s SourceData, u *User) (rec, recFate, *Warning) {
	m := r.m
	src := s.Directory.Source
	rc := rec{src: si, prio: s.Priority, u: u, key: strings.TrimSpace(u.Key)}
	if len(u.Aliases) > 0 {
		rc.aliases = WithKeys(nil, rc.key, "", u.Aliases)
	}
	name, err := normalizeUserName(u.UserName)
	if err != nil {
		if rc.key == "" {
			return rc, recDropped, &Warning{Source: src, UserName: quote(u.UserName), Message: err.Error() + " and no key; skipped"}
		}
		rc.userName = u.UserName
		rc.bad = err.Error()
		return rc, recBad, nil
	}
	name = m.mapUserName(name)
	if name == "" {
		rc.userName = u.UserName
		rc.bad = "user name is empty after mapping.username"
		if rc.key == "" {
			rc.key = u.UserName
		}
		return rc, recBad, nil
	}
	rc.userName = name
	rc.uLower = lower(name)
	if rc.key == "" {
		rc.key = name
		rc.aliases = WithKeys(rc.aliases, rc.key, "", nil)
	}
	var warn *Warning
	email, err := m.mapEmail(u.Email)
	if err != nil {
		warn = &Warning{Source: src, Key: rc.key, UserName: name, Message: err.Error() + "; kept without an email (cannot be matched or created by email)"}
		email = ""
	}
	rc.email = email
	rc.eLower = lower(email)
	if m.excludeUsers[rc.uLower] || (rc.eLower != "" && m.excludeUsers[rc.eLower]) || m.excludeUsers[lower(strings.TrimSpace(u.UserName))] {
		rc.bad = "excluded by mapping.exclude_users"
		return rc, recBad, warn
	}
	if len(m.include) > 0 && !r.included(u.Groups) {
		return rc, recDropped, warn // out of scope: treated as absent from this source
	}
	return rc, recKept, warn
}

// mapUserName applies mapping.username to a normalised user name.
func (m *Mapper) mapUserName(name string) string {
	if m.userRe != nil {
		name = m.userRe.ReplaceAllString(name, m.cfg.UserName.Replace)
	}
	if m.cfg.UserName.Lowercase {
		name = lower(name)
	}
	return name
}

// mapEmail applies mapping.email to a source email and normalises the result.
func (m *Mapper) mapEmail(email string) (string, error) {
	if m.emailRe != nil && email != "" {
		email = m.emailRe.ReplaceAllString(email, m.cfg.Email.Replace)
	}
	if m.cfg.Email.Lowercase {
		email = lower(email)
	}
	return normalizeEmail(email)
}

// dupIndex finds the records of one source that share a key, an email or a user name, and
// marks both records of each pair bad.
type dupIndex struct {
	src                    string
	byKey, byEmail, byUser map[string]int
}

func newDupIndex(src string) *dupIndex {
	return &dupIndex{src: src, byKey: map[string]int{}, byEmail: map[string]int{}, byUser: map[string]int{}}
}

// add checks recs[i] against the records added before it.
func (d *dupIndex) add(recs []rec, i int) {
	rc := recs[i]
	if j, ok := d.byKey[rc.key]; ok {
		d.mark(recs, j, i, "key "+quote(rc.key))
	} else {
		d.byKey[rc.key] = i
	}
	for _, k := range rc.aliases {
		if j, ok := d.byKey[k]; ok && j != i {
			d.mark(recs, j, i, "key "+quote(k))
		} else {
			d.byKey[k] = i
		}
	}
	if rc.eLower != "" {
		if j, ok := d.byEmail[rc.eLower]; ok {
			d.mark(recs, j, i, "email "+quote(rc.email))
		} else {
			d.byEmail[rc.eLower] = i
		}
	}
	if j, ok := d.byUser[rc.uLower]; ok {
		d.mark(recs, j, i, "user name "+quote(rc.userName))
	} else {
		d.byUser[rc.uLower] = i
	}
}

// mark sets the duplicate message on records a and b, unless they are bad already.
func (d *dupIndex) mark(recs []rec, a, b int, what string) {
	msg := fmt.Sprintf("duplicate %s in source %s (keys %s and %s)", what, d.src, quote(recs[a].key), quote(recs[b].key))
	for _, i := range []int{a, b} {
		if recs[i].bad == "" {
			recs[i].bad = msg
		}
	}
}

func (r *mapRun) included(groups []string) bool {
	for _, g := range groups {
		if r.resolve(g).included {
			return true
		}
	}
	return false
}

// resolve returns the cached mapping of one IdP group name.
func (r *mapRun) resolve(g string) *resolved {
	if rs, ok := r.res[g]; ok {
		return rs
	}
	m := r.m
	name := strings.TrimSpace(g)
	k := lower(name)
	rs := &resolved{via: r.via(name), otf: -1}
	rs.included = m.include[k]
	targets, explicit := m.explicit[k]
	rs.groups = targets
	ct, isCustomer := m.customers[k]
	rs.desks, rs.orgs = ct.desks, ct.orgs
	if m.cfg.ImportGroups && !explicit && !isCustomer && !m.excludeGroups[k] && k != defaultIdPGroup && name != "" {
		rs.otf = -2
		rs.otfName = name
		for len(r.d.OnTheFly) <= int(rs.via) {
			r.d.OnTheFly = append(r.d.OnTheFly, false)
		}
		r.d.OnTheFly[rs.via] = true
	}
	r.res[g] = rs
	return rs
}

// via returns the Desired.Via index of a grant's reason (an IdP group name, or "source X").
func (r *mapRun) via(name string) int32 {
	if v, ok := r.viaIdx[name]; ok {
		return v
	}
	v := int32(len(r.d.Via))
	r.d.Via = append(r.d.Via, name)
	r.viaIdx[name] = v
	return v
}

// customerPart is what an IdP group grants a record of a customers_only source: its customer
// access, never a Jira group (explicit or imported on the fly).
func (rs *resolved) customerPart() *resolved {
	return &resolved{via: rs.via, included: rs.included, desks: rs.desks, orgs: rs.orgs, otf: -1}
}

// onTheFly returns the Desired.Groups index of a same-name group, adding it on first use.
func (r *mapRun) onTheFly(rs *resolved) int32 {
	if rs.otf >= 0 {
		return rs.otf
	}
	k := lower(rs.otfName)
	if i, ok := r.groupIdx[k]; ok {
		rs.otf = i
		return i
	}
	i := int32(len(r.d.Groups))
	r.d.Groups = append(r.d.Groups, DesiredGroup{Name: rs.otfName})
	r.groupIdx[k] = i
	rs.otf = i
	return i
}

func (m *Mapper) displayName(rc *rec) string {
	u := rc.u
	full := strings.TrimSpace(strings.TrimSpace(u.GivenName) + " " + strings.TrimSpace(u.FamilyName))
	dn := strings.TrimSpace(u.DisplayName)
	var s string
	switch c := m.cfg.DisplayName; {
	case c == "name":
		s = firstNonEmpty(full, dn)
	case c == "userName":
		s = rc.userName
	case strings.HasPrefix(c, "attribute:"):
		s = firstNonEmpty(strings.TrimSpace(u.Attributes[strings.TrimPrefix(c, "attribute:")]), dn, full)
	default:
		s = firstNonEmpty(dn, full)
	}
	if s == "" {
		s = rc.userName
	}
	if !validText(s) {
		return rc.userName
	}
	return s
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func validText(s string) bool {
	_, err := normalizeUserName(s)
	return err == nil
}
