package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/app"
	"github.com/idsync/idsync/internal/sim"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/reconcile/runner"
	"github.com/idsync/idsync/sinks/jira/jiratest"
	"github.com/idsync/idsync/sources/miniorange"
	"github.com/idsync/idsync/sources/miniorange/miniorangetest"
)

// sourceName is the one source of the pass scenarios.
const sourceName = "corp"

// config is the idsync config of a pass scenario. paced sets sink.jira.rate_limit to the
// bench rate and burst; otherwise the sink does not pace (setup passes).
func (o Options) config(jiraURL, moURL string, paced bool) (*configs.Config, error) {
	cfg := configs.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.AdminToken = configs.Secret(randomToken())
	cfg.State.Path = filepath.Join(o.StateDir, "idsync.db")
	cfg.Log.Level = "warn"
	cfg.Sources = []configs.SourceConfig{{
		Name: sourceName, Type: configs.SourceMiniOrange, Priority: 10,
		MiniOrange: &configs.MiniOrangeConfig{
			BaseURL: moURL, CustomerKey: miniorangetest.DefaultCustomerKey,
			APIKey: configs.Secret(miniorangetest.DefaultAPIKey), PageSize: o.SourcePageSize,
		},
	}}
	j := cfg.Sink.Jira
	j.BaseURL, j.Email, j.APIToken = jiraURL, jiratest.DefaultEmail, configs.Secret(jiratest.DefaultAPIToken)
	j.Products = []string{"jira-software"}
	j.RateLimit = configs.RateLimit{Concurrency: o.Concurrency}
	j.FullReadInterval = o.FullReadInterval
	if paced && o.Rate > 0 {
		j.RateLimit.RequestsPerSecond, j.RateLimit.Burst = o.Rate*o.Pace, o.Burst
	}
	cfg.Mapping = configs.MappingConfig{ImportUsers: true, ImportGroups: true,
		DefaultGroups: []string{defaultGroup}, DisplayName: configs.DefaultDisplayName}
	if o.Scenario == ScenarioChurn {
		// Leavers are deactivated in the measured pass, and nothing is held back.
		cfg.Safety.GracePasses = 0
		cfg.Safety.MaxDeactivations = o.Users
		cfg.Safety.MaxDeactivationPercent = 100
		cfg.Safety.MaxMembershipRemovals = o.Users * (o.MembershipsPerUser + 1)
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bench config: %w", err)
	}
	return cfg, nil
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// caps are the page caps the minimums use.
func (o Options) caps() Caps {
	c := JiraCaps
	batch := o.SourceBatchCap
	if batch == 0 {
		batch = miniorangetest.DefaultBatchCap
	}
	c.Source = min(o.SourcePageSize, batch)
	return c
}

// passOutcome is one pass and how long it took.
type passOutcome struct {
	run   reconcile.Run
	wall  time.Duration
	first time.Duration // to the first applied item; 0 when nothing was applied
}

// runPass opens the app on cfg, runs one full pass and closes the app again.
func (o Options) runPass(ctx context.Context, cfg *configs.Config, hc *http.Client) (passOutcome, error) {
	b, err := o.open(cfg, hc)
	if err != nil {
		return passOutcome{}, err
	}
	defer b.Close()
	return b.pass(ctx, runner.RunOptions{Trigger: reconcile.TriggerCLI})
}

// benchApp is an open idsync and the observer of its passes.
type benchApp struct {
	*app.App
	obs *phaseObserver
}

func (o Options) open(cfg *configs.Config, hc *http.Client) (benchApp, error) {
	obs := &phaseObserver{}
	a, err := app.Open(cfg, app.Options{Logger: o.Logger, Observer: obs, HTTPClient: hc})
	if err != nil {
		return benchApp{}, fmt.Errorf("opening idsync: %w", err)
	}
	return benchApp{App: a, obs: obs}, nil
}

func (b benchApp) pass(ctx context.Context, ro runner.RunOptions) (passOutcome, error) {
	start := time.Now()
	b.obs.begin(start)
	run, err := b.RunOnce(ctx, ro)
	out := passOutcome{run: run, wall: time.Since(start), first: b.obs.firstApplied()}
	if err != nil {
		return out, fmt.Errorf("pass %s: %w", run.ID, err)
	}
	return out, nil
}

// measured runs the measured pass of a pass scenario in a freshly opened app, as a daemon's
// scheduled pass. With incremental reads on and a synced site (noop, churn), a scheduled
// pass runs first in the same app, uncounted: it reads Jira in full (the first pass after a
// start always does), and the measured pass then plans against what it read, as a scheduled
// pass between two full reads does. change runs between the two (churn changes the IdP
// there) and reset right before the measured pass.
func (o Options) measured(ctx context.Context, cfg *configs.Config, hc *http.Client, change func() error, reset func()) (passOutcome, error) {
	b, err := o.open(cfg, hc)
	if err != nil {
		return passOutcome{}, err
	}
	defer b.Close()
	scheduled := runner.RunOptions{Trigger: reconcile.TriggerSchedule}
	if o.FullReadInterval > 0 && o.Scenario != ScenarioInitial {
		warm, err := b.pass(ctx, scheduled)
		if err != nil {
			return passOutcome{}, fmt.Errorf("full pass before the measured one: %w", err)
		}
		if err := setupOK(warm); err != nil {
			return passOutcome{}, err
		}
	}
	if change != nil {
		if err := change(); err != nil {
			return passOutcome{}, err
		}
	}
	reset()
	return b.pass(ctx, scheduled)
}

// phaseObserver notes when the first item of a pass was applied.
type phaseObserver struct {
	mu    sync.Mutex
	start time.Time
	first time.Time
}

var _ runner.Observer = (*phaseObserver)(nil)

func (p *phaseObserver) begin(t time.Time) {
	p.mu.Lock()
	p.start, p.first = t, time.Time{}
	p.mu.Unlock()
}

func (p *phaseObserver) firstApplied() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.first.IsZero() {
		return 0
	}
	return p.first.Sub(p.start)
}

func (p *phaseObserver) ChangeApplied(_ reconcile.Kind, result string) {
	if result == reconcile.ItemHeld {
		return
	}
	p.mu.Lock()
	if p.first.IsZero() {
		p.first = time.Now()
	}
	p.mu.Unlock()
}

func (*phaseObserver) PassStarted(reconcile.Run)      {}
func (*phaseObserver) Progress(int, int)              {}
func (*phaseObserver) SourceRead(reconcile.SourceRun) {}
func (*phaseObserver) PassFinished(reconcile.Run)     {}
func (*phaseObserver) Held(int)                       {}

func (*phaseObserver) SourceProgress(string, int, int) {}

// setupOK checks that a setup pass converged: a bench built on a failed setup measures nothing.
func setupOK(out passOutcome) error {
	if out.run.Result != "ok" {
		return fmt.Errorf("setup pass %s ended %q: %s", out.run.ID, out.run.Result, strings.Join(out.run.Errors, "; "))
	}
	return nil
}

func (r *Result) setPass(out passOutcome) {
	if out.run.JiraRead != "" {
		full := out.run.JiraRead == reconcile.ReadFull
		r.FullRead = &full
	}
	r.WallSeconds = out.wall.Seconds()
	r.ReadSeconds = out.first.Seconds()
	r.PassResult = out.run.Result
	for _, m := range out.run.Counts {
		r.FailedItems += m[reconcile.ItemFailed]
	}
	r.Errors = out.run.Errors
	if len(r.Errors) > 10 {
		r.Errors = append(r.Errors[:10:10], fmt.Sprintf("... %d more", len(out.run.Errors)-10))
	}
}

// countJira fills the Jira counters of the measured pass.
func (r *Result) countJira(js *jiratest.Sim) {
	r.Reads, r.Writes, r.Throttled = js.Reads(), js.Writes(), js.Throttled()
	r.EarlyRetries = js.EarlyRetries()
}

func (o Options) newResult(mode, counters string) *Result {
	return &Result{Scenario: o.Scenario, Mode: mode, Counters: counters, Concurrency: o.Concurrency,
		LatencyMS: float64(o.Latency) / float64(time.Millisecond), Rate: o.Rate}
}

// startInProcess serves the simulators with the generated org, and the result to fill.
func (o Options) startInProcess() (*sim.Sims, Org, *Result, error) {
	sims, err := startSims(o)
	if err != nil {
		return nil, Org{}, nil, err
	}
	org := orgFromSim(sims.MiniOrange.Users(), sims.MiniOrange.Groups())
	res := o.newResult("in-process", "simulator")
	res.Users, res.Groups, res.Memberships = len(org.Users), len(org.Groups), org.Memberships()
	return sims, org, res, nil
}

// runInProcess runs initial, noop or churn against simulators in this process.
func runInProcess(ctx context.Context, o Options) (*Result, error) {
	sims, org, res, err := o.startInProcess()
	if err != nil {
		return nil, err
	}
	defer sims.Close()

	var before *Org
	after := org
	if o.Scenario != ScenarioInitial {
		if err := o.setupInProcess(ctx, sims); err != nil {
			return nil, err
		}
		b := org
		before = &b
	}
	var change func() error
	if o.Scenario == ScenarioChurn {
		c, err := PlanChurn(org, o.Seed)
		if err != nil {
			return nil, err
		}
		change = func() error { return applyChurn(sims.MiniOrange, c) }
		after = org.Apply(c)
		res.Changed = c.Size()
	}
	res.setShape(ShapeOf(before, after, o.caps()), o)

	cfg, err := o.config(sims.JiraURL, sims.MiniOrangeURL, true)
	if err != nil {
		return nil, err
	}
	out, err := o.measured(ctx, cfg, nil, change, func() {
		sims.Jira.Reset()
		sims.MiniOrange.Reset()
	})
	res.countJira(sims.Jira)
	res.SourceReads = int64(sims.MiniOrange.TotalCalls())
	res.Calls = callTable(sims.Jira.Calls(), sims.MiniOrange.Calls())
	res.WastedWrites = wastedWrites(res.Calls)
	res.setPass(out)
	res.finish()
	return res, err
}

// startSims serves the simulators on free loopback ports with the generated org.
func startSims(o Options) (*sim.Sims, error) {
	sims, err := sim.Start(sim.Options{
		JiraAddr: "127.0.0.1:0", MiniOrangeAddr: "127.0.0.1:0",
		Org: miniorangetest.OrgSpec{Users: o.Users, Groups: o.Groups, MembershipsPerUser: o.MembershipsPerUser,
			DisabledCount: o.Disabled, Seed: o.Seed},
		Latency: o.Latency, JiraRate: o.Rate, JiraBurst: o.Burst, MOBatchCap: o.SourceBatchCap, Seed: o.Seed,
	})
	if err != nil {
		return nil, fmt.Errorf("starting the simulators: %w", err)
	}
	return sims, nil
}

// setupInProcess runs the first sync at full speed: latency and rate limit off, sink unpaced.
func (o Options) setupInProcess(ctx context.Context, sims *sim.Sims) error {
	defer o.fullSpeed(sims.Jira, sims.MiniOrange)()
	cfg, err := o.config(sims.JiraURL, sims.MiniOrangeURL, false)
	if err != nil {
		return err
	}
	return o.setupPass(ctx, cfg)
}

// latencyKnob is the latency knob of a source simulator.
type latencyKnob interface {
	SetLatency(fixed, jitter time.Duration)
}

// fullSpeed turns the simulators' latency and Jira's rate limit off; the func it returns
// turns them back on as the options set them.
func (o Options) fullSpeed(js *jiratest.Sim, source latencyKnob) (restore func()) {
	js.SetLatency(0, 0)
	js.SetRate(jiratest.Limit{})
	source.SetLatency(0, 0)
	return func() {
		js.SetLatency(o.Latency, 0)
		js.SetRate(jiratest.Limit{RPS: o.Rate, Burst: o.Burst})
		source.SetLatency(o.Latency, 0)
	}
}

// setupPass runs the setup pass with cfg; it fails unless the pass ended ok.
func (o Options) setupPass(ctx context.Context, cfg *configs.Config) error {
	out, err := o.runPass(ctx, cfg, nil)
	if err != nil {
		return fmt.Errorf("setup pass: %w", err)
	}
	return setupOK(out)
}

// applyChurn makes the change at the miniOrange simulator, as an admin would in its console.
func applyChurn(mo *miniorangetest.Sim, c Churn) error {
	for _, m := range c.Moves {
		if err := mo.Move(m.User, m.From, m.To); err != nil {
			return fmt.Errorf("churn: %w", err)
		}
	}
	for _, l := range c.Leavers {
		if err := mo.Leave(l); err != nil {
			return fmt.Errorf("churn: %w", err)
		}
	}
	hires := make([]miniorangetest.User, 0, len(c.Hires))
	for _, h := range c.Hires {
		hires = append(hires, miniorangetest.User{UserName: h.Name, Email: h.Email, FirstName: "New", LastName: "Hire", Groups: h.Groups})
	}
	if _, err := mo.Hire(hires...); err != nil {
		return fmt.Errorf("churn: %w", err)
	}
	return nil
}

// callTable merges the simulators' per-endpoint counters into "METHOD /path STATUS" keys.
func callTable(jira map[jiratest.Call]int64, mo map[string]int) map[string]int64 {
	out := make(map[string]int64, len(jira)+len(mo))
	for k, v := range jira {
		out[fmt.Sprintf("jira %s %s %d", k.Method, k.Endpoint, k.Status)] += v
	}
	for path, v := range mo {
		out["miniorange POST "+path] += int64(v)
	}
	return out
}

// wastedWrites counts the group-member writes Jira answered 400: already a member, or not a
// member.
func wastedWrites(calls map[string]int64) int64 {
	return calls["jira POST /rest/api/3/group/user 400"] + calls["jira DELETE /rest/api/3/group/user 400"]
}

// sortedCalls lists a call table by key.
func sortedCalls(calls map[string]int64) []string {
	keys := make([]string, 0, len(calls))
	for k := range calls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// runRemote runs initial or noop against a running `idsync sim`, counting calls on the client
// side.
func runRemote(ctx context.Context, o Options) (*Result, error) {
	ct, err := newCountingTransport(o.JiraURL, o.MiniOrangeURL)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Transport: ct}
	defer ct.closeIdle()
	cfg, err := o.config(o.JiraURL, o.MiniOrangeURL, true)
	if err != nil {
		return nil, err
	}
	org, err := o.inventory(ctx, cfg, hc)
	if err != nil {
		return nil, err
	}
	res := o.newResult("remote", "client-transport")
	res.Users, res.Groups, res.Memberships = len(org.Users), len(org.Groups), org.Memberships()
	var before *Org
	if o.Scenario == ScenarioNoop {
		out, err := o.runPass(ctx, cfg, hc)
		if err != nil {
			return nil, fmt.Errorf("setup pass: %w", err)
		}
		if err := setupOK(out); err != nil {
			return nil, err
		}
		before = &org
	}
	res.setShape(ShapeOf(before, org, o.caps()), o)
	out, err := o.measured(ctx, cfg, hc, nil, ct.reset)
	c := ct.counts()
	res.Reads, res.Writes, res.Throttled, res.SourceReads = c.reads, c.writes, c.throttled, c.source
	res.Calls = c.calls
	res.WastedWrites = wastedWrites(res.Calls)
	res.setPass(out)
	res.finish()
	return res, err
}

// inventory reads the org the remote miniOrange simulator serves and checks that the remote
// Jira simulator holds only its seed, which the minimums assume.
func (o Options) inventory(ctx context.Context, cfg *configs.Config, hc *http.Client) (Org, error) {
	src, err := miniorange.New(sourceName, *cfg.Sources[0].MiniOrange, miniorange.Options{HTTPClient: hc, Logger: o.Logger})
	if err != nil {
		return Org{}, fmt.Errorf("building the miniOrange client: %w", err)
	}
	defer src.Close()
	dir, err := src.Snapshot(ctx)
	if err != nil {
		return Org{}, fmt.Errorf("reading the org from %s: %w", o.MiniOrangeURL, err)
	}
	a, err := app.Open(cfg, app.Options{Logger: o.Logger, HTTPClient: hc})
	if err != nil {
		return Org{}, fmt.Errorf("opening idsync: %w", err)
	}
	defer a.Close()
	live, err := a.Sink.Live(ctx, reconcile.Scope{})
	if err != nil {
		return Org{}, fmt.Errorf("reading Jira at %s: %w", o.JiraURL, err)
	}
	st := seededSite()
	if len(live.Accounts) != st.accounts || len(live.Groups) != st.groups {
		return Org{}, fmt.Errorf("%w: the Jira simulator at %s holds %d accounts and %d groups, not only its seed (%d and %d): restart `idsync sim` for a fresh site",
			ErrUsage, o.JiraURL, len(live.Accounts), len(live.Groups), st.accounts, st.groups)
	}
	return orgFromDirectory(dir), nil
}
