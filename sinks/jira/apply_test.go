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

func mustApply(t *testing.T, e *env, c reconcile.Change) reconcile.Result {
	t.Helper()
	res, err := e.sink.Apply(ctxT(t), c)
	if err != nil {
		t.Fatalf("Apply %s: %v", c.Kind, err)
	}
	return res
}

func noDuplicates(t *testing.T, e *env) {
	t.Helper()
	if d := e.sim.DuplicateEmails(); len(d) > 0 {
		t.Errorf("duplicate accounts for %v", d)
	}
	if d := e.sim.DuplicateGroupNames(); len(d) > 0 {
		t.Errorf("duplicate groups %v", d)
	}
}

func TestCreateGroupAndAdopt(t *testing.T) {
	e := newEnv(t)
	existing, _ := e.sim.AddGroup("Engineering", "")
	res := mustApply(t, e, reconcile.Change{Kind: reconcile.KindCreateGroup, Group: &reconcile.GroupRef{Name: "engineering"}})
	if !res.Adopted || res.GroupID != existing {
		t.Fatalf("result = %+v, want adoption of %s", res, existing)
	}
	res = mustApply(t, e, reconcile.Change{Kind: reconcile.KindCreateGroup, Group: &reconcile.GroupRef{Name: "Sales"}})
	g, ok := e.sim.Group("Sales")
	if res.Adopted || !ok || res.GroupID != g.ID {
		t.Fatalf("create = %+v, sim group %+v", res, g)
	}
	noDuplicates(t, e)
}

func TestCreateUser(t *testing.T) {
	e := newEnv(t)
	res := mustApply(t, e, reconcile.Change{Kind: reconcile.KindCreateUser, Email: "Dana@example.com"})
	a, ok := e.sim.Account(res.AccountID)
	if !ok || !slices.Contains(a.Groups, "jira-software-users") {
		t.Fatalf("created account %+v lacks product access", a)
	}
	// The API answers 201 with the same account for an existing user with access.
	again := mustApply(t, e, reconcile.Change{Kind: reconcile.KindCreateUser, Email: "dana@example.com"})
	if again.AccountID != res.AccountID {
		t.Fatalf("second create gave %s, want %s", again.AccountID, res.AccountID)
	}
	// An existing user without access is adopted through an exact email search.
	noAccess, _ := e.sim.AddUser(jiratest.User{Email: "erin@example.com"})
	adopt := mustApply(t, e, reconcile.Change{Kind: reconcile.KindCreateUser, Email: "erin@example.com"})
	if !adopt.Adopted || adopt.AccountID != noAccess {
		t.Fatalf("adopt = %+v, want %s", adopt, noAccess)
	}
	noDuplicates(t, e)
}

func TestCreateUserSeatLimit(t *testing.T) {
	e := newEnv(t, withSim(func(o *jiratest.Options) { o.Seats = 1 })) // the site admin holds it
	_, err := e.sink.Apply(ctxT(t), reconcile.Change{Kind: reconcile.KindCreateUser, Email: "f@example.com"})
	if !errors.Is(err, jira.ErrLicenseLimit) {
		t.Fatalf("err = %v, want ErrLicenseLimit", err)
	}
	var apiErr *jira.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 400 || apiErr.Endpoint != "/rest/api/3/user" {
		t.Fatalf("err = %#v, want a typed 400 APIError", err)
	}
	if _, ok := e.sim.AccountByEmail("f@example.com"); ok {
		t.Error("account created past the seat limit")
	}
}

func TestMembershipIsIdempotent(t *testing.T) {
	e := newEnv(t)
	gid, _ := e.sim.AddGroup("Engineering", "")
	uid, _ := e.sim.AddUser(jiratest.User{Email: "g@example.com"})
	add := reconcile.Change{Kind: reconcile.KindAddMember, AccountID: uid, Group: &reconcile.GroupRef{ID: gid, Name: "Engineering"}}
	mustApply(t, e, add)
	mustApply(t, e, add) // already a member: done
	// By name only (a group created in the same pass).
	mustApply(t, e, reconcile.Change{Kind: reconcile.KindAddMember, AccountID: uid, Group: &reconcile.GroupRef{Name: "jira-software-users"}})
	a, _ := e.sim.Account(uid)
	if !slices.Equal(a.Groups, []string{"Engineering", "jira-software-users"}) {
		t.Fatalf("groups = %v", a.Groups)
	}
	rm := reconcile.Change{Kind: reconcile.KindRemoveMember, AccountID: uid, Group: &reconcile.GroupRef{ID: gid, Name: "Engineering"}}
	mustApply(t, e, rm)
	mustApply(t, e, rm) // not a member: done
	mustApply(t, e, reconcile.Change{Kind: reconcile.KindRemoveMember, AccountID: uid, Group: &reconcile.GroupRef{Name: "no-such-group"}})
	if a, _ := e.sim.Account(uid); slices.Contains(a.Groups, "Engineering") {
		t.Fatal("still a member")
	}
	_, err := e.sink.Apply(ctxT(t), reconcile.Change{Kind: reconcile.KindAddMember, AccountID: "712020:nobody", Group: &reconcile.GroupRef{ID: gid}})
	if !errors.Is(err, jira.ErrNotFound) {
		t.Fatalf("add of unknown account: %v, want ErrNotFound", err)
	}
}

func TestDeactivateRemoveAccessAndReactivate(t *testing.T) {
	e := newEnv(t)
	eng, _ := e.sim.AddGroup("Engineering", "")
	_, _ = e.sim.AddGroup("Sales", "")
	uid, _ := e.sim.AddUser(jiratest.User{Email: "h@example.com", Groups: []string{"Engineering", "jira-software-users"}})
	res := mustApply(t, e, reconcile.Change{Kind: reconcile.KindDeactivateUser, AccountID: uid, Groups: []reconcile.GroupRef{
		{ID: eng, Name: "Engineering"}, {Name: "jira-software-users"}, {Name: "Sales"}, {Name: "deleted-group"}}})
	if res.Method != configs.DeactivateRemoveAccess || len(res.Groups) != 2 {
		t.Fatalf("result = %+v, want two groups actually removed", res)
	}
	if a, _ := e.sim.Account(uid); len(a.Groups) != 0 || !a.Active {
		t.Fatalf("after deactivation: %+v", a)
	}
	back := mustApply(t, e, reconcile.Change{Kind: reconcile.KindReactivateUser, AccountID: uid, Groups: res.Groups})
	if a, _ := e.sim.Account(uid); !slices.Equal(a.Groups, []string{"Engineering", "jira-software-users"}) || len(back.Groups) != 2 {
		t.Fatalf("after reactivation: %+v (%+v)", a, back)
	}
}

func TestDeactivateAdminAPI(t *testing.T) {
	e := newEnv(t, withAdmin, withMethod(configs.DeactivateAdminAPI))
	uid, _ := e.sim.AddUser(jiratest.User{Email: "i@example.com", Groups: []string{"jira-software-users"}})
	res := mustApply(t, e, reconcile.Change{Kind: reconcile.KindDeactivateUser, AccountID: uid})
	if a, _ := e.sim.Account(uid); a.Active || res.Method != configs.DeactivateAdminAPI || res.Writes != 1 {
		t.Fatalf("after disable: %+v %+v", a, res)
	}
	mustApply(t, e, reconcile.Change{Kind: reconcile.KindReactivateUser, AccountID: uid})
	if a, _ := e.sim.Account(uid); !a.Active || !slices.Contains(a.Groups, "jira-software-users") {
		t.Fatalf("after enable: %+v", a)
	}
}

func TestDeactivateDelete(t *testing.T) {
	e := newEnv(t, withMethod(configs.DeactivateDelete))
	uid, _ := e.sim.AddUser(jiratest.User{Email: "j@example.com", Groups: []string{"jira-software-users"}})
	mustApply(t, e, reconcile.Change{Kind: reconcile.KindDeactivateUser, AccountID: uid})
	if a, _ := e.sim.Account(uid); a.OnSite {
		t.Fatal("still on the site")
	}
	mustApply(t, e, reconcile.Change{Kind: reconcile.KindDeactivateUser, AccountID: uid}) // gone already: done
	res := mustApply(t, e, reconcile.Change{Kind: reconcile.KindReactivateUser, AccountID: uid, Email: "j@example.com"})
	if a, _ := e.sim.Account(uid); !a.OnSite || res.AccountID != uid {
		t.Fatalf("re-created %+v as %s, want the same accountId back", a, res.AccountID)
	}
	noDuplicates(t, e)
}

func TestDeleteIsOptIn(t *testing.T) {
	e := newEnv(t) // remove-access
	uid, _ := e.sim.AddUser(jiratest.User{Email: "k@example.com"})
	mustApply(t, e, reconcile.Change{Kind: reconcile.KindDeactivateUser, AccountID: uid})
	if n := e.sim.CallCount("DELETE", "/rest/api/3/user"); n != 0 {
		t.Fatalf("DELETE /user sent %d times without deactivate: delete", n)
	}
	if a, _ := e.sim.Account(uid); !a.OnSite {
		t.Fatal("account removed")
	}
}

func TestUpdateUser(t *testing.T) {
	plain := newEnv(t)
	if plain.sink.ProfileWritable() {
		t.Fatal("ProfileWritable without admin_api")
	}
	_, err := plain.sink.Apply(ctxT(t), reconcile.Change{Kind: reconcile.KindUpdateUser, AccountID: "x",
		Fields: []reconcile.FieldChange{{Field: "displayName", New: "X"}}})
	if !errors.Is(err, jira.ErrUnsupported) || !strings.Contains(err.Error(), "admin_api") {
		t.Fatalf("err = %v, want ErrUnsupported naming admin_api", err)
	}

	e := newEnv(t, withAdmin)
	if !e.sink.ProfileWritable() {
		t.Fatal("ProfileWritable false with admin_api")
	}
	uid, _ := e.sim.AddUser(jiratest.User{Email: "l@example.com", DisplayName: "Old Name"})
	res := mustApply(t, e, reconcile.Change{Kind: reconcile.KindUpdateUser, AccountID: uid, Fields: []reconcile.FieldChange{
		{Field: "displayName", Old: "Old Name", New: "New Name"}, {Field: "email", Old: "l@example.com", New: "l2@example.com"}}})
	a, _ := e.sim.Account(uid)
	if a.DisplayName != "New Name" || a.Email != "l2@example.com" || res.Writes != 2 {
		t.Fatalf("after update: %+v (%+v)", a, res)
	}
}

func TestCustomersAndOrganizations(t *testing.T) {
	e := newEnv(t)
	res := mustApply(t, e, reconcile.Change{Kind: reconcile.KindCreateCustomer, Email: "m@example.org", DisplayName: "Mo", ServiceDesk: "DEMO"})
	if !strings.HasPrefix(res.AccountID, "qm:") {
		t.Fatalf("customer id = %q", res.AccountID)
	}
	add := reconcile.Change{Kind: reconcile.KindAddCustomer, AccountID: res.AccountID, ServiceDesk: "DEMO"}
	mustApply(t, e, add)
	mustApply(t, e, add)
	// A duplicate create (409 with strictConflictStatusCode) adopts the existing account.
	again := mustApply(t, e, reconcile.Change{Kind: reconcile.KindCreateCustomer, Email: "M@example.org", ServiceDesk: "DEMO"})
	if !again.Adopted || again.AccountID != res.AccountID {
		t.Fatalf("second create = %+v", again)
	}
	if d, _ := e.sim.Desk("DEMO"); !slices.Equal(d.Customers, []string{res.AccountID}) {
		t.Fatalf("DEMO customers = %v", d.Customers)
	}
	// Desk by id works as well as by key.
	mustApply(t, e, reconcile.Change{Kind: reconcile.KindRemoveCustomer, AccountID: res.AccountID, ServiceDesk: "1"})
	if d, _ := e.sim.Desk("DEMO"); len(d.Customers) != 0 {
		t.Fatalf("DEMO customers after removal = %v", d.Customers)
	}
	_, err := e.sink.Apply(ctxT(t), reconcile.Change{Kind: reconcile.KindAddCustomer, AccountID: res.AccountID, ServiceDesk: "NOPE"})
	if !errors.Is(err, jira.ErrNotFound) {
		t.Fatalf("unknown desk: %v", err)
	}

	org := mustApply(t, e, reconcile.Change{Kind: reconcile.KindAddOrganizationMember, AccountID: res.AccountID, Organization: "Partners"})
	orgs := e.sim.Orgs()
	if len(orgs) != 1 || orgs[0].ID != org.OrganizationID || !slices.Equal(orgs[0].Members, []string{res.AccountID}) {
		t.Fatalf("orgs = %+v, result %+v", orgs, org)
	}
	mustApply(t, e, reconcile.Change{Kind: reconcile.KindRemoveOrganizationMember, AccountID: res.AccountID, Organization: "Partners"})
	mustApply(t, e, reconcile.Change{Kind: reconcile.KindRemoveOrganizationMember, AccountID: res.AccountID, Organization: "Nobody"})
	if orgs := e.sim.Orgs(); len(orgs) != 1 || len(orgs[0].Members) != 0 {
		t.Fatalf("orgs after removal = %+v", orgs)
	}
	noDuplicates(t, e)
}

func TestUnsupportedChangeIsNotSent(t *testing.T) {
	e := newEnv(t)
	_, err := e.sink.Apply(ctxT(t), reconcile.Change{Kind: reconcile.KindUpdateUser, Unsupported: "needs admin_api"})
	if !errors.Is(err, jira.ErrUnsupported) {
		t.Fatal(err)
	}
	if e.sim.Writes()+e.sim.Reads() != 0 {
		t.Fatal("an unsupported change reached the API")
	}
}

func TestCreateUserSetsDisplayNameWithAdminAPI(t *testing.T) {
	plain := newEnv(t)
	res := mustApply(t, plain, reconcile.Change{Kind: reconcile.KindCreateUser, Email: "mo@example.com", DisplayName: "Mo Salah"})
	if a, _ := plain.sim.Account(res.AccountID); a.DisplayName != "mo" || res.Writes != 1 {
		t.Fatalf("without admin_api: %+v (%+v), want Jira's own name and one write", a, res)
	}
	e := newEnv(t, withAdmin)
	res = mustApply(t, e, reconcile.Change{Kind: reconcile.KindCreateUser, Email: "mo@example.com", DisplayName: "Mo Salah"})
	if a, _ := e.sim.Account(res.AccountID); a.DisplayName != "Mo Salah" || res.Writes != 2 {
		t.Fatalf("with admin_api: %+v (%+v), want the IdP's name set on create", a, res)
	}
}

// POST /user puts the account into its products' default groups; the result says which, so the
// engine records them instead of sending adds Jira refuses as duplicates.
func TestCreateUserReportsDefaultGroups(t *testing.T) {
	e := newEnv(t)
	if _, err := e.sink.Live(ctxT(t), reconcile.Scope{}); err != nil {
		t.Fatal(err)
	}
	res := mustApply(t, e, reconcile.Change{Kind: reconcile.KindCreateUser, Email: "nia@example.com"})
	g, _ := e.sim.Group("jira-software-users")
	if len(res.Groups) != 1 || res.Groups[0].Name != "jira-software-users" || res.Groups[0].ID != g.ID {
		t.Fatalf("result groups %+v, want jira-software-users (%s)", res.Groups, g.ID)
	}
	if a, _ := e.sim.Account(res.AccountID); !slices.Contains(a.Groups, "jira-software-users") {
		t.Fatalf("the simulator did not put the account into the default group: %+v", a)
	}
}
