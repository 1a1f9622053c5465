// Package reconciletest holds in-memory fakes of reconcile's interfaces that behave like the
// real systems: FakeSink rejects what Jira rejects, MemStore keeps state like the bbolt store,
// FakeSource serves a directory. Other packages' tests reuse them.
package reconciletest

import (
	"errors"
	"fmt"
	"sync"

	"github.com/idsync/idsync/reconcile"
)

// Errors the fake returns, wrapped with context.
var (
	ErrNotFound  = errors.New("not found")
	ErrNameInUse = errors.New("group name in use")
	ErrBadChange = errors.New("bad change")
)

type fgroup struct {
	id, name      string
	members       map[string]bool
	productAccess bool
	admin         bool
}

type fdesk struct {
	id, key, name string
	customers     map[string]bool
}

type forg struct {
	id, name string
	members  map[string]bool
}

// FakeSink is a validating in-memory Jira. Decisions where Jira's documented behaviour is
// a status code rather than a state change:
//   - creating a user whose email exists returns the existing account (Jira answers 201 for
//     an existing user with access) but counts a duplicate-create attempt;
//   - creating a customer whose email exists does the same (the Jira sink adopts on 409);
//   - creating a group whose name exists (any case) fails with ErrNameInUse (Jira: 400);
//   - touching an unknown account, group, desk or organization fails with ErrNotFound;
//   - adding an existing member, customer or organization member is a no-op success and so
//     is removing an absent one: the Sink contract asks the Jira sink to map Jira's answers
//     for these (400 "already a member" on group/user, 204 on JSM) to success.
type FakeSink struct {
	// Method is the deactivation method (remove-access when empty).
	Method string
	// CreateAddsTo are groups a created licensed account joins by itself, as Jira adds new
	// users to the product's default groups. Like the Jira sink, the create's Result.Groups
	// then names the groups it joined (with ids), unless HideCreateJoins is set; an adopted
	// existing account joins nothing.
	CreateAddsTo []string
	// HideCreateJoins leaves Result.Groups of creates empty, like a sink that does not know
	// which groups a create joins: the engine then sends the adds (no-ops here).
	HideCreateJoins bool
	// Fail, when set, is called before every Apply with the 1-based number of that call; a
	// non-nil error is returned and nothing changes.
	Fail func(c reconcile.Change, n int) error
	// FailLeave, when set, can fail one step of a remove-access deactivation: leaving group
	// (by name) for accountID. Like the Jira sink, the fake tries every other step.
	FailLeave func(accountID, group string) error
	// LiveFail, when set, can fail Live.
	LiveFail func(scope reconcile.Scope) error
	// AfterApply, when set, is called after every successful Apply (tests use it to cancel a
	// pass after k items).
	AfterApply func(c reconcile.Change, n int)
	// HideEmails makes Live report every account without its email, as Jira does for
	// people whose profile visibility hides it. Lookups by email (Scope.Emails, creates that
	// adopt) still find them, as Jira's user search does.
	HideEmails bool
	// Lagging, when set, marks accounts Jira's search index does not show yet (created
	// moments ago): Live leaves them out of the account listing (unless Scope.Accounts names
	// them: read by id, read-your-writes) and out of every group's member listing.
	Lagging func(accountID string) bool

	mu       sync.Mutex
	seq      int
	accounts map[string]*reconcile.Account
	accOrder []string
	groups   map[string]*fgroup
	grpOrder []string
	desks    map[string]*fdesk
	dskOrder []string
	orgs     map[string]*forg
	orgOrder []string

	applyCalls int
	liveCalls  int
	calls      map[reconcile.Kind]int
	duplicates int
	// redundantAdds counts group adds of existing members (a wasted write in Jira).
	redundantAdds int
	lastScope     reconcile.Scope
}

var _ reconcile.Sink = (*FakeSink)(nil)

// NewFakeSink returns an empty Jira.
func NewFakeSink() *FakeSink {
	return &FakeSink{
		accounts: map[string]*reconcile.Account{}, groups: map[string]*fgroup{},
		desks: map[string]*fdesk{}, orgs: map[string]*forg{}, calls: map[reconcile.Kind]int{},
	}
}

func (f *FakeSink) next(prefix string) string {
	f.seq++
	return fmt.Sprintf("%s%d", prefix, f.seq)
}
