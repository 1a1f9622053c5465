package bench

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/idsync/idsync/sources/ldap/ldaptest"
)

// TestMinLDAPReadsHandCounted pins the formula on a case counted by hand: 1,001 users in
// pages of 100 is 11 pages (the last holds one), 15 groups one page, 3 disabled one page,
// the bind and the root DSE one each: 15.
func TestMinLDAPReadsHandCounted(t *testing.T) {
	s := LDAPShape{Users: 1001, Groups: 15, Disabled: 3, HasDisabledFilter: true, PageSize: 100, RootDSE: true}
	if got := s.MinLDAPReads(); got != 15 {
		t.Errorf("MinLDAPReads = %d, want 15", got)
	}
	s.HasDisabledFilter, s.RootDSE = false, false
	if got := s.MinLDAPReads(); got != 13 {
		t.Errorf("without the disabled search and the root DSE: %d, want 13", got)
	}
	// An empty directory still costs the bind and one request per search.
	if got := (LDAPShape{PageSize: 500}).MinLDAPReads(); got != 3 {
		t.Errorf("empty: %d, want 3", got)
	}
}

// TestLDAPReadMeetsMinimum reads a generated directory from a real slapd and sends exactly
// the minimum number of requests.
func TestLDAPReadMeetsMinimum(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := RunLDAPRead(ctx, LDAPOptions{Users: 1001, Disabled: 3, PageSize: 100, Dir: t.TempDir(), Logger: zerolog.Nop()})
	if err != nil {
		ldaptest.Skip(t, err)
	}
	if r.MinReads != 15 || r.Reads != r.MinReads || r.Disabled != 3 || r.Groups != 15 {
		t.Errorf("result %+v: want 15 reads, the minimum", r)
	}
}
