package reconcile

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Link ties one source record to one Jira account. It is what makes idsync an owner: only
// linked accounts are ever deactivated.
type Link struct {
	Source    string `json:"source"`
	Key       string `json:"key"` // the source's user key
	UserName  string `json:"userName"`
	Email     string `json:"email"`
	AccountID string `json:"accountId"`
	// Created is true when idsync created the account (or the portal-only customer), false
	// when it matched an existing one by email.
	Created bool `json:"created"`
	// Customer marks a portal-only JSM customer account (qm: id).
	Customer bool `json:"customer,omitempty"`

	// Deactivated is set once idsync deactivated the account; Method and RemovedGroups say
	// how, so reactivation can reverse exactly that.
	Deactivated   bool       `json:"deactivated,omitempty"`
	DeactivatedAt time.Time  `json:"deactivatedAt,omitempty"`
	Method        string     `json:"method,omitempty"`
	RemovedGroups []GroupRef `json:"removedGroups,omitempty"`
	// PendingGroups are the groups a remove-access deactivation was about to remove when it
	// was journaled as started; they are merged into RemovedGroups when it completes, so a
	// crash between the Jira write and the journal never loses what reactivation restores.
	PendingGroups []GroupRef `json:"pendingGroups,omitempty"`

	// MissingPasses counts consecutive complete full passes in which no source listed the
	// user; grace compares it to safety.grace_passes. Reset when the user reappears.
	MissingPasses int `json:"missingPasses,omitempty"`

	LinkedAt  time.Time `json:"linkedAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// LinkKey is the store key of a link.
func (l Link) LinkKey() string { return l.Source + "/" + l.Key }

// OwnedKind says what an ownership record is about.
type OwnedKind string

const (
	// OwnedMembership: idsync manages this account's membership of a Jira group (Container
	// is the groupId).
	OwnedMembership OwnedKind = "membership"
	// OwnedCustomer: idsync granted this account customer access to a desk (Container is the
	// service desk id).
	OwnedCustomer OwnedKind = "customer"
	// OwnedOrganization: idsync added this account to a JSM organization (Container is the
	// organization id).
	OwnedOrganization OwnedKind = "organization"
	// OwnedGroup: idsync created this group (Container is the groupId; AccountID empty).
	OwnedGroup OwnedKind = "group"
)

// Owned is one ownership record: something idsync put there and may therefore take away.
// The state file also stores since when (kept across re-adds, shown by `idsync state dump`);
// a pass never needs the date, and a big site's million records would hold 24 MB of it.
type Owned struct {
	Kind          OwnedKind `json:"kind"`
	Container     string    `json:"container"`
	ContainerName string    `json:"containerName,omitempty"`
	AccountID     string    `json:"accountId,omitempty"`
}

// OwnedKey is the store key of an ownership record.
func (o Owned) OwnedKey() string { return string(o.Kind) + "/" + o.Container + "/" + o.AccountID }

// AuditRecord is one line of the append-only audit log: who did what, when, why, and how it
// went. Applied changes, held plans and approvals are all audited.
type AuditRecord struct {
	Time      time.Time `json:"time"`
	RunID     string    `json:"runId"`
	Actor     string    `json:"actor"` // the trigger (schedule, signal, push, api, cli, startup) or "approve:<who>"
	Action    string    `json:"action"`
	Source    string    `json:"source,omitempty"`
	UserKey   string    `json:"userKey,omitempty"`
	UserName  string    `json:"userName,omitempty"`
	AccountID string    `json:"accountId,omitempty"`
	Target    string    `json:"target,omitempty"` // group, desk or organization
	Reason    string    `json:"reason,omitempty"`
	Result    string    `json:"result"` // started | ok | failed | skipped | unknown | done_by_create | held | approved
	Error     string    `json:"error,omitempty"`
	// Intent ties an applied change's write-ahead record (result started, journaled before
	// the change was sent) to its outcome record; unique per change and run.
	Intent string `json:"intent,omitempty"`
}

// JournalEntry is what one applied item writes to the store, atomically and durably, before
// the item counts as done.
type JournalEntry struct {
	Links  []Link        `json:"links,omitempty"`  // upserted by LinkKey
	Own    []Owned       `json:"own,omitempty"`    // upserted by OwnedKey
	Disown []Owned       `json:"disown,omitempty"` // deleted by OwnedKey
	Audit  []AuditRecord `json:"audit,omitempty"`  // appended
}

// Run results, as in idsync_passes_total{result}.
const (
	ResultOK      = "ok"
	ResultPartial = "partial" // some items failed or a source read was incomplete
	ResultFailed  = "failed"  // the pass could not plan (sink unreadable, no source readable)
	ResultHeld    = "held"    // the circuit breaker held changes back
	// ResultRunning is stored when a pass starts writing (before its first journal entry)
	// and replaced when it ends. A stored run still "running" when the next pass starts was
	// interrupted by the process dying; that pass resolves its items in flight.
	ResultRunning = "running"
)

// SourceRun is how one source read went in a pass.
type SourceRun struct {
	Name     string `json:"name"`
	Complete bool   `json:"complete"`
	Users    int    `json:"users"`
	Groups   int    `json:"groups"`
	Hash     string `json:"hash,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Run is the record of one pass.
type Run struct {
	ID       string    `json:"id"`
	Trigger  string    `json:"trigger"`
	Target   string    `json:"target,omitempty"` // "" for a full pass, else what a targeted pass covered
	DryRun   bool      `json:"dryRun,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Complete bool      `json:"complete"`
	Result   string    `json:"result"`
	// JiraRead says how the pass read Jira: full | incremental | targeted (empty when it did
	// not get that far). FullReadReason says why a full read was due.
	JiraRead       string `json:"jiraRead,omitempty"`
	FullReadReason string `json:"fullReadReason,omitempty"`
	// Counts maps kind -> result (ok | failed | skipped | held | dropped | unsupported |
	// planned | done_by_create) -> items. done_by_create adds are not writes: the account's
	// creation did them.
	Counts map[Kind]map[string]int `json:"counts,omitempty"`
	Errors []string                `json:"errors,omitempty"`
	// Held counts the items the circuit breaker held back in this pass.
	Held    int         `json:"held"`
	Sources []SourceRun `json:"sources,omitempty"`
	// Changes is the plan after the guards (what the pass tried to apply): whole in the Run
	// RunOnce returns, at most RunnerConfig.RunChangesCap items per kind in stored records
	// (with a note saying so).
	Changes *Changes `json:"changes,omitempty"`
	// HeldItems are the planned items the guards kept out of the pass, each with its guard
	// and reason: dropped for good by identity, policy and ownership, held for a later pass
	// by incomplete, grace and breaker. Like Changes, all of them in the Run RunOnce
	// returns, at most RunChangesCap per guard and kind in stored records; HeldByGuard
	// counts them all. Filled for dry runs too, so a plan can show which deactivations wait
	// and why.
	HeldItems   []Held         `json:"heldItems,omitempty"`
	HeldByGuard map[string]int `json:"heldByGuard,omitempty"`
	// Unresolved are ids of earlier runs that stopped without recording their end (the
	// process died) and whose items in flight are not resolved yet; each pass carries them
	// until a complete full pass resolves them.
	Unresolved []string `json:"unresolved,omitempty"`
}

// HeldPlan is what the circuit breaker held back: every deactivation and removal of a pass.
type HeldPlan struct {
	RunID         string    `json:"runId"`
	Created       time.Time `json:"created"`
	Reason        string    `json:"reason"`
	Deactivations int       `json:"deactivations"`
	Removals      int       `json:"removals"`
	Changes       Changes   `json:"changes"`
	// Approved is set by `idsync approve RUN_ID`: the next pass may exceed the breaker once,
	// up to the approved counts plus 10%.
	Approved   bool      `json:"approved"`
	ApprovedBy string    `json:"approvedBy,omitempty"`
	ApprovedAt time.Time `json:"approvedAt,omitempty"`
}

// StandingApproval is an approved removal or deactivation that a pass applied and Jira
// refused (a group managed elsewhere, a permanent 403). Its approval stands until it succeeds
// or is no longer planned: without that, every retry would face the breaker again and each
// approval would only ever cover half of what the breaker holds (DESIGN "An approval binds
// to the items it showed").
type StandingApproval struct {
	Change Change `json:"change"`
	// RunID is the held run whose approval covered the item; By who approved it.
	RunID string `json:"runId"`
	By    string `json:"by"`
	// Since is when the item first failed under this approval.
	Since time.Time `json:"since"`
}

// StandingKeys returns the item keys of s.
func StandingKeys(s []StandingApproval) map[string]bool {
	if len(s) == 0 {
		return nil
	}
	keys := make(map[string]bool, len(s))
	for _, a := range s {
		keys[a.Change.ItemKey()] = true
	}
	return keys
}

// SnapshotRecord is the last complete read of one source.
type SnapshotRecord struct {
	Source    string    `json:"source"`
	Taken     time.Time `json:"taken"`
	Hash      string    `json:"hash"`
	Directory Directory `json:"directory"`
}

// ErrNotFound is returned by Store getters when the record does not exist.
var ErrNotFound = errors.New("not found")

// Summary says what approving h would approve: the count of each kind of held item and the
// first n people of each, e.g. "2 deactivate_user (alice, bob); 1 remove_member (carol:
// engineering)".
func (h HeldPlan) Summary(n int) string {
	var parts []string
	for _, k := range Kinds {
		l := *h.Changes.List(k)
		if len(l) == 0 {
			continue
		}
		names := make([]string, 0, min(n, len(l)))
		for _, ch := range l[:min(n, len(l))] {
			name := ch.Who()
			if t := ch.Target(); t != "" {
				name += ": " + t
			}
			names = append(names, name)
		}
		more := ""
		if len(l) > n {
			more = fmt.Sprintf(", and %d more", len(l)-n)
		}
		parts = append(parts, fmt.Sprintf("%d %s (%s%s)", len(l), k, strings.Join(names, ", "), more))
	}
	if len(parts) == 0 {
		return "no items"
	}
	return strings.Join(parts, "; ")
}

// Count adds n items of kind k with result to the run's counts.
func (run *Run) Count(k Kind, result string, n int) {
	if n == 0 {
		return
	}
	if run.Counts == nil {
		run.Counts = map[Kind]map[string]int{}
	}
	m := run.Counts[k]
	if m == nil {
		m = map[string]int{}
		run.Counts[k] = m
	}
	m[result] += n
}

// Summary is a deep copy of a run record without its plan (Changes, HeldItems): what Status
// shows, sharing nothing with the original.
func (run *Run) Summary() Run {
	c := *run
	c.Changes, c.HeldItems = nil, nil
	if run.Counts != nil {
		c.Counts = make(map[Kind]map[string]int, len(run.Counts))
		for k, m := range run.Counts {
			c.Counts[k] = maps.Clone(m)
		}
	}
	c.HeldByGuard = maps.Clone(run.HeldByGuard)
	c.Errors = slices.Clone(run.Errors)
	c.Sources = slices.Clone(run.Sources)
	c.Unresolved = slices.Clone(run.Unresolved)
	return c
}
