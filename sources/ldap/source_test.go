package ldap

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/metrics"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/sources/ldap/ldaptest"
)

// TestSnapshotOrg reads the generated org with member DNs and nested groups: every user, keyed
// by entryUUID, with the groups the nesting gives; the locked user (ppolicy) disabled through
// disabled_filter; the rest active.
func TestSnapshotOrg(t *testing.T) {
	srv := generic(t)
	cfg := cfgFor(srv, org.Spec.BaseDN())
	cfg.NestedGroups = true
	cfg.DisabledFilter = "(pwdAccountLockedTime=*)"
	s := newSource(t, cfg, Options{Logger: zerolog.Nop()})
	dir := snapshot(t, s)
	if dir.Source != "dir" || len(dir.Users) != org.Spec.Users || len(dir.Groups) != len(ldaptest.GroupNames) {
		t.Fatalf("read %d users and %d groups of source %q, want %d and %d", len(dir.Users), len(dir.Groups), dir.Source, org.Spec.Users, len(ldaptest.GroupNames))
	}
	users := byUserName(dir)
	keys := map[string]bool{}
	for i := range org.Spec.Users {
		uid := org.Spec.UID(i)
		u, ok := users[uid]
		if !ok {
			t.Fatalf("user %s missing", uid)
		}
		if want := org.ExpectedGroups(uid); !groupsEqual(u.Groups, want) {
			t.Errorf("%s: groups %v, want %v", uid, u.Groups, want)
		}
		if len(u.Key) != 36 || strings.Count(u.Key, "-") != 4 || keys[u.Key] {
			t.Errorf("%s: key %q is not a fresh entryUUID", uid, u.Key)
		}
		keys[u.Key] = true
		disabled := slices.Contains(org.DisabledUIDs, uid)
		if u.Active == disabled {
			t.Errorf("%s: active %v, want %v", uid, u.Active, !disabled)
		}
		if u.Email != ldaptest.Email(uid) || u.GivenName == "" || u.FamilyName == "" || u.DisplayName == "" ||
			u.Attributes["dn"] != org.Spec.UserDN(uid) {
			t.Errorf("%s: conversion %+v", uid, u)
		}
	}
	if len(org.DisabledUIDs) != 1 {
		t.Fatalf("fixture: %d disabled users", len(org.DisabledUIDs))
	}
	// Without nesting, a user has its direct groups only.
	cfg.NestedGroups = false
	flat := byUserName(snapshot(t, newSource(t, cfg, Options{Logger: zerolog.Nop()})))
	for uid, u := range flat {
		for _, g := range u.Groups {
			if !slices.Contains(org.Members[g], uid) {
				t.Errorf("%s: group %s without nesting", uid, g)
			}
		}
	}
	// Without a disabled_filter, every user found is active.
	cfg.DisabledFilter = ""
	for _, u := range snapshot(t, newSource(t, cfg, Options{Logger: zerolog.Nop()})).Users {
		if !u.Active {
			t.Errorf("%s inactive without a disabled_filter", u.UserName)
		}
	}
}

// TestMembershipModes reads the same memberships through memberOf (the memberof overlay) and
// posixGroup memberUid.
func TestMembershipModes(t *testing.T) {
	srv := generic(t)
	member := byUserName(snapshot(t, newSource(t, cfgFor(srv, org.Spec.BaseDN()), Options{Logger: zerolog.Nop()})))

	cfg := cfgFor(srv, org.Spec.BaseDN())
	cfg.Membership = configs.LDAPMembershipMemberOf
	memberOf := byUserName(snapshot(t, newSource(t, cfg, Options{Logger: zerolog.Nop()})))
	if len(memberOf) != len(member) {
		t.Fatalf("memberOf read %d users, member %d", len(memberOf), len(member))
	}
	nonEmpty := 0
	for name, u := range member {
		if !groupsEqual(memberOf[name].Groups, u.Groups) {
			t.Errorf("%s: memberOf %v, member %v", name, memberOf[name].Groups, u.Groups)
		}
		if len(u.Groups) > 0 {
			nonEmpty++
		}
	}
	if nonEmpty < len(member)/2 {
		t.Fatalf("only %d users have groups: the fixture proves little", nonEmpty)
	}
	cfg.NestedGroups = true
	nested := byUserName(snapshot(t, newSource(t, cfg, Options{Logger: zerolog.Nop()})))
	for i := range org.Spec.Users {
		uid := org.Spec.UID(i)
		if want := org.ExpectedGroups(uid); !groupsEqual(nested[uid].Groups, want) {
			t.Errorf("memberOf, nested: %s: %v, want %v", uid, nested[uid].Groups, want)
		}
	}

	cfg = cfgFor(srv, posixBase)
	cfg.Membership = configs.LDAPMembershipMemberUID
	posix := byUserName(snapshot(t, newSource(t, cfg, Options{Logger: zerolog.Nop()})))
	want := map[string][]string{"pam": {"devs"}, "pat": {"devs"}, "pia": {"ops"}}
	for uid, gs := range want {
		if !groupsEqual(posix[uid].Groups, gs) {
			t.Errorf("memberUid: %s: %v, want %v", uid, posix[uid].Groups, gs)
		}
	}
}

// TestOddDNs: commas, plus signs, quotes and escapes in DNs, non-ASCII names, member values
// written unlike the entries' DNs, a user without the username attribute, and a cycle of
// nested groups.
func TestOddDNs(t *testing.T) {
	srv := generic(t)
	cfg := cfgFor(srv, oddBase)
	cfg.NestedGroups = true
	cfg.Attributes.Extra = []string{"departmentNumber"}
	s := newSource(t, cfg, Options{Logger: zerolog.Nop()})
	dir := snapshot(t, s)
	users := byUserName(dir)
	rd := "R&D, Europe"
	cases := map[string][]string{
		"jsmith": {rd}, "josé.núñez": {rd, "Ünïcødé Team"}, "quote": {rd}, "hash": {rd},
		"cyclist": {"Cycle A", "Cycle B", "Cycle C"},
	}
	for uid, want := range cases {
		u, ok := users[uid]
		if !ok {
			t.Errorf("%s missing (have %d users)", uid, len(users))
			continue
		}
		if !groupsEqual(u.Groups, want) {
			t.Errorf("%s: groups %v, want %v", uid, u.Groups, want)
		}
	}
	if u := users["josé.núñez"]; u.DisplayName != "José Núñez 👋" || u.FamilyName != "Núñez" || u.Attributes["departmentNumber"] != "Ventas" {
		t.Errorf("non-ASCII user: %+v", u)
	}
	// The user without uid is passed on with its key only: the engine skips it with a
	// warning and never takes its linked account for a leaver.
	noName := 0
	for _, u := range dir.Users {
		if u.UserName == "" {
			noName++
			if u.Key == "" || u.Attributes["dn"] != oddNoUID || !slices.Contains(u.Groups, rd) {
				t.Errorf("user without uid: %+v", u)
			}
		}
	}
	if noName != 1 || len(dir.Users) != 6 {
		t.Errorf("%d users without uid among %d users", noName, len(dir.Users))
	}
	var names []string
	for _, g := range dir.Groups {
		names = append(names, g.Name)
	}
	for _, want := range []string{rd, "Ünïcødé Team", "Cycle A", "Cycle B", "Cycle C"} {
		if !slices.Contains(names, want) {
			t.Errorf("group %q missing from %v", want, names)
		}
	}
	// One-user fetches agree with the snapshot, through the cycle too.
	for uid, want := range cases {
		u, err := s.User(context.Background(), strings.ToUpper(uid))
		if err != nil {
			t.Errorf("User(%s): %v", uid, err)
			continue
		}
		if !groupsEqual(u.Groups, want) || u.Key != users[uid].Key {
			t.Errorf("User(%s) = key %s groups %v, want key %s groups %v", uid, u.Key, u.Groups, users[uid].Key, want)
		}
	}
}

// TestPaging reads 10,000 users in pages of 250 although the server answers at most 500
// entries to a search that does not page: the read needs the paging control, and sends
// exactly ceil(10000/250) user pages.
func TestPaging(t *testing.T) {
	srv := generic(t)
	// The server's limit is real: an unpaged search as the bind account fails.
	c, err := ldapDial(srv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Search(ldapSearch(bulkBase)); err == nil {
		t.Fatal("an unpaged search of 10,000 entries succeeded: the size limit does not force paging")
	}
	_ = c.Close()

	m := metrics.New()
	cfg := cfgFor(srv, bulkBase)
	cfg.PageSize = 250
	dir := snapshot(t, newSource(t, cfg, Options{Logger: zerolog.Nop(), Metrics: m}))
	if len(dir.Users) != bulkUsers {
		t.Fatalf("read %d users, want %d", len(dir.Users), bulkUsers)
	}
	big := 0
	for _, u := range dir.Users {
		if slices.Contains(u.Groups, "Bulk-Big") {
			big++
		}
	}
	if big != 2000 {
		t.Errorf("%d members of Bulk-Big, want 2000", big)
	}
	if got, want := counter(t, m, "search users"), float64(bulkUsers/250); got != want {
		t.Errorf("%v user pages, want %v", got, want)
	}
	if got := counter(t, m, "search groups"); got != 1 {
		t.Errorf("%v group pages, want 1", got)
	}
	if got := counter(t, m, opBind); got != 1 {
		t.Errorf("%v binds, want 1", got)
	}
}

// TestIncompleteReads: every way a search can end early fails the whole read with an error
// wrapping ErrIncomplete.
func TestIncompleteReads(t *testing.T) {
	srv := generic(t)
	cases := []struct {
		name string
		cfg  func(c *configs.LDAPConfig)
		want string
	}{
		{"more than max_objects", func(c *configs.LDAPConfig) { c.BaseDN = bulkBase; c.MaxObjects = 1200 }, "more entries than max_objects (1200)"},
		{"server size limit mid-paging", func(c *configs.LDAPConfig) {
			c.BaseDN, c.BindDN, c.BindPassword = bulkBase, ldaptest.LimitedDN, ldaptest.LimitedPassword
		}, "Size Limit Exceeded"},
		{"referral", func(c *configs.LDAPConfig) { c.BaseDN = refsBase }, "referral to ldap://ldap.other.example/"},
		{"no such base", func(c *configs.LDAPConfig) { c.BaseDN = "ou=missing,dc=example,dc=com" }, "No Such Object"},
		{"wrong password", func(c *configs.LDAPConfig) { c.BindPassword = "wrong-password-0001" }, "Invalid Credentials"},
		{"missing id attribute", func(c *configs.LDAPConfig) { c.BaseDN = posixBase; c.Attributes.ID = "employeeNumber" }, "have no employeeNumber attribute"},
		{"duplicate group names", func(c *configs.LDAPConfig) {
			c.BaseDN = oddBase
			c.GroupFilter = "(|(cn=Cycle A)(cn=Cycle B))"
			c.Attributes.GroupName = "objectClass"
		}, `are both named "groupOfNames"`},
		{"groups without a name", func(c *configs.LDAPConfig) { c.Attributes.GroupName = "description" }, "groups without a description attribute"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := cfgFor(srv, org.Spec.BaseDN())
			tc.cfg(&cfg)
			s := newSource(t, cfg, Options{Logger: zerolog.Nop()})
			dir, err := s.Snapshot(context.Background())
			if err == nil {
				t.Fatalf("read %d users", len(dir.Users))
			}
			if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v\nwant ErrIncomplete and %q", err, tc.want)
			}
			if len(dir.Users) != 0 || len(dir.Groups) != 0 {
				t.Errorf("a failed read returned %d users", len(dir.Users))
			}
			if strings.Contains(err.Error(), cfg.BindPassword.Value()) {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

// TestConnectionCut drops the connection mid-search, after a given number of bytes from the
// server, at several points: every read fails whole; disarmed, the same source reads all.
func TestConnectionCut(t *testing.T) {
	srv := generic(t)
	p, err := ldaptest.NewProxy(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cfg := cfgFor(srv, bulkBase)
	cfg.URL = "ldap://" + p.Addr
	cfg.PageSize = 500
	s := newSource(t, cfg, Options{Logger: zerolog.Nop()})
	for _, cut := range []int64{20, 3_000, 200_000, 1_100_000} {
		p.Cut(cut)
		before := p.Cuts()
		_, err := s.Snapshot(context.Background())
		if err == nil || !errors.Is(err, ErrIncomplete) {
			t.Errorf("cut after %d bytes: err = %v, want ErrIncomplete", cut, err)
		}
		if p.Cuts() == before {
			t.Errorf("cut after %d bytes: the proxy never cut (the read is smaller)", cut)
		}
	}
	p.Cut(0)
	if dir := snapshot(t, s); len(dir.Users) != bulkUsers {
		t.Fatalf("after the cuts: %d users", len(dir.Users))
	}
}

// TestTLS reads over LDAPS and over StartTLS with the CA file; a server certificate the CA
// file does not vouch for fails.
func TestTLS(t *testing.T) {
	srv := generic(t)
	for _, tc := range []struct {
		name     string
		url      string
		startTLS bool
		ca       string
		ok       bool
	}{
		{"ldaps", srv.LDAPSURL, false, srv.CAFile, true},
		{"starttls", srv.URL, true, srv.CAFile, true},
		{"ldaps, system roots", srv.LDAPSURL, false, "", false},
		{"starttls, other CA", srv.URL, true, servers.ad.CAFile, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := cfgFor(srv, posixBase)
			cfg.URL, cfg.StartTLS, cfg.CAFile = tc.url, tc.startTLS, tc.ca
			cfg.Membership = configs.LDAPMembershipMemberUID
			s := newSource(t, cfg, Options{Logger: zerolog.Nop()})
			dir, err := s.Snapshot(context.Background())
			switch {
			case tc.ok && (err != nil || len(dir.Users) != 3):
				t.Fatalf("read %d users: %v", len(dir.Users), err)
			case !tc.ok && (err == nil || !strings.Contains(err.Error(), "certificate")):
				t.Fatalf("err = %v, want a certificate error", err)
			}
		})
	}
}

// TestUser fetches one user with its groups in every membership mode, and its status.
func TestUser(t *testing.T) {
	srv := generic(t)
	ctx := context.Background()
	for _, mode := range []string{configs.LDAPMembershipMember, configs.LDAPMembershipMemberOf} {
		t.Run(mode, func(t *testing.T) {
			cfg := cfgFor(srv, org.Spec.BaseDN())
			cfg.Membership, cfg.NestedGroups, cfg.DisabledFilter = mode, true, "(pwdAccountLockedTime=*)"
			s := newSource(t, cfg, Options{Logger: zerolog.Nop()})
			all := byUserName(snapshot(t, s))
			for _, i := range []int{0, 3, 7, 13} {
				uid := org.Spec.UID(i)
				u, err := s.User(ctx, uid)
				if err != nil {
					t.Fatalf("User(%s): %v", uid, err)
				}
				w := all[uid]
				if u.Key != w.Key || u.Active != w.Active || u.Email != w.Email || !groupsEqual(u.Groups, w.Groups) {
					t.Errorf("User(%s) = %+v\nsnapshot has %+v", uid, u, w)
				}
			}
			if u, _ := s.User(ctx, org.DisabledUIDs[0]); u.Active {
				t.Errorf("User(%s) is active", org.DisabledUIDs[0])
			}
			if _, err := s.User(ctx, "nobody"); !errors.Is(err, reconcile.ErrUserNotFound) {
				t.Errorf("User(nobody): %v", err)
			}
			if _, err := s.User(ctx, "user.00*"); !errors.Is(err, reconcile.ErrUserNotFound) {
				t.Errorf("User(user.00*) = %v: the filter value was not escaped", err)
			}
		})
	}
	cfg := cfgFor(srv, posixBase)
	cfg.Membership = configs.LDAPMembershipMemberUID
	s := newSource(t, cfg, Options{Logger: zerolog.Nop()})
	if u, err := s.User(ctx, "pat"); err != nil || !groupsEqual(u.Groups, []string{"devs"}) {
		t.Errorf("memberUid: User(pat) = %+v, %v", u, err)
	}
	// Groups outside base_dn count neither in a full read nor in a one-user fetch, although
	// the users' memberOf names them.
	cfg = cfgFor(srv, org.Spec.PeopleDN())
	cfg.Membership = configs.LDAPMembershipMemberOf
	s = newSource(t, cfg, Options{Logger: zerolog.Nop()})
	uid := org.Spec.UID(0)
	if u := byUserName(snapshot(t, s))[uid]; len(u.Groups) != 0 {
		t.Errorf("memberOf, base without the groups: snapshot gives %s the groups %v", uid, u.Groups)
	}
	if u, err := s.User(ctx, uid); err != nil || len(u.Groups) != 0 {
		t.Errorf("memberOf, base without the groups: User(%s) = %v, %v", uid, u.Groups, err)
	}
}

// TestActiveDirectory reads a server whose root DSE says Active Directory with every key at
// its default: objectGUID keys written as GUID text, sAMAccountName usernames, AD's person
// and group filters, and disabled users by the ACCOUNTDISABLE bit.
func TestActiveDirectory(t *testing.T) {
	srv := activeDirectory(t)
	cfg := cfgFor(srv, adBase)
	cfg.NestedGroups = true
	s := newSource(t, cfg, Options{Logger: zerolog.Nop()})
	dir := snapshot(t, s)
	if st := s.settings(); !st.ad || st.id != "objectGUID" || st.userName != "sAMAccountName" {
		t.Fatalf("settings after the root DSE: %+v", st)
	}
	users := byUserName(dir)
	want := map[string]struct {
		i      int
		active bool
		groups []string
	}{
		"alice": {1, true, []string{"Staff"}}, "bob": {2, false, []string{"Staff"}},
		"carol": {3, true, []string{"Admins", "Staff"}}, "dave": {4, false, nil},
	}
	if len(users) != len(want) {
		t.Fatalf("read %d users", len(users))
	}
	for name, w := range want {
		u := users[name]
		if u.Key != FormatGUID(adGUID(w.i)) || u.Active != w.active || !groupsEqual(u.Groups, w.groups) {
			t.Errorf("%s = key %s active %v groups %v; want key %s active %v groups %v", name, u.Key, u.Active, u.Groups, FormatGUID(adGUID(w.i)), w.active, w.groups)
		}
	}
	if k := users["alice"].Key; k != "13121110-1514-1716-18191a1b1c1d1e1f" && k != "13121110-1514-1716-1819-1a1b1c1d1e1f" {
		t.Errorf("alice's GUID = %s", k)
	}
	// A generic server keeps the generic defaults.
	g := newSource(t, cfgFor(generic(t), posixBase), Options{Logger: zerolog.Nop()})
	snapshot(t, g)
	if st := g.settings(); st.ad || st.id != "entryUUID" {
		t.Errorf("generic settings: %+v", st)
	}
	// One-user fetch without nesting (the look-alike cannot walk LDAP_MATCHING_RULE_IN_CHAIN;
	// TestActiveDirectoryInChain runs that against ldaptest.ADServer).
	cfg.NestedGroups = false
	s = newSource(t, cfg, Options{Logger: zerolog.Nop()})
	if u, err := s.User(context.Background(), "BOB"); err != nil || u.Active || !groupsEqual(u.Groups, []string{"Staff"}) || u.Key != FormatGUID(adGUID(2)) {
		t.Errorf("User(bob) = %+v, %v", u, err)
	}
}

// TestCancel: a cancelled context ends the read with an error.
func TestCancel(t *testing.T) {
	srv := generic(t)
	cfg := cfgFor(srv, bulkBase)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := newSource(t, cfg, Options{Logger: zerolog.Nop()}).Snapshot(ctx); !errors.Is(err, context.Canceled) || !errors.Is(err, ErrIncomplete) {
		t.Errorf("err = %v", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := newSource(t, cfg, Options{Logger: zerolog.Nop()}).Snapshot(ctx); err == nil {
		t.Error("a read of 10,000 users finished within 50ms")
	}
}

// TestBindPasswordRotation: a new password applies from the next connection.
func TestBindPasswordRotation(t *testing.T) {
	srv := generic(t)
	cfg := cfgFor(srv, posixBase)
	cfg.BindPassword = "old-wrong-password"
	s := newSource(t, cfg, Options{Logger: zerolog.Nop()})
	if _, err := s.Snapshot(context.Background()); err == nil {
		t.Fatal("read with a wrong password")
	}
	if err := s.SetBindPassword(" bad "); err == nil {
		t.Error("a password with white space at its ends was taken")
	}
	if err := s.SetBindPassword(ldaptest.BindPassword); err != nil {
		t.Fatal(err)
	}
	snapshot(t, s)
}
