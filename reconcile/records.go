package reconcile

// The vocabulary of run records: what triggered a pass and what became of each item. The
// Runner writes these values, state stores them, metrics and the CLI read them.

// Triggers, as in idsync_passes_total{trigger}.
const (
	TriggerSchedule = "schedule"
	TriggerSignal   = "signal"
	TriggerPush     = "push"
	TriggerAPI      = "api"
	TriggerCLI      = "cli"
	TriggerStartup  = "startup"
)

// Kinds of Jira read, as in Run.JiraRead.
const (
	ReadFull        = "full"
	ReadIncremental = "incremental"
	ReadTargeted    = "targeted"
)

// Item results, as in Run.Counts and idsync_changes_total{result}.
const (
	ItemOK          = "ok"
	ItemFailed      = "failed"
	ItemSkipped     = "skipped"
	ItemHeld        = "held"
	ItemUnsupported = "unsupported"
	ItemPlanned     = "planned" // dry run
	// ItemStarted is the write-ahead audit record journaled before a change is sent; its
	// outcome (ok, failed, skipped) follows with the same AuditRecord.Intent.
	ItemStarted = "started"
	// ItemUnknown closes a started record whose outcome was never journaled (the process
	// died in between); the next complete pass writes it, saying whether its plan found the
	// change applied.
	ItemUnknown = "unknown"
	// ItemDoneByCreate settles a planned AddMember that the creation of the account already
	// did: Jira puts a new account into its products' default groups (Result.Groups of the
	// create). Nothing is sent and it is not a write; the membership is owned and audited
	// like an applied add.
	ItemDoneByCreate = "done_by_create"
)

// Result of dropped items in Run.Counts: kept out by safety.policy.
const ItemDropped = "dropped"

// OrgPlaceholder is the ownership container of a membership in an organization whose id was
// not known when the add was journaled (the add creates the organization). Guards and the
// planner treat it as the organization of that name.
func OrgPlaceholder(name string) string { return "name:" + lower(name) }
