package reliability

// The LDAP world of a test: a throwaway slapd (sources/ldap/ldaptest) holding a generated
// org, behind a loopback proxy that can cut or refuse connections, beside the usual Jira
// simulator; and idsync wired in-process from a config file with a source of type ldap.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/app"
	"github.com/idsync/idsync/internal/logging"
	"github.com/idsync/idsync/internal/metrics"
	"github.com/idsync/idsync/internal/testlog"
	"github.com/idsync/idsync/sinks/jira/jiratest"
	"github.com/idsync/idsync/sources/ldap/ldaptest"
	"github.com/idsync/idsync/sources/miniorange/miniorangetest"
)

// ldapLockedFilter is the disabled_filter of the generated orgs: OpenLDAP's password policy
// lock.
const ldapLockedFilter = "(pwdAccountLockedTime=*)"

// ldapWorld is one test's slapd, proxy and Jira simulator.
type ldapWorld struct {
	*world
	srv   *ldaptest.Server
	proxy *ldaptest.Proxy
	org   ldaptest.Org
}

func newLDAPWorld(t *testing.T, spec ldaptest.OrgSpec) *ldapWorld {
	t.Helper()
	org := ldaptest.GenerateOrg(spec)
	srv, err := ldaptest.Start(t.TempDir(), ldaptest.Options{Entries: org.Entries, Online: org.Groups})
	if err != nil {
		ldaptest.Skip(t, err)
	}
	t.Cleanup(srv.Stop)
	p, err := ldaptest.NewProxy(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return &ldapWorld{world: newWorld(t, worldOpts{Org: miniorangetest.Org{}, Seed: 5}), srv: srv, proxy: p, org: org}
}

// ldapCfg renders one idsync config with the ldap source "directory".
type ldapCfg struct {
	Dir        string
	Grace      int
	PageSize   int
	MaxPercent float64
	MaxDeact   int
	// PasswordFile gives the bind password as bind_password_file (else inline).
	PasswordFile bool
	Timeout      string // sources[].ldap.timeout (default 10s)
}

func (w *ldapWorld) writeConfig(t *testing.T, o ldapCfg) string {
	t.Helper()
	pw := fmt.Sprintf("bind_password: %q", ldaptest.BindPassword)
	if o.PasswordFile {
		f := filepath.Join(o.Dir, "ldap-password")
		if err := os.WriteFile(f, []byte(ldaptest.BindPassword+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		pw = "bind_password_file: ldap-password"
	}
	body := fmt.Sprintf(`listen: "127.0.0.1:0"
admin_token: %q
state: {path: %q}
schedule: "@every 1h"
shutdown_timeout: 20s
log: {level: info, format: json}
sources:
  - name: directory
    type: ldap
    priority: 10
    ldap:
      url: ldap://%s
      start_tls: true
      ca_file: %q
      bind_dn: %q
      %s
      base_dn: %q
      disabled_filter: %q
      membership: member
      nested_groups: true
      page_size: %d
      timeout: %s
      server_type: ldap
sink:
  type: jira
  jira:
    base_url: %s
    email: %s
    api_token: %q
    products: [jira-software]
    deactivate: remove-access
    rate_limit: {requests_per_second: 500, burst: 50, concurrency: 4}
mapping:
  import_users: true
  import_groups: true
  groups:
    - {idp: Engineering, jira: [engineering, developers]}
  default_groups: [jira-software-users]
safety:
  policy: sync
  grace_passes: %d
  max_deactivations: %d
  max_deactivation_percent: %g
  max_membership_removals: 250
`, defaultAdminToken, filepath.Join(o.Dir, "idsync.db"), w.proxy.Addr, w.srv.CAFile, ldaptest.BindDN, pw,
		w.org.Spec.BaseDN(), ldapLockedFilter, or(o.PageSize, 50), or(o.Timeout, "10s"), w.JiraURL, jiratest.DefaultEmail, jiraToken,
		o.Grace, or(o.MaxDeact, 25), or(o.MaxPercent, 10.0))
	path := filepath.Join(o.Dir, "idsync.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// openLDAPInproc loads and validates the config as the binary does and wires it with
// internal/app.
func openLDAPInproc(t *testing.T, path string) *inproc {
	t.Helper()
	cfg, err := configs.LoadAndValidate(path, nil)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &testlog.Buffer{}
	log, err := logging.New(logs, "info", logging.FormatJSON)
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	a, err := app.Open(cfg, app.Options{Logger: log, Metrics: m, StateTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("app.Open: %v", err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("closing the app: %v", err)
		}
		for _, s := range []string{ldaptest.BindPassword, jiraToken, defaultAdminToken} {
			if strings.Contains(logs.String(), s) {
				t.Errorf("idsync's logs contain the secret %q", s)
			}
		}
	})
	return &inproc{t: t, App: a, M: m, Logs: logs}
}

// ldapChurn changes the directory the same way in every run: a leaver (entry deleted), a
// locked user, a move between groups, a hire.
type ldapChurn struct {
	leaver, locked, mover, hire string
	from, to                    string
}

func newLDAPChurn(org ldaptest.Org) ldapChurn {
	c := ldapChurn{hire: "hire.001"}
	var active []string
	for i := range org.Spec.Users {
		uid := org.Spec.UID(i)
		if !contains(org.DisabledUIDs, uid) {
			active = append(active, uid)
		}
	}
	c.leaver, c.locked = active[1], active[2]
	// The mover leaves its first direct group for Sales.
	for _, uid := range active[3:] {
		for _, g := range ldaptest.GroupNames {
			if g != "Sales" && contains(org.Members[g], uid) && !contains(org.Members["Sales"], uid) {
				c.mover, c.from, c.to = uid, g, "Sales"
				return c
			}
		}
	}
	return c
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (c ldapChurn) apply(t *testing.T, w *ldapWorld) {
	t.Helper()
	spec := w.org.Spec
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.srv.Delete(spec.UserDN(c.leaver)))
	must(w.srv.Replace(spec.UserDN(c.locked), ldaptest.Attr{Name: "pwdAccountLockedTime", Values: []string{"20260101000000Z"}}))
	must(w.srv.AddValues(spec.GroupDN(c.to), ldaptest.Attr{Name: "member", Values: []string{spec.UserDN(c.mover)}}))
	must(w.srv.RemoveValues(spec.GroupDN(c.from), ldaptest.Attr{Name: "member", Values: []string{spec.UserDN(c.mover)}}))
	must(w.srv.Add(ldaptest.Entry{DN: spec.UserDN(c.hire), Attrs: []ldaptest.Attr{
		{Name: "objectClass", Values: []string{"inetOrgPerson"}}, {Name: "uid", Values: []string{c.hire}},
		{Name: "cn", Values: []string{"New Hire"}}, {Name: "sn", Values: []string{"Hire"}}, {Name: "mail", Values: []string{ldaptest.Email(c.hire)}},
	}}))
	must(w.srv.AddValues(spec.GroupDN("Support"), ldaptest.Attr{Name: "member", Values: []string{spec.UserDN(c.hire)}}))
}
