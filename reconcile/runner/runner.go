// Package runner is the runtime of reconcile: the Runner (single-flight passes, coalesced
// requests, targeted and one-user runs, held-plan approval), one pass (read sources, map,
// read Jira, plan, guard, journal, apply, record), the executor that applies a plan through a
// Sink journaling each item ahead of the write, the replay of interrupted passes, and the
// observers that feed metrics and progress. The domain it drives (model, planner, guards) is
// package reconcile, which knows nothing of this one.
package runner

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/logging"
	"github.com/idsync/idsync/reconcile"
)

// SourceSpec is one configured source as the Runner reads it.
type SourceSpec struct {
	Source reconcile.Source
	// Push is the SCIM listener's view of a pulled source that also pushes (nil otherwise).
	// For a push-only source (type scim) the listener's source is Source itself.
	Push     reconcile.Source
	Priority int
	// PushOnly marks a push-only source (type scim): its Snapshot is the listener's
	// in-memory store, cheap to read whole, with deletions as inactive users; targeted passes
	// read it whole instead of fetching users one by one.
	PushOnly bool
	// CustomersOnly is sources[].customers_only (SourceData.CustomersOnly).
	CustomersOnly bool
}

// RunnerConfig wires a Runner.
type RunnerConfig struct {
	Sources []SourceSpec
	Sink    reconcile.Sink
	Store   Store
	Mapping configs.MappingConfig
	Safety  configs.SafetyConfig
	// Concurrency bounds the items applied at once within one change kind (default 4).
	Concurrency int
	// ProfileWritable is true when the sink can change display names and emails.
	ProfileWritable bool
	// DeactivateMethod is sink.jira.deactivate (remove-access when empty).
	DeactivateMethod string
	Observer         Observer // nil-safe
	Logger           zerolog.Logger
	// Now is the clock; it must be safe for concurrent use (items apply concurrently).
	Now func() time.Time
	// RunID makes run ids (default: time-sortable ids like 20261127T040515Z-3f9a; the daemon
	// passes state.NewRunID).
	RunID func(now time.Time) string
	// KeepRuns is how many run records to keep (default 500) when the store can prune.
	KeepRuns int
	// RunChangesCap caps the items per kind a stored run record keeps (default 1000): the
	// counts stay exact, the record stays small on a 100k-user first pass. RunOnce still
	// returns the whole plan to its caller (`idsync plan -o json`).
	RunChangesCap int
	// ItemTimeout bounds one applied item (default 2 minutes).
	ItemTimeout time.Duration
	// FullReadInterval is sink.jira.full_read_interval: between full reads of Jira, scheduled
	// and push passes plan against the cached state and read only what they touch. 0 reads
	// in full every pass.
	FullReadInterval time.Duration
}

// RunOptions say what one pass covers.
type RunOptions struct {
	Trigger string // schedule | signal | push | api | cli | startup
	DryRun  bool
	// Source limits the read to one source: the others' last stored snapshots stand in for
	// them, and the pass removes and deactivates nothing.
	Source string
	// Users and Groups make the pass targeted: these userNames, and the members of these IdP
	// groups.
	Users  []string
	Groups []string
	// Full asks for a full read of Jira and of the sources (`reconcile --full`).
	Full bool
}

func (o RunOptions) targeted() bool { return len(o.Users) > 0 || len(o.Groups) > 0 }

// RunnerStatus is what `idsync status` and the admin API show. It is a copy: it shares no
// map or slice with the running pass, so callers may encode or change it freely.
type RunnerStatus struct {
	Running bool `json:"running"`
	// Current is the pass in progress, without its plan (Changes, HeldItems): its Counts
	// grow as items settle.
	Current *reconcile.Run `json:"current,omitempty"`
	// Done and Total are the running pass's items settled so far and planned in all (0
	// until it applies).
	Done  int `json:"done,omitempty"`
	Total int `json:"total,omitempty"`
	// Last is the last finished pass, without its plan.
	Last *reconcile.Run `json:"last,omitempty"`
	// Pending is true when a requested pass waits for the running one.
	Pending bool `json:"pending"`
	// Hold is the open held plan, without its changes.
	Hold *reconcile.HeldPlan `json:"hold,omitempty"`
	// Standing are approved items Jira refused; every full pass retries them under their
	// approval.
	Standing []reconcile.StandingApproval `json:"standingApprovals,omitempty"`
}

// Pruner is implemented by stores that can drop old run records.
type Pruner interface {
	PruneRuns(keep int) error
}

// Runner drives reconcile passes: one at a time, whoever triggers them.
type Runner struct {
	cfg RunnerConfig
	log zerolog.Logger
	obs Observer

	sem  chan struct{} // single flight
	wake chan struct{}

	mu      sync.Mutex
	mapper  *reconcile.Mapper
	mapping configs.MappingConfig
	safety  configs.SafetyConfig
	pending *RunOptions
	// current is the running pass as Status shows it, and last the last finished one: both
	// summaries (see Run.summary) the Runner owns, copied in and out under mu.
	current     *reconcile.Run
	done, total int
	last        *reconcile.Run

	holdMu sync.Mutex // serialises held-plan read-modify-writes (passes and Approve)

	// cache is Jira's state between full reads (nil: the next pass reads in full); only
	// the pass in flight uses it, guarded by cacheMu for the executor's concurrent patches.
	cacheMu   sync.Mutex
	cache     *reconcile.LiveCache
	cacheTime time.Time // when the full read it holds began
}

// NewRunner checks the wiring and compiles the mapping.
func NewRunner(cfg RunnerConfig) (*Runner, error) {
	if len(cfg.Sources) == 0 {
		return nil, errors.New("runner: no sources")
	}
	if cfg.Sink == nil {
		return nil, errors.New("runner: no sink")
	}
	if cfg.Store == nil {
		return nil, errors.New("runner: no store")
	}
	seen := map[string]bool{}
	for i, s := range cfg.Sources {
		if s.Source == nil {
			return nil, fmt.Errorf("runner: sources[%d] has no source", i)
		}
		if seen[s.Source.Name()] {
			return nil, fmt.Errorf("runner: source %q given twice", s.Source.Name())
		}
		seen[s.Source.Name()] = true
	}
	m, err := reconcile.NewMapper(cfg.Mapping)
	if err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RunID == nil {
		cfg.RunID = NewRunID
	}
	if cfg.KeepRuns <= 0 {
		cfg.KeepRuns = 500
	}
	if cfg.RunChangesCap <= 0 {
		cfg.RunChangesCap = 1000
	}
	r := &Runner{
		cfg: cfg, obs: nopObserver(cfg.Observer),
		log:    cfg.Logger.With().Str(logging.FieldComponent, "reconcile").Logger(),
		sem:    make(chan struct{}, 1),
		wake:   make(chan struct{}, 1),
		mapper: m, mapping: cfg.Mapping, safety: cfg.Safety,
	}
	return r, nil
}

var runSeq atomic.Uint32

// NewRunID makes a time-sortable run id, unique within the process.
func NewRunID(now time.Time) string {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%04x%s", now.UTC().Format("20060102T150405Z"), runSeq.Add(1)&0xffff, hex.EncodeToString(b[:1]))
}

// Reconfigure swaps the mapping and safety config (SIGHUP); the next pass uses them. A mapping
// that does not compile keeps the old one and logs why (configs validation should have caught
// it).
func (r *Runner) Reconfigure(m configs.MappingConfig, s configs.SafetyConfig) {
	mp, err := reconcile.NewMapper(m)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.log.Error().Err(err).Msg("new mapping refused; keeping the previous one")
	} else {
		r.mapper, r.mapping = mp, m
	}
	r.safety = s
	r.dropCache() // a new mapping may read what the last full read did not
}

// RunOnce runs one pass and blocks until it ends. Passes never overlap: a call made while one
// runs waits for it (or for ctx). The error is non-nil when the pass could not plan or could
// not journal; the Run record says everything else.
func (r *Runner) RunOnce(ctx context.Context, o RunOptions) (reconcile.Run, error) {
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return reconcile.Run{}, fmt.Errorf("waiting for the running pass: %w", ctx.Err())
	}
	defer func() { <-r.sem }()
	if o.Trigger == "" {
		o.Trigger = reconcile.TriggerCLI
	}
	return r.pass(ctx, o)
}

// Request asks for a pass without waiting. Requests made while a pass runs coalesce into one
// follow-up pass: targeted requests merge their users and groups, a full request absorbs
// targeted ones. Serve runs them.
func (r *Runner) Request(o RunOptions) {
	r.mu.Lock()
	if r.pending == nil {
		cp := o
		r.pending = &cp
	} else {
		m := mergeOptions(*r.pending, o)
		r.pending = &m
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func mergeOptions(a, b RunOptions) RunOptions {
	out := a
	out.DryRun = a.DryRun && b.DryRun
	switch {
	case !a.targeted() && !b.targeted():
		if a.Source != b.Source {
			out.Source = ""
		}
	case !a.targeted():
	case !b.targeted():
		out = b
		out.DryRun = a.DryRun && b.DryRun
	default:
		out.Users = unionFold(a.Users, b.Users)
		out.Groups = unionFold(a.Groups, b.Groups)
		if a.Source != b.Source {
			out.Source = ""
		}
	}
	return out
}

func unionFold(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.ContainsFunc(out, func(x string) bool { return strings.EqualFold(x, s) }) {
			out = append(out, s)
		}
	}
	return out
}

// Serve runs requested passes until ctx is done, then returns nil. A pass in flight at
// shutdown finishes its current items and stops.
func (r *Runner) Serve(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
		}
		r.mu.Lock()
		p := r.pending
		r.pending = nil
		r.mu.Unlock()
		if p == nil {
			continue
		}
		if _, err := r.RunOnce(ctx, *p); err != nil && ctx.Err() == nil {
			r.log.Error().Err(err).Str(logging.FieldTrigger, p.Trigger).Msg("requested pass failed")
		}
	}
}

// Status reports what the Runner is doing.
func (r *Runner) Status() RunnerStatus {
	r.mu.Lock()
	st := RunnerStatus{Pending: r.pending != nil}
	if r.current != nil {
		c := r.current.Summary()
		st.Running, st.Current = true, &c
		st.Done, st.Total = r.done, r.total
	}
	if r.last != nil {
		l := r.last.Summary()
		st.Last = &l
	}
	r.mu.Unlock()
	if h, err := r.cfg.Store.HeldPlan(); err == nil {
		h.Changes = reconcile.Changes{}
		st.Hold = &h
	}
	st.Standing, _ = r.cfg.Store.Standing() // a status without them beats no status
	return st
}

func (r *Runner) config() (*reconcile.Mapper, configs.MappingConfig, configs.SafetyConfig) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mapper, r.mapping, r.safety
}
