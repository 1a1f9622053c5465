package ldap

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/sources/ldap/ldaptest"
)

// The Active Directory behaviours slapd has not, over the real wire protocol: ranged member
// values and LDAP_MATCHING_RULE_IN_CHAIN, served by ldaptest.ADServer on loopback.

const adWireBase = "DC=corp,DC=example,DC=com"

// adWireGUID is a distinct objectGUID per i (adGUID repeats every 16).
func adWireGUID(i int) []byte {
	b := make([]byte, 16)
	for j := range b {
		b[j] = byte(i*7 + j)
	}
	b[15] = byte(i)
	return b
}

func adWireUser(i int) string { return fmt.Sprintf("CN=User %02d,OU=Staff,%s", i, adWireBase) }
func adWireGroup(cn string) string {
	return "CN=" + cn + ",OU=Groups," + adWireBase
}

// adWireEntries: 30 users (user 07 disabled), and groups nested two deep (Platform in
// Engineering in All Staff), a cycle (Ring A and Ring B in each other), and All Staff large
// enough to come back in ranges.
func adWireEntries() []ldaptest.Entry {
	schema := func(class string) string { return "CN=" + class + ",CN=Schema,CN=Configuration," + adWireBase }
	var out []ldaptest.Entry
	for i := 1; i <= 30; i++ {
		uac := "512"
		if i == 7 {
			uac = "514" // ACCOUNTDISABLE
		}
		sam := fmt.Sprintf("user%02d", i)
		out = append(out, ldaptest.Entry{DN: adWireUser(i), Attrs: []ldaptest.Attr{
			{Name: "objectClass", Values: []string{"top", "person", "organizationalPerson", "user"}},
			{Name: "objectCategory", Values: []string{schema("Person")}},
			{Name: "cn", Values: []string{fmt.Sprintf("User %02d", i)}}, {Name: "sAMAccountName", Values: []string{sam}},
			{Name: "mail", Values: []string{sam + "@corp.example.com"}}, {Name: "givenName", Values: []string{"User"}},
			{Name: "sn", Values: []string{fmt.Sprintf("%02d", i)}}, {Name: "userAccountControl", Values: []string{uac}},
			{Name: "objectGUID", Values: []string{string(adWireGUID(100 + i))}},
		}})
	}
	group := func(i int, cn string, members ...string) ldaptest.Entry {
		return ldaptest.Entry{DN: adWireGroup(cn), Attrs: []ldaptest.Attr{
			{Name: "objectClass", Values: []string{"top", "group"}}, {Name: "objectCategory", Values: []string{schema("Group")}},
			{Name: "cn", Values: []string{cn}}, {Name: "objectGUID", Values: []string{string(adWireGUID(200 + i))}},
			{Name: "member", Values: members}}}
	}
	var all []string
	for i := 10; i <= 30; i++ {
		all = append(all, adWireUser(i))
	}
	all = append(all, adWireGroup("Engineering"))
	return append(out,
		group(1, "All Staff", all...),
		group(2, "Engineering", adWireGroup("Platform"), adWireUser(1), adWireUser(2)),
		group(3, "Platform", adWireUser(3), adWireUser(4)),
		group(4, "Ring A", adWireGroup("Ring B"), adWireUser(5)),
		group(5, "Ring B", adWireGroup("Ring A"), adWireUser(6)),
	)
}

func adWireIndex(user string) int {
	var i int
	_, _ = fmt.Sscanf(strings.ToLower(user), "user%d", &i)
	return i
}

func startADWire(t *testing.T) *ldaptest.ADServer {
	t.Helper()
	srv, err := ldaptest.StartAD(ldaptest.ADOptions{Entries: adWireEntries(), RangeLimit: 7})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

func adWireConfig(srv *ldaptest.ADServer, nested bool) configs.LDAPConfig {
	return configs.LDAPConfig{
		URL: srv.URL, BindDN: ldaptest.BindDN, BindPassword: ldaptest.BindPassword, BaseDN: adWireBase,
		PageSize: 5, Timeout: 20 * time.Second, Membership: configs.LDAPMembershipMember,
		ServerType: configs.LDAPServerAuto, NestedGroups: nested,
	}
}

// adWireWant is every user's groups with nesting resolved.
func adWireWant(i int) []string {
	var out []string
	switch i {
	case 1, 2:
		out = []string{"All Staff", "Engineering"}
	case 3, 4:
		out = []string{"All Staff", "Engineering", "Platform"}
	case 5, 6:
		out = []string{"Ring A", "Ring B"}
	}
	if i >= 10 {
		out = []string{"All Staff"}
	}
	return out
}

// TestActiveDirectoryOverTheWire: a full read of a server that speaks like Active Directory
// finds it in the root DSE, takes every range of a group's member values (the group's entry
// holds the first seven, the rest come in three more searches), expands groups nested two
// deep and cut a cycle, and reads ACCOUNTDISABLE users as disabled.
func TestActiveDirectoryOverTheWire(t *testing.T) {
	srv := startADWire(t)
	s := newSource(t, adWireConfig(srv, true), Options{Logger: zerolog.Nop()})
	dir := snapshot(t, s)
	if st := s.settings(); !st.ad || st.id != "objectGUID" || st.userName != "sAMAccountName" {
		t.Fatalf("settings after the root DSE: %+v", st)
	}
	if len(dir.Users) != 30 || len(dir.Groups) != 5 {
		t.Fatalf("read %d users and %d groups, want 30 and 5", len(dir.Users), len(dir.Groups))
	}
	users := byUserName(dir)
	for i := 1; i <= 30; i++ {
		u := users[fmt.Sprintf("user%02d", i)]
		if want := adWireWant(i); !groupsEqual(u.Groups, want) {
			t.Errorf("user%02d groups %v, want %v", i, u.Groups, want)
		}
		if u.Active == (i == 7) {
			t.Errorf("user%02d active=%v", i, u.Active)
		}
		if u.Key != FormatGUID(adWireGUID(100+i)) {
			t.Errorf("user%02d key %s, want %s", i, u.Key, FormatGUID(adWireGUID(100+i)))
		}
	}
	// All Staff's 22 values at 7 an answer: the groups search holds 0-6, then 7-13, 14-20
	// and 21-* come in searches of their own.
	if n := srv.RangedSearches(); n != 3 {
		t.Errorf("%d ranged searches, want 3", n)
	}
	filters := strings.Join(srv.Filters(), "\n")
	if !strings.Contains(filters, "userAccountControl:"+ldaptest.OIDBitAnd+":=2") {
		t.Errorf("no ACCOUNTDISABLE filter among the searches:\n%s", filters)
	}

	// Without nested_groups a member of Platform is in Platform only.
	flat := snapshot(t, newSource(t, adWireConfig(srv, false), Options{Logger: zerolog.Nop()}))
	if u := byUserName(flat)["user03"]; !groupsEqual(u.Groups, []string{"Platform"}) {
		t.Errorf("user03 without nested_groups: %v, want [Platform]", u.Groups)
	}
}

// TestActiveDirectoryInChain: a one-user fetch with nested_groups asks Active Directory with
// LDAP_MATCHING_RULE_IN_CHAIN, in one search, and gets every group above the user's (two
// levels up; around a cycle once); without nested_groups it asks for direct groups only.
func TestActiveDirectoryInChain(t *testing.T) {
	srv := startADWire(t)
	s := newSource(t, adWireConfig(srv, true), Options{Logger: zerolog.Nop()})
	ctx := context.Background()
	for _, c := range []struct {
		user string
		want []string
	}{
		{"user03", []string{"All Staff", "Engineering", "Platform"}},
		{"USER05", []string{"Ring A", "Ring B"}},
		{"user07", nil},
		{"user12", []string{"All Staff"}},
	} {
		before := len(srv.Filters())
		u, err := s.User(ctx, c.user)
		if err != nil {
			t.Fatalf("User(%s): %v", c.user, err)
		}
		if !groupsEqual(u.Groups, c.want) {
			t.Errorf("User(%s) groups %v, want %v", c.user, u.Groups, c.want)
		}
		var groupSearches []string
		for _, f := range srv.Filters()[before:] {
			if strings.Contains(f, "objectClass=group") {
				groupSearches = append(groupSearches, f)
			}
		}
		want := "(&(objectClass=group)(member:" + ldaptest.OIDInChain + ":=" + adWireUser(adWireIndex(c.user)) + "))"
		if len(groupSearches) != 1 || groupSearches[0] != want {
			t.Errorf("User(%s) searched groups with %q, want the one IN_CHAIN search %s", c.user, groupSearches, want)
		}
	}
	if u, err := s.User(ctx, "user07"); err != nil || u.Active {
		t.Errorf("User(user07) = active %v, %v; want disabled", u.Active, err)
	}

	flat := newSource(t, adWireConfig(srv, false), Options{Logger: zerolog.Nop()})
	before := len(srv.Filters())
	u, err := flat.User(ctx, "user03")
	if err != nil || !groupsEqual(u.Groups, []string{"Platform"}) {
		t.Errorf("User(user03) without nested_groups = %v, %v; want [Platform]", u.Groups, err)
	}
	for _, f := range srv.Filters()[before:] {
		if strings.Contains(f, ldaptest.OIDInChain) {
			t.Errorf("without nested_groups the fetch asked IN_CHAIN: %s", f)
		}
	}
}
