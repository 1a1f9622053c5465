package bench

// The LDAP source's read, measured: a throwaway slapd (sources/ldap/ldaptest) holding a
// generated directory, read by the ldap source as a pass reads it, with the requests it sent
// (counted in idsync_api_requests_total, target ldap) against the minimum the directory's
// sizes and the page size allow.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/metrics"
	"github.com/idsync/idsync/sources/ldap"
	"github.com/idsync/idsync/sources/ldap/ldaptest"
)

// LDAPShape is what the fewest LDAP requests of one full read depend on.
type LDAPShape struct {
	// Users and Groups are the entries user_filter and group_filter select; Disabled those
	// of the users disabled_filter selects (ignored without a disabled_filter).
	Users, Groups, Disabled int
	// HasDisabledFilter is whether the read runs the disabled users' search.
	HasDisabledFilter bool
	// PageSize is sources[].ldap.page_size.
	PageSize int
	// RootDSE is whether the read learns the server type first (server_type: auto, first
	// read of the process).
	RootDSE bool
}

// MinLDAPReads is the fewest requests a complete read takes:
//
//	1                                    the bind
//	+ 1 with RootDSE                     the root DSE (server_type auto, first read)
//	+ pages(users, page_size)            the users' paged search
//	+ pages(disabled, page_size)         the disabled users' search, with a disabled_filter
//	+ pages(groups, page_size)           the groups' paged search
//
// with pages(n) = max(1, ceil(n / page_size)): an empty search still costs its request.
// Active Directory's member ranges (groups over 1,500 members) add requests not counted here.
func (s LDAPShape) MinLDAPReads() int {
	n := 1 + pages(s.Users, s.PageSize) + pages(s.Groups, s.PageSize)
	if s.RootDSE {
		n++
	}
	if s.HasDisabledFilter {
		n += pages(s.Disabled, s.PageSize)
	}
	return n
}

// LDAPOptions describe one LDAP read bench. Zero values take the defaults noted.
type LDAPOptions struct {
	Users    int // default 2000
	Disabled int // locked users (pwdAccountLockedTime), default Users/100
	PageSize int // default the config default, 500
	// Dir holds the server's files (default: a temporary folder, removed afterwards).
	Dir    string
	Logger zerolog.Logger
}

// LDAPResult is one measured read.
type LDAPResult struct {
	Users         int     `json:"users"`
	Groups        int     `json:"groups"`
	Disabled      int     `json:"disabled"`
	PageSize      int     `json:"page_size"`
	Reads         int     `json:"reads"`
	MinReads      int     `json:"min_reads"`
	Seconds       float64 `json:"seconds"`
	UsersPerSec   float64 `json:"users_per_second"`
	ServerStartMS int64   `json:"server_start_ms"`
}

// RunLDAPRead starts slapd with a generated directory (ldaptest.GenerateOrg: the 15 groups
// of the demo org, three nested, every user in one or two of them), reads it once with the
// ldap source (member DNs, nested groups, disabled_filter), checks the read, and counts its
// requests. It needs slapd (ldaptest.InstallHint); without it the error wraps
// ldaptest.ErrUnavailable.
func RunLDAPRead(ctx context.Context, o LDAPOptions) (*LDAPResult, error) {
	if o.Users <= 0 {
		o.Users = 2000
	}
	if o.Disabled <= 0 {
		o.Disabled = o.Users / 100
	}
	if o.PageSize <= 0 {
		o.PageSize = configs.DefaultLDAPPageSize
	}
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "idsync-bench-ldap-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	org := ldaptest.GenerateOrg(ldaptest.OrgSpec{OU: "bench", Users: o.Users, Disabled: o.Disabled})
	started := time.Now()
	srv, err := ldaptest.Start(dir, ldaptest.Options{Entries: append(org.Entries, org.Groups...)})
	if err != nil {
		return nil, fmt.Errorf("starting slapd: %w", err)
	}
	defer srv.Stop()
	startMS := time.Since(started).Milliseconds()

	m := metrics.New()
	src, err := ldap.New("bench", configs.LDAPConfig{
		URL: srv.URL, BindDN: ldaptest.BindDN, BindPassword: ldaptest.BindPassword, BaseDN: org.Spec.BaseDN(),
		DisabledFilter: "(pwdAccountLockedTime=*)", Membership: configs.LDAPMembershipMember, NestedGroups: true,
		PageSize: o.PageSize, Timeout: time.Minute, ServerType: configs.LDAPServerAuto,
	}, ldap.Options{Metrics: m, Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	start := time.Now()
	d, err := src.Snapshot(ctx)
	took := time.Since(start)
	if err != nil {
		return nil, err
	}
	if len(d.Users) != o.Users || len(d.Groups) != len(ldaptest.GroupNames) {
		return nil, fmt.Errorf("read %d users and %d groups, want %d and %d", len(d.Users), len(d.Groups), o.Users, len(ldaptest.GroupNames))
	}
	inactive := 0
	for _, u := range d.Users {
		if !u.Active {
			inactive++
		}
	}
	if inactive != len(org.DisabledUIDs) {
		return nil, fmt.Errorf("read %d disabled users, want %d", inactive, len(org.DisabledUIDs))
	}
	reads, err := ldapRequests(m)
	if err != nil {
		return nil, err
	}
	shape := LDAPShape{Users: o.Users, Groups: len(ldaptest.GroupNames), Disabled: len(org.DisabledUIDs),
		HasDisabledFilter: true, PageSize: o.PageSize, RootDSE: true}
	r := &LDAPResult{
		Users: o.Users, Groups: len(d.Groups), Disabled: inactive, PageSize: o.PageSize,
		Reads: reads, MinReads: shape.MinLDAPReads(), Seconds: took.Seconds(), ServerStartMS: startMS,
	}
	if took > 0 {
		r.UsersPerSec = float64(o.Users) / took.Seconds()
	}
	return r, nil
}

// ldapRequests sums the LDAP requests (binds, root DSE, search pages) the metrics counted;
// connecting and StartTLS are not requests of the protocol's operations.
func ldapRequests(m *metrics.Metrics) (int, error) {
	mfs, err := m.Registry.Gather()
	if err != nil {
		return 0, err
	}
	n := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "idsync_api_requests_total" {
			continue
		}
		for _, mm := range mf.GetMetric() {
			target, endpoint := "", ""
			for _, l := range mm.GetLabel() {
				switch l.GetName() {
				case "target":
					target = l.GetValue()
				case "endpoint":
					endpoint = l.GetValue()
				}
			}
			if target == "ldap" && endpoint != "connect" && endpoint != "starttls" {
				n += mm.GetCounter().GetValue()
			}
		}
	}
	if n == 0 {
		return 0, errors.New("no LDAP request was counted")
	}
	return int(n), nil
}
