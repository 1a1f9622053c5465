package reliability

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/sources/ldap/ldaptest"
)

// TestLDAPEndToEnd syncs a demo-sized directory (200 users, 15 groups, nested, 5 locked)
// from a real slapd over StartTLS into the Jira simulator through the real wiring (a config
// of type ldap, internal/app), then deletes one entry and locks another: the locked user
// loses access in the next pass (an explicit deprovision), the deleted one only after the
// grace passes.
func TestLDAPEndToEnd(t *testing.T) {
	timed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	w := newLDAPWorld(t, ldaptest.OrgSpec{OU: "org", Users: 200, Disabled: 5})
	dir := t.TempDir()
	p := openLDAPInproc(t, w.writeConfig(t, ldapCfg{Dir: dir, Grace: 2, PasswordFile: true, MaxDeact: 25, MaxPercent: 10}))

	first := p.pass(ctx)
	if first.Result != reconcile.ResultOK || !sourcesComplete(first) {
		t.Fatalf("first pass: %s", runSummary(first))
	}
	// Plan reasons name the source and the IdP group the membership comes from.
	found := false
	for _, c := range first.Changes.AddMembers {
		if c.Group != nil && c.Group.Name == "developers" {
			if c.Source != "directory" || !strings.Contains(c.Reason, "IdP group Engineering") {
				t.Errorf("add to developers: source %q reason %q", c.Source, c.Reason)
			}
			found = true
		}
	}
	if !found {
		t.Error("no member added to developers (mapped from Engineering)")
	}
	if n, _ := p.converge(ctx, 4, nil); n > 1 {
		t.Errorf("%d more passes to converge after the first", n)
	}

	st := w.snapshot()
	members := func(group, uid string) bool {
		return slices.Contains(st.Groups[strings.ToLower(group)], ldaptest.Email(uid))
	}
	if len(w.org.DisabledUIDs) != 5 {
		t.Fatalf("fixture: %d locked users", len(w.org.DisabledUIDs))
	}
	for i := range w.org.Spec.Users {
		uid := w.org.Spec.UID(i)
		locked := slices.Contains(w.org.DisabledUIDs, uid)
		if got := members("jira-software-users", uid); got == locked {
			t.Errorf("%s (locked %v): product access %v", uid, locked, got)
			continue
		}
		if locked {
			continue
		}
		for _, g := range w.org.ExpectedGroups(uid) {
			if !members(g, uid) {
				t.Errorf("%s: not in Jira group %s", uid, g)
			}
		}
		if slices.Contains(w.org.ExpectedGroups(uid), "Engineering") != members("developers", uid) {
			t.Errorf("%s: developers membership does not follow Engineering (nested included)", uid)
		}
	}
	if len(st.Groups) < len(ldaptest.GroupNames) {
		t.Errorf("%d Jira groups, want at least the %d IdP groups", len(st.Groups), len(ldaptest.GroupNames))
	}

	// A leaver (entry deleted) and a locked user.
	churn := newLDAPChurn(w.org)
	if err := w.srv.Delete(w.org.Spec.UserDN(churn.leaver)); err != nil {
		t.Fatal(err)
	}
	if err := w.srv.Replace(w.org.Spec.UserDN(churn.locked), ldaptest.Attr{Name: "pwdAccountLockedTime", Values: []string{"20260101000000Z"}}); err != nil {
		t.Fatal(err)
	}
	run := p.pass(ctx)
	st = w.snapshot()
	if run.Result != reconcile.ResultOK || !sourcesComplete(run) {
		t.Fatalf("pass after the churn: %s", runSummary(run))
	}
	if members("jira-software-users", churn.locked) {
		t.Errorf("the locked user %s kept product access after the pass (explicit deprovision skips grace)", churn.locked)
	}
	if !members("jira-software-users", churn.leaver) {
		t.Errorf("the deleted user %s lost access in the first pass, before the grace passes", churn.leaver)
	}
	if run.HeldByGuard[reconcile.GuardGrace] == 0 {
		t.Errorf("no deprovision held by grace: %v", run.HeldByGuard)
	}
	removed := false
	for range 3 {
		p.pass(ctx)
		if st = w.snapshot(); !members("jira-software-users", churn.leaver) {
			removed = true
			break
		}
	}
	if !removed {
		t.Fatalf("the deleted user %s still has product access after the grace passes", churn.leaver)
	}
	for _, g := range w.org.ExpectedGroups(churn.leaver) {
		if members(g, churn.leaver) {
			t.Errorf("the deleted user %s is still in %s", churn.leaver, g)
		}
	}
	// Nobody else lost anything.
	for i := range w.org.Spec.Users {
		uid := w.org.Spec.UID(i)
		if uid == churn.leaver || uid == churn.locked || slices.Contains(w.org.DisabledUIDs, uid) {
			continue
		}
		if !members("jira-software-users", uid) {
			t.Errorf("%s lost product access", uid)
		}
	}
	if n, _ := p.converge(ctx, 3, nil); n > 0 {
		t.Errorf("%d passes did work after the deprovisions", n)
	}
}
