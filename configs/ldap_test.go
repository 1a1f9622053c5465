package configs

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const ldapMinimal = `admin_token: fixture-secret-admin-0001
sources:
  - name: directory
    type: ldap
    max_objects: 5000
    ldap:
      url: ldaps://ldap.example.com
      bind_dn: cn=idsync,ou=services,dc=example,dc=com
      bind_password_file: ldap-password
      base_dn: dc=example,dc=com
      ca_file: certs/ca.pem
sink:
  jira:
    base_url: https://example.atlassian.net
    email: admin@example.com
    api_token: fixture-secret-jira-token
`

// TestLDAPLoad loads an ldap source: defaults, the password file and the CA file relative to
// the config's folder, max_objects copied into the block, and the password kept out of the
// redacted copy.
func TestLDAPLoad(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "ldap-password"), "fixture-secret-ldap-pw\n")
	cert, _ := selfSigned(t)
	writeFile(t, filepath.Join(dir, "certs", "ca.pem"), cert)
	cfg := mustLoad(t, writeConfig(t, dir, ldapMinimal), nil)
	l := cfg.Sources[0].LDAP
	if l == nil {
		t.Fatal("no ldap block")
	}
	if l.BindPassword.Value() != "fixture-secret-ldap-pw" {
		t.Errorf("bind password = %q", l.BindPassword.Value())
	}
	if l.CAFile != filepath.Join(dir, "certs", "ca.pem") {
		t.Errorf("ca_file = %q, want it relative to the config's folder", l.CAFile)
	}
	if l.PageSize != DefaultLDAPPageSize || l.Timeout != DefaultRequestTimeout || l.Membership != LDAPMembershipMember ||
		l.ServerType != LDAPServerAuto || l.Attributes.Email != "mail" || l.Attributes.GroupName != "cn" ||
		l.Attributes.ID != "" || l.Attributes.UserName != "" || l.MaxObjects != 5000 || l.NestedGroups {
		t.Errorf("defaults: %+v", *l)
	}
	r := cfg.Redacted()
	if r.Sources[0].LDAP.BindPassword.Value() != Redacted || cfg.Sources[0].LDAP.BindPassword.Value() == Redacted {
		t.Errorf("redaction: %q / %q", r.Sources[0].LDAP.BindPassword.Value(), cfg.Sources[0].LDAP.BindPassword.Value())
	}
	if ws := cfg.WithoutSecrets(); ws.Sources[0].LDAP.BindPassword != "" || ws.Sources[0].LDAP.BindPasswordFile != "" {
		t.Errorf("WithoutSecrets kept the password: %+v", *ws.Sources[0].LDAP)
	}
}

// TestLDAPPasswordInlineAndFile is the usual conflict of a secret given twice.
func TestLDAPPasswordInlineAndFile(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "ldap-password"), "fixture-secret-ldap-pw\n")
	cert, _ := selfSigned(t)
	writeFile(t, filepath.Join(dir, "certs", "ca.pem"), cert)
	body := strings.Replace(ldapMinimal, "      bind_password_file: ldap-password\n",
		"      bind_password_file: ldap-password\n      bind_password: fixture-secret-inline\n", 1)
	_, err := LoadAndValidate(writeConfig(t, dir, body), nil)
	if err == nil || !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "sources[0].ldap.bind_password: give either bind_password or bind_password_file") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "fixture-secret") {
		t.Errorf("the message shows the secret: %v", err)
	}
}

func validLDAP() *Config {
	c := validConfig()
	c.Sources = append(c.Sources, SourceConfig{Name: "directory", Type: SourceLDAP, LDAP: &LDAPConfig{
		URL: "ldap://127.0.0.1:3389", StartTLS: true, BindDN: "cn=idsync,dc=example,dc=com",
		BindPassword: "code-ldap-password", BaseDN: "dc=example,dc=com",
	}})
	c.ApplyDefaults()
	return c
}

func TestLDAPValidate(t *testing.T) {
	if err := validLDAP().Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	const p = "sources[3].ldap."
	cases := []struct {
		name   string
		mutate func(l *LDAPConfig)
		want   string
		is     error
	}{
		{"no url", func(l *LDAPConfig) { l.URL = "" }, p + "url: required", ErrRequired},
		{"http url", func(l *LDAPConfig) { l.URL = "https://ldap.example.com" }, p + `url: "https://ldap.example.com": the scheme must be ldap or ldaps`, ErrInvalid},
		{"url with dn", func(l *LDAPConfig) { l.URL = "ldap://ldap.example.com/dc=example,dc=com??sub" }, p + "url: ", ErrInvalid},
		{"url without host", func(l *LDAPConfig) { l.URL = "ldap:///" }, p + `url: "ldap:///" has no host`, ErrInvalid},
		{"url with password", func(l *LDAPConfig) { l.URL = "ldap://u:pw@ldap.example.com" }, p + "url: must not hold credentials", ErrInvalid},
		{"bad port", func(l *LDAPConfig) { l.URL = "ldap://ldap.example.com:99999" }, p + `url: port "99999"`, ErrInvalid},
		{"ldaps with start_tls", func(l *LDAPConfig) { l.URL = "ldaps://ldap.example.com" }, p + "start_tls: ldaps:// is TLS from the first byte", ErrConflict},
		{"no base", func(l *LDAPConfig) { l.BaseDN = " " }, p + "base_dn: required", ErrRequired},
		{"bad base", func(l *LDAPConfig) { l.BaseDN = "example.com" }, p + `base_dn: "example.com" is not a distinguished name`, ErrInvalid},
		{"bad bind dn", func(l *LDAPConfig) { l.BindDN = "idsync" }, p + `bind_dn: "idsync" is not a distinguished name`, ErrInvalid},
		{"password without dn", func(l *LDAPConfig) { l.BindDN = "" }, p + "bind_dn: required when bind_password is set", ErrRequired},
		{"dn without password", func(l *LDAPConfig) { l.BindPassword = "" }, p + "bind_password: required with bind_dn", ErrRequired},
		{"bad user filter", func(l *LDAPConfig) { l.UserFilter = "(objectClass=person" }, p + "user_filter: ", ErrInvalid},
		{"bad group filter", func(l *LDAPConfig) { l.GroupFilter = "objectClass=group" }, p + "group_filter: ", ErrInvalid},
		{"bad disabled filter", func(l *LDAPConfig) { l.DisabledFilter = "(&(a=b)" }, p + "disabled_filter: ", ErrInvalid},
		{"bad attribute", func(l *LDAPConfig) { l.Attributes.ID = "object GUID" }, p + `attributes.id: "object GUID" is not an LDAP attribute name`, ErrInvalid},
		{"bad extra", func(l *LDAPConfig) { l.Attributes.Extra = []string{"department", "a=b"} }, p + "attributes.extra[1]: ", ErrInvalid},
		{"membership", func(l *LDAPConfig) { l.Membership = "uniqueMember" }, p + `membership: "uniqueMember" is not one of member, memberOf, memberUid`, ErrInvalid},
		{"nested memberUid", func(l *LDAPConfig) { l.Membership = LDAPMembershipMemberUID; l.NestedGroups = true }, p + "nested_groups: not available with membership: memberUid", ErrInvalid},
		{"server type", func(l *LDAPConfig) { l.ServerType = "ad" }, p + `server_type: "ad" is not one of auto, active-directory, ldap`, ErrInvalid},
		{"page size low", func(l *LDAPConfig) { l.PageSize = 0 }, p + "page_size: must be between 1 and 1000, got 0", ErrInvalid},
		{"page size high", func(l *LDAPConfig) { l.PageSize = 5000 }, p + "page_size: must be between 1 and 1000, got 5000", ErrInvalid},
		{"timeout", func(l *LDAPConfig) { l.Timeout = -time.Second }, p + "timeout: must be positive", ErrInvalid},
		{"missing ca", func(l *LDAPConfig) { l.CAFile = filepath.Join(t.TempDir(), "nope.pem") }, p + "ca_file: cannot read", ErrUnreadableFile},
		{"ca not pem", func(l *LDAPConfig) {
			f := filepath.Join(t.TempDir(), "ca.pem")
			writeFile(t, f, "not a certificate")
			l.CAFile = f
		}, p + "ca_file: holds no PEM certificate", ErrInvalid},
		{"rate limit", func(l *LDAPConfig) { l.RateLimit.Burst = -1 }, p + "rate_limit.burst: must be >= 0", ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := validLDAP()
			tc.mutate(c.Sources[3].LDAP)
			err := c.Validate()
			if err == nil {
				t.Fatal("valid")
			}
			if !strings.Contains(err.Error(), tc.want) || !errors.Is(err, tc.is) {
				t.Errorf("err = %v\nwant %q (%v)", err, tc.want, tc.is)
			}
		})
	}
}

// TestLDAPBlockBelongsToItsType: an ldap block on another type, or an ldap source without
// one, is reported like the other blocks.
func TestLDAPBlockBelongsToItsType(t *testing.T) {
	c := validLDAP()
	c.Sources[1].LDAP = c.Sources[3].LDAP
	c.Sources[3].LDAP = nil
	err := c.Validate()
	for _, want := range []string{"sources[1].ldap: does not belong to a source of type scimpull", "sources[3].ldap: required for type ldap"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want %q", err, want)
		}
	}
}

// TestLDAPWarnings: a password over plain ldap:// to another machine is a warning; loopback,
// StartTLS and ldaps are not.
func TestLDAPWarnings(t *testing.T) {
	for _, tc := range []struct {
		url   string
		start bool
		warn  bool
	}{
		{"ldap://ldap.example.com", false, true},
		{"ldap://ldap.example.com", true, false},
		{"ldaps://ldap.example.com", false, false},
		{"ldap://127.0.0.1:3389", false, false},
	} {
		c := validLDAP()
		c.Sources[3].LDAP.URL, c.Sources[3].LDAP.StartTLS = tc.url, tc.start
		got := false
		for _, w := range c.Warnings() {
			if w.Path == "sources[3].ldap.url" {
				got = true
			}
		}
		if got != tc.warn {
			t.Errorf("%s start_tls=%v: warning %v, want %v", tc.url, tc.start, got, tc.warn)
		}
	}
}

func TestLDAPDefaultsFor(t *testing.T) {
	ad := LDAPDefaultsFor(LDAPServerActiveDirectory, LDAPMembershipMember)
	if ad.ID != "objectGUID" || ad.UserName != "sAMAccountName" || ad.DisabledFilter != "(userAccountControl:1.2.840.113556.1.4.803:=2)" {
		t.Errorf("active directory: %+v", ad)
	}
	gen := LDAPDefaultsFor(LDAPServerGeneric, LDAPMembershipMember)
	if gen.ID != "entryUUID" || gen.UserName != "uid" || gen.DisabledFilter != "" || !strings.Contains(gen.GroupFilter, "groupOfNames") {
		t.Errorf("ldap: %+v", gen)
	}
	if p := LDAPDefaultsFor(LDAPServerGeneric, LDAPMembershipMemberUID); p.GroupFilter != "(objectClass=posixGroup)" {
		t.Errorf("memberUid: %+v", p)
	}
}
