package configs

import (
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// LDAP membership modes (sources[].ldap.membership): where a user's groups are read from.
const (
	// LDAPMembershipMember reads the groups' member (and uniqueMember) attributes: user DNs
	// (and, with nested_groups, group DNs).
	LDAPMembershipMember = "member"
	// LDAPMembershipMemberOf reads the users' memberOf attribute (Active Directory, or
	// OpenLDAP with the memberof overlay): group DNs.
	LDAPMembershipMemberOf = "memberOf"
	// LDAPMembershipMemberUID reads the groups' memberUid attribute (RFC 2307 posixGroup):
	// user names, matched against the username attribute.
	LDAPMembershipMemberUID = "memberUid"
)

// LDAP server types (sources[].ldap.server_type): they choose the defaults of the keys left
// empty (id and username attributes, filters, disabled_filter).
const (
	// LDAPServerAuto reads the server's root DSE when the source connects: a server that
	// lists the Active Directory capability (1.2.840.113556.1.4.800) is Active Directory,
	// anything else is a generic LDAPv3 server.
	LDAPServerAuto            = "auto"
	LDAPServerActiveDirectory = "active-directory"
	LDAPServerGeneric         = "ldap"
)

// Allowed values of the LDAP enums.
var (
	LDAPMemberships = []string{LDAPMembershipMember, LDAPMembershipMemberOf, LDAPMembershipMemberUID}
	LDAPServerTypes = []string{LDAPServerAuto, LDAPServerActiveDirectory, LDAPServerGeneric}
)

// LDAP defaults that do not depend on the server type.
const (
	DefaultLDAPPageSize   = 500
	DefaultLDAPMembership = LDAPMembershipMember
	DefaultLDAPServerType = LDAPServerAuto
)

// DefaultLDAPAttributes are the attribute names the server type does not change. ID and
// UserName stay empty: they are chosen by server type (see LDAPServerDefaults).
var DefaultLDAPAttributes = LDAPAttributes{
	Email:       "mail",
	GivenName:   "givenName",
	FamilyName:  "sn",
	DisplayName: "displayName",
	GroupName:   "cn",
}

// LDAPServerDefaults are the values a source takes for the keys left empty, by server type.
type LDAPServerDefaults struct {
	ID, UserName                            string
	UserFilter, GroupFilter, DisabledFilter string
}

// LDAPDefaultsFor returns the defaults of server type st (active-directory or ldap) for the
// membership mode m. Active Directory: objectGUID and sAMAccountName, person user objects,
// group objects, and the ACCOUNTDISABLE bit of userAccountControl as disabled_filter. Other
// servers: entryUUID (RFC 4530) and uid, inetOrgPerson users, groupOfNames and
// groupOfUniqueNames groups (posixGroup with memberUid), and no disabled_filter: every user
// found is active, and leaving the search is what deprovisions.
func LDAPDefaultsFor(st, m string) LDAPServerDefaults {
	if st == LDAPServerActiveDirectory {
		return LDAPServerDefaults{
			ID: "objectGUID", UserName: "sAMAccountName",
			UserFilter:     "(&(objectCategory=person)(objectClass=user))",
			GroupFilter:    "(objectClass=group)",
			DisabledFilter: "(userAccountControl:1.2.840.113556.1.4.803:=2)",
		}
	}
	d := LDAPServerDefaults{
		ID: "entryUUID", UserName: "uid",
		UserFilter:  "(objectClass=inetOrgPerson)",
		GroupFilter: "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))",
	}
	if m == LDAPMembershipMemberUID {
		d.GroupFilter = "(objectClass=posixGroup)"
	}
	return d
}

// LDAPConfig is an LDAPv3 directory or Active Directory read as a source (type ldap).
type LDAPConfig struct {
	// URL is ldap://host[:389] or ldaps://host[:636].
	URL string `mapstructure:"url" json:"url"`
	// StartTLS upgrades an ldap:// connection with the StartTLS operation before binding.
	StartTLS bool `mapstructure:"start_tls" json:"start_tls"`
	// CAFile is a PEM bundle of the CAs that sign the server's certificate (empty: the
	// system's roots). Relative to the config file's folder.
	CAFile string `mapstructure:"ca_file" json:"ca_file,omitempty"`
	// BindDN and BindPassword are the simple bind of a read-only account; both empty binds
	// anonymously.
	BindDN           string `mapstructure:"bind_dn" json:"bind_dn"`
	BindPassword     Secret `mapstructure:"bind_password" json:"bind_password"`
	BindPasswordFile string `mapstructure:"bind_password_file" json:"bind_password_file,omitempty"`
	// BaseDN is where users and groups are searched (whole subtree).
	BaseDN string `mapstructure:"base_dn" json:"base_dn"`
	// UserFilter, GroupFilter and DisabledFilter are LDAP filters (RFC 4515); empty takes the
	// server type's default (LDAPDefaultsFor).
	UserFilter     string `mapstructure:"user_filter" json:"user_filter"`
	GroupFilter    string `mapstructure:"group_filter" json:"group_filter"`
	DisabledFilter string `mapstructure:"disabled_filter" json:"disabled_filter"`
	// Attributes name the LDAP attributes the model's fields come from.
	Attributes LDAPAttributes `mapstructure:"attributes" json:"attributes"`
	// Membership is member | memberOf | memberUid.
	Membership string `mapstructure:"membership" json:"membership"`
	// NestedGroups makes a member of a group that is a member of another group a member of
	// both (cycles are cut).
	NestedGroups bool `mapstructure:"nested_groups" json:"nested_groups"`
	// PageSize is the page size of the RFC 2696 paged results control.
	PageSize int `mapstructure:"page_size" json:"page_size"`
	// Timeout bounds connecting and each LDAP operation (one page of a search).
	Timeout time.Duration `mapstructure:"timeout" json:"timeout"`
	// ServerType is auto | active-directory | ldap.
	ServerType string `mapstructure:"server_type" json:"server_type"`
	// RateLimit paces the source's requests (binds and search pages).
	RateLimit RateLimit `mapstructure:"rate_limit" json:"rate_limit"`
	// MaxObjects is the source's max_objects (SourceConfig.MaxObjects), copied here by Load
	// and ApplyDefaults; it is not a key of this block. 0 leaves the source's default.
	MaxObjects int `mapstructure:"-" json:"-"`
}

// LDAPAttributes maps LDAP attribute names to the fields of a user and a group.
type LDAPAttributes struct {
	// ID is the immutable key (default: objectGUID on Active Directory, entryUUID elsewhere).
	ID string `mapstructure:"id" json:"id"`
	// UserName is the login name (default: sAMAccountName on Active Directory, uid elsewhere).
	UserName    string `mapstructure:"username" json:"username"`
	Email       string `mapstructure:"email" json:"email"`
	GivenName   string `mapstructure:"given_name" json:"given_name"`
	FamilyName  string `mapstructure:"family_name" json:"family_name"`
	DisplayName string `mapstructure:"display_name" json:"display_name"`
	// GroupName is the group attribute IdP group names come from (default cn).
	GroupName string `mapstructure:"group_name" json:"group_name"`
	// Extra are further user attributes copied into the user's attributes (first value), for
	// mapping.display_name: attribute:<name>.
	Extra []string `mapstructure:"extra" json:"extra,omitempty"`
}

// fillLDAPDefaults sets the defaults of a source's ldap block for every key set reports as
// absent (keys relative to the source item, "ldap.page_size").
func fillLDAPDefaults(l *LDAPConfig, set func(key string) bool) {
	if l == nil {
		return
	}
	if !set("ldap.membership") {
		l.Membership = DefaultLDAPMembership
	}
	if !set("ldap.server_type") {
		l.ServerType = DefaultLDAPServerType
	}
	if !set("ldap.page_size") {
		l.PageSize = DefaultLDAPPageSize
	}
	if !set("ldap.timeout") {
		l.Timeout = DefaultRequestTimeout
	}
	a, d := &l.Attributes, DefaultLDAPAttributes
	fillStrings(set, "ldap.attributes.",
		stringDefault{"email", &a.Email, d.Email},
		stringDefault{"given_name", &a.GivenName, d.GivenName},
		stringDefault{"family_name", &a.FamilyName, d.FamilyName},
		stringDefault{"display_name", &a.DisplayName, d.DisplayName},
		stringDefault{"group_name", &a.GroupName, d.GroupName},
	)
	fillRateLimit(&l.RateLimit, DefaultSourceRateLimit, "ldap.rate_limit.", set)
	r := &l.RateLimit
	if r.RequestsPerSecond > 0 && r.Burst == 0 && r.RequestsPerSecond < 1<<31 {
		r.Burst = max(1, int(r.RequestsPerSecond+0.999999))
	}
}

// resolveLDAPPaths makes relative ca_file paths relative to the config file's folder.
func (c *Config) resolveLDAPPaths() {
	for i := range c.Sources {
		if l := c.Sources[i].LDAP; l != nil {
			l.CAFile = c.resolvePath(l.CAFile)
		}
	}
}

// attributeRE matches an attribute description: a name or an OID, with options.
var attributeRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9-]*|[0-9]+(\.[0-9]+)+)(;[A-Za-z0-9-]+)*$`)

// validateLDAP checks one source's ldap block.
func (v *validator) ldap(p string, l *LDAPConfig) {
	v.ldapURL(p, l)
	if l.CAFile != "" && v.readable(p+".ca_file", l.CAFile) {
		if data, err := os.ReadFile(l.CAFile); err == nil && !x509.NewCertPool().AppendCertsFromPEM(data) {
			v.add(p+".ca_file", "holds no PEM certificate", ErrInvalid)
		}
	}
	switch {
	case l.BindDN == "" && l.BindPassword != "":
		v.add(p+".bind_dn", "required when bind_password is set", ErrRequired)
	case l.BindDN != "" && l.BindPassword == "":
		v.add(p+".bind_password", "required with bind_dn (inline, bind_password_file, or ${VAR})", ErrRequired)
	}
	if l.BindDN != "" {
		v.dn(p+".bind_dn", l.BindDN)
	}
	if strings.TrimSpace(l.BaseDN) == "" {
		v.add(p+".base_dn", "required (the subtree holding the users and groups, such as dc=example,dc=com)", ErrRequired)
	} else {
		v.dn(p+".base_dn", l.BaseDN)
	}
	for _, f := range []struct{ key, val string }{
		{"user_filter", l.UserFilter}, {"group_filter", l.GroupFilter}, {"disabled_filter", l.DisabledFilter},
	} {
		if f.val == "" {
			continue
		}
		if _, err := ldap.CompileFilter(f.val); err != nil {
			v.add(p+"."+f.key, fmt.Sprintf("%q is not an LDAP filter such as (objectClass=person): %v", truncate(f.val, 80), err), ErrInvalid)
		}
	}
	a := l.Attributes
	for _, f := range []struct{ key, val string }{
		{"id", a.ID}, {"username", a.UserName}, {"email", a.Email}, {"given_name", a.GivenName},
		{"family_name", a.FamilyName}, {"display_name", a.DisplayName}, {"group_name", a.GroupName},
	} {
		if f.val != "" && !attributeRE.MatchString(f.val) {
			v.add(p+".attributes."+f.key, fmt.Sprintf("%q is not an LDAP attribute name", truncate(f.val, 60)), ErrInvalid)
		}
	}
	for i, x := range a.Extra {
		if !attributeRE.MatchString(x) {
			v.add(fmt.Sprintf("%s.attributes.extra[%d]", p, i), fmt.Sprintf("%q is not an LDAP attribute name", truncate(x, 60)), ErrInvalid)
		}
	}
	if v.enum(p+".membership", l.Membership, LDAPMemberships) && l.Membership == LDAPMembershipMemberUID && l.NestedGroups {
		v.add(p+".nested_groups", "not available with membership: memberUid (posixGroup members are user names, never groups)", ErrInvalid)
	}
	v.enum(p+".server_type", l.ServerType, LDAPServerTypes)
	v.pageSize(p+".page_size", l.PageSize)
	v.positive(p+".timeout", l.Timeout)
	v.rateLimit(p+".rate_limit", l.RateLimit)
}

func (v *validator) ldapURL(p string, l *LDAPConfig) {
	path := p + ".url"
	if l.URL == "" {
		v.required(path)
		return
	}
	u, err := url.Parse(l.URL)
	if err != nil {
		v.add(path, "not a valid URL (want ldap://host:389 or ldaps://host:636)", ErrInvalid)
		return
	}
	shown := truncate(u.Redacted(), 100)
	switch {
	case u.Scheme != "ldap" && u.Scheme != "ldaps":
		v.add(path, fmt.Sprintf("%q: the scheme must be ldap or ldaps", shown), ErrInvalid)
		return
	case u.Hostname() == "":
		v.add(path, fmt.Sprintf("%q has no host", shown), ErrInvalid)
	case u.User != nil:
		v.add(path, "must not hold credentials: use bind_dn and bind_password", ErrInvalid)
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		v.add(path, fmt.Sprintf("%q must name only the server (no DN, attributes or filter: use base_dn and the filter keys)", shown), ErrInvalid)
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			v.add(path, fmt.Sprintf("port %q is not a number between 1 and 65535", port), ErrInvalid)
		}
	}
	if u.Scheme == "ldaps" && l.StartTLS {
		v.add(p+".start_tls", "ldaps:// is TLS from the first byte; start_tls is for ldap:// URLs only", ErrConflict)
	}
}

func (v *validator) dn(path, dn string) {
	if _, err := ldap.ParseDN(dn); err != nil {
		v.add(path, fmt.Sprintf("%q is not a distinguished name such as dc=example,dc=com: %v", truncate(dn, 80), err), ErrInvalid)
	}
}

// ldapWarnings adds what is legal but risky in an ldap block: a password sent in clear
// text to another machine.
func ldapWarnings(p string, l *LDAPConfig, add func(path, msg string)) {
	if l == nil || l.StartTLS || l.BindPassword == "" {
		return
	}
	if u, err := url.Parse(l.URL); err == nil && u.Scheme == "ldap" && !isLoopback(u.Hostname()) {
		add(p+".url", "ldap:// without start_tls sends the bind password unencrypted; use ldaps:// or start_tls: true")
	}
}

// LDAPMembershipValid reports whether m is a membership mode.
func LDAPMembershipValid(m string) bool { return slices.Contains(LDAPMemberships, m) }
