package jira_test

import (
	"errors"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/sinks/jira"
	"github.com/idsync/idsync/sinks/jira/jiratest"
)

// withProductGroups is a site whose jira-software role grants access through two groups
// beyond its default group, as real sites often have.
var withProductGroups = withSim(func(o *jiratest.Options) {
	o.Data.Roles = append(o.Data.Roles, jiratest.Role{Key: "jira-software",
		Groups: []string{"jira-software-users", "jira-software-admins-legacy", "engineering-access"}})
})

// removals records, in order, the groups of the DELETE /group/user requests the simulator
// served (any answer).
type removals struct {
	mu  sync.Mutex
	ids []string
}

func (r *removals) observe(x jiratest.Exchange) {
	if x.Method == "DELETE" && x.Template == "/rest/api/3/group/user" {
		r.mu.Lock()
		r.ids = append(r.ids, x.Request.URL.Query().Get("groupId"))
		r.mu.Unlock()
	}
}

// names maps the recorded group ids to names, dropping repeats (retries) next to each other.
func (r *removals) names(e *env) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	byID := map[string]string{}
	for _, g := range e.sim.Groups() {
		byID[g.ID] = g.Name
	}
	var out []string
	for _, id := range r.ids {
		if n := byID[id]; len(out) == 0 || out[len(out)-1] != n {
			out = append(out, n)
		}
	}
	return out
}

func groupNames(gs []reconcile.GroupRef) []string {
	out := make([]string, 0, len(gs))
	for _, g := range gs {
		out = append(out, g.Name)
	}
	sort.Strings(out)
	return out
}

func ref(t *testing.T, e *env, name string) reconcile.GroupRef {
	t.Helper()
	g, ok := e.sim.Group(name)
	if !ok {
		t.Fatalf("no group %s", name)
	}
	return reconcile.GroupRef{ID: g.ID, Name: g.Name}
}

func groupsOf(t *testing.T, e *env, id string) []string {
	t.Helper()
	a, ok := e.sim.Account(id)
	if !ok {
		t.Fatalf("no account %s", id)
	}
	return a.Groups
}

// The application role serves its groups beyond the default groups, and the sink flags every
// one of them as granting product access.
func TestApplicationRoleGroupsBeyondDefaults(t *testing.T) {
	e := newEnv(t, withProductGroups)
	live, err := e.sink.Live(ctxT(t), reconcile.Scope{})
	if err != nil {
		t.Fatal(err)
	}
	var product []string
	for _, g := range live.Groups {
		if g.ProductAccess {
			product = append(product, g.Name)
		}
	}
	sort.Strings(product)
	if want := []string{"engineering-access", "jira-software-admins-legacy", "jira-software-users"}; !slices.Equal(product, want) {
		t.Fatalf("product-access groups = %v, want %v", product, want)
	}
	// A new account still joins only the default group.
	res := mustApply(t, e, reconcile.Change{Kind: reconcile.KindCreateUser, Email: "new@example.com"})
	if got := groupsOf(t, e, res.AccountID); !slices.Equal(got, []string{"jira-software-users"}) {
		t.Fatalf("new account's groups = %v, want the default group only", got)
	}
}

// Deprovisioning is exhaustive: remove-access takes the account out of every product-access
// group (every group of the role, not only its default group), also those the change did not
// list, and reports every group it left so that reactivation restores them.
func TestDeactivateLeavesEveryProductAccessGroup(t *testing.T) {
	e := newEnv(t, withProductGroups)
	uid, _ := e.sim.AddUser(jiratest.User{Email: "leaver@example.com", Groups: []string{
		"Engineering", "Social", "jira-software-users", "jira-software-admins-legacy", "engineering-access"}})
	// The change lists the managed group and the default group only.
	res, err := e.sink.Apply(ctxT(t), reconcile.Change{Kind: reconcile.KindDeactivateUser, AccountID: uid,
		Groups: []reconcile.GroupRef{ref(t, e, "Engineering"), {Name: "jira-software-users"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := groupsOf(t, e, uid); !slices.Equal(got, []string{"Social"}) {
		t.Fatalf("after deactivation the account is in %v, want only the unmanaged, non-product Social", got)
	}
	want := []string{"Engineering", "engineering-access", "jira-software-admins-legacy", "jira-software-users"}
	if got := groupNames(res.Groups); !slices.Equal(got, want) {
		t.Fatalf("Result.Groups = %v, want %v", got, want)
	}
	for _, g := range res.Groups {
		if g.ID == "" {
			t.Errorf("left group %s without its id", g.Name)
		}
	}
	mustApply(t, e, reconcile.Change{Kind: reconcile.KindReactivateUser, AccountID: uid, Groups: res.Groups})
	if got := groupsOf(t, e, uid); len(got) != 5 {
		t.Fatalf("after reactivation the account is in %v, want all five groups back", got)
	}
}

// One group whose removal fails does not stop the others: every other group is left, the
// result lists exactly those, the error names the failed group with its cause, and the next
// attempt, once the fault is gone, removes the rest.
func TestDeactivateOneFailedGroupDoesNotStopTheOthers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		is     error
	}{
		{"forbidden", 403, jira.ErrForbidden},    // settled by reading the memberships: still in
		{"server error", 500, jira.ErrTransient}, // retried, then a failed step
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, withProductGroups)
			uid, _ := e.sim.AddUser(jiratest.User{Email: "p@example.com", Groups: []string{
				"engineering-access", "jira-software-users", "Engineering", "Sales"}})
			e.sim.SetMembershipFaults(jiratest.MembershipFault{Group: "engineering-access", Method: "DELETE", Status: tc.status})
			change := reconcile.Change{Kind: reconcile.KindDeactivateUser, AccountID: uid, Groups: []reconcile.GroupRef{
				ref(t, e, "engineering-access"), ref(t, e, "jira-software-users"), ref(t, e, "Engineering"), ref(t, e, "Sales")}}

			res, err := e.sink.Apply(ctxT(t), change)
			if err == nil {
				t.Fatal("no error although a group could not be left")
			}
			if got := groupsOf(t, e, uid); !slices.Equal(got, []string{"engineering-access"}) {
				t.Fatalf("account still in %v, want only the failed engineering-access", got)
			}
			if got := groupNames(res.Groups); !slices.Equal(got, []string{"Engineering", "Sales", "jira-software-users"}) {
				t.Fatalf("Result.Groups = %v, want exactly the groups left", got)
			}
			if !strings.Contains(err.Error(), "engineering-access") || !errors.Is(err, tc.is) {
				t.Fatalf("err = %v, want it to name engineering-access and match %v", err, tc.is)
			}
			var de *jira.DeactivationError
			if !errors.As(err, &de) || len(de.Failed) != 1 || de.Failed[0].Group.Name != "engineering-access" ||
				!errors.Is(de.Failed[0].Err, tc.is) || !slices.Equal(groupNames(de.Removed), groupNames(res.Groups)) {
				t.Fatalf("err = %#v, want a DeactivationError with engineering-access failed", err)
			}
			// The engine matches it without importing this package.
			var p interface {
				PartialGroups() (removed, failed []reconcile.GroupRef)
			}
			if !errors.As(err, &p) {
				t.Fatal("the error does not offer PartialGroups")
			}
			if removed, failed := p.PartialGroups(); len(removed) != 3 || len(failed) != 1 || failed[0].ID != ref(t, e, "engineering-access").ID {
				t.Fatalf("PartialGroups = %v, %v", removed, failed)
			}

			e.sim.SetMembershipFaults()
			res, err = e.sink.Apply(ctxT(t), change)
			if err != nil {
				t.Fatal(err)
			}
			if got := groupsOf(t, e, uid); len(got) != 0 {
				t.Fatalf("after the retry the account is still in %v", got)
			}
			if got := groupNames(res.Groups); !slices.Equal(got, []string{"engineering-access"}) {
				t.Fatalf("retry left %v, want engineering-access only (the rest were gone already)", got)
			}
		})
	}
}

// Removing an account from a group it is not in is done, not an error, and not reported as
// left: Jira's 404 says so, and an answer that is neither 404 nor transient is settled by
// reading the account's groups, never by the wording of the answer.
func TestRemovingANonMemberIsDone(t *testing.T) {
	e := newEnv(t)
	_, _ = e.sim.AddGroup("Sales", "")
	_, _ = e.sim.AddGroup("Locked", "")
	uid, _ := e.sim.AddUser(jiratest.User{Email: "q@example.com", Groups: []string{"Engineering"}})
	// 400 on a group the account is not in: the membership read says it is not there.
	e.sim.SetMembershipFaults(jiratest.MembershipFault{Group: "Locked", Status: 400})

	res := mustApply(t, e, reconcile.Change{Kind: reconcile.KindDeactivateUser, AccountID: uid, Groups: []reconcile.GroupRef{
		ref(t, e, "Engineering"), ref(t, e, "Sales"), {Name: "jira-software-users"}, ref(t, e, "Locked")}})
	if got := groupNames(res.Groups); !slices.Equal(got, []string{"Engineering"}) {
		t.Fatalf("Result.Groups = %v, want only Engineering (the account was in no other)", got)
	}
	if n := e.sim.CallCount("GET", "/rest/api/3/user/groups"); n < 2 {
		t.Fatalf("the 400 was not settled by a membership read (%d reads of user/groups)", n)
	}

	rm := reconcile.Change{Kind: reconcile.KindRemoveMember, AccountID: uid, Group: &reconcile.GroupRef{Name: "Sales"}}
	mustApply(t, e, rm) // 404: no such membership
	mustApply(t, e, reconcile.Change{Kind: reconcile.KindRemoveMember, AccountID: uid, Group: &reconcile.GroupRef{Name: "Locked"}})

	// The same 400 on a group the account is in is a failure.
	_ = e.sim.AddMember("Locked", uid)
	_, err := e.sink.Apply(ctxT(t), reconcile.Change{Kind: reconcile.KindRemoveMember, AccountID: uid, Group: &reconcile.GroupRef{Name: "Locked"}})
	var apiErr *jira.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 400 {
		t.Fatalf("removal from a group the account stays in: err = %v, want the 400", err)
	}
	if got := groupsOf(t, e, uid); !slices.Equal(got, []string{"Locked"}) {
		t.Fatalf("groups = %v", got)
	}
}

// Product-access groups are left first, then the others, each in the order of the change.
func TestDeactivateLeavesProductAccessGroupsFirst(t *testing.T) {
	t.Run("discovered", func(t *testing.T) {
		rec := &removals{}
		e := newEnv(t, withProductGroups, withSim(func(o *jiratest.Options) { o.OnExchange = rec.observe }))
		uid, _ := e.sim.AddUser(jiratest.User{Email: "r@example.com", Groups: []string{
			"Engineering", "Sales", "jira-software-users", "engineering-access"}})
		mustApply(t, e, reconcile.Change{Kind: reconcile.KindDeactivateUser, AccountID: uid, Groups: []reconcile.GroupRef{
			ref(t, e, "Engineering"), ref(t, e, "Sales"), ref(t, e, "jira-software-users"), ref(t, e, "engineering-access")}})
		if got, want := rec.names(e), []string{"jira-software-users", "engineering-access", "Engineering", "Sales"}; !slices.Equal(got, want) {
			t.Fatalf("DELETE order %v, want %v", got, want)
		}
	})
	t.Run("configured", func(t *testing.T) {
		rec := &removals{}
		e := newEnv(t, withProductGroups, withSim(func(o *jiratest.Options) { o.OnExchange = rec.observe }), func(cfg *configs.JiraConfig, _ *jiratest.Options) {
			cfg.ProductAccessGroups = []string{"Engineering-Access"}
		})
		uid, _ := e.sim.AddUser(jiratest.User{Email: "s@example.com", Groups: []string{
			"Engineering", "jira-software-users", "engineering-access"}})
		mustApply(t, e, reconcile.Change{Kind: reconcile.KindDeactivateUser, AccountID: uid, Groups: []reconcile.GroupRef{
			ref(t, e, "Engineering"), ref(t, e, "jira-software-users"), ref(t, e, "engineering-access")}})
		if got, want := rec.names(e), []string{"engineering-access", "Engineering", "jira-software-users"}; !slices.Equal(got, want) {
			t.Fatalf("DELETE order %v, want %v", got, want)
		}
		if n := e.sim.CallCount("GET", "/rest/api/3/applicationrole"); n != 0 {
			t.Fatalf("read applicationrole %d times although product_access_groups is set", n)
		}
	})
}
