// Package ldaptest runs a throwaway OpenLDAP server (slapd) for tests: a slapd.conf and an
// mdb database under a temporary folder, fixtures loaded with slapadd before the start (and
// over LDAP after it, where an overlay must see them), served on free 127.0.0.1 ports with
// ldap:// (StartTLS too) and ldaps:// under a CA generated for the run.
//
// The server carries the memberof overlay (groupOfNames member -> memberOf), the ppolicy
// overlay (pwdAccountLockedTime), a non-root read-only bind account, and a global size limit
// below what the paging tests read, so only paged searches see everything. With
// ActiveDirectory set it also looks like Active Directory to a client: its root DSE lists
// the Active Directory capability, and user and group entries can carry objectGUID
// (binary), sAMAccountName, userAccountControl and objectCategory, so AD's default filters
// work; what slapd cannot do (LDAP_MATCHING_RULE_IN_CHAIN, and handing out a large
// attribute's values in ranges) ADServer does: a small loopback server speaking the LDAP wire
// protocol over Entries (adserver.go), for those two behaviours.
//
// Tests need the Debian packages slapd and ldap-utils. Without them Start returns an error
// wrapping ErrUnavailable; Skip turns that into a skip, or a failure when
// IDSYNC_REQUIRE_SLAPD=1 (CI sets it, so the LDAP tests can never pass by skipping).
package ldaptest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"
)

// Names of the fixture tree.
const (
	BaseDN        = "dc=example,dc=com"
	AdminDN       = "cn=admin,dc=example,dc=com"
	AdminPassword = "admin-secret-0001"
	// BindDN is a plain entry with read access to everything but passwords: the account a
	// deployment gives idsync. It is subject to the server's size limit (the root DN is not).
	BindDN       = "cn=idsync,ou=services,dc=example,dc=com"
	BindPassword = "idsync-bind-secret-0001"
	// LimitedDN can read like BindDN but no more than LimitedTotal entries per search, paged
	// or not: a server limit hit in the middle of a paged read.
	LimitedDN       = "cn=limited,ou=services,dc=example,dc=com"
	LimitedPassword = "idsync-limited-secret-0001"
	LimitedTotal    = 1000
	// InstallHint is how to get the server.
	InstallHint = "DEBIAN_FRONTEND=noninteractive apt-get install -y slapd ldap-utils"
	// RequireEnv set to 1 turns a missing slapd into a test failure.
	RequireEnv = "IDSYNC_REQUIRE_SLAPD"
)

// ErrUnavailable marks a machine without slapd.
var ErrUnavailable = errors.New("slapd is not installed")

// TB is the part of testing.TB that Skip uses (the package stays free of package testing,
// so non-test code such as idsync bench can start a server too).
type TB interface {
	Helper()
	Skipf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// Skip skips t because of err, or fails it when IDSYNC_REQUIRE_SLAPD=1 or err is not
// ErrUnavailable (a server that is installed but does not start is a failure).
func Skip(t TB, err error) {
	t.Helper()
	if errors.Is(err, ErrUnavailable) && os.Getenv(RequireEnv) != "1" {
		t.Skipf("LDAP tests skipped: %v (install with: %s; %s=1 makes this a failure)", err, InstallHint, RequireEnv)
	}
	t.Fatalf("LDAP test server: %v", err)
}

// Options shape one server.
type Options struct {
	// Entries are loaded with slapadd before the server starts (fast; overlays do not see
	// them). The base entry, ou=services and the bind account are always there.
	Entries []Entry
	// Online entries are added over LDAP once the server runs, so the memberof overlay sets
	// the members' memberOf.
	Online []Entry
	// SizeLimit is the server's size limit for unpaged searches (default 500); paged searches
	// may read any total.
	SizeLimit int
	// ActiveDirectory makes the root DSE announce Active Directory.
	ActiveDirectory bool
	// NoSync makes the database skip fsync on writes (slapd's dbnosync): much faster for
	// tests that write a lot, and nothing is lost unless the machine itself goes down.
	NoSync bool
	// Log receives slapd's output (nil: discarded; it is kept in the server folder).
	Log func(string)
}

// Server is one running slapd.
type Server struct {
	// URL is ldap://127.0.0.1:PORT (StartTLS works on it); LDAPSURL is ldaps://127.0.0.1:PORT.
	URL, LDAPSURL string
	// Addr and TLSAddr are the host:port of each.
	Addr, TLSAddr string
	// CAFile is the PEM file of the CA that signed the server's certificate.
	CAFile string
	// CertPool holds that CA.
	CertPool *x509.CertPool
	Dir      string

	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	stop    sync.Once
}

// binary finds a slapd tool on PATH or in /usr/sbin (root's PATH has it, others may not).
func binary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	p := filepath.Join("/usr/sbin", name)
	if st, err := os.Stat(p); err == nil && !st.IsDir() {
		return p, nil
	}
	return "", fmt.Errorf("%w: %s not found", ErrUnavailable, name)
}

// moduleDir is where Debian keeps slapd's modules.
func moduleDir() (string, error) {
	for _, d := range []string{"/usr/lib/ldap", "/usr/lib/x86_64-linux-gnu/ldap", "/usr/lib/aarch64-linux-gnu/ldap", "/usr/lib64/openldap", "/usr/lib/openldap"} {
		if _, err := os.Stat(filepath.Join(d, "back_mdb.so")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("%w: slapd's modules (back_mdb.so) not found", ErrUnavailable)
}

func schemaDir() (string, error) {
	for _, d := range []string{"/etc/ldap/schema", "/etc/openldap/schema"} {
		if _, err := os.Stat(filepath.Join(d, "inetorgperson.schema")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("%w: the OpenLDAP schema files not found", ErrUnavailable)
}

// Start writes the configuration and the database under dir (a t.TempDir()), loads
// o.Entries, starts slapd on free loopback ports, waits until it answers, and loads o.Online.
// Stop it with Stop.
func Start(dir string, o Options) (*Server, error) {
	slapd, err := binary("slapd")
	if err != nil {
		return nil, err
	}
	slapadd, err := binary("slapadd")
	if err != nil {
		return nil, err
	}
	mods, err := moduleDir()
	if err != nil {
		return nil, err
	}
	schema, err := schemaDir()
	if err != nil {
		return nil, err
	}
	if o.SizeLimit <= 0 {
		o.SizeLimit = 500
	}
	s := &Server{Dir: dir}
	if err := s.writeTLS(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "db"), 0o700); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "slapd.conf")
	if err := os.WriteFile(conf, []byte(s.config(schema, mods, o)), 0o600); err != nil {
		return nil, err
	}
	if o.ActiveDirectory {
		dse := "dn:\nsupportedCapabilities: 1.2.840.113556.1.4.800\nsupportedCapabilities: 1.2.840.113556.1.4.1670\n"
		if err := os.WriteFile(filepath.Join(dir, "rootdse.ldif"), []byte(dse), 0o600); err != nil {
			return nil, err
		}
	}
	ldif := filepath.Join(dir, "fixtures.ldif")
	var buf bytes.Buffer
	WriteLDIF(&buf, append(baseEntries(), o.Entries...))
	if err := os.WriteFile(ldif, buf.Bytes(), 0o600); err != nil {
		return nil, err
	}
	if out, err := exec.Command(slapadd, "-q", "-f", conf, "-l", ldif).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("slapadd: %v: %s", err, lastLines(string(out), 10))
	}
	// A free port can be taken between the probe and slapd's bind: try again a few times.
	var startErr error
	for range 3 {
		if startErr = s.start(slapd, conf, o); startErr == nil {
			break
		}
	}
	if startErr != nil {
		return nil, startErr
	}
	if len(o.Online) > 0 {
		if err := s.Add(o.Online...); err != nil {
			s.Stop()
			return nil, fmt.Errorf("loading the online fixtures: %w", err)
		}
	}
	return s, nil
}

func (s *Server) start(slapd, conf string, o Options) error {
	p1, err := freePort()
	if err != nil {
		return err
	}
	p2, err := freePort()
	if err != nil {
		return err
	}
	s.Addr, s.TLSAddr = net.JoinHostPort("127.0.0.1", p1), net.JoinHostPort("127.0.0.1", p2)
	s.URL, s.LDAPSURL = "ldap://"+s.Addr, "ldaps://"+s.TLSAddr
	logPath := filepath.Join(s.Dir, "slapd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	// -d 0 keeps slapd in the foreground (it is this process's child, stopped by Stop)
	// without debug output.
	cmd := exec.Command(slapd, "-f", conf, "-h", s.URL+"/ "+s.LDAPSURL+"/", "-d", "0")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting slapd: %w", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func() {
		s.waitErr = cmd.Wait()
		logf.Close()
		close(s.done)
	}()
	if err := s.waitReady(10 * time.Second); err != nil {
		s.Stop()
		out, _ := os.ReadFile(logPath)
		if o.Log != nil {
			o.Log(string(out))
		}
		return fmt.Errorf("slapd did not come up on %s: %v: %s", s.URL, err, lastLines(string(out), 10))
	}
	return nil
}

// waitReady waits, up to timeout, until an LDAP bind succeeds on both listeners, or slapd
// exits.
func (s *Server) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := s.ping()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-s.done:
			return fmt.Errorf("slapd exited: %v", s.waitErr)
		case <-tick.C:
		}
	}
}

func (s *Server) ping() error {
	for _, u := range []string{s.URL, s.LDAPSURL} {
		c, err := s.dialAdmin(u)
		if err != nil {
			return err
		}
		_ = c.Close()
	}
	return nil
}

func (s *Server) dialAdmin(u string) (*goldap.Conn, error) {
	c, err := goldap.DialURL(u, goldap.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}),
		goldap.DialWithTLSConfig(&tls.Config{RootCAs: s.CertPool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}))
	if err != nil {
		return nil, err
	}
	c.SetTimeout(10 * time.Second)
	if err := c.Bind(AdminDN, AdminPassword); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// Admin returns a connection bound as the root DN (no limits), for changes during a test.
func (s *Server) Admin() (*goldap.Conn, error) { return s.dialAdmin(s.URL) }

// Stop ends slapd and waits for it. It is safe to call more than once.
func (s *Server) Stop() {
	s.stop.Do(func() {
		if s.cmd == nil || s.cmd.Process == nil {
			return
		}
		_ = s.cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// adSchema is what Active Directory clients read on users and groups, enough for AD's
// default filters: objectCategory as a plain name ("person", "group").
const adSchema = `
attributetype ( 1.3.6.1.4.1.32473.1.1.1 NAME 'objectGUID' EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.32473.1.1.2 NAME 'sAMAccountName' EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.32473.1.1.3 NAME 'userAccountControl' EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.32473.1.1.4 NAME 'objectCategory' EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.32473.1.1.5 NAME 'supportedCapabilities' EQUALITY objectIdentifierMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.38 )
objectclass ( 1.3.6.1.4.1.32473.1.2.1 NAME 'user' SUP inetOrgPerson STRUCTURAL MAY ( objectGUID $ sAMAccountName $ userAccountControl $ objectCategory ) )
objectclass ( 1.3.6.1.4.1.32473.1.2.2 NAME 'group' SUP groupOfNames STRUCTURAL MAY ( objectGUID $ sAMAccountName $ objectCategory ) )
`

func (s *Server) config(schema, mods string, o Options) string {
	var b strings.Builder
	for _, f := range []string{"core", "cosine", "inetorgperson", "nis"} {
		fmt.Fprintf(&b, "include %s\n", filepath.Join(schema, f+".schema"))
	}
	if err := os.WriteFile(filepath.Join(s.Dir, "ad.schema"), []byte(adSchema), 0o600); err == nil {
		fmt.Fprintf(&b, "include %s\n", filepath.Join(s.Dir, "ad.schema"))
	}
	fmt.Fprintf(&b, "modulepath %s\nmoduleload back_mdb\nmoduleload memberof\nmoduleload ppolicy\n", mods)
	fmt.Fprintf(&b, "pidfile %s\nargsfile %s\n", filepath.Join(s.Dir, "slapd.pid"), filepath.Join(s.Dir, "slapd.args"))
	fmt.Fprintf(&b, "TLSCACertificateFile %s\nTLSCertificateFile %s\nTLSCertificateKeyFile %s\n",
		s.CAFile, filepath.Join(s.Dir, "server.pem"), filepath.Join(s.Dir, "server.key"))
	if o.ActiveDirectory {
		fmt.Fprintf(&b, "rootDSE %s\n", filepath.Join(s.Dir, "rootdse.ldif"))
	}
	fmt.Fprintf(&b, "sizelimit size.soft=%d size.hard=%d size.prtotal=unlimited\n", o.SizeLimit, o.SizeLimit)
	b.WriteString("database mdb\nmaxsize 268435456\n")
	if o.NoSync {
		b.WriteString("dbnosync\n")
	}
	fmt.Fprintf(&b, "suffix %q\nrootdn %q\nrootpw %s\ndirectory %s\n", BaseDN, AdminDN, AdminPassword, filepath.Join(s.Dir, "db"))
	b.WriteString("index objectClass,uid,cn,memberUid,sAMAccountName eq\nindex member,uniqueMember,memberOf eq\n")
	b.WriteString("access to attrs=userPassword by self write by anonymous auth by * none\n")
	fmt.Fprintf(&b, "access to * by dn.exact=%q read by dn.exact=%q read by * none\n", BindDN, LimitedDN)
	fmt.Fprintf(&b, "limits dn.exact=%q size.soft=%d size.hard=%d size.prtotal=%d\n", LimitedDN, LimitedTotal, LimitedTotal, LimitedTotal)
	b.WriteString("overlay memberof\nmemberof-group-oc groupOfNames\nmemberof-member-ad member\nmemberof-memberof-ad memberOf\nmemberof-refint TRUE\n")
	b.WriteString("overlay ppolicy\n")
	return b.String()
}

func baseEntries() []Entry {
	return []Entry{
		{DN: BaseDN, Attrs: []Attr{{"objectClass", []string{"dcObject", "organization"}}, {"o", []string{"Example"}}, {"dc", []string{"example"}}}},
		{DN: "ou=services," + BaseDN, Attrs: []Attr{{"objectClass", []string{"organizationalUnit"}}, {"ou", []string{"services"}}}},
		{DN: BindDN, Attrs: []Attr{{"objectClass", []string{"person"}}, {"cn", []string{"idsync"}}, {"sn", []string{"idsync"}},
			{"userPassword", []string{BindPassword}}}},
		{DN: LimitedDN, Attrs: []Attr{{"objectClass", []string{"person"}}, {"cn", []string{"limited"}}, {"sn", []string{"limited"}},
			{"userPassword", []string{LimitedPassword}}}},
	}
}

// --- TLS -------------------------------------------------------------------------------------

// writeTLS generates a CA and a server certificate for 127.0.0.1 and localhost.
func (s *Server) writeTLS() error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "idsync test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	s.CAFile = filepath.Join(s.Dir, "ca.pem")
	for _, f := range []struct {
		name, typ string
		der       []byte
	}{{"ca.pem", "CERTIFICATE", caDER}, {"server.pem", "CERTIFICATE", der}, {"server.key", "PRIVATE KEY", pk}} {
		if err := os.WriteFile(filepath.Join(s.Dir, f.name), pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			return err
		}
	}
	s.CertPool = x509.NewCertPool()
	s.CertPool.AddCert(ca)
	return nil
}

// --- entries ---------------------------------------------------------------------------------

// Attr is one attribute with its values (binary values as raw bytes in a string).
type Attr struct {
	Name   string
	Values []string
}

// Entry is one LDAP entry.
type Entry struct {
	DN    string
	Attrs []Attr
}

// WriteLDIF writes entries as LDIF, base64 where RFC 2849 wants it.
func WriteLDIF(b *bytes.Buffer, entries []Entry) {
	line := func(name, v string) {
		if safe(v) {
			fmt.Fprintf(b, "%s: %s\n", name, v)
		} else {
			fmt.Fprintf(b, "%s:: %s\n", name, base64.StdEncoding.EncodeToString([]byte(v)))
		}
	}
	for _, e := range entries {
		line("dn", e.DN)
		for _, a := range merged(e.Attrs) {
			for _, v := range a.Values {
				line(a.Name, v)
			}
		}
		b.WriteByte('\n')
	}
}

// merged joins the values of attributes given more than once (names compared case-blind).
func merged(attrs []Attr) []Attr {
	var out []Attr
	for _, a := range attrs {
		i := slices.IndexFunc(out, func(o Attr) bool { return strings.EqualFold(o.Name, a.Name) })
		if i < 0 {
			out = append(out, Attr{Name: a.Name, Values: slices.Clone(a.Values)})
			continue
		}
		out[i].Values = append(out[i].Values, a.Values...)
	}
	return out
}

// safe reports whether v can be written as a plain LDIF value.
func safe(v string) bool {
	if v == "" {
		return true
	}
	if v[0] == ' ' || v[0] == ':' || v[0] == '<' || v[len(v)-1] == ' ' || !utf8.ValidString(v) {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == 0 || c == '\n' || c == '\r' || c >= 0x80 {
			return false
		}
	}
	return true
}

// Add adds entries over LDAP as the root DN, in order.
func (s *Server) Add(entries ...Entry) error {
	c, err := s.Admin()
	if err != nil {
		return err
	}
	defer c.Close()
	for _, e := range entries {
		req := goldap.NewAddRequest(e.DN, nil)
		for _, a := range merged(e.Attrs) {
			req.Attribute(a.Name, a.Values)
		}
		if err := c.Add(req); err != nil {
			return fmt.Errorf("adding %s: %w", e.DN, err)
		}
	}
	return nil
}

// Delete removes entries as the root DN.
func (s *Server) Delete(dns ...string) error {
	c, err := s.Admin()
	if err != nil {
		return err
	}
	defer c.Close()
	for _, dn := range dns {
		if err := c.Del(goldap.NewDelRequest(dn, nil)); err != nil {
			return fmt.Errorf("deleting %s: %w", dn, err)
		}
	}
	return nil
}

// Replace sets attributes of one entry as the root DN (no values deletes the attribute).
func (s *Server) Replace(dn string, attrs ...Attr) error {
	c, err := s.Admin()
	if err != nil {
		return err
	}
	defer c.Close()
	req := goldap.NewModifyRequest(dn, nil)
	for _, a := range attrs {
		if len(a.Values) == 0 {
			req.Delete(a.Name, nil)
		} else {
			req.Replace(a.Name, a.Values)
		}
	}
	if err := c.Modify(req); err != nil {
		return fmt.Errorf("modifying %s: %w", dn, err)
	}
	return nil
}

// AddValues adds values to an attribute of one entry as the root DN.
func (s *Server) AddValues(dn string, a Attr) error {
	c, err := s.Admin()
	if err != nil {
		return err
	}
	defer c.Close()
	req := goldap.NewModifyRequest(dn, nil)
	req.Add(a.Name, a.Values)
	if err := c.Modify(req); err != nil {
		return fmt.Errorf("modifying %s: %w", dn, err)
	}
	return nil
}

// RemoveValues deletes values of an attribute of one entry as the root DN.
func (s *Server) RemoveValues(dn string, a Attr) error {
	c, err := s.Admin()
	if err != nil {
		return err
	}
	defer c.Close()
	req := goldap.NewModifyRequest(dn, nil)
	req.Delete(a.Name, a.Values)
	if err := c.Modify(req); err != nil {
		return fmt.Errorf("modifying %s: %w", dn, err)
	}
	return nil
}
