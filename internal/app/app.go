// Package app builds idsync's parts from a validated config: the state store, the sources
// (chosen from an explicit map of source types), the Jira sink, the SCIM listener and the
// Runner. The daemon and the one-shot CLI commands share it, so they can never be wired
// differently.
package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/httpx"
	"github.com/idsync/idsync/internal/metrics"
	"github.com/idsync/idsync/internal/version"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/reconcile/runner"
	"github.com/idsync/idsync/sinks/jira"
	"github.com/idsync/idsync/sources/ldap"
	"github.com/idsync/idsync/sources/miniorange"
	"github.com/idsync/idsync/sources/scim"
	"github.com/idsync/idsync/sources/scimpull"
	"github.com/idsync/idsync/state"
)

// App is one wired idsync.
type App struct {
	Config  *configs.Config
	Log     zerolog.Logger
	Metrics *metrics.Metrics
	Store   *state.Store
	Sink    *jira.Sink
	Runner  *runner.Runner
	// SCIM is the push listener; nil when no source has push enabled.
	SCIM *scim.Handler

	pull map[string]reconcile.Source // pull sources by name, for RotateSourceSecrets

	clock  Clock
	onPush func(source string, userNames, groupNames []string)

	closeOnce sync.Once
}

// Clock is the time of every part: the Runner, the Jira sink (pacing, Retry-After and
// backoff waits), the SCIM listener and the miniOrange request signatures. It has the method
// set of jira.Clock and jiratest.Clock, so one value can drive idsync and the simulators.
type Clock interface {
	Now() time.Time
	// Sleep waits for d or until ctx is done, whichever comes first.
	Sleep(ctx context.Context, d time.Duration) error
}

// Options are the collaborators the caller supplies.
type Options struct {
	Logger  zerolog.Logger
	Metrics *metrics.Metrics // nil: a fresh registry
	// Observer hears passes besides the metrics (progress bars); may be nil.
	Observer runner.Observer
	// HTTPClient is used for sources and the sink (nil: their defaults).
	HTTPClient *http.Client
	// StateTimeout bounds the wait for the state file lock (state's default when zero).
	StateTimeout time.Duration
	// BaseURL is the listener's external URL for SCIM meta.location.
	BaseURL string

	// The hooks below let a test drive the real wiring on its own terms (internal/simulation
	// runs whole histories on a virtual clock and injects crashes); the daemon and the CLI
	// leave them zero.

	// Clock replaces real time (nil: real time). In-process tests pass a virtual clock so
	// that Retry-After and backoff waits take no real time.
	Clock Clock
	// AfterFunc schedules the SCIM listener's debounce timers (nil: time.AfterFunc).
	AfterFunc func(d time.Duration, f func()) scim.Timer
	// OnPush, when set, receives the SCIM listener's debounced triggers (source, userNames,
	// group names) instead of Runner.Request, so a caller that runs passes itself with
	// RunOnce (and not Runner.Serve) decides when the targeted pass runs.
	OnPush func(source string, userNames, groupNames []string)
	// RunID makes run ids (nil: state.NewRunID, which draws random bits).
	RunID func(now time.Time) string
	// SourceRetry overrides the pull sources' retry policy; zero fields keep the sources'
	// defaults. The pull clients wait between retries in real time, so tests shorten it.
	SourceRetry httpx.Retry
	// WrapStore wraps the store the Runner reads and journals through (the SCIM listener
	// keeps the state store itself), for example to stop journaling at a chosen write as a
	// crash would.
	WrapStore func(runner.Store) runner.Store
	// WrapSink wraps the sink the Runner applies changes through.
	WrapSink func(reconcile.Sink) reconcile.Sink
	// WrapSource wraps each source as the Runner sees it (its pull side and its push side),
	// for example to fail a read of the push store.
	WrapSource func(runner.SourceSpec) runner.SourceSpec
}

// ErrStateLocked is returned (wrapped) when another process holds the state file.
var ErrStateLocked = state.ErrLocked

// Open builds every part. On error, whatever was opened is closed again.
func Open(cfg *configs.Config, opts Options) (*App, error) {
	if cfg == nil {
		return nil, errors.New("app: nil config")
	}
	m := opts.Metrics
	if m == nil {
		m = metrics.New()
	}
	a := &App{Config: cfg, Log: opts.Logger, Metrics: m, clock: opts.Clock, onPush: opts.OnPush}

	st, err := state.Open(cfg.State.Path, state.Options{
		Timeout: opts.StateTimeout,
		Logger:  opts.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("opening state: %w", err)
	}
	a.Store = st

	if err := a.build(cfg, opts); err != nil {
		_ = a.Close()
		return nil, err
	}
	return a, nil
}

func (a *App) build(cfg *configs.Config, opts Options) error {
	if cfg.Sink.Type != configs.SinkJira || cfg.Sink.Jira == nil {
		return fmt.Errorf("sink.type %q: only jira is supported", cfg.Sink.Type)
	}
	jo := jira.Options{
		Metrics:    a.Metrics,
		Logger:     a.Log,
		HTTPClient: opts.HTTPClient,
		Version:    version.String(),
	}
	if opts.Clock != nil {
		jo.Clock = opts.Clock
	}
	sink, err := jira.New(*cfg.Sink.Jira, jo)
	if err != nil {
		return fmt.Errorf("building the Jira sink: %w", err)
	}
	a.Sink = sink

	var pushSources []scim.SourceOptions
	for _, sc := range cfg.Sources {
		if sc.PushEnabled() {
			po := scim.SourceOptions{Name: sc.Name}
			if sc.Push != nil {
				po.Token, po.PreviousToken = sc.Push.Token, sc.Push.PreviousToken
				po.RateLimit, po.Debounce = sc.Push.RateLimit, sc.Push.Debounce
			}
			pushSources = append(pushSources, po)
		}
	}
	if len(pushSources) > 0 {
		h, err := scim.NewHandler(scim.HandlerOptions{
			Sources:   pushSources,
			Store:     a.Store,
			OnChange:  a.pushed,
			Metrics:   a.Metrics,
			Logger:    a.Log,
			BaseURL:   opts.BaseURL,
			Now:       a.now(),
			AfterFunc: opts.AfterFunc,
		})
		if err != nil {
			return fmt.Errorf("building the SCIM listener: %w", err)
		}
		a.SCIM = h
	}

	specs := make([]runner.SourceSpec, 0, len(cfg.Sources))
	for _, sc := range cfg.Sources {
		spec, err := a.sourceSpec(sc, opts)
		if err != nil {
			return fmt.Errorf("sources[%s]: %w", sc.Name, err)
		}
		if opts.WrapSource != nil {
			spec = opts.WrapSource(spec)
		}
		specs = append(specs, spec)
	}

	var obs runner.Observer = runner.MetricsObserver{M: a.Metrics}
	if opts.Observer != nil {
		obs = runner.Observers{obs, opts.Observer}
	}
	var store runner.Store = a.Store
	if opts.WrapStore != nil {
		store = opts.WrapStore(store)
	}
	var rsink reconcile.Sink = sink
	if opts.WrapSink != nil {
		rsink = opts.WrapSink(rsink)
	}
	runID := opts.RunID
	if runID == nil {
		runID = state.NewRunID
	}
	r, err := runner.NewRunner(runner.RunnerConfig{
		Sources:          specs,
		Sink:             rsink,
		Store:            store,
		Mapping:          cfg.Mapping,
		Safety:           cfg.Safety,
		Concurrency:      cfg.Sink.Jira.RateLimit.Concurrency,
		ProfileWritable:  sink.ProfileWritable(),
		DeactivateMethod: sink.Method(),
		Observer:         obs,
		Logger:           a.Log,
		Now:              a.now(),
		RunID:            runID,
		FullReadInterval: cfg.Sink.Jira.FullReadInterval,
	})
	if err != nil {
		return fmt.Errorf("building the runner: %w", err)
	}
	a.Runner = r
	return nil
}

// sourceFactories maps a pull source type to its constructor; push-only sources (type scim)
// are served by the SCIM listener.
var sourceFactories = map[string]func(a *App, sc configs.SourceConfig, opts Options) (reconcile.Source, error){
	configs.SourceMiniOrange: func(a *App, sc configs.SourceConfig, opts Options) (reconcile.Source, error) {
		r := opts.SourceRetry
		return miniorange.New(sc.Name, *sc.MiniOrange, miniorange.Options{
			Metrics: a.Metrics, HTTPClient: opts.HTTPClient,
			Logger: a.Log, Now: a.now(),
			RetryMax: r.Max, RetryWaitMin: r.WaitMin, RetryWaitMax: r.WaitMax, MaxRetryAfter: r.MaxRetryAfter,
		})
	},
	configs.SourceSCIMPull: func(a *App, sc configs.SourceConfig, opts Options) (reconcile.Source, error) {
		r := opts.SourceRetry
		return scimpull.New(sc.Name, *sc.SCIMPull, scimpull.Options{
			Metrics: a.Metrics, HTTPClient: opts.HTTPClient,
			Logger:   a.Log,
			RetryMax: r.Max, RetryWaitMin: r.WaitMin, RetryWaitMax: r.WaitMax, MaxRetryAfter: r.MaxRetryAfter,
		})
	},
}

func (a *App) sourceSpec(sc configs.SourceConfig, opts Options) (runner.SourceSpec, error) {
	spec := runner.SourceSpec{Priority: sc.Priority, CustomersOnly: sc.CustomersOnly}
	if sc.Type == configs.SourceSCIM {
		if a.SCIM == nil {
			return spec, errors.New("push-only source without a SCIM listener")
		}
		spec.Source, spec.PushOnly = scim.NewSource(sc.Name, a.SCIM), true
		return spec, nil
	}
	build, ok := sourceFactories[sc.Type]
	if !ok {
		return spec, fmt.Errorf("source type %q is not supported", sc.Type)
	}
	src, err := build(a, sc, opts)
	if err != nil {
		return spec, err
	}
	spec.Source = src
	if a.pull == nil {
		a.pull = map[string]reconcile.Source{}
	}
	a.pull[sc.Name] = src
	if sc.PushEnabled() && a.SCIM != nil {
		spec.Push = scim.NewSource(sc.Name, a.SCIM)
	}
	return spec, nil
}

// RotateSourceSecrets hands sc's secrets to the running source of that name: its pull
// client's API key or token, and its SCIM push tokens. Requests in flight finish with the
// old ones.
func (a *App) RotateSourceSecrets(sc configs.SourceConfig) error {
	var errs []error
	switch src := a.pull[sc.Name].(type) {
	case *miniorange.Source:
		if sc.MiniOrange != nil {
			errs = append(errs, src.SetAPIKey(sc.MiniOrange.APIKey.Value()))
		}
	case *scimpull.Source:
		if sc.SCIMPull != nil {
			errs = append(errs, src.SetToken(sc.SCIMPull.Token.Value()))
		}
	case *ldap.Source:
		if sc.LDAP != nil {
			errs = append(errs, src.SetBindPassword(sc.LDAP.BindPassword.Value()))
		}
	}
	if sc.PushEnabled() && sc.Push != nil && a.SCIM != nil {
		errs = append(errs, a.SCIM.SetTokens(sc.Name, sc.Push.Token, sc.Push.PreviousToken))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("source %s: %w", sc.Name, err)
	}
	return nil
}

// RotateSinkSecrets hands j's API token and org API key to the running Jira sink.
func (a *App) RotateSinkSecrets(j configs.JiraConfig) error {
	org := ""
	if j.AdminAPI != nil {
		org = j.AdminAPI.OrgAPIKey.Value()
	}
	if err := a.Sink.SetCredentials(j.APIToken.Value(), org); err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	return nil
}

// pushed turns a debounced SCIM write into a targeted pass request (or hands it to
// Options.OnPush).
func (a *App) pushed(source string, userNames, groupNames []string) {
	if a.onPush != nil {
		a.onPush(source, userNames, groupNames)
		return
	}
	if a.Runner == nil {
		return
	}
	a.Runner.Request(runner.RunOptions{Trigger: reconcile.TriggerPush, Users: userNames, Groups: groupNames})
}

// now is the clock's Now (time.Now without a clock).
func (a *App) now() func() time.Time {
	if a.clock == nil {
		return time.Now
	}
	return a.clock.Now
}

// SaveBudget stores the sink's last known API budget, so `status` can show it after a restart.
func (a *App) SaveBudget() {
	b := a.Sink.Budget()
	if b.Limit == 0 && b.Remaining == 0 && b.Throttled == 0 {
		return
	}
	if err := a.Store.PutBudget(state.Budget{
		Target: jira.TargetJira, Limit: b.Limit, Remaining: b.Remaining, Reset: b.Reset,
		Throttled: int(b.Throttled), UpdatedAt: a.now()(),
	}); err != nil {
		a.Log.Warn().Err(err).Msg("saving the API budget")
	}
}

// Close stops the SCIM listener's timers (flushing pending pushes) and closes the state
// file. It is safe to call twice.
func (a *App) Close() error {
	var errs []error
	a.closeOnce.Do(func() {
		if a.SCIM != nil {
			errs = append(errs, a.SCIM.Close())
		}
		if a.Store != nil {
			errs = append(errs, a.Store.Close())
		}
	})
	return errors.Join(errs...)
}

// RunOnce is a convenience for one-shot commands.
func (a *App) RunOnce(ctx context.Context, o runner.RunOptions) (reconcile.Run, error) {
	run, err := a.Runner.RunOnce(ctx, o)
	a.SaveBudget()
	return run, err
}
