package runner

import (
	"time"

	"github.com/idsync/idsync/reconcile"
)

// Journal is what the executor needs of the state: one durable write per entry.
type Journal interface {
	// Journal writes one entry in one durable transaction. Concurrent callers may be
	// batched into one transaction; Journal returns only once the entry is on disk.
	Journal(e reconcile.JournalEntry) error
}

// Store is the durable state the Runner reads and journals into. The state package
// implements it on bbolt; every method is safe for concurrent use.
type Store interface {
	Journal
	// Links returns every link.
	Links() ([]reconcile.Link, error)
	// Owned returns every ownership record.
	Owned() ([]reconcile.Owned, error)

	// PutRun stores (or replaces) a run record; Run returns one by id (ErrNotFound); Runs
	// returns the newest first, at most limit (all when limit <= 0).
	PutRun(r reconcile.Run) error
	Run(id string) (reconcile.Run, error)
	Runs(limit int) ([]reconcile.Run, error)

	// HeldPlan returns the open held plan (ErrNotFound when none). PutHeldPlan replaces it;
	// ClearHeldPlan removes it once a pass has applied or superseded it.
	HeldPlan() (reconcile.HeldPlan, error)
	PutHeldPlan(h reconcile.HeldPlan) error
	ClearHeldPlan() error

	// Standing returns the approvals that stand for items Jira refused (none is not an
	// error); PutStanding replaces them (an empty list clears them).
	Standing() ([]reconcile.StandingApproval, error)
	PutStanding(s []reconcile.StandingApproval) error

	// PutSnapshot stores the last complete read of a source; Snapshot returns it
	// (ErrNotFound when the source was never read completely).
	PutSnapshot(s reconcile.SnapshotRecord) error
	Snapshot(source string) (reconcile.SnapshotRecord, error)

	// Audit returns audit records at or after since, oldest first, optionally only those
	// whose UserName, UserKey or AccountID equals user (case-insensitive).
	Audit(since time.Time, user string) ([]reconcile.AuditRecord, error)
}
