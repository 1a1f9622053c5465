package simulation

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/idsync/idsync/internal/app"
	"github.com/idsync/idsync/internal/httpx"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/reconcile/runner"
)

// Time on the virtual clock: each step starts on a grid point far enough from the last that
// nothing one step's waits add up to reaches the next; accounts created during a pass with
// index lag stay hidden for the rest of that step.
var (
	epoch       = time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	stepSpan    = 6 * time.Hour
	lagDuration = 2 * time.Hour
)

func gridTime(n int) time.Time { return epoch.Add(time.Duration(n+1) * stepSpan) }

// run is one execution of a history: the faulty one, or its fault-free twin.
type run struct {
	seed   uint64
	h      History
	faulty bool
	opts   Options

	clock  *Clock
	w      *world
	fb     *faultBox
	frand  *rand.Rand // the fault stream
	m      *model     // the oracle
	tl     timeline
	params Params
	dir    string
	hc     *http.Client

	app    *app.App
	box    *crashBox
	timers *timers

	pushMu sync.Mutex
	pushQ  []runner.RunOptions
	dead   atomic.Bool // a crashed app's closing flush is dropped
	runSeq atomic.Int64

	raceMu  sync.Mutex // orders a race push (on a server goroutine) before the checks
	raced   bool
	harness error // an error of the simulation itself (a push refused, say)

	passN int
	step  int
	// approvedEver are the item keys of every plan the simulation approved: a standing
	// approval (an approved item Jira refused) must be one of them.
	approvedEver map[string]bool
	owner        map[memKey]string
	managedEver  map[string]bool
	gone         map[string]int // person id -> counted passes while not active (I2)
	converged    bool
	end          map[string]string // the normalised end state (I6)
	// lastConverge says what the last settling pass did, for a run that did not settle.
	lastConverge string

	log   []string
	fail  *Failure
	stats Stats
}

// Failure is the first invariant a run broke.
type Failure struct {
	Seed uint64
	// IdP is the IdP the world ran; Forced says it was chosen by Options.IdP, not by the
	// seed (the replay line names it then).
	IdP       IdP
	Forced    bool
	Step      int
	Pass      int
	Faulty    bool // in the faulty run (else in the fault-free twin)
	Invariant string
	Desc      string
	Context   string // the step and the pass's faults
}

func (f *Failure) Error() string {
	run := "fault-free twin"
	if f.Faulty {
		run = "faulty run"
	}
	s := fmt.Sprintf("seed %d (%s) step %d pass %d (%s): %s: %s", f.Seed, f.IdP, f.Step, f.Pass, run, f.Invariant, f.Desc)
	if f.Context != "" {
		s += " [" + f.Context + "]"
	}
	return s
}

// Replay is the command that runs the failing seed alone.
func (f *Failure) Replay() string {
	return replayLine(f.Seed, f.IdP, f.Forced)
}

// replayLine is the command that runs one seed alone, on the IdP it ran (named when it was
// not the seed's own choice).
func replayLine(seed uint64, idp IdP, forced bool) string {
	env := ""
	if forced {
		env = fmt.Sprintf("IDSYNC_SIM_IDP=%s ", idp)
	}
	return fmt.Sprintf("%sIDSYNC_SIM_SEED=%d go test -run TestSimulation ./internal/simulation/", env, seed)
}

func newRun(seed uint64, h History, faulty bool, o Options) *run {
	r := &run{seed: seed, h: h, faulty: faulty, opts: o, clock: NewClock(epoch), m: h.Initial.clone(),
		params: h.Initial.params.clone(), owner: map[memKey]string{}, managedEver: map[string]bool{},
		gone: map[string]int{}, timers: &timers{}, tl: timeline{certain: -1}}
	r.fb = newFaultBox(seed)
	r.fb.hugeCount = o.HugeCount
	r.frand = rand.New(rand.NewPCG(seed, 0xfa17))
	for g := range r.params.managedGroups() {
		r.managedEver[g] = true
	}
	return r
}

// execute runs the history: an initial sync, every step, then fault-free passes until
// nothing is left to do. It returns an error only when the simulation itself failed.
func (r *run) execute() (err error) {
	base := r.opts.StateDir
	if base == "" {
		base = os.TempDir()
	}
	if r.dir, err = os.MkdirTemp(base, "idsync-sim-"); err != nil {
		return err
	}
	defer os.RemoveAll(r.dir)
	if r.w, err = newWorld(r.h, r.clock, r.seed, r.fb); err != nil {
		return err
	}
	defer r.w.close()
	r.hc = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer r.hc.CloseIdleConnections()
	st := snapshotJira(r.w.jira)
	r.trackOwners(jiraState{}, st, "seed")
	if err := r.open(); err != nil {
		return err
	}
	defer func() {
		if r.app != nil {
			r.dead.Store(true)
			_ = r.app.Close()
		}
	}()
	r.step = -1
	r.clock.AdvanceTo(gridTime(-1))
	if err := r.pass(kindFull, runner.RunOptions{Trigger: reconcile.TriggerStartup}, true); err != nil {
		return err
	}
	for _, s := range r.h.Steps {
		if r.fail != nil {
			return nil
		}
		if err := r.doStep(s); err != nil {
			return err
		}
	}
	if r.fail != nil {
		return nil
	}
	if err := r.converge(); err != nil || r.fail != nil {
		return err
	}
	r.end = r.endState()
	r.violate(checkUnresolved(r.w.audit.unresolved()), nil)
	return nil
}

// open wires idsync as the daemon does, on this run's clock and with its hooks.
func (r *run) open() error {
	cfg, err := r.params.load(r.dir, r.w.JiraURL, r.w.idp)
	if err != nil {
		return err
	}
	r.box = newCrashBox()
	box := r.box
	a, err := app.Open(cfg, app.Options{
		Logger:       zerolog.Nop(),
		HTTPClient:   r.hc,
		StateTimeout: 10 * time.Second,
		Clock:        r.clock,
		AfterFunc:    r.timers.afterFunc,
		OnPush:       r.onPush,
		// Time-sortable like the daemon's, but from the hour only: the seconds depend on
		// how long the Jira client's jittered waits added up to.
		RunID: func(now time.Time) string {
			return fmt.Sprintf("%s-%05d", now.UTC().Truncate(time.Hour).Format("20060102T15Z"), r.runSeq.Add(1))
		},
		SourceRetry: httpx.Retry{Max: 4, WaitMin: time.Millisecond, WaitMax: time.Millisecond, MaxRetryAfter: time.Millisecond},
		WrapStore:   func(s runner.Store) runner.Store { return &storeWrap{Store: s, box: box, audit: r.w.audit} },
		WrapSink:    func(s reconcile.Sink) reconcile.Sink { return &sinkWrap{Sink: s, box: box} },
		WrapSource: func(spec runner.SourceSpec) runner.SourceSpec {
			if spec.Push != nil {
				spec.Push = &pushSource{Source: spec.Push, faults: r.fb}
			}
			return spec
		},
	})
	if err != nil {
		return fmt.Errorf("opening idsync: %w", err)
	}
	r.app = a
	r.dead.Store(false)
	if a.SCIM != nil { // only a pushing IdP's source has a listener
		var h http.Handler = a.SCIM
		r.w.scim.Store(&h)
	}
	return nil
}

// restart closes the crashed app (what it had not journaled is lost, and so are pushes
// that were still waiting for their targeted pass) and opens it again on the same state.
func (r *run) restart() error {
	r.w.scim.Store(nil)
	r.dead.Store(true)
	_ = r.app.Close()
	r.app = nil
	r.pushMu.Lock()
	r.pushQ = nil
	r.pushMu.Unlock()
	r.timers.fire() // stale debounce timers of the old listener: they do nothing now
	r.stats.Crashes++
	return r.open()
}

// onPush queues a debounced SCIM trigger as the targeted pass the daemon would run.
func (r *run) onPush(_ string, users, groups []string) {
	if r.dead.Load() {
		return
	}
	r.pushMu.Lock()
	r.pushQ = append(r.pushQ, runner.RunOptions{Trigger: reconcile.TriggerPush, Users: users, Groups: groups})
	r.pushMu.Unlock()
}

// pushPasses runs the targeted passes of every push so far, coalesced as Runner.Request
// coalesces them.
func (r *run) pushPasses() error {
	for range 4 {
		r.timers.fire()
		r.pushMu.Lock()
		q := r.pushQ
		r.pushQ = nil
		r.pushMu.Unlock()
		if len(q) == 0 {
			return nil
		}
		o := q[0]
		for _, x := range q[1:] {
			o.Users = unionFold(o.Users, x.Users)
			o.Groups = unionFold(o.Groups, x.Groups)
		}
		if err := r.pass(kindPush, o, false); err != nil || r.fail != nil {
			return err
		}
	}
	return nil
}

func unionFold(a, b []string) []string {
	out := append([]string(nil), a...)
	for _, s := range b {
		dup := false
		for _, x := range out {
			if strings.EqualFold(x, s) {
				dup = true
			}
		}
		if !dup {
			out = append(out, s)
		}
	}
	return out
}

// doStep makes one step happen and runs the passes that follow it.
func (r *run) doStep(s Step) error {
	r.step = s.N
	if over := r.clock.AdvanceTo(gridTime(s.N)); over > 0 {
		r.stats.Overruns++
	}
	r.log = append(r.log, s.String())
	var err error
	switch s.Kind {
	case evAdmin:
		err = r.adminEdit(s.Admin)
	case evApprove:
		err = r.approve()
	case evReconfigure:
		err = r.reconfigure(*s.Params)
	case evIdle:
	default:
		if s.Via == viaRace {
			r.fb.setRace(r.raceFire(s), s.RaceAfter)
			break
		}
		err = r.applyIdP(s)
	}
	if err != nil {
		return err
	}
	if s.Pass == passNone {
		return nil
	}
	if err := r.pushPasses(); err != nil || r.fail != nil {
		return err
	}
	if s.Pass != passFull {
		return nil
	}
	if err := r.pass(kindFull, runner.RunOptions{Trigger: reconcile.TriggerSchedule}, false); err != nil || r.fail != nil {
		return err
	}
	return r.pushPasses()
}

// approve approves the open held plan, as an admin would with `idsync approve`.
func (r *run) approve() error {
	h, err := r.app.Store.HeldPlan()
	if errors.Is(err, reconcile.ErrNotFound) || (err == nil && h.Approved) {
		return nil
	}
	if err != nil {
		return err
	}
	r.stats.Approvals++
	r.log = append(r.log, "approve "+h.RunID)
	if r.approvedEver == nil {
		r.approvedEver = map[string]bool{}
	}
	for _, k := range reconcile.Kinds {
		for _, ch := range *h.Changes.List(k) {
			r.approvedEver[itemKey(ch)] = true
		}
	}
	_, err = r.app.Runner.Approve(h.RunID, "simulation")
	return err
}

// reconfigure applies a config change as SIGHUP does (and writes it, so a restart keeps it).
func (r *run) reconfigure(p Params) error {
	cfg, err := p.load(r.dir, r.w.JiraURL, r.w.idp)
	if err != nil {
		return err
	}
	r.params = p.clone()
	r.m.params = p.clone()
	for g := range p.managedGroups() {
		r.managedEver[g] = true
	}
	r.app.Runner.Reconfigure(cfg.Mapping, cfg.Safety)
	return nil
}

// converge runs fault-free full passes (approving any hold, as the operator at the end of
// an incident does) until one has nothing left to do.
func (r *run) converge() error {
	limit := r.params.Grace + 8
	for i := range limit {
		r.step = len(r.h.Steps) + i
		r.clock.AdvanceTo(gridTime(r.step))
		if err := r.approve(); err != nil {
			return err
		}
		if err := r.pushPasses(); err != nil || r.fail != nil {
			return err
		}
		rec, err := r.passRec(kindConverge, runner.RunOptions{Trigger: reconcile.TriggerSchedule}, true)
		if err != nil || r.fail != nil {
			return err
		}
		r.lastConverge = describePass(rec)
		if settled(rec) {
			if _, herr := r.app.Store.HeldPlan(); errors.Is(herr, reconcile.ErrNotFound) {
				r.converged = true
				r.stats.ConvergePasses = i + 1
				return nil
			}
		}
	}
	return nil
}

// describePass says in a line what a pass did: result, items by kind and result, held
// items by guard.
func describePass(rec *passRecord) string {
	var parts []string
	for _, k := range reconcile.Kinds {
		for _, res := range []string{reconcile.ItemOK, reconcile.ItemFailed, reconcile.ItemHeld} {
			if n := rec.Run.Counts[k][res]; n > 0 {
				parts = append(parts, fmt.Sprintf("%s %s %d", k, res, n))
			}
		}
	}
	var guards []string
	for _, g := range sortedKeys(rec.Run.HeldByGuard) {
		guards = append(guards, fmt.Sprintf("%s %d", g, rec.Run.HeldByGuard[g]))
	}
	return fmt.Sprintf("pass %d result %s, %s; held by %s; %d Jira writes", rec.N, rec.Run.Result,
		strings.Join(parts, ", "), strings.Join(guards, ", "), len(rec.Writes))
}

// settled reports whether a fault-free pass left nothing to do: a complete read, nothing
// held, and no change made in Jira. Items that fail every time (a group idsync may not
// change) do not stop it, nor do items dropped for good.
func settled(rec *passRecord) bool {
	run := rec.Run
	return run.Complete && run.Result != reconcile.ResultHeld && run.Result != reconcile.ResultFailed &&
		heldItems(run) == 0 && len(rec.Writes) == 0
}

// violate records the first broken invariant and stops the run.
func (r *run) violate(vs []Violation, rec *passRecord) {
	if len(vs) == 0 || r.fail != nil {
		return
	}
	vs = sortedViolations(vs)
	ctx := ""
	if rec != nil {
		ctx = fmt.Sprintf("%s pass, faults: %s", rec.Kind, rec.Faults)
	}
	if r.step >= 0 && r.step < len(r.h.Steps) {
		ctx = r.h.Steps[r.step].String() + "; " + ctx
	}
	desc := vs[0].Desc
	if len(vs) > 1 {
		desc += fmt.Sprintf(" (and %d more)", len(vs)-1)
	}
	n := r.passN // a check at the end names the last pass
	if rec != nil {
		n = rec.N
	}
	r.fail = &Failure{Seed: r.seed, IdP: r.h.IdP, Forced: r.opts.IdP != "", Step: r.step, Pass: n, Faulty: r.faulty, Invariant: vs[0].Invariant, Desc: desc, Context: ctx}
}

func lower(s string) string { return strings.ToLower(s) }
