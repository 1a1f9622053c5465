package ldap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/idsync/idsync/reconcile"
)

// target labels this source's requests in idsync_api_requests_total and
// idsync_ratelimit_wait_seconds_total.
const target = "ldap"

// oidActiveDirectory is LDAP_CAP_ACTIVE_DIRECTORY_OID: Active Directory (and AD LDS) list it
// under the root DSE's supportedCapabilities.
const oidActiveDirectory = "1.2.840.113556.1.4.800"

// oidInChain is LDAP_MATCHING_RULE_IN_CHAIN: Active Directory's transitive (nested) match of
// DN-valued attributes.
const oidInChain = "1.2.840.113556.1.4.1941"

// endpoint labels of the metrics.
const (
	opConnect = "connect"
	opBind    = "bind"
	opRootDSE = "rootdse"
)

// resultCode is the code a metric records for err: 0 on success, the LDAP result code, or
// 200 (go-ldap's network error) for errors without one.
func resultCode(err error) int {
	if err == nil {
		return 0
	}
	var le *goldap.Error
	if errors.As(err, &le) {
		return int(le.ResultCode)
	}
	return int(goldap.ErrorNetwork)
}

// tlsConfig builds the TLS settings of LDAPS and StartTLS: the server name from the URL, the
// CAs of ca_file (the system's roots without it), TLS 1.2 at least.
func tlsConfig(host, caFile string) (*tls.Config, error) {
	c := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return c, nil
	}
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("reading ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("ca_file %s holds no PEM certificate", caFile)
	}
	c.RootCAs = pool
	return c, nil
}

// serverAddr returns host:port of an ldap:// or ldaps:// URL (389 and 636 by default).
func serverAddr(raw string) (u *url.URL, addr string, err error) {
	u, err = url.Parse(raw)
	if err != nil {
		return nil, "", fmt.Errorf("url: %w", err)
	}
	if u.Scheme != "ldap" && u.Scheme != "ldaps" {
		return nil, "", fmt.Errorf("url %q: the scheme must be ldap or ldaps", u.Redacted())
	}
	if u.Hostname() == "" {
		return nil, "", fmt.Errorf("url %q has no host", u.Redacted())
	}
	port := u.Port()
	if port == "" {
		port = "389"
		if u.Scheme == "ldaps" {
			port = "636"
		}
	}
	return u, net.JoinHostPort(u.Hostname(), port), nil
}

// conn is one bound connection of one read.
type conn struct {
	s    *Source
	lc   *goldap.Conn
	stop func() bool // ends the context watch
	// ops counts requests sent (binds, search pages), for the read's log line.
	ops int
}

// connect dials, upgrades to TLS as configured, and binds. ctx bounds the whole setup; the
// connection is closed when ctx ends.
func (s *Source) connect(ctx context.Context) (*conn, error) {
	start := time.Now()
	if err := s.wait(ctx); err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	raw, err := s.dial(dctx, "tcp", s.addr)
	if err == nil && s.ldaps {
		tc := tls.Client(raw, s.tls.Clone())
		if err = tc.HandshakeContext(dctx); err != nil {
			_ = raw.Close()
			err = fmt.Errorf("TLS handshake: %w", err)
		} else {
			raw = tc
		}
	}
	s.metrics.APIRequest(target, opConnect, "LDAP", resultCode(err), time.Since(start))
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", s.addr, err)
	}
	lc := goldap.NewConn(raw, s.ldaps)
	lc.Start()
	lc.SetTimeout(s.cfg.Timeout)
	c := &conn{s: s, lc: lc}
	c.stop = context.AfterFunc(ctx, func() { _ = lc.Close() })
	if s.cfg.StartTLS {
		start := time.Now()
		err := lc.StartTLS(s.tls.Clone())
		s.metrics.APIRequest(target, "starttls", "LDAP", resultCode(err), time.Since(start))
		if err != nil {
			c.close()
			return nil, fmt.Errorf("StartTLS with %s: %w", s.addr, c.ctxErr(ctx, err))
		}
	}
	if s.cfg.BindDN != "" {
		if err := s.wait(ctx); err != nil {
			c.close()
			return nil, err
		}
		start := time.Now()
		c.ops++
		err := lc.Bind(s.cfg.BindDN, s.password())
		s.metrics.APIRequest(target, opBind, "LDAP", resultCode(err), time.Since(start))
		if err != nil {
			c.close()
			return nil, fmt.Errorf("binding as %q: %w", s.cfg.BindDN, c.ctxErr(ctx, err))
		}
	}
	return c, nil
}

func (c *conn) close() {
	c.stop()
	_ = c.lc.Close()
}

// ctxErr prefers the context's error over the connection error its end caused.
func (c *conn) ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

// rootDSE reads the server's root DSE and reports whether it is Active Directory.
func (c *conn) rootDSE(ctx context.Context) (ad bool, err error) {
	if err := c.s.wait(ctx); err != nil {
		return false, err
	}
	start := time.Now()
	c.ops++
	res, err := c.lc.Search(goldap.NewSearchRequest("", goldap.ScopeBaseObject, goldap.NeverDerefAliases, 1,
		int(c.s.cfg.Timeout/time.Second), false, "(objectClass=*)", []string{"supportedCapabilities", "vendorName"}, nil))
	c.s.metrics.APIRequest(target, opRootDSE, "SEARCH", resultCode(err), time.Since(start))
	if err != nil {
		return false, fmt.Errorf("reading the root DSE (set server_type to skip it): %w", c.ctxErr(ctx, err))
	}
	for _, e := range res.Entries {
		if slices.Contains(e.GetAttributeValues("supportedCapabilities"), oidActiveDirectory) {
			return true, nil
		}
	}
	return false, nil
}

// search is one subtree (or base) search read page by page with the paged results control.
type search struct {
	what   string // "users", "groups", ... for messages and metrics
	base   string
	scope  int
	filter string
	attrs  []string
	// limit is the most entries the search may return (max_objects): one more fails it.
	limit int
	// each receives every entry as it arrives; an error stops the search.
	each func(*goldap.Entry) error
}

// errTooMany marks a search that returned more entries than its limit.
var errTooMany = errors.New("more entries than max_objects")

// run reads every page. Any error ends the whole search: a failed page, a size or time limit
// the server enforces, a referral (idsync does not follow them), a connection cut mid-page,
// more entries than the limit. Pages are bounded by what the limit allows, so a server that
// keeps returning cookies cannot keep the read going.
func (c *conn) run(ctx context.Context, sp search) (int, error) {
	s := c.s
	paging := goldap.NewControlPaging(uint32(s.cfg.PageSize))
	maxPages := sp.limit/s.cfg.PageSize + 2
	n := 0
	for page := 1; ; page++ {
		if page > maxPages {
			return n, fmt.Errorf("%s: the server kept sending pages past %d entries (%d pages of %d)", sp.what, n, page-1, s.cfg.PageSize)
		}
		if err := s.wait(ctx); err != nil {
			return n, err
		}
		req := goldap.NewSearchRequest(sp.base, sp.scope, goldap.NeverDerefAliases, 0, int(s.cfg.Timeout/time.Second),
			false, sp.filter, sp.attrs, []goldap.Control{paging})
		start := time.Now()
		c.ops++
		before := n
		cookie, more, err := c.page(ctx, sp, req, &n)
		s.metrics.APIRequest(target, "search "+sp.what, "SEARCH", resultCode(err), time.Since(start))
		if err != nil {
			return n, fmt.Errorf("%s: page %d: %w", sp.what, page, err)
		}
		reconcile.ReportReadProgress(ctx, 1, n-before)
		if !more {
			return n, nil
		}
		paging.SetCookie(cookie)
	}
}

// page reads one page. more reports whether the server handed a cookie for another.
func (c *conn) page(ctx context.Context, sp search, req *goldap.SearchRequest, n *int) (cookie []byte, more bool, err error) {
	pctx, cancel := context.WithTimeout(ctx, c.s.cfg.Timeout)
	defer cancel()
	resp := c.lc.SearchAsync(pctx, req, 64)
	defer func() {
		if err != nil {
			// Stop the search and let its reader finish: the connection is not reused.
			cancel()
			_ = c.lc.Close()
			for resp.Next() {
			}
		}
	}()
	for resp.Next() {
		if e := resp.Entry(); e != nil {
			*n++
			if *n > sp.limit {
				return nil, false, fmt.Errorf("%w (%d): a directory larger than this source is configured for (raise sources[].max_objects if it is real)", errTooMany, sp.limit)
			}
			if err := sp.each(e); err != nil {
				return nil, false, err
			}
		}
		if ref := resp.Referral(); ref != "" {
			if c.s.ignorableReferral(ref) {
				c.s.log.Debug().Str("referral", ref).Msg("Active Directory application partition reference skipped")
				continue
			}
			return nil, false, fmt.Errorf("the server answered with a referral to %s, which idsync does not follow (point url and base_dn at the server and subtree holding the entries)", ref)
		}
		for _, ctl := range resp.Controls() {
			if p, ok := ctl.(*goldap.ControlPaging); ok {
				cookie, more = p.Cookie, len(p.Cookie) > 0
			}
		}
	}
	if err := resp.Err(); err != nil {
		return nil, false, c.ctxErr(ctx, err)
	}
	if pctx.Err() != nil {
		// The reader stops without an error when the context ends: the page is short.
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		return nil, false, fmt.Errorf("no complete answer within timeout %s", c.s.cfg.Timeout)
	}
	return cookie, more, nil
}

// ignorableReferral reports whether ref is one of Active Directory's own references to its
// application and configuration partitions (DomainDnsZones, ForestDnsZones, Configuration),
// which a search of the domain's root returns and which hold no users or groups of the
// domain. Any other referral fails the read.
func (s *Source) ignorableReferral(ref string) bool {
	if !s.settings().ad {
		return false
	}
	u, err := url.Parse(ref)
	if err != nil {
		return false
	}
	dn, err := goldap.ParseDN(strings.TrimPrefix(u.Path, "/"))
	if err != nil || len(dn.RDNs) == 0 || len(dn.RDNs[0].Attributes) != 1 {
		return false
	}
	a := dn.RDNs[0].Attributes[0]
	switch {
	case strings.EqualFold(a.Type, "DC") && (strings.EqualFold(a.Value, "DomainDnsZones") || strings.EqualFold(a.Value, "ForestDnsZones")):
		return true
	case strings.EqualFold(a.Type, "CN") && strings.EqualFold(a.Value, "Configuration"):
		return true
	}
	return false
}
