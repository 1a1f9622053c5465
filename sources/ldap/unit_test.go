package ldap

import (
	"slices"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/rs/zerolog"

	"github.com/idsync/idsync/configs"
)

func TestFormatGUID(t *testing.T) {
	// The GUID Windows shows as {12345678-9abc-def0-1122-334455667788} is stored with its
	// first three fields little-endian.
	raw := []byte{0x78, 0x56, 0x34, 0x12, 0xbc, 0x9a, 0xf0, 0xde, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88}
	if got := FormatGUID(raw); got != "12345678-9abc-def0-1122-334455667788" {
		t.Errorf("FormatGUID = %s", got)
	}
	if got := idText("objectGUID", raw); got != "12345678-9abc-def0-1122-334455667788" {
		t.Errorf("idText(objectGUID) = %s", got)
	}
	if got := idText("OBJECTGUID", []byte("short")); got != "short" {
		t.Errorf("a 5-byte objectGUID = %s", got)
	}
	if got := idText("entryUUID", []byte(" 2a4e132c-845f-1041-9f77-c16254e4c5b3 ")); got != "2a4e132c-845f-1041-9f77-c16254e4c5b3" {
		t.Errorf("entryUUID = %q", got)
	}
	if got := idText("someBinary", []byte{0xff, 0x00, 0x10}); got != "ff0010" {
		t.Errorf("binary = %q", got)
	}
}

func TestFormatSID(t *testing.T) {
	// S-1-5-21-1004336348-1177238915-682003330-512
	raw := []byte{1, 5, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 0xdc, 0xf4, 0xdc, 0x3b, 0x83, 0x3d, 0x2b, 0x46, 0x82, 0x8b, 0xa6, 0x28, 0x00, 0x02, 0, 0}
	if got, ok := FormatSID(raw); !ok || got != "S-1-5-21-1004336348-1177238915-682003330-512" {
		t.Errorf("FormatSID = %s %v", got, ok)
	}
	if got := idText("objectSid", raw); got != "S-1-5-21-1004336348-1177238915-682003330-512" {
		t.Errorf("idText(objectSid) = %s", got)
	}
	if _, ok := FormatSID(raw[:10]); ok {
		t.Error("a truncated SID was formatted")
	}
}

func TestCanonDN(t *testing.T) {
	same := [][]string{
		{`cn=Smith\, John+uid=jsmith,ou=People,dc=example,dc=com`, `UID=JSMITH+CN=SMITH\2C JOHN,OU=people,DC=Example,DC=COM`, `uid=jsmith + cn=Smith\,  John , ou=people,dc=example,dc=com`},
		{`uid=josé,dc=example,dc=com`, `uid=jos\C3\A9,dc=example,dc=com`, `UID=JOSÉ,DC=EXAMPLE,DC=COM`},
		{`cn=a\+b,dc=x`, `cn=a\2Bb,dc=x`},
	}
	for _, group := range same {
		want, err := canonDN(group[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, dn := range group[1:] {
			if got, err := canonDN(dn); err != nil || got != want {
				t.Errorf("canonDN(%q) = %q, %v; want %q", dn, got, err, want)
			}
		}
	}
	differ := [][2]string{
		{`cn=a\,b,dc=x`, `cn=a,cn=b,dc=x`},
		{`cn=a+uid=b,dc=x`, `cn=a\+uid\=b,dc=x`},
		{`cn=a,dc=x`, `cn=a,dc=y`},
	}
	for _, d := range differ {
		a, _ := canonDN(d[0])
		b, _ := canonDN(d[1])
		if a == b {
			t.Errorf("%q and %q compare equal (%q)", d[0], d[1], a)
		}
	}
	if _, err := canonDN("not a dn"); err == nil {
		t.Error("a value without = parsed as a DN")
	}
}

func TestNextRange(t *testing.T) {
	for in, want := range map[string]string{"0-1499": "1500", "1500-2999": "3000", "3000-*": ""} {
		if got, err := nextRange(in); err != nil || got != want {
			t.Errorf("nextRange(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "12", "a-b", "5-3", "-1-4"} {
		if _, err := nextRange(bad); err == nil {
			t.Errorf("nextRange(%q) accepted", bad)
		}
	}
	e := goldap.NewEntry("cn=big,dc=x", map[string][]string{"member;range=0-1": {"cn=a,dc=x", "cn=b,dc=x"}, "cn": {"big"}})
	vals, next, err := rangedValues(e, "member")
	if err != nil || len(vals) != 2 || next != "2" {
		t.Errorf("rangedValues = %v %q %v", vals, next, err)
	}
}

func TestAncestors(t *testing.T) {
	// 0 -> 1 -> 2 -> 0 (a cycle), 3 -> 1, 4 alone.
	parents := [][]int{{1}, {2}, {0}, {1}, nil}
	inCycle := 0
	up := ancestors(parents, &inCycle)
	for g, want := range map[int][]int{0: {0, 1, 2}, 1: {0, 1, 2}, 2: {0, 1, 2}, 3: {0, 1, 2}, 4: nil} {
		got := slices.Clone(up(g))
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("ancestors(%d) = %v, want %v", g, got, want)
		}
	}
	if inCycle != 3 {
		t.Errorf("%d groups on a cycle, want 3", inCycle)
	}
}

func TestActiveDirectoryReferralsAndInChain(t *testing.T) {
	s, err := New("ad", configs.LDAPConfig{URL: "ldaps://dc1.corp.example.com", BaseDN: "DC=corp,DC=example,DC=com",
		ServerType: configs.LDAPServerActiveDirectory}, Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[string]bool{
		"ldap://DomainDnsZones.corp.example.com/DC=DomainDnsZones,DC=corp,DC=example,DC=com": true,
		"ldap://ForestDnsZones.corp.example.com/DC=ForestDnsZones,DC=corp,DC=example,DC=com": true,
		"ldap://corp.example.com/CN=Configuration,DC=corp,DC=example,DC=com":                 true,
		"ldap://other.example.com/OU=Staff,DC=other,DC=example,DC=com":                       false,
	} {
		if got := s.ignorableReferral(ref); got != want {
			t.Errorf("ignorableReferral(%s) = %v", ref, got)
		}
	}
	g, err := New("ol", configs.LDAPConfig{URL: "ldap://ldap.example.com", BaseDN: "dc=example,dc=com", ServerType: configs.LDAPServerGeneric}, Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if g.ignorableReferral("ldap://x/DC=DomainDnsZones,DC=example,DC=com") {
		t.Error("a generic server skipped a referral")
	}
	if st := s.settings(); !st.known || st.disabledFilter != "(userAccountControl:1.2.840.113556.1.4.803:=2)" || st.userFilter != "(&(objectCategory=person)(objectClass=user))" {
		t.Errorf("AD settings: %+v", st)
	}
	if got := inChainFilter(`CN=Smith\, John,OU=Staff,DC=corp`); got != `(member:1.2.840.113556.1.4.1941:=CN=Smith\5c, John,OU=Staff,DC=corp)` {
		t.Errorf("inChainFilter = %s", got)
	}
}

func TestNewRejects(t *testing.T) {
	base := configs.LDAPConfig{URL: "ldap://ldap.example.com", BaseDN: "dc=example,dc=com"}
	for name, mutate := range map[string]func(c *configs.LDAPConfig){
		"http url":         func(c *configs.LDAPConfig) { c.URL = "https://ldap.example.com" },
		"ldaps start_tls":  func(c *configs.LDAPConfig) { c.URL, c.StartTLS = "ldaps://ldap.example.com", true },
		"no base":          func(c *configs.LDAPConfig) { c.BaseDN = "" },
		"dn, no password":  func(c *configs.LDAPConfig) { c.BindDN = "cn=x,dc=example,dc=com" },
		"bad membership":   func(c *configs.LDAPConfig) { c.Membership = "members" },
		"nested memberUid": func(c *configs.LDAPConfig) { c.Membership, c.NestedGroups = configs.LDAPMembershipMemberUID, true },
		"bad filter":       func(c *configs.LDAPConfig) { c.UserFilter = "(uid=" },
		"missing ca":       func(c *configs.LDAPConfig) { c.URL, c.CAFile = "ldaps://ldap.example.com", "/nonexistent/ca.pem" },
	} {
		c := base
		mutate(&c)
		if _, err := New("x", c, Options{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := New("", base, Options{}); err == nil {
		t.Error("empty name accepted")
	}
	if _, err := New("x", base, Options{}); err != nil {
		t.Errorf("anonymous bind refused: %v", err)
	}
}
