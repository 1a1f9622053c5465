package configs

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"time"
)

// Redacted returns a deep copy safe to print: every set Secret holds the literal Redacted
// marker (so even Value(), reflection or a YAML encoder cannot leak it), and nothing else is
// dropped. The copy shares no slice or pointer with c.
func (c *Config) Redacted() *Config {
	r := *c
	r.AdminToken = redact(c.AdminToken)
	r.Sources = make([]SourceConfig, len(c.Sources))
	if c.Sources == nil {
		r.Sources = nil
	}
	for i, s := range c.Sources {
		if s.MiniOrange != nil {
			m := *s.MiniOrange
			m.APIKey = redact(m.APIKey)
			s.MiniOrange = &m
		}
		if s.SCIMPull != nil {
			p := *s.SCIMPull
			p.Token = redact(p.Token)
			s.SCIMPull = &p
		}
		if s.LDAP != nil {
			l := *s.LDAP
			l.BindPassword = redact(l.BindPassword)
			l.Attributes.Extra = slices.Clone(l.Attributes.Extra)
			s.LDAP = &l
		}
		if s.Google != nil {
			g := *s.Google
			s.Google = &g
		}
		if s.Push != nil {
			p := *s.Push
			p.Token = redact(p.Token)
			p.PreviousToken = redact(p.PreviousToken)
			s.Push = &p
		}
		r.Sources[i] = s
	}
	if c.Sink.Jira != nil {
		j := *c.Sink.Jira
		j.APIToken = redact(j.APIToken)
		j.Products = slices.Clone(j.Products)
		j.ProductAccessGroups = slices.Clone(j.ProductAccessGroups)
		if j.AdminAPI != nil {
			a := *j.AdminAPI
			a.OrgAPIKey = redact(a.OrgAPIKey)
			j.AdminAPI = &a
		}
		r.Sink.Jira = &j
	}
	m := &r.Mapping
	m.Groups = slices.Clone(m.Groups)
	for i := range m.Groups {
		m.Groups[i].Jira = slices.Clone(m.Groups[i].Jira)
	}
	m.DefaultGroups = slices.Clone(m.DefaultGroups)
	m.Customers = slices.Clone(m.Customers)
	for i := range m.Customers {
		m.Customers[i].ServiceDesks = slices.Clone(m.Customers[i].ServiceDesks)
		m.Customers[i].Organizations = slices.Clone(m.Customers[i].Organizations)
	}
	m.IncludeGroups = slices.Clone(m.IncludeGroups)
	m.ExcludeUsers = slices.Clone(m.ExcludeUsers)
	m.ExcludeGroups = slices.Clone(m.ExcludeGroups)
	return &r
}

// WithoutSecrets returns a deep copy of c with every secret and every *_file path blank, so
// two configs that differ only in their secrets compare equal: a reload hands new secrets to
// the running parts instead of rebuilding them.
func (c *Config) WithoutSecrets() *Config {
	r := c.Redacted()
	for _, s := range r.secrets() {
		*s.value, *s.file = "", ""
	}
	return r
}

func redact(s Secret) Secret {
	if s == "" {
		return ""
	}
	return Redacted
}

// Warnings lists what is legal but risky or easy to misread: credentials over plain HTTP to
// another machine, an unencrypted listener reachable from the network, secret files others
// can read, a schedule that spends the API budget on full passes, short SCIM tokens on a
// listener others can reach, a breaker threshold of 0 (it holds every change it counts; it
// does not switch the breaker off), deactivate: suspend (it acts on the whole organization). `idsync validate` prints them; they never stop the daemon.
func (c *Config) Warnings() []Problem {
	var w []Problem
	add := func(path, msg string) { w = append(w, Problem{Path: path, Msg: msg}) }
	plain := func(path, raw string) {
		if u, err := url.Parse(raw); err == nil && u.Scheme == "http" && !isLoopback(u.Hostname()) {
			add(path, "plain http to another machine sends credentials unencrypted; use https")
		}
	}
	host, _, err := net.SplitHostPort(c.Listen)
	exposed := err == nil && !isLoopback(host)
	if exposed && !c.TLS.Enabled() {
		add("listen", "reachable from the network without tls: admin and SCIM tokens travel unencrypted (set tls or put a TLS proxy in front)")
	}
	if s, err := ParseSchedule(c.Schedule); err == nil {
		if iv := interval(s, time.Now()); iv > 0 && iv < time.Minute {
			add("schedule", fmt.Sprintf("a full pass every %s spends much of the Jira API budget", iv))
		}
	}
	for i, s := range c.Sources {
		p := fmt.Sprintf("sources[%d]", i)
		if s.MiniOrange != nil {
			plain(p+".miniorange.base_url", s.MiniOrange.BaseURL)
		}
		if s.SCIMPull != nil {
			plain(p+".scimpull.base_url", s.SCIMPull.BaseURL)
		}
		ldapWarnings(p+".ldap", s.LDAP, add)
		googleWarnings(p+".google", s.Google, add)
		// A short token only matters where the network can try guesses.
		if exposed && s.Push != nil && s.Push.Enabled && s.Push.Token != "" && len(s.Push.Token) < MinAdminTokenLength {
			add(p+".push.token", fmt.Sprintf("shorter than %d characters: use a long random token", MinAdminTokenLength))
		}
	}
	if j := c.Sink.Jira; j != nil {
		plain("sink.jira.base_url", j.BaseURL)
		if j.AdminAPI != nil {
			plain("sink.jira.admin_api.base_url", j.AdminAPI.BaseURL)
		}
		if len(j.Products) == 0 && c.Mapping.ImportUsers {
			add("sink.jira.products", "empty: accounts idsync creates get no product access")
		}
		if j.Deactivate == DeactivateSuspend {
			add("sink.jira.deactivate", "suspend is account-wide: a suspended person loses access to every app of the Atlassian organization (other Jira sites, Confluence, ...), not only this site; their groups and roles are kept until restore")
		}
	}
	for _, z := range c.Safety.zeroThresholds() {
		add("safety."+z.key, fmt.Sprintf("0 holds every %s for approval (idsync approve); there is no value that turns the breaker off", z.holds))
	}
	for _, s := range c.secrets() {
		if *s.file == "" {
			continue
		}
		if st, err := os.Stat(c.resolvePath(*s.file)); err == nil && st.Mode().Perm()&0o077 != 0 {
			add(s.filePath, fmt.Sprintf("mode %04o lets other users read it; chmod 600", st.Mode().Perm()))
		}
	}
	return w
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
