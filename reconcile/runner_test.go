package reconcile_test

import (
	"testing"

	"github.com/idsync/idsync/reconcile"
)

func TestRunnerFirstPassThenNoop(t *testing.T) {
	users := []reconcile.User{
		user("1", "alice", "alice@example.com", "Engineering", "Sales", "DEFAULT"),
		user("2", "bob", "bob@example.com", "Engineering"),
		user("3", "carol", "carol@example.com", "Jira-Service-group"),
		disabled(user("4", "dave", "dave@example.com", "Engineering")),
	}
	e := newEnv(t, users, baseMapping(), openSafety())
	run := e.run(reconcile.RunOptions{})
	if run.Result != reconcile.ResultOK {
		t.Fatalf("result %s errors %v", run.Result, run.Errors)
	}
	t.Logf("%s", e.sink.Describe())
	if got := applied(run, reconcile.KindCreateUser); got != 2 {
		t.Errorf("created users %d, want 2", got)
	}
	if got := applied(run, reconcile.KindCreateCustomer); got != 1 {
		t.Errorf("created customers %d, want 1", got)
	}
	if got := applied(run, reconcile.KindCreateGroup); got != 2 {
		t.Errorf("created groups %d, want 2 (engineering, Sales)", got)
	}
	if _, ok := e.sink.AccountByEmail("dave@example.com"); ok {
		t.Errorf("disabled dave got an account")
	}
	if n := len(e.sink.Members("jira-software-users")); n != 3 {
		t.Errorf("jira-software-users has %d members, want admin+alice+bob", n)
	}
	if g := e.sink.GroupID("DEFAULT"); g != "" {
		t.Errorf("DEFAULT was imported")
	}
	if n := len(e.sink.Customers("DEMO")); n != 1 {
		t.Errorf("DEMO customers %d, want 1", n)
	}
	if n := len(e.sink.OrgMembers("Acme")); n != 1 {
		t.Errorf("Acme members %d, want 1", n)
	}
	again := e.run(reconcile.RunOptions{})
	if again.Changes.HasChanges() || totalApplied(again) != 0 {
		t.Fatalf("second pass not a no-op: %+v", again.Counts)
	}
	if e.sink.DuplicateCreates() != 0 {
		t.Errorf("duplicate creates %d", e.sink.DuplicateCreates())
	}
}
