// Package bench runs idsync's scale scenarios and reports calls, time and memory against the
// fewest calls the APIs allow (`idsync bench`).
//
// The pass scenarios (initial, noop, churn) run the real wiring (internal/app: bbolt state in a
// temporary folder, the miniOrange source, the Jira sink, the Runner) against the in-process
// simulators over real HTTP on loopback. reads, writes and throttled are the Jira simulator's
// own counters and source_reads the miniOrange simulator's, reset right before the measured
// pass; the minimums come from the scenario alone (see Shape and ShapeOf).
//
// Decisions:
//   - --rate caps the simulated Jira site (one bucket across all endpoints) and the sink is
//     configured to pace at the same rate and burst, as an operator would set
//     sink.jira.rate_limit to the budget they have. The burst defaults to ceil(rate/10).
//   - --latency delays every answer of both simulators.
//   - The passes before the measured one (the first sync of noop and churn) run with the
//     simulators' latency and rate limit off and an unpaced sink: they are setup, not the
//     measurement. The measured pass uses a freshly opened app on the same state file.
//   - Against a running `idsync sim` (--jira-url, --miniorange-url) the simulators' counters
//     live in the other process, so calls are counted by a transport wrapped around the
//     clients' HTTP connections (every answer received, 429s apart): what the client saw, not
//     what the server served, which differs only when a connection breaks. The org is whatever
//     the simulator serves (read once, uncounted, before the run); the Jira simulator must be
//     fresh (only its seeded accounts and groups), because the minimums assume it. Only initial
//     and noop can run remotely: churn must change the IdP, which only the in-process
//     simulator allows. --rate, --latency and --miniorange-batch-cap must then repeat the
//     values `idsync sim` was started with; they only feed the minimums and the floor.
//   - peak_rss_bytes is the process's high-water mark (VmHWM), simulators included.
package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/idsync/idsync/configs"
)

// Scenarios.
const (
	ScenarioInitial = "initial"
	ScenarioNoop    = "noop"
	ScenarioChurn   = "churn"
	ScenarioSCIM    = "scim"
	ScenarioPlan    = "plan"
	ScenarioDrift   = "drift"
	ScenarioProcess = "process"
)

// Scenarios lists every scenario.
var Scenarios = []string{ScenarioInitial, ScenarioNoop, ScenarioChurn, ScenarioSCIM, ScenarioPlan, ScenarioDrift, ScenarioProcess}

// Defaults of the pass scenarios (the reference org) and of the plan-only scenario.
const (
	DefaultUsers              = 2000
	DefaultGroups             = 100
	DefaultMembershipsPerUser = 5
	DefaultLatency            = 10 * time.Millisecond
	DefaultRate               = 200
	DefaultConcurrency        = 8
	// DefaultPace: the sink paces at 95% of the site's rate (see Options.Pace).
	DefaultPace        = 0.95
	DefaultSCIMClients = 16

	DefaultPlanUsers              = 100_000
	DefaultPlanGroups             = 10_000
	DefaultPlanMembershipsPerUser = 10
)

// Options describe one bench run. Zero values take the defaults above.
type Options struct {
	Scenario           string
	Users              int
	Groups             int
	MembershipsPerUser int
	// Disabled users of the generated org (default none).
	Disabled int
	// Latency of every simulator answer; negative means none (zero takes the default).
	Latency time.Duration
	// Rate is the Jira site's requests/s; negative means unlimited (zero takes the default).
	Rate float64
	// Burst of the site's bucket and of the sink's pacing (0: ceil(Rate/10)).
	Burst int
	// Pace is the fraction of Rate the sink is configured to (sink.jira.rate_limit), as an
	// operator sets it a little under the site's budget so timing jitter does not cross it
	// (0: DefaultPace). floor_seconds is still computed from Rate itself.
	Pace float64
	// Concurrency is sink.jira.rate_limit.concurrency (pass scenarios) or the number of SCIM
	// clients (scim).
	Concurrency int
	Seed        int64
	// SourceBatchCap is the miniOrange simulator's page cap (0: its default, 200).
	SourceBatchCap int
	// SourcePageSize is sources[].miniorange.page_size (0: the config default, 500).
	SourcePageSize int

	// JiraURL and MiniOrangeURL run the pass against a running `idsync sim`.
	JiraURL       string
	MiniOrangeURL string

	// PlanLive is the Jira the plan scenario plans against: "synced" (default: a complete
	// earlier pass, then 1% churn at the IdP) or "empty" (the first sync).
	PlanLive string

	// FullReadInterval is sink.jira.full_read_interval of the measured app: 0 takes the
	// default (1h), so the measured pass of noop, churn and drift is incremental (a full pass
	// runs first in the same app, uncounted); negative reads in full every pass
	// (`--full-read-interval 0`).
	FullReadInterval time.Duration
	// DriftChanges is how many memberships the drift scenario removes by hand in Jira
	// (default 20).
	DriftChanges int

	// Binary is the idsync executable the process scenario runs its measured pass with.
	Binary string

	// StateDir holds the state file (default: a temporary folder, removed afterwards).
	StateDir string
	Logger   zerolog.Logger
}

// ErrUsage marks options that cannot run.
var ErrUsage = errors.New("bench")

func (o *Options) normalize() error {
	known := false
	for _, s := range Scenarios {
		known = known || s == o.Scenario
	}
	if !known {
		return fmt.Errorf("%w: --scenario %q: want one of %s", ErrUsage, o.Scenario, strings.Join(Scenarios, ", "))
	}
	// The plan and process scenarios measure memory at the big reference org by default.
	plan := o.Scenario == ScenarioPlan || o.Scenario == ScenarioProcess
	def := func(p *int, d, planD int) {
		if *p == 0 {
			*p = d
			if plan {
				*p = planD
			}
		}
	}
	def(&o.Users, DefaultUsers, DefaultPlanUsers)
	def(&o.Groups, DefaultGroups, DefaultPlanGroups)
	def(&o.MembershipsPerUser, DefaultMembershipsPerUser, DefaultPlanMembershipsPerUser)
	switch {
	case o.Users < 1:
		return fmt.Errorf("%w: --users must be at least 1, got %d", ErrUsage, o.Users)
	case o.Groups < 1:
		return fmt.Errorf("%w: --groups must be at least 1, got %d", ErrUsage, o.Groups)
	case o.MembershipsPerUser < 0 || o.MembershipsPerUser > o.Groups:
		return fmt.Errorf("%w: --memberships-per-user must be between 0 and --groups (%d), got %d", ErrUsage, o.Groups, o.MembershipsPerUser)
	case o.Disabled < 0 || o.Disabled > o.Users:
		return fmt.Errorf("%w: --disabled must be between 0 and --users, got %d", ErrUsage, o.Disabled)
	case o.Burst < 0 || o.Concurrency < 0 || o.SourceBatchCap < 0 || o.SourcePageSize < 0:
		return fmt.Errorf("%w: --burst, --concurrency, --miniorange-batch-cap and --page-size must not be negative", ErrUsage)
	case math.IsNaN(o.Rate) || math.IsInf(o.Rate, 0):
		return fmt.Errorf("%w: --rate must be a number", ErrUsage)
	case math.IsNaN(o.Pace) || o.Pace < 0 || o.Pace > 1:
		return fmt.Errorf("%w: --pace must be a fraction in (0, 1]", ErrUsage)
	}
	switch {
	case o.Latency == 0:
		o.Latency = DefaultLatency
	case o.Latency < 0:
		o.Latency = 0
	}
	switch {
	case o.Rate == 0:
		o.Rate = DefaultRate
	case o.Rate < 0:
		o.Rate = 0
	}
	if o.Pace == 0 {
		o.Pace = DefaultPace
	}
	if o.Burst == 0 && o.Rate > 0 {
		o.Burst = int(math.Max(1, math.Ceil(o.Rate/10)))
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
		if o.Scenario == ScenarioSCIM {
			o.Concurrency = DefaultSCIMClients
		}
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	switch {
	case o.FullReadInterval == 0:
		o.FullReadInterval = configs.DefaultFullReadInterval
	case o.FullReadInterval < 0:
		o.FullReadInterval = 0
	}
	if o.DriftChanges == 0 {
		o.DriftChanges = 20
	}
	if o.DriftChanges < 0 {
		return fmt.Errorf("%w: --drift-changes must not be negative", ErrUsage)
	}
	if o.SourcePageSize == 0 {
		o.SourcePageSize = 500
	}
	switch o.PlanLive {
	case "":
		o.PlanLive = "synced"
	case "synced", "empty":
	default:
		return fmt.Errorf("%w: --plan-live %q: want synced or empty", ErrUsage, o.PlanLive)
	}
	remote := o.JiraURL != "" || o.MiniOrangeURL != ""
	if remote && (o.JiraURL == "" || o.MiniOrangeURL == "") {
		return fmt.Errorf("%w: --jira-url and --miniorange-url go together", ErrUsage)
	}
	if o.Scenario == ScenarioDrift && o.FullReadInterval == 0 {
		return fmt.Errorf("%w: drift measures incremental passes: --full-read-interval must not be 0", ErrUsage)
	}
	if remote && o.Scenario != ScenarioInitial && o.Scenario != ScenarioNoop {
		// (process seeds the simulator's site directly, which only the in-process one allows)
		return fmt.Errorf("%w: only initial and noop run against a running simulator (%s needs the in-process one)", ErrUsage, o.Scenario)
	}
	return nil
}

// Result is what one bench run measured. The fields without omitempty are present for every
// scenario.
type Result struct {
	Scenario string `json:"scenario"`
	// Mode is in-process, remote or plan-only; Counters says where reads and writes come
	// from: simulator, client-transport (remote) or none.
	Mode        string `json:"mode"`
	Counters    string `json:"counters"`
	Users       int    `json:"users"`
	Groups      int    `json:"groups"`
	Memberships int    `json:"memberships"`
	// Changed is the number of people the churn scenario changed; ReadsPerChanged its Jira
	// reads per changed person.
	Changed         int     `json:"changed,omitempty"`
	ReadsPerChanged float64 `json:"reads_per_changed,omitempty"`
	Concurrency     int     `json:"concurrency"`
	LatencyMS       float64 `json:"latency_ms"`
	Rate            float64 `json:"rate"`

	// FullRead says whether the measured pass read Jira in full (pass scenarios).
	FullRead *bool `json:"full_read,omitempty"`

	Reads          int64 `json:"reads"`
	Writes         int64 `json:"writes"`
	Throttled      int64 `json:"throttled"`
	EarlyRetries   int64 `json:"early_retries"`
	SourceReads    int64 `json:"source_reads"`
	MinReads       int   `json:"min_reads"`
	MinJiraReads   int   `json:"min_jira_reads"`
	MinSourceReads int   `json:"min_source_reads"`
	MinWrites      int   `json:"min_writes"`

	WallSeconds float64 `json:"wall_seconds"`
	// ReadSeconds runs from the start of the pass to its first applied item: source and Jira
	// reads, mapping, planning and one item.
	ReadSeconds  float64 `json:"read_seconds,omitempty"`
	FloorSeconds float64 `json:"floor_seconds"`
	Ratio        float64 `json:"ratio"`
	PeakRSSBytes uint64  `json:"peak_rss_bytes"`
	// ProcessPeakRSSBytes is the peak RSS of the idsync process that ran the measured pass
	// (process scenario), without the simulators.
	ProcessPeakRSSBytes uint64 `json:"process_peak_rss_bytes,omitempty"`

	// WastedWrites are writes that changed nothing: group-member calls Jira answered 400
	// (already a member, not a member), or in the plan scenario the planned adds to the
	// product's default group of accounts the same plan creates (POST /user already puts
	// them there).
	WastedWrites int64 `json:"wasted_writes"`

	PassResult  string           `json:"pass_result,omitempty"`
	FailedItems int              `json:"failed_items"`
	Errors      []string         `json:"errors,omitempty"`
	Calls       map[string]int64 `json:"calls,omitempty"`

	// scim
	CreateRPS   float64 `json:"create_rps,omitempty"`
	FilterRPS   float64 `json:"filter_rps,omitempty"`
	PatchRPS    float64 `json:"patch_rps,omitempty"`
	CreateP50ms float64 `json:"create_p50_ms,omitempty"`
	CreateP99ms float64 `json:"create_p99_ms,omitempty"`
	FilterP50ms float64 `json:"filter_p50_ms,omitempty"`
	FilterP99ms float64 `json:"filter_p99_ms,omitempty"`
	PatchP50ms  float64 `json:"patch_p50_ms,omitempty"`
	PatchP99ms  float64 `json:"patch_p99_ms,omitempty"`

	// drift: hand-made changes, the incremental passes after them (which must write
	// nothing: the IdP did not change), and the full pass that repairs them.
	DriftChanges           int   `json:"drift_changes,omitempty"`
	DriftIncrementalPasses int   `json:"drift_incremental_passes,omitempty"`
	DriftIncrementalReads  int64 `json:"drift_incremental_reads,omitempty"`
	DriftIncrementalWrites int64 `json:"drift_incremental_writes,omitempty"`
	DriftRepairReads       int64 `json:"drift_repair_reads,omitempty"`
	DriftRepairWrites      int64 `json:"drift_repair_writes,omitempty"`
	DriftPassesToRepair    int   `json:"drift_passes_to_repair,omitempty"`
	DriftRepaired          *bool `json:"drift_repaired,omitempty"`

	// plan
	PlanLive      string  `json:"plan_live,omitempty"`
	MapSeconds    float64 `json:"map_seconds,omitempty"`
	PlanSeconds   float64 `json:"plan_seconds,omitempty"`
	PlannedWrites int     `json:"planned_writes,omitempty"`
	PlannedItems  int     `json:"planned_items,omitempty"`
	HeapBytes     uint64  `json:"heap_bytes,omitempty"`

	Goals []Goal `json:"goals,omitempty"`
}

// Goal is one target of the issue and whether this run met it.
type Goal struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	Met  bool   `json:"met"`
}

// Goal limits.
const (
	MaxReadsFactor = 1.05
	MaxRatio       = 1.2
	MaxPlanRSS     = 1 << 30
	// MaxIncrementalNoopReads bounds the Jira reads of an incremental pass with nothing to do.
	MaxIncrementalNoopReads = 10
)

// Run runs one scenario.
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.normalize(); err != nil {
		return nil, err
	}
	cleanup := func() {}
	if o.StateDir == "" && o.Scenario != ScenarioPlan {
		dir, err := os.MkdirTemp("", "idsync-bench-")
		if err != nil {
			return nil, fmt.Errorf("creating the state folder: %w", err)
		}
		o.StateDir = dir
		cleanup = func() { _ = os.RemoveAll(dir) }
	}
	defer cleanup()
	if o.Scenario != ScenarioPlan {
		// The minimums assume idsync's first pass starts from nothing: an old state file
		// would hold links and ownership of another org.
		if _, err := os.Stat(filepath.Join(o.StateDir, "idsync.db")); err == nil {
			return nil, fmt.Errorf("%w: %s already holds an idsync.db; bench needs a fresh state folder", ErrUsage, o.StateDir)
		}
	}
	var (
		res *Result
		err error
	)
	switch o.Scenario {
	case ScenarioSCIM:
		res, err = runSCIM(ctx, o)
	case ScenarioPlan:
		res, err = runPlan(ctx, o)
	case ScenarioDrift:
		res, err = runDrift(ctx, o)
	case ScenarioProcess:
		res, err = runProcess(ctx, o)
	default:
		if o.JiraURL != "" {
			res, err = runRemote(ctx, o)
		} else {
			res, err = runInProcess(ctx, o)
		}
	}
	if res != nil {
		res.PeakRSSBytes = PeakRSS()
		res.Goals = goals(res)
	}
	return res, err
}

func (r *Result) setShape(s Shape, o Options) {
	r.setMinimums(s.MinSourceReads(), s.MinJiraReads(), s.MinWrites(), o)
}

// setMinimums sets the fewest calls a pass can take and the floor they put on its wall time.
func (r *Result) setMinimums(minSourceReads, minJiraReads, minWrites int, o Options) {
	r.MinSourceReads = minSourceReads
	r.MinJiraReads = minJiraReads
	r.MinReads = r.MinSourceReads + r.MinJiraReads
	r.MinWrites = minWrites
	minJira := r.MinJiraReads + r.MinWrites
	r.FloorSeconds = FloorSeconds(minJira, r.MinReads+r.MinWrites, o.Rate, o.Latency, o.Concurrency)
}

func (r *Result) finish() {
	if r.FloorSeconds > 0 {
		r.Ratio = r.WallSeconds / r.FloorSeconds
	}
	if r.Changed > 0 {
		r.ReadsPerChanged = float64(r.Reads) / float64(r.Changed)
	}
}

func goals(r *Result) []Goal {
	var gs []Goal
	f := func(v float64) string { return fmt.Sprintf("%.3g", v) }
	writesExact := Goal{Name: "writes == min_writes", Want: fmt.Sprint(r.MinWrites), Got: fmt.Sprint(r.Writes), Met: r.Writes == int64(r.MinWrites)}
	switch r.Scenario {
	case ScenarioInitial:
		reads := r.Reads + r.SourceReads
		gs = append(gs, writesExact,
			Goal{Name: "reads + source_reads <= 1.05 x min_reads", Want: "<= " + f(MaxReadsFactor*float64(r.MinReads)),
				Got: fmt.Sprint(reads), Met: float64(reads) <= MaxReadsFactor*float64(r.MinReads)})
		if r.FloorSeconds > 0 { // no floor without a rate or a latency
			gs = append(gs, Goal{Name: "ratio <= 1.2", Want: "<= 1.2", Got: f(r.Ratio), Met: r.Ratio <= MaxRatio})
		}
	case ScenarioNoop:
		gs = append(gs, Goal{Name: "writes == 0", Want: "0", Got: fmt.Sprint(r.Writes), Met: r.Writes == 0})
		if r.FullRead != nil && !*r.FullRead {
			gs = append(gs, Goal{Name: "incremental reads <= 10", Want: "<= " + fmt.Sprint(MaxIncrementalNoopReads), Got: fmt.Sprint(r.Reads), Met: r.Reads <= MaxIncrementalNoopReads})
		}
	case ScenarioDrift:
		repaired := r.DriftRepaired != nil && *r.DriftRepaired
		gs = append(gs, Goal{Name: "incremental passes write nothing", Want: "0", Got: fmt.Sprint(r.DriftIncrementalWrites), Met: r.DriftIncrementalWrites == 0},
			Goal{Name: "the full pass repairs every change", Want: fmt.Sprint(r.DriftChanges), Got: fmt.Sprint(r.DriftRepairWrites), Met: repaired && r.DriftRepairWrites == int64(r.DriftChanges)})
	case ScenarioChurn:
		gs = append(gs, writesExact)
	case ScenarioProcess:
		gs = append(gs, Goal{Name: "writes == 0", Want: "0", Got: fmt.Sprint(r.Writes), Met: r.Writes == 0},
			Goal{Name: "idsync's peak RSS < 600 MB", Want: "< " + fmt.Sprint(MaxProcessRSS), Got: fmt.Sprint(r.ProcessPeakRSSBytes),
				Met: r.ProcessPeakRSSBytes > 0 && r.ProcessPeakRSSBytes < MaxProcessRSS})
	case ScenarioPlan:
		gs = append(gs, Goal{Name: "peak RSS < 1 GiB", Want: "< 1073741824", Got: fmt.Sprint(r.PeakRSSBytes), Met: r.PeakRSSBytes > 0 && r.PeakRSSBytes < MaxPlanRSS},
			Goal{Name: "planned writes == min_writes", Want: fmt.Sprint(r.MinWrites), Got: fmt.Sprint(r.PlannedWrites), Met: r.PlannedWrites == r.MinWrites})
	}
	return gs
}
