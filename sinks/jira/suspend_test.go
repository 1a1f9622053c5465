package jira_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/sinks/jira"
	"github.com/idsync/idsync/sinks/jira/jiratest"
)

const (
	suspendEP   = "POST /admin/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}/suspend"
	restoreEP   = "POST /admin/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}/restore"
	dirsPath    = "/admin/v2/orgs/{orgId}/directories"
	dirUsersEP  = "/admin/v2/orgs/{orgId}/directories/{directoryId}/users"
	suspendPath = "/admin/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}/suspend"
	restorePath = "/admin/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}/restore"
)

// withSuspend configures deactivate: suspend with the simulator's organization; the site's
// jira-software role grants access through LegacyAccessGroup too.
func withSuspend(cfg *configs.JiraConfig, o *jiratest.Options) {
	withAdmin(cfg, o)
	cfg.AdminAPI.OrgID = jiratest.DefaultOrgID
	cfg.Deactivate = configs.DeactivateSuspend
	o.Data.Roles = append(o.Data.Roles, jiratest.LegacyAccessSeed().Roles...)
}

func liveAccount(t *testing.T, e *env, id string) reconcile.Account {
	t.Helper()
	live, err := e.sink.Live(ctxT(t), reconcile.Scope{Accounts: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	a, ok := findAccount(live, id)
	if !ok {
		t.Fatalf("Live does not list account %s", id)
	}
	return a
}

// Suspension keeps every group (the legacy product-access group too), makes Jira report the
// account inactive, and restore brings access back with the same groups. Both directions are
// idempotent: a repeat the organization API refuses is settled by reading the account.
func TestSuspendAndRestore(t *testing.T) {
	e := newEnv(t, withSuspend)
	groups := []string{"Engineering", jiratest.LegacyAccessGroup, "jira-software-users"}
	uid, _ := e.sim.AddUser(jiratest.User{Email: "leaver@example.com", Groups: groups})
	if !liveAccount(t, e, uid).Active {
		t.Fatal("the account is inactive before the suspension")
	}
	deact := reconcile.Change{Kind: reconcile.KindDeactivateUser, AccountID: uid}

	res := mustApply(t, e, deact)
	if res.Method != configs.DeactivateSuspend || len(res.Groups) != 0 || res.Writes != 1 {
		t.Fatalf("result = %+v, want method suspend, no groups left, one write", res)
	}
	a, _ := e.sim.Account(uid)
	if !a.Suspended || !a.Active || !slices.Equal(a.Groups, groups) {
		t.Fatalf("after suspend: %+v, want suspended with every group kept", a)
	}
	if liveAccount(t, e, uid).Active {
		t.Fatal("Jira still reports the suspended account active")
	}
	if n := e.sim.CallCount("DELETE", "/rest/api/3/group/user"); n != 0 {
		t.Fatalf("suspend removed memberships (%d DELETE group/user)", n)
	}

	// A repeat: the simulator refuses it (400); the read of the account says it is done.
	reads := e.sim.CallCount("GET", dirUsersEP)
	mustApply(t, e, deact)
	if n := e.sim.CallCount("POST", suspendPath); n != 2 {
		t.Fatalf("%d suspend requests, want 2", n)
	}
	if n := e.sim.CallCount("GET", dirUsersEP) - reads; n != 1 {
		t.Fatalf("the refused repeat was settled by %d reads of the directory, want 1", n)
	}
	if a, _ := e.sim.Account(uid); a.Suspensions != 1 {
		t.Fatalf("suspended %d times, want 1", a.Suspensions)
	}

	react := reconcile.Change{Kind: reconcile.KindReactivateUser, AccountID: uid}
	res = mustApply(t, e, react)
	if res.Method != configs.DeactivateSuspend || res.Writes != 1 {
		t.Fatalf("reactivation result = %+v", res)
	}
	a, _ = e.sim.Account(uid)
	if a.Suspended || !slices.Equal(a.Groups, groups) {
		t.Fatalf("after restore: %+v, want active with the same groups", a)
	}
	if !liveAccount(t, e, uid).Active {
		t.Fatal("Jira reports the restored account inactive")
	}
	mustApply(t, e, react) // refused repeat, settled by a read
	if n := e.sim.CallCount("POST", restorePath); n != 2 {
		t.Fatalf("%d restore requests, want 2", n)
	}
}

// The directory: admin_api.directory_id when set (nothing listed); else the organization's
// only directory, found by the first read and remembered; with several, the read fails and
// says to set directory_id, and no suspend is sent.
func TestSuspendDirectory(t *testing.T) {
	t.Run("configured", func(t *testing.T) {
		e := newEnv(t, withSuspend, func(cfg *configs.JiraConfig, _ *jiratest.Options) {
			cfg.AdminAPI.DirectoryID = jiratest.DefaultDirectoryID
		})
		uid, _ := e.sim.AddUser(jiratest.User{Email: "a@example.com"})
		liveAccount(t, e, uid)
		mustApply(t, e, reconcile.Change{Kind: reconcile.KindDeactivateUser, AccountID: uid})
		if n := e.sim.CallCount("GET", dirsPath); n != 0 {
			t.Fatalf("listed directories %d times although directory_id is set", n)
		}
	})
	t.Run("the only one", func(t *testing.T) {
		e := newEnv(t, withSuspend)
		uid, _ := e.sim.AddUser(jiratest.User{Email: "a@example.com"})
		liveAccount(t, e, uid)
		liveAccount(t, e, uid)
		mustApply(t, e, reconcile.Change{Kind: reconcile.KindDeactivateUser, AccountID: uid})
		if n := e.sim.CallCount("GET", dirsPath); n != 1 {
			t.Fatalf("listed directories %d times, want once", n)
		}
		if a, _ := e.sim.Account(uid); !a.Suspended {
			t.Fatal("not suspended")
		}
	})
	t.Run("several", func(t *testing.T) {
		e := newEnv(t, withSuspend)
		other, _ := e.sim.AddDirectory("", "Contractors")
		uid, _ := e.sim.AddUser(jiratest.User{Email: "a@example.com"})
		_, err := e.sink.Live(ctxT(t), reconcile.Scope{})
		if !errors.Is(err, jira.ErrUnsupported) || !strings.Contains(err.Error(), "directory_id") ||
			!strings.Contains(err.Error(), jiratest.DefaultDirectoryID) || !strings.Contains(err.Error(), other) {
			t.Fatalf("Live: err = %v, want ErrUnsupported naming directory_id and both directories", err)
		}
		if _, err := e.sink.Apply(ctxT(t), reconcile.Change{Kind: reconcile.KindDeactivateUser, AccountID: uid}); err == nil {
			t.Fatal("a deactivation succeeded without a directory")
		}
		if n := e.sim.CallCount("POST", suspendPath); n != 0 {
			t.Fatalf("%d suspend requests without a directory", n)
		}
	})
}

// Whether an account is suspended or restored is decided from data: an account the directory
// does not list is not suspended (an error, not a success), and a restore refused for want of
// a licensed seat leaves the account suspended and fails.
func TestSuspendDecidedByData(t *testing.T) {
	e := newEnv(t, withSuspend)
	_, err := e.sink.Apply(ctxT(t), reconcile.Change{Kind: reconcile.KindDeactivateUser, AccountID: jiratest.AppID})
	if !errors.Is(err, jira.ErrNotFound) || !strings.Contains(err.Error(), "does not list account") {
		t.Fatalf("suspending an account in no directory: err = %v, want not found", err)
	}

	uid, _ := e.sim.AddUser(jiratest.User{Email: "b@example.com", Groups: []string{"jira-software-users"}})
	mustApply(t, e, reconcile.Change{Kind: reconcile.KindDeactivateUser, AccountID: uid})
	_, _ = e.sim.AddUser(jiratest.User{Email: "c@example.com", Groups: []string{"jira-software-users"}})
	e.sim.SetSeats(2) // the site admin and c hold both seats
	_, err = e.sink.Apply(ctxT(t), reconcile.Change{Kind: reconcile.KindReactivateUser, AccountID: uid})
	var apiErr *jira.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 400 {
		t.Fatalf("restore without a seat: err = %v, want the 400", err)
	}
	if a, _ := e.sim.Account(uid); !a.Suspended {
		t.Fatal("the account was restored without a seat")
	}
	e.sim.SetSeats(0)
	mustApply(t, e, reconcile.Change{Kind: reconcile.KindReactivateUser, AccountID: uid})
}

// Faults: a suspend answered 500 is retried; one processed whose answer was lost is sent
// again, refused as a repeat and settled by the read. The account is suspended once.
func TestSuspendUnknownOutcome(t *testing.T) {
	for _, f := range []jiratest.Fault{jiratest.Fault500, jiratest.Fault503, jiratest.FaultResetAfter, jiratest.FaultTruncate} {
		t.Run(string(f), func(t *testing.T) {
			e := newEnv(t, withSuspend)
			uid, _ := e.sim.AddUser(jiratest.User{Email: "d@example.com", Groups: []string{"jira-software-users"}})
			e.sim.InjectFault(f, 1, suspendEP)
			mustApply(t, e, reconcile.Change{Kind: reconcile.KindDeactivateUser, AccountID: uid})
			if a, _ := e.sim.Account(uid); !a.Suspended || a.Suspensions != 1 {
				t.Fatalf("account %+v, want suspended once", a)
			}
			e.sim.InjectFault(f, 1, restoreEP)
			mustApply(t, e, reconcile.Change{Kind: reconcile.KindReactivateUser, AccountID: uid})
			if a, _ := e.sim.Account(uid); a.Suspended {
				t.Fatal("still suspended after the restore")
			}
		})
	}
}

// New refuses suspend without the organization API or its org_id.
func TestSuspendNeedsOrgID(t *testing.T) {
	for _, admin := range []*configs.AdminAPIConfig{nil, {BaseURL: "https://api.atlassian.com", OrgAPIKey: "k"}} {
		_, err := jira.New(configs.JiraConfig{BaseURL: "https://example.atlassian.net", Email: "a@example.com", APIToken: "t",
			Deactivate: configs.DeactivateSuspend, AdminAPI: admin}, jira.Options{})
		if err == nil || !strings.Contains(err.Error(), "org_id") {
			t.Errorf("admin_api %+v: err = %v, want one naming org_id", admin, err)
		}
	}
}

// Reactivation reverses the method that took the access, not the one configured now: an
// account suspended before a switch to remove-access is restored; without the admin API to
// restore it, the reactivation fails and says what it needs instead of passing as done.
func TestReactivationFollowsTheMethodUsed(t *testing.T) {
	e := newEnv(t, func(cfg *configs.JiraConfig, o *jiratest.Options) {
		withSuspend(cfg, o)
		cfg.Deactivate = configs.DeactivateRemoveAccess // the site switched methods since
	})
	uid, _ := e.sim.AddUser(jiratest.User{Email: "back@example.com", Groups: []string{"jira-software-users"}})
	if err := e.sim.SetSuspended(uid, true); err != nil {
		t.Fatal(err)
	}
	res := mustApply(t, e, reconcile.Change{Kind: reconcile.KindReactivateUser, AccountID: uid, Method: configs.DeactivateSuspend})
	if res.Method != configs.DeactivateSuspend {
		t.Fatalf("result method %q, want suspend", res.Method)
	}
	if a, _ := e.sim.Account(uid); a.Suspended {
		t.Fatal("the account suspended under the old method is still suspended")
	}

	plain := newEnv(t)
	uid2, _ := plain.sim.AddUser(jiratest.User{Email: "stuck@example.com"})
	_, err := plain.sink.Apply(ctxT(t), reconcile.Change{Kind: reconcile.KindReactivateUser, AccountID: uid2, Method: configs.DeactivateSuspend})
	if !errors.Is(err, jira.ErrUnsupported) || !strings.Contains(err.Error(), "org_id") {
		t.Fatalf("reactivating a suspended account without the admin API: %v", err)
	}
}
