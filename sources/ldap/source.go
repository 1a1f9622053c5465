// Package ldap reads users and groups from an LDAPv3 directory (OpenLDAP, 389 Directory
// Server, ...) or Active Directory (pull mode), with github.com/go-ldap/ldap/v3.
//
// A read connects (ldap://, ldaps://, or ldap:// upgraded with StartTLS; the server's
// certificate is checked against ca_file or the system's roots), binds with a simple bind
// (or anonymously), and runs paged searches (RFC 2696, page_size entries a page) under
// base_dn: the users (user_filter), the disabled users (user_filter and disabled_filter),
// and the groups (group_filter). It returns the whole directory or an error wrapping
// ErrIncomplete: an error mid-search (a cut connection, a size or time limit, a referral,
// a page that does not arrive within timeout) fails the read whole, and so do more entries
// than max_objects.
//
// Status: a user matching disabled_filter is inactive, an explicit deprovision. Active
// Directory's default is the ACCOUNTDISABLE bit of userAccountControl; other servers have
// none, so every user found is active and leaving the search is what deprovisions (after
// the grace passes). The filter decides; there is no status attribute that could be
// missing or unknown.
//
// Keys: the user's key is the id attribute (objectGUID on Active Directory, entryUUID
// elsewhere), stable across renames and moves. Binary values are written as text:
// objectGUID in its usual GUID form (the first three fields little-endian, as Windows
// shows it), objectSid as S-1-..., any other binary value as hex.
//
// Memberships come from the groups' member (and uniqueMember) DNs, the users' memberOf DNs,
// or the groups' memberUid names (posixGroup). DNs are compared after normalisation
// (attribute types and values case-folded, escapes decoded, multi-valued RDNs sorted).
// With nested_groups, a member of a group that is a member of another group belongs to both:
// the group graph is flattened here with the cycles cut, for every server; the one-user
// fetch of Active Directory asks the server with LDAP_MATCHING_RULE_IN_CHAIN instead.
// Member DNs that are neither a listed user nor a listed group (entries outside base_dn or
// the filters, placeholder members) are ignored.
//
// server_type auto reads the root DSE on the first read: a server listing the Active
// Directory capability takes the Active Directory defaults, any other the generic ones.
package ldap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/httpx"
	"github.com/idsync/idsync/internal/logging"
	"github.com/idsync/idsync/internal/metrics"
	"github.com/idsync/idsync/reconcile"
)

// ErrIncomplete marks a Snapshot that could not read the whole directory: a failed or cut
// search, a size or time limit, a referral, more entries than max_objects, entries without
// the id attribute, repeated keys or names. Such a pass may create and update but must not
// deactivate or remove anything.
var ErrIncomplete = errors.New("incomplete read")

// Defaults for unset config values.
const (
	DefaultPageSize = configs.DefaultLDAPPageSize
	DefaultTimeout  = 30 * time.Second
	// DefaultMaxObjects bounds the entries of a search when cfg.MaxObjects is unset.
	DefaultMaxObjects = configs.DefaultMaxObjects
)

// maxPrealloc caps the room a listing reserves up front.
const maxPrealloc = 4096

// Options are the runtime dependencies of a Source. Zero values take defaults.
type Options struct {
	Metrics *metrics.Metrics
	Logger  zerolog.Logger
	// DialContext opens the TCP connection (nil: a net.Dialer). Tests put a proxy in between.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

// settings are the effective attribute names and filters, once the server type is known.
type settings struct {
	known                                   bool
	ad                                      bool
	id, userName                            string
	userFilter, groupFilter, disabledFilter string
}

// Source is one configured LDAP directory.
type Source struct {
	name       string
	cfg        configs.LDAPConfig
	addr       string
	ldaps      bool
	tls        *tls.Config
	maxObjects int
	dial       func(ctx context.Context, network, addr string) (net.Conn, error)
	limiter    *rate.Limiter
	metrics    *metrics.Metrics
	log        zerolog.Logger

	pw atomic.Pointer[string]

	mu  sync.Mutex
	set settings
}

var (
	_ reconcile.Source     = (*Source)(nil)
	_ reconcile.UserSource = (*Source)(nil)
)

// New checks cfg and builds the source; it does not connect. cfg.BindPassword must hold the
// resolved password (configs resolves bind_password_file). cfg.MaxObjects bounds the entries
// of every search (sources[].max_objects, which configs copies into the block; 0 takes
// DefaultMaxObjects). rate_limit.requests_per_second and burst pace binds and search pages;
// rate_limit.concurrency is not used, since a read sends one request at a time.
func New(name string, cfg configs.LDAPConfig, opts Options) (*Source, error) {
	if name == "" {
		return nil, errors.New("ldap source: name is empty")
	}
	u, addr, err := serverAddr(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("ldap source %q: %w", name, err)
	}
	if u.Scheme == "ldaps" && cfg.StartTLS {
		return nil, fmt.Errorf("ldap source %q: start_tls is for ldap:// URLs, not ldaps://", name)
	}
	if strings.TrimSpace(cfg.BaseDN) == "" {
		return nil, fmt.Errorf("ldap source %q: base_dn is empty", name)
	}
	if _, err := goldap.ParseDN(cfg.BaseDN); err != nil {
		return nil, fmt.Errorf("ldap source %q: base_dn %q: %w", name, cfg.BaseDN, err)
	}
	if cfg.BindDN != "" && cfg.BindPassword.Value() == "" {
		return nil, fmt.Errorf("ldap source %q: the bind password is empty (set bind_password or bind_password_file)", name)
	}
	if cfg.Membership == "" {
		cfg.Membership = configs.DefaultLDAPMembership
	}
	if !configs.LDAPMembershipValid(cfg.Membership) {
		return nil, fmt.Errorf("ldap source %q: membership %q is not one of %s", name, cfg.Membership, strings.Join(configs.LDAPMemberships, ", "))
	}
	if cfg.NestedGroups && cfg.Membership == configs.LDAPMembershipMemberUID {
		return nil, fmt.Errorf("ldap source %q: nested_groups is not available with membership memberUid", name)
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = DefaultPageSize
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxObjects <= 0 {
		cfg.MaxObjects = DefaultMaxObjects
	}
	a, d := &cfg.Attributes, configs.DefaultLDAPAttributes
	if a.Email == "" {
		a.Email = d.Email
	}
	if a.GivenName == "" {
		a.GivenName = d.GivenName
	}
	if a.FamilyName == "" {
		a.FamilyName = d.FamilyName
	}
	if a.DisplayName == "" {
		a.DisplayName = d.DisplayName
	}
	if a.GroupName == "" {
		a.GroupName = d.GroupName
	}
	for _, f := range []string{cfg.UserFilter, cfg.GroupFilter, cfg.DisabledFilter} {
		if f == "" {
			continue
		}
		if _, err := goldap.CompileFilter(f); err != nil {
			return nil, fmt.Errorf("ldap source %q: filter %q: %w", name, f, err)
		}
	}
	var tc *tls.Config
	if u.Scheme == "ldaps" || cfg.StartTLS {
		if tc, err = tlsConfig(u.Hostname(), cfg.CAFile); err != nil {
			return nil, fmt.Errorf("ldap source %q: %w", name, err)
		}
	}
	dial := opts.DialContext
	if dial == nil {
		d := &net.Dialer{}
		dial = d.DialContext
	}
	s := &Source{
		name:       name,
		cfg:        cfg,
		addr:       addr,
		ldaps:      u.Scheme == "ldaps",
		tls:        tc,
		maxObjects: cfg.MaxObjects,
		dial:       dial,
		limiter:    httpx.Limiter(cfg.RateLimit),
		metrics:    opts.Metrics,
		log:        opts.Logger.With().Str(logging.FieldSource, name).Str(logging.FieldComponent, "ldap").Logger(),
	}
	pw := cfg.BindPassword.Value()
	s.pw.Store(&pw)
	switch cfg.ServerType {
	case configs.LDAPServerActiveDirectory:
		s.set = s.resolve(true)
	case configs.LDAPServerGeneric:
		s.set = s.resolve(false)
	}
	return s, nil
}

// resolve fills the keys left empty with the defaults of the server type.
func (s *Source) resolve(ad bool) settings {
	st := configs.LDAPServerGeneric
	if ad {
		st = configs.LDAPServerActiveDirectory
	}
	d := configs.LDAPDefaultsFor(st, s.cfg.Membership)
	pick := func(v, def string) string {
		if v != "" {
			return v
		}
		return def
	}
	out := settings{
		known:       true,
		ad:          ad,
		id:          pick(s.cfg.Attributes.ID, d.ID),
		userName:    pick(s.cfg.Attributes.UserName, d.UserName),
		userFilter:  pick(s.cfg.UserFilter, d.UserFilter),
		groupFilter: pick(s.cfg.GroupFilter, d.GroupFilter),
		// An empty disabled_filter on Active Directory takes the AD default; elsewhere
		// there is none.
		disabledFilter: pick(s.cfg.DisabledFilter, d.DisabledFilter),
	}
	return out
}

// settings returns the effective settings (zero until the server type is known).
func (s *Source) settings() settings {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.set
}

// ensureSettings learns the server type from the root DSE when server_type is auto and it
// is not known yet.
func (s *Source) ensureSettings(ctx context.Context, c *conn) (settings, error) {
	if st := s.settings(); st.known {
		return st, nil
	}
	ad, err := c.rootDSE(ctx)
	if err != nil {
		return settings{}, err
	}
	st := s.resolve(ad)
	s.mu.Lock()
	s.set = st
	s.mu.Unlock()
	kind := "a generic LDAPv3 server"
	if ad {
		kind = "Active Directory"
	}
	s.log.Info().Bool("active_directory", ad).Str("id_attribute", st.id).Str("username_attribute", st.userName).
		Msg("server type detected from the root DSE: " + kind)
	return st, nil
}

// Name is the configured source name.
func (s *Source) Name() string { return s.name }

// Close releases nothing: every read opens and closes its own connection.
func (s *Source) Close() error { return nil }

// SetBindPassword replaces the bind password from the next connection on: a config reload
// after a rotation, without rebuilding the source. It returns an error, and changes
// nothing, when pw is blank or has white space at either end or a control character.
func (s *Source) SetBindPassword(pw string) error {
	if p := configs.SecretProblem(pw); p != "" {
		return fmt.Errorf("ldap source %q: the bind password %s", s.name, p)
	}
	s.pw.Store(&pw)
	return nil
}

func (s *Source) password() string { return *s.pw.Load() }

// wait takes a token of the rate limit, counting the time spent.
func (s *Source) wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.limiter == nil {
		return nil
	}
	start := time.Now()
	if err := s.limiter.Wait(ctx); err != nil {
		return fmt.Errorf("waiting for the rate limiter: %w", err)
	}
	s.metrics.RateLimitWaited(target, time.Since(start))
	return nil
}

// open connects and learns the settings.
func (s *Source) open(ctx context.Context) (*conn, settings, error) {
	c, err := s.connect(ctx)
	if err != nil {
		return nil, settings{}, err
	}
	st, err := s.ensureSettings(ctx, c)
	if err != nil {
		c.close()
		return nil, settings{}, err
	}
	return c, st, nil
}

// Snapshot reads every user, the disabled users and every group, and converts them.
func (s *Source) Snapshot(ctx context.Context) (reconcile.Directory, error) {
	start := time.Now()
	dir, ops, err := s.snapshot(ctx)
	if err != nil {
		if !errors.Is(err, ErrIncomplete) {
			err = fmt.Errorf("%w: %w", ErrIncomplete, err)
		}
		s.log.Debug().Err(err).Int("requests", ops).Dur("took_ms", time.Since(start)).Msg("LDAP read failed")
		return reconcile.Directory{}, fmt.Errorf("ldap source %q: %w", s.name, err)
	}
	s.log.Debug().Int("users", len(dir.Users)).Int("groups", len(dir.Groups)).Int("requests", ops).
		Dur("took", time.Since(start)).Msg("LDAP read complete")
	return dir, nil
}

func (s *Source) snapshot(ctx context.Context) (reconcile.Directory, int, error) {
	c, st, err := s.open(ctx)
	if err != nil {
		return reconcile.Directory{}, 0, err
	}
	defer c.close()
	var users []rawUser
	_, err = c.run(ctx, search{
		what: "users", base: s.cfg.BaseDN, scope: goldap.ScopeWholeSubtree, filter: st.userFilter,
		attrs: s.userAttrs(st), limit: s.maxObjects,
		each: func(e *goldap.Entry) error {
			u, err := s.readUser(st, e)
			if err != nil {
				return err
			}
			if users == nil {
				users = make([]rawUser, 0, min(s.maxObjects, maxPrealloc))
			}
			users = append(users, u)
			return nil
		},
	})
	if err != nil {
		return reconcile.Directory{}, c.ops, err
	}
	disabled := map[string]bool{}
	if st.disabledFilter != "" {
		_, err = c.run(ctx, search{
			what: "disabled users", base: s.cfg.BaseDN, scope: goldap.ScopeWholeSubtree,
			filter: "(&" + st.userFilter + st.disabledFilter + ")", attrs: []string{"1.1"}, limit: s.maxObjects,
			each: func(e *goldap.Entry) error {
				k, err := canonDN(e.DN)
				if err != nil {
					return fmt.Errorf("%w: disabled users: entry DN %q: %v", ErrIncomplete, e.DN, err)
				}
				disabled[k] = true
				return nil
			},
		})
		if err != nil {
			return reconcile.Directory{}, c.ops, err
		}
	}
	var groups []rawGroup
	_, err = c.run(ctx, search{
		what: "groups", base: s.cfg.BaseDN, scope: goldap.ScopeWholeSubtree, filter: st.groupFilter,
		attrs: s.groupAttrs(st), limit: s.maxObjects,
		each: func(e *goldap.Entry) error {
			g, err := s.readGroup(st, e)
			if err != nil {
				return err
			}
			groups = append(groups, g)
			return nil
		},
	})
	if err != nil {
		return reconcile.Directory{}, c.ops, err
	}
	for i := range groups {
		if err := s.readRanges(ctx, c, &groups[i]); err != nil {
			return reconcile.Directory{}, c.ops, err
		}
	}
	dir, err := s.assemble(users, disabled, groups)
	return dir, c.ops, err
}

// User fetches one user by username (case-insensitive, as the server's matching rule for the
// username attribute compares) with its groups, for targeted and login-time runs. It returns
// an error wrapping reconcile.ErrUserNotFound when no user of user_filter has that username.
func (s *Source) User(ctx context.Context, userName string) (reconcile.User, error) {
	if strings.TrimSpace(userName) == "" {
		return reconcile.User{}, fmt.Errorf("ldap source %q: empty userName", s.name)
	}
	u, err := s.user(ctx, userName)
	if err != nil {
		return reconcile.User{}, fmt.Errorf("ldap source %q: %w", s.name, err)
	}
	return u, nil
}

func (s *Source) user(ctx context.Context, userName string) (reconcile.User, error) {
	c, st, err := s.open(ctx)
	if err != nil {
		return reconcile.User{}, err
	}
	defer c.close()
	var found []rawUser
	_, err = c.run(ctx, search{
		what: "user", base: s.cfg.BaseDN, scope: goldap.ScopeWholeSubtree,
		filter: "(&" + st.userFilter + "(" + st.userName + "=" + goldap.EscapeFilter(userName) + "))",
		attrs:  s.userAttrs(st), limit: 10,
		each: func(e *goldap.Entry) error {
			u, err := s.readUser(st, e)
			if err == nil && strings.EqualFold(strings.TrimSpace(u.userName), strings.TrimSpace(userName)) {
				found = append(found, u)
			}
			return err
		},
	})
	if err != nil {
		return reconcile.User{}, fmt.Errorf("fetching user %q: %w", userName, err)
	}
	switch len(found) {
	case 0:
		return reconcile.User{}, fmt.Errorf("user %q: %w", userName, reconcile.ErrUserNotFound)
	case 1:
	default:
		return reconcile.User{}, fmt.Errorf("%d users have username %q (%s)", len(found), userName, st.userName)
	}
	u := found[0]
	if u.key == "" {
		return reconcile.User{}, fmt.Errorf("%w: user %q (%s) has no %s attribute, the key idsync links it by", ErrIncomplete, userName, u.dn, st.id)
	}
	active := true
	if st.disabledFilter != "" {
		n, err := c.run(ctx, search{
			what: "user status", base: u.dn, scope: goldap.ScopeBaseObject, filter: st.disabledFilter,
			attrs: []string{"1.1"}, limit: 1, each: func(*goldap.Entry) error { return nil },
		})
		if err != nil {
			return reconcile.User{}, fmt.Errorf("status of user %q: %w", userName, err)
		}
		active = n == 0
	}
	groups, err := s.userGroups(ctx, c, st, u)
	if err != nil {
		return reconcile.User{}, fmt.Errorf("groups of user %q: %w", userName, err)
	}
	sort.Strings(groups)
	return s.convert(u, active, groups), nil
}
