package ldap

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/rs/zerolog"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/metrics"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/sources/ldap/ldaptest"
)

// One generic server and one that looks like Active Directory serve the whole test binary;
// tests that change data use their own subtree.
var (
	servers struct {
		once    sync.Once
		generic *ldaptest.Server
		ad      *ldaptest.Server
		err     error
		dirs    []string
	}
	org = ldaptest.GenerateOrg(ldaptest.OrgSpec{OU: "org", Users: 30, Disabled: 1})
)

const bulkUsers = 10_000

func TestMain(m *testing.M) {
	code := m.Run()
	if servers.generic != nil {
		servers.generic.Stop()
	}
	if servers.ad != nil {
		servers.ad.Stop()
	}
	for _, d := range servers.dirs {
		_ = os.RemoveAll(d)
	}
	os.Exit(code)
}

func startServers() {
	dir, err := os.MkdirTemp("", "idsync-ldap-")
	if err != nil {
		servers.err = err
		return
	}
	servers.dirs = append(servers.dirs, dir)
	entries := append([]ldaptest.Entry{}, org.Entries...)
	entries = append(entries, oddEntries()...)
	entries = append(entries, posixEntries()...)
	entries = append(entries, bulkEntries()...)
	entries = append(entries, refEntries()...)
	online := append([]ldaptest.Entry{}, org.Groups...)
	online = append(online, oddGroups()...)
	servers.generic, servers.err = ldaptest.Start(dir, ldaptest.Options{Entries: entries, Online: online})
	if servers.err != nil {
		return
	}
	adDir, err := os.MkdirTemp("", "idsync-ldap-ad-")
	if err != nil {
		servers.err = err
		return
	}
	servers.dirs = append(servers.dirs, adDir)
	servers.ad, servers.err = ldaptest.Start(adDir, ldaptest.Options{Entries: adEntries(), ActiveDirectory: true})
}

// generic returns the shared generic server, or skips (fails with IDSYNC_REQUIRE_SLAPD=1).
func generic(t *testing.T) *ldaptest.Server {
	t.Helper()
	servers.once.Do(startServers)
	if servers.err != nil {
		ldaptest.Skip(t, servers.err)
	}
	return servers.generic
}

func activeDirectory(t *testing.T) *ldaptest.Server {
	t.Helper()
	generic(t)
	return servers.ad
}

// cfgFor is a config for srv under base with the read-only account.
func cfgFor(srv *ldaptest.Server, base string) configs.LDAPConfig {
	return configs.LDAPConfig{
		URL: srv.URL, BindDN: ldaptest.BindDN, BindPassword: ldaptest.BindPassword, BaseDN: base,
		PageSize: 100, Timeout: 20 * time.Second, Membership: configs.LDAPMembershipMember,
		ServerType: configs.LDAPServerAuto,
	}
}

func newSource(t *testing.T, cfg configs.LDAPConfig, opts Options) *Source {
	t.Helper()
	if opts.Logger.GetLevel() == zerolog.DebugLevel && opts.Metrics == nil {
		opts.Logger = zerolog.Nop()
	}
	s, err := New("dir", cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func snapshot(t *testing.T, s *Source) reconcile.Directory {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	return dir
}

func byUserName(d reconcile.Directory) map[string]reconcile.User {
	m := make(map[string]reconcile.User, len(d.Users))
	for _, u := range d.Users {
		m[strings.ToLower(u.UserName)] = u
	}
	return m
}

func groupsEqual(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	seen := map[string]int{}
	for _, g := range got {
		seen[strings.ToLower(g)]++
	}
	for _, w := range want {
		if seen[strings.ToLower(w)] == 0 {
			return false
		}
		seen[strings.ToLower(w)]--
	}
	return true
}

func person(dn, uid, cn, sn string, more ...ldaptest.Attr) ldaptest.Entry {
	attrs := []ldaptest.Attr{{Name: "objectClass", Values: []string{"inetOrgPerson"}}, {Name: "cn", Values: []string{cn}}, {Name: "sn", Values: []string{sn}}}
	if uid != "" {
		attrs = append(attrs, ldaptest.Attr{Name: "uid", Values: []string{uid}}, ldaptest.Attr{Name: "mail", Values: []string{uid + "@example.com"}})
	}
	return ldaptest.Entry{DN: dn, Attrs: append(attrs, more...)}
}

func ou(dn, name string) ldaptest.Entry {
	return ldaptest.Entry{DN: dn, Attrs: []ldaptest.Attr{{Name: "objectClass", Values: []string{"organizationalUnit"}}, {Name: "ou", Values: []string{name}}}}
}

func groupOfNames(dn, cn string, members ...string) ldaptest.Entry {
	return ldaptest.Entry{DN: dn, Attrs: []ldaptest.Attr{{Name: "objectClass", Values: []string{"groupOfNames"}}, {Name: "cn", Values: []string{cn}}, {Name: "member", Values: members}}}
}

// --- ou=odd: DNs with commas, plus signs, escapes and non-ASCII; a user without uid; a
// nested-group cycle.

const oddBase = "ou=odd,dc=example,dc=com"

var (
	oddSmith  = `cn=Smith\, John+uid=jsmith,ou=people,` + oddBase
	oddJose   = "uid=josé.núñez,ou=people," + oddBase
	oddQuote  = `cn=A\+B \"Q\" \<x\>\;y,ou=people,` + oddBase
	oddHash   = `cn=\#hash\=1\\,ou=people,` + oddBase
	oddNoUID  = "cn=No Uid,ou=people," + oddBase
	oddCycleU = "uid=cyclist,ou=people," + oddBase
)

func oddEntries() []ldaptest.Entry {
	return []ldaptest.Entry{
		ou(oddBase, "odd"), ou("ou=people,"+oddBase, "people"), ou("ou=groups,"+oddBase, "groups"),
		person(oddSmith, "jsmith", "Smith, John", "Smith", ldaptest.Attr{Name: "givenName", Values: []string{"John"}}),
		person(oddJose, "josé.núñez", "José Núñez", "Núñez", ldaptest.Attr{Name: "displayName", Values: []string{"José Núñez 👋"}},
			ldaptest.Attr{Name: "departmentNumber", Values: []string{"Ventas"}}),
		person(oddQuote, "quote", `A+B "Q" <x>;y`, "Quote"),
		person(oddHash, "hash", `#hash=1\`, "Hash"),
		person(oddNoUID, "", "No Uid", "Uid"),
		person(oddCycleU, "cyclist", "Cy Clist", "Clist"),
	}
}

func oddGroups() []ldaptest.Entry {
	g := func(cn string) string { return "cn=" + cn + ",ou=groups," + oddBase }
	return []ldaptest.Entry{
		// Members written unlike the entries' own DNs: other case, the RDN's values in the
		// other order, hex escapes for the non-ASCII letters and for the comma.
		groupOfNames(`cn=R&D\, Europe,ou=groups,`+oddBase, "R&D, Europe",
			`UID=JSMITH+CN=SMITH\2C JOHN,OU=People,OU=Odd,DC=Example,DC=Com`,
			`uid=jos\C3\A9.n\C3\BA\C3\B1ez,ou=people,`+oddBase,
			oddQuote, oddHash, oddNoUID),
		groupOfNames(g("Ünïcødé Team"), "Ünïcødé Team", oddJose),
		// A -> B -> C -> A, with cyclist in C.
		groupOfNames(g("Cycle A"), "Cycle A", g("Cycle B")),
		groupOfNames(g("Cycle B"), "Cycle B", g("Cycle C")),
		groupOfNames(g("Cycle C"), "Cycle C", oddCycleU, g("Cycle A")),
	}
}

// --- ou=posix: posixAccount users and posixGroup memberUid.

const posixBase = "ou=posix,dc=example,dc=com"

func posixEntries() []ldaptest.Entry {
	out := []ldaptest.Entry{ou(posixBase, "posix"), ou("ou=people,"+posixBase, "people"), ou("ou=groups,"+posixBase, "groups")}
	for i, uid := range []string{"pam", "pat", "pia"} {
		out = append(out, person("uid="+uid+",ou=people,"+posixBase, uid, uid, uid,
			ldaptest.Attr{Name: "objectClass", Values: []string{"posixAccount"}},
			ldaptest.Attr{Name: "uidNumber", Values: []string{fmt.Sprint(1000 + i)}},
			ldaptest.Attr{Name: "gidNumber", Values: []string{"100"}},
			ldaptest.Attr{Name: "homeDirectory", Values: []string{"/home/" + uid}}))
	}
	pg := func(cn, gid string, uids ...string) ldaptest.Entry {
		return ldaptest.Entry{DN: "cn=" + cn + ",ou=groups," + posixBase, Attrs: []ldaptest.Attr{
			{Name: "objectClass", Values: []string{"posixGroup"}}, {Name: "cn", Values: []string{cn}},
			{Name: "gidNumber", Values: []string{gid}}, {Name: "memberUid", Values: uids}}}
	}
	return append(out,
		pg("devs", "200", "pam", "PAT", "ghost"),
		pg("ops", "201", "pia"),
	)
}

// --- ou=bulk: 10,000 users, more than the server's size limit (500), so only a paged read
// gets them all; a group with 2,000 of them.

const bulkBase = "ou=bulk,dc=example,dc=com"

func bulkUID(i int) string { return fmt.Sprintf("b%05d", i) }

func bulkEntries() []ldaptest.Entry {
	out := make([]ldaptest.Entry, 0, bulkUsers+3)
	out = append(out, ou(bulkBase, "bulk"))
	var members []string
	for i := range bulkUsers {
		dn := "uid=" + bulkUID(i) + "," + bulkBase
		out = append(out, person(dn, bulkUID(i), "Bulk "+bulkUID(i), "Bulk"))
		if i < 2000 {
			members = append(members, dn)
		}
	}
	return append(out, groupOfNames("cn=Bulk-Big,"+bulkBase, "Bulk-Big", members...))
}

// --- ou=refs: a referral object among normal entries.

const refsBase = "ou=refs,dc=example,dc=com"

func refEntries() []ldaptest.Entry {
	return []ldaptest.Entry{
		ou(refsBase, "refs"),
		person("uid=here,"+refsBase, "here", "Here", "Here"),
		{DN: "ou=elsewhere," + refsBase, Attrs: []ldaptest.Attr{
			{Name: "objectClass", Values: []string{"referral", "extensibleObject"}}, {Name: "ou", Values: []string{"elsewhere"}},
			{Name: "ref", Values: []string{"ldap://ldap.other.example/ou=elsewhere,dc=other,dc=example"}}}},
	}
}

// --- the Active Directory look-alike: ou=ad with objectGUID, sAMAccountName,
// userAccountControl and objectCategory.

const adBase = "ou=ad,dc=example,dc=com"

// adGUID is the objectGUID of user i: bytes 0x10+i, 0x11+i, ...
func adGUID(i int) []byte {
	b := make([]byte, 16)
	for j := range b {
		b[j] = byte(0x10*i + j)
	}
	return b
}

func adEntries() []ldaptest.Entry {
	out := []ldaptest.Entry{ou(adBase, "ad")}
	user := func(i int, sam string, uac string) ldaptest.Entry {
		return ldaptest.Entry{DN: "cn=" + sam + "," + adBase, Attrs: []ldaptest.Attr{
			{Name: "objectClass", Values: []string{"user"}}, {Name: "cn", Values: []string{sam}}, {Name: "sn", Values: []string{sam}},
			{Name: "sAMAccountName", Values: []string{sam}}, {Name: "mail", Values: []string{sam + "@corp.example.com"}},
			{Name: "objectGUID", Values: []string{string(adGUID(i))}}, {Name: "userAccountControl", Values: []string{uac}},
			{Name: "objectCategory", Values: []string{"person"}},
		}}
	}
	out = append(out,
		user(1, "alice", "512"),
		user(2, "bob", "514"), // ACCOUNTDISABLE
		user(3, "carol", "66048"),
		user(4, "dave", "66050"), // DONT_EXPIRE_PASSWD + ACCOUNTDISABLE
	)
	group := func(i int, cn string, members ...string) ldaptest.Entry {
		return ldaptest.Entry{DN: "cn=" + cn + "," + adBase, Attrs: []ldaptest.Attr{
			{Name: "objectClass", Values: []string{"group"}}, {Name: "cn", Values: []string{cn}},
			{Name: "objectGUID", Values: []string{string(adGUID(10 + i))}}, {Name: "objectCategory", Values: []string{"group"}},
			{Name: "member", Values: members}}}
	}
	u := func(sam string) string { return "cn=" + sam + "," + adBase }
	return append(out,
		group(1, "Staff", u("alice"), u("bob"), "cn=Admins,"+adBase),
		group(2, "Admins", u("carol")),
	)
}

// counter reads a counter of the metrics registry.
func counter(t *testing.T, m *metrics.Metrics, endpoint string) float64 {
	t.Helper()
	n := 0.0
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "idsync_api_requests_total" {
			continue
		}
		for _, mm := range mf.GetMetric() {
			match := true
			for _, l := range mm.GetLabel() {
				if l.GetName() == "target" && l.GetValue() != target {
					match = false
				}
				if l.GetName() == "endpoint" && l.GetValue() != endpoint {
					match = false
				}
			}
			if match {
				n += mm.GetCounter().GetValue()
			}
		}
	}
	return n
}

// ldapDial binds to srv as the read-only account, outside the source.
func ldapDial(srv *ldaptest.Server) (*goldap.Conn, error) {
	c, err := goldap.DialURL(srv.URL)
	if err != nil {
		return nil, err
	}
	c.SetTimeout(20 * time.Second)
	if err := c.Bind(ldaptest.BindDN, ldaptest.BindPassword); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// ldapSearch is an unpaged search of every person under base.
func ldapSearch(base string) *goldap.SearchRequest {
	return goldap.NewSearchRequest(base, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=inetOrgPerson)", []string{"uid"}, nil)
}
