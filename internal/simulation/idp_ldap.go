package simulation

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/idsync/idsync/sources/ldap/ldaptest"
)

// The LDAP worlds of a process share one real slapd (ldaptest), started by the first LDAP
// world and stopped by StopLDAP: starting slapd costs about a second, loading a world's org
// over LDAP a few milliseconds. Each world lives in a subtree of its own
// (ou=world-N,dc=example,dc=com) that only its source's base_dn reaches, and reads it through
// a TCP proxy of its own (ldaptest.Proxy), which carries the world's faults: connections cut
// in the middle of an answer, or refused. A world's subtree is left in the server when it
// ends; the server's folder goes with StopLDAP.
var slapd struct {
	mu     sync.Mutex
	srv    *ldaptest.Server
	dir    string
	err    error
	worlds atomic.Int64
}

// sharedSlapd returns the process's slapd, starting it on first use. On a machine without
// slapd the error wraps ldaptest.ErrUnavailable.
func sharedSlapd() (*ldaptest.Server, error) {
	slapd.mu.Lock()
	defer slapd.mu.Unlock()
	if slapd.srv != nil || slapd.err != nil {
		return slapd.srv, slapd.err
	}
	dir, err := os.MkdirTemp("", "idsync-sim-slapd-")
	if err != nil {
		slapd.err = err
		return nil, err
	}
	slapd.dir = dir
	// Paged searches read any total; the size limit only bounds unpaged ones. Without fsync
	// a world's writes cost microseconds instead of a disk flush each.
	slapd.srv, slapd.err = ldaptest.Start(dir, ldaptest.Options{SizeLimit: 5000, NoSync: true})
	if slapd.err != nil {
		_ = os.RemoveAll(dir)
	}
	return slapd.srv, slapd.err
}

// StopLDAP stops the slapd the LDAP worlds share and removes its folder (a later LDAP world
// starts a new one). Tests call it from TestMain.
func StopLDAP() {
	slapd.mu.Lock()
	defer slapd.mu.Unlock()
	if slapd.srv != nil {
		slapd.srv.Stop()
	}
	if slapd.dir != "" {
		_ = os.RemoveAll(slapd.dir)
	}
	slapd.srv, slapd.dir, slapd.err = nil, "", nil
}

// ldapPlaceholder is the member of a group nobody is in: groupOfNames needs one.
const ldapPlaceholder = "cn=nobody," + ldaptest.BaseDN

// ldapLocked is pwdAccountLockedTime of a locked (disabled) person: locked for good.
const ldapLocked = "000001010000Z"

// ldapIdP is an LDAP world's IdP: people (inetOrgPerson, uid = userName, mail = email) and
// groups (groupOfNames, cn = name, member = DNs) in the world's subtree of the shared slapd,
// changed over LDAP as the directory's administrator (ldaptest's Add, Replace, AddValues,
// RemoveValues, Delete). A disabled person is locked (pwdAccountLockedTime, the ppolicy
// overlay's attribute), which the source's disabled_filter finds; a leaver's entry is
// deleted.
type ldapIdP struct {
	srv   *ldaptest.Server
	proxy *ldaptest.Proxy
	base  string
	// members are each group's member DNs, as written.
	members map[string]map[string]bool
}

func newLDAP(_ *world, m *model) (*ldapIdP, error) {
	srv, err := sharedSlapd()
	if err != nil {
		return nil, fmt.Errorf("LDAP world: %w", err)
	}
	i := &ldapIdP{srv: srv, base: fmt.Sprintf("ou=world-%d,%s", slapd.worlds.Add(1), ldaptest.BaseDN),
		members: map[string]map[string]bool{}}
	entries := []ldaptest.Entry{ldapOU(i.base), ldapOU("ou=people," + i.base), ldapOU("ou=groups," + i.base)}
	for _, id := range m.order {
		entries = append(entries, i.personEntry(m.people[id]))
	}
	for _, g := range m.groupList() {
		set := map[string]bool{}
		for _, id := range m.order {
			if p := m.people[id]; p.Groups[g] {
				set[i.dn(p)] = true
			}
		}
		i.members[g] = set
		entries = append(entries, ldaptest.Entry{DN: i.groupDN(g), Attrs: []ldaptest.Attr{
			{Name: "objectClass", Values: []string{"groupOfNames"}}, {Name: "cn", Values: []string{g}},
			{Name: "member", Values: memberValues(set)}}})
	}
	if err := srv.Add(entries...); err != nil {
		return nil, fmt.Errorf("LDAP world: loading the org: %w", err)
	}
	if i.proxy, err = ldaptest.NewProxy(srv.Addr); err != nil {
		return nil, err
	}
	return i, nil
}

func ldapOU(dn string) ldaptest.Entry {
	name := strings.TrimPrefix(strings.SplitN(dn, ",", 2)[0], "ou=")
	return ldaptest.Entry{DN: dn, Attrs: []ldaptest.Attr{{Name: "objectClass", Values: []string{"organizationalUnit"}}, {Name: "ou", Values: []string{name}}}}
}

func (i *ldapIdP) dn(p *person) string        { return "uid=" + p.UserName + ",ou=people," + i.base }
func (i *ldapIdP) groupDN(name string) string { return "cn=" + name + ",ou=groups," + i.base }

func (i *ldapIdP) personEntry(p *person) ldaptest.Entry {
	full := p.First + " " + p.Last
	attrs := []ldaptest.Attr{
		{Name: "objectClass", Values: []string{"inetOrgPerson"}}, {Name: "uid", Values: []string{p.UserName}},
		{Name: "cn", Values: []string{full}}, {Name: "sn", Values: []string{p.Last}}, {Name: "givenName", Values: []string{p.First}},
		{Name: "displayName", Values: []string{full}}, {Name: "mail", Values: []string{p.Email}},
	}
	if p.Status == disabled {
		attrs = append(attrs, ldaptest.Attr{Name: "pwdAccountLockedTime", Values: []string{ldapLocked}})
	}
	return ldaptest.Entry{DN: i.dn(p), Attrs: attrs}
}

// memberValues are a group's member values: its members, or the placeholder.
func memberValues(set map[string]bool) []string {
	if len(set) == 0 {
		return []string{ldapPlaceholder}
	}
	out := make([]string, 0, len(set))
	for dn := range set {
		out = append(out, dn)
	}
	sort.Strings(out)
	return out
}

// setMember adds or removes one member DN of a group, keeping the placeholder in a group
// nobody is in.
func (i *ldapIdP) setMember(group, dn string, in bool) error {
	set := i.members[group]
	if set == nil {
		return fmt.Errorf("no group %q", group)
	}
	if set[dn] == in {
		return nil
	}
	a := ldaptest.Attr{Name: "member", Values: []string{dn}}
	var err error
	switch {
	case in && len(set) == 0:
		err = i.srv.Replace(i.groupDN(group), ldaptest.Attr{Name: "member", Values: []string{dn}})
	case in:
		err = i.srv.AddValues(i.groupDN(group), a)
	case len(set) == 1:
		err = i.srv.Replace(i.groupDN(group), ldaptest.Attr{Name: "member", Values: []string{ldapPlaceholder}})
	default:
		err = i.srv.RemoveValues(i.groupDN(group), a)
	}
	if err != nil {
		return err
	}
	if in {
		set[dn] = true
	} else {
		delete(set, dn)
	}
	return nil
}

func (i *ldapIdP) hire(p *person) error {
	if err := i.srv.Add(i.personEntry(p)); err != nil {
		return err
	}
	for _, g := range p.groupList() {
		if err := i.setMember(g, i.dn(p), true); err != nil {
			return err
		}
	}
	return nil
}

// leave takes the person out of their groups, then deletes their entry.
func (i *ldapIdP) leave(p *person) error {
	for _, g := range p.groupList() {
		if err := i.setMember(g, i.dn(p), false); err != nil {
			return err
		}
	}
	return i.srv.Delete(i.dn(p))
}

func (i *ldapIdP) move(p *person, from, to string) error {
	if from != "" {
		if err := i.setMember(from, i.dn(p), false); err != nil {
			return err
		}
	}
	if to != "" {
		return i.setMember(to, i.dn(p), true)
	}
	return nil
}

func (i *ldapIdP) rename(p *person, first, last string) error {
	full := first + " " + last
	return i.srv.Replace(i.dn(p), ldaptest.Attr{Name: "givenName", Values: []string{first}}, ldaptest.Attr{Name: "sn", Values: []string{last}},
		ldaptest.Attr{Name: "cn", Values: []string{full}}, ldaptest.Attr{Name: "displayName", Values: []string{full}})
}

func (i *ldapIdP) setEmail(p *person, email string) error {
	return i.srv.Replace(i.dn(p), ldaptest.Attr{Name: "mail", Values: []string{email}})
}

func (i *ldapIdP) setActive(p *person, on bool) error {
	a := ldaptest.Attr{Name: "pwdAccountLockedTime"}
	if !on {
		a.Values = []string{ldapLocked}
	}
	return i.srv.Replace(i.dn(p), a)
}

func (i *ldapIdP) createGroup(name string) error {
	if err := i.srv.Add(ldaptest.Entry{DN: i.groupDN(name), Attrs: []ldaptest.Attr{
		{Name: "objectClass", Values: []string{"groupOfNames"}}, {Name: "cn", Values: []string{name}},
		{Name: "member", Values: []string{ldapPlaceholder}}}}); err != nil {
		return err
	}
	i.members[name] = map[string]bool{}
	return nil
}

func (i *ldapIdP) deleteGroup(name string) error {
	if err := i.srv.Delete(i.groupDN(name)); err != nil {
		return err
	}
	delete(i.members, name)
	return nil
}

// source is the LDAP source: plain LDAP through the world's proxy, the read-only bind
// account, the world's subtree, locked people disabled, members by DN.
func (i *ldapIdP) source(string) (string, error) {
	return fmt.Sprintf(`  - name: %s
    type: ldap
    priority: 10
    ldap:
      url: ldap://%s
      bind_dn: %q
      bind_password: %q
      base_dn: %q
      server_type: ldap
      user_filter: "(objectClass=inetOrgPerson)"
      group_filter: "(objectClass=groupOfNames)"
      disabled_filter: "(pwdAccountLockedTime=*)"
      membership: member
      attributes: {username: uid, email: mail}
      page_size: %d
      timeout: 20s
      rate_limit: {requests_per_second: 0, concurrency: 1}
`, sourceName, i.proxy.Addr, ldaptest.BindDN, ldaptest.BindPassword, i.base, pageSize), nil
}

// arm sets the pass's faults on the world's proxy: connections opened from now on are cut
// after LDAPCut bytes from the server, or refused.
func (i *ldapIdP) arm(plan passFaults) func() int {
	i.proxy.Cut(plan.LDAPCut)
	i.proxy.Refuse(plan.LDAPDown)
	return nil
}

func (i *ldapIdP) disarm() {
	i.proxy.Cut(0)
	i.proxy.Refuse(false)
}

func (i *ldapIdP) close() { _ = i.proxy.Close() }
