// Package daemon is `idsync run`: the long-lived process with its schedule, signals, HTTP
// listener (health, readiness, metrics, SCIM, admin API) and graceful shutdown. Every
// trigger goes through the one Runner, so passes never overlap.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"reflect"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/app"
	"github.com/idsync/idsync/internal/logging"
	"github.com/idsync/idsync/internal/version"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/reconcile/runner"
	"github.com/idsync/idsync/sinks/jira"
)

// ErrForced is returned when a second stop signal cut a graceful shutdown short.
var ErrForced = errors.New("forced exit on second signal")

// ErrShutdownTimeout is returned when the graceful stop did not end within shutdown_timeout.
var ErrShutdownTimeout = errors.New("shutdown did not finish within shutdown_timeout")

// Options configure one daemon run.
type Options struct {
	ConfigPath string
	// Flags are the command's flags, re-applied on every reload.
	Flags         *pflag.FlagSet
	NoInitialPass bool
	// Signals delivers OS signals; nil subscribes to the real ones.
	Signals <-chan os.Signal
	// LogOutput is where logs go (stderr when nil).
	LogOutput io.Writer
	// Listening is told the bound address once the listener is up (tests, ":0").
	Listening func(addr string)
}

// Daemon is one running idsync.
type Daemon struct {
	opts    Options
	log     zerolog.Logger
	app     *app.App
	sched   *scheduler
	health  *health
	cert    *certificate // nil without TLS
	started time.Time
	// ctx is the passes' context: it ends when shutdown begins.
	ctx context.Context

	cfgMu      sync.RWMutex
	cfg        *configs.Config
	adminToken atomic.Pointer[configs.Secret]

	// passMu guards closing against passes.Add, so Wait never races a new pass.
	passMu  sync.Mutex
	closing bool
	passes  sync.WaitGroup
	// waitingSyncs counts one-user syncs whose goroutine waits for or runs its pass.
	waitingSyncs atomic.Int32
}

// Run loads the config, starts everything, and blocks until a stop signal or ctx ends.
func Run(ctx context.Context, opts Options) error {
	// Subscribe before anything else: SIGHUP and SIGUSR1 kill a process that has not asked
	// for them, and a supervisor may send them as soon as the process exists.
	sigs := opts.Signals
	if sigs == nil {
		ch := make(chan os.Signal, 8)
		signal.Notify(ch, syscall.SIGUSR1, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
		defer signal.Stop(ch)
		sigs = ch
	}
	cfg, err := configs.LoadAndValidate(opts.ConfigPath, opts.Flags)
	if err != nil {
		return fmt.Errorf("config %s:\n%w", opts.ConfigPath, err)
	}
	out := opts.LogOutput
	if out == nil {
		out = os.Stderr
	}
	log, err := logging.New(out, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return err
	}
	// The level lives in zerolog's global level so SIGHUP can change it for every component
	// at once; the loggers themselves pass everything, so disabled levels cost nothing.
	zerolog.SetGlobalLevel(log.GetLevel())
	log = log.Level(zerolog.TraceLevel)
	for _, w := range cfg.Warnings() {
		log.Warn().Str("key", w.Path).Msg(w.Msg)
	}

	d := &Daemon{opts: opts, log: log, health: newHealth(), started: time.Now(), cfg: cfg}
	d.adminToken.Store(&cfg.AdminToken)
	if cfg.TLS.Enabled() {
		// Loaded before anything opens, so a bad pair is a start-up error, not a dead listener.
		if d.cert, err = loadCertificate(cfg.TLS.CertFile, cfg.TLS.KeyFile); err != nil {
			return fmt.Errorf("tls: %w", err)
		}
	}

	a, err := app.Open(cfg, app.Options{
		Logger:   log,
		Observer: passObserver{healthObserver{d.health}, d.applyRetention},
		BaseURL:  baseURL(cfg),
	})
	if err != nil {
		return err
	}
	d.app = a
	a.Store.SetRetention(retention(cfg.State.Retention))
	for _, w := range a.Store.Warnings() {
		log.Warn().Str(logging.FieldComponent, "state").Msg(w)
	}
	d.primeMetrics()
	return d.serve(ctx, sigs)
}

func baseURL(cfg *configs.Config) string {
	scheme := "http"
	if cfg.TLS.Enabled() {
		scheme = "https"
	}
	return scheme + "://" + cfg.Listen
}

func (d *Daemon) config() *configs.Config {
	d.cfgMu.RLock()
	defer d.cfgMu.RUnlock()
	return d.cfg
}

// primeMetrics restores what the state file knows, so a restart does not read as "never
// succeeded" or "nothing held" to alerting until the first pass ends, and creates the pass
// and wait counters at zero so rate() and increase() see their first event.
func (d *Daemon) primeMetrics() {
	m := d.app.Metrics
	for _, t := range []string{reconcile.TriggerSchedule, reconcile.TriggerSignal, reconcile.TriggerPush,
		reconcile.TriggerAPI, reconcile.TriggerStartup} {
		for _, r := range []string{reconcile.ResultOK, reconcile.ResultPartial, reconcile.ResultFailed, reconcile.ResultHeld} {
			m.Passes.WithLabelValues(t, r)
		}
	}
	m.ConfigReloads.WithLabelValues("ok")
	m.ConfigReloads.WithLabelValues("invalid")
	m.RateLimitWait.WithLabelValues(jira.TargetJira)
	for _, s := range d.config().Sources {
		if s.Type != configs.SourceSCIM {
			m.RateLimitWait.WithLabelValues(s.Type) // the pull clients' target label is their type
		}
	}
	if h, err := d.app.Store.HeldPlan(); err == nil {
		d.app.Metrics.HeldChanges(h.Deactivations + h.Removals)
	}
	runs, err := d.app.Store.Runs(50)
	if err != nil {
		return
	}
	for _, r := range runs {
		if r.Result == reconcile.ResultOK && !r.DryRun && r.Target == "" {
			d.app.Metrics.LastSuccess.Set(float64(r.Finished.Unix()))
			return
		}
	}
}

func (d *Daemon) serve(parent context.Context, sigs <-chan os.Signal) error {
	cfg := d.config()
	// passCtx ends passes at shutdown; the executor finishes and journals the item in flight.
	passCtx, stopPasses := context.WithCancel(context.WithoutCancel(parent))
	defer stopPasses()
	d.ctx = passCtx

	d.sched = newScheduler(passCtx, d.log.With().Str(logging.FieldComponent, "schedule").Logger(),
		d.scheduledPass, func() { d.app.Metrics.ScheduledSkipped.Inc() })

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		_ = d.app.Close()
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	srv := d.newServer()
	serveErr := make(chan error, 1)
	go func() {
		var e error
		if d.cert != nil {
			e = srv.ServeTLS(ln, "", "") // the certificate comes from srv.TLSConfig
		} else {
			e = srv.Serve(ln)
		}
		if errors.Is(e, http.ErrServerClosed) {
			e = nil
		}
		serveErr <- e
	}()
	// The start-up line: which build, which config, where, and what it reads.
	build := version.Get()
	d.log.Info().Str("version", build.Version).Str("revision", build.Revision).Str("go_version", build.GoVersion).
		Str("config", cfg.Path).Str("listen", ln.Addr().String()).Bool("tls", d.cert != nil).
		Strs("sources", sourceNames(cfg.Sources)).Str("schedule", cfg.Schedule).Msg("listening")
	if d.opts.Listening != nil {
		d.opts.Listening(ln.Addr().String())
	}

	d.enter()
	go func() {
		defer d.passes.Done()
		// A pass that panics must not end the daemon's requested passes for good: log it
		// with its stack and serve on (the Runner releases its lock on the way out).
		for passCtx.Err() == nil {
			d.guard("requested pass", func() { _ = d.app.Runner.Serve(passCtx) })
		}
	}()
	if err := d.sched.set(cfg.Schedule, cfg.Jitter); err != nil {
		// Validation parsed the schedule already; this is defence in depth.
		return d.shutdown("schedule refused", srv, sigs, stopPasses, fmt.Errorf("schedule: %w", err))
	}
	if !d.opts.NoInitialPass {
		d.app.Runner.Request(runner.RunOptions{Trigger: reconcile.TriggerStartup})
	}

	for {
		select {
		case <-parent.Done():
			return d.shutdown("context done", srv, sigs, stopPasses, nil)
		case e := <-serveErr:
			d.log.Error().Err(e).Msg("listener failed")
			return d.shutdown("listener failed", srv, sigs, stopPasses, fmt.Errorf("listener: %w", e))
		case s := <-sigs:
			switch s {
			case syscall.SIGUSR1:
				d.log.Info().Msg("SIGUSR1: pass requested")
				d.app.Runner.Request(runner.RunOptions{Trigger: reconcile.TriggerSignal})
			case syscall.SIGHUP:
				d.reload()
			default:
				return d.shutdown(s.String(), srv, sigs, stopPasses, nil)
			}
		}
	}
}

// sourceNames describes the sources for the start-up line: "corp (miniorange, push)".
func sourceNames(sources []configs.SourceConfig) []string {
	out := make([]string, len(sources))
	for i, s := range sources {
		out[i] = s.Name + " (" + s.Type
		if s.Type != configs.SourceSCIM && s.PushEnabled() {
			out[i] += ", push"
		}
		out[i] += ")"
	}
	return out
}

// scheduledPass is one cron tick's pass; it blocks the tick so skip-if-still-running works.
func (d *Daemon) scheduledPass(ctx context.Context) {
	if !d.enter() {
		return
	}
	defer d.passes.Done()
	if _, err := d.app.RunOnce(ctx, runner.RunOptions{Trigger: reconcile.TriggerSchedule}); err != nil && ctx.Err() == nil {
		d.log.Error().Err(err).Msg("scheduled pass failed")
	}
}

// guard runs fn, turning a panic into an error log with its stack; it reports whether fn
// returned normally.
func (d *Daemon) guard(what string, fn func()) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			d.log.Error().Str("panic", fmt.Sprint(v)).Str("stack", string(debug.Stack())).Msg(what + " panicked; the daemon goes on")
			ok = false
		}
	}()
	fn()
	return true
}

// enter registers a pass about to start; it refuses once shutdown has begun.
func (d *Daemon) enter() bool {
	d.passMu.Lock()
	defer d.passMu.Unlock()
	if d.closing {
		return false
	}
	d.passes.Add(1)
	return true
}

func (d *Daemon) isClosing() bool {
	d.passMu.Lock()
	defer d.passMu.Unlock()
	return d.closing
}

// shutdown stops gracefully, in order: no new passes; the pass in flight finishes its items
// and journals them; the listener drains with Shutdown; the API budget and the state file
// are saved and closed. The whole sequence is bounded by shutdown_timeout; a second stop
// signal exits at once. SIGHUP and SIGUSR1 are ignored meanwhile (a log rotation must not
// cut a shutdown short).
func (d *Daemon) shutdown(reason string, srv *http.Server, sigs <-chan os.Signal, stopPasses func(), cause error) error {
	timeout := d.config().ShutdownTimeout
	deadline := time.Now().Add(timeout)
	d.log.Info().Str("reason", reason).Dur("timeout_ms", timeout).Msg("shutting down")
	d.passMu.Lock()
	d.closing = true
	d.passMu.Unlock()

	done := make(chan struct{})
	go func() {
		defer close(done)
		stopPasses()
		d.sched.stop()
		d.passes.Wait()
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		if e := srv.Shutdown(ctx); e != nil {
			d.log.Warn().Err(e).Msg("listener did not drain in time; closing its connections")
			_ = srv.Close()
		}
		d.app.SaveBudget()
		if e := d.app.Close(); e != nil {
			d.log.Error().Err(e).Msg("closing state")
		}
	}()
	// A little past the deadline, so a Shutdown that used all of it can still close state.
	timer := time.NewTimer(time.Until(deadline) + time.Second)
	defer timer.Stop()
	for {
		select {
		case <-done:
			d.log.Info().Msg("stopped")
			return cause
		case s := <-sigs:
			if s == syscall.SIGINT || s == syscall.SIGTERM {
				d.log.Warn().Str("signal", s.String()).Msg("second signal: exiting now; the journal holds every item that landed")
				return ErrForced
			}
			d.log.Warn().Str("signal", s.String()).Msg("signal ignored while shutting down")
		case <-timer.C:
			cur := d.app.Runner.Status().Current
			ev := d.log.Error().Dur("timeout_ms", timeout)
			if cur != nil {
				ev = ev.Str(logging.FieldRunID, cur.ID)
			}
			ev.Msg("shutdown timed out; exiting with work in flight (the journal holds every item that landed; the next pass continues)")
			return ErrShutdownTimeout
		}
	}
}

// reload re-reads the config file (SIGHUP). A file that does not validate keeps the running
// config, and every problem is logged. Mapping, safety, schedule, jitter, log level,
// state.retention, the admin token, the secrets of sources and sink (API tokens and keys, SCIM push tokens; when
// nothing else of that source or sink changed), shutdown_timeout and the TLS certificate
// (same paths, new contents) apply at once; keys that need a restart are named in a warning
// and keep their running values.
func (d *Daemon) reload() {
	old := d.config()
	cfg, err := configs.LoadAndValidate(d.opts.ConfigPath, d.opts.Flags)
	if err != nil {
		var ps *configs.Problems
		if errors.As(err, &ps) {
			for _, p := range ps.List {
				d.log.Error().Str("key", p.Path).Msg("config reload: " + p.Msg)
			}
		} else {
			d.log.Error().Err(err).Msg("config reload failed")
		}
		d.log.Error().Msg("SIGHUP: the new config is invalid; keeping the running config")
		d.app.Metrics.ConfigReloads.WithLabelValues("invalid").Inc()
		return
	}
	if err := d.sched.set(cfg.Schedule, cfg.Jitter); err != nil {
		d.log.Error().Err(err).Msg("SIGHUP: schedule refused; keeping the running config")
		d.app.Metrics.ConfigReloads.WithLabelValues("invalid").Inc()
		return
	}
	for _, w := range cfg.Warnings() {
		d.log.Warn().Str("key", w.Path).Msg(w.Msg)
	}
	d.app.Runner.Reconfigure(cfg.Mapping, cfg.Safety)
	d.app.Store.SetRetention(retention(cfg.State.Retention))
	d.adminToken.Store(&cfg.AdminToken)
	if lvl, err := zerolog.ParseLevel(cfg.Log.Level); err == nil {
		zerolog.SetGlobalLevel(lvl)
	}
	if d.cert != nil {
		if err := d.cert.reload(); err != nil {
			d.log.Error().Err(err).Msg("SIGHUP: TLS certificate not reloaded; the listener keeps the previous one")
		} else {
			d.log.Info().Time("not_after", d.cert.notAfter()).Msg("SIGHUP: TLS certificate reloaded")
		}
	}
	running := *old
	running.Sources, running.Sink = d.rotateSecrets(old, cfg)
	if keys := needsRestart(&running, cfg); len(keys) > 0 {
		d.log.Warn().Strs("keys", keys).Msg("SIGHUP: these changes take effect after a restart")
	}
	// Keep restart-only parts as they run, so status never shows what is not in effect.
	cfg.Listen, cfg.State.Path, cfg.TLS, cfg.Sources, cfg.Sink, cfg.Log.Format = old.Listen, old.State.Path, old.TLS, running.Sources, running.Sink, old.Log.Format
	d.cfgMu.Lock()
	d.cfg = cfg
	d.cfgMu.Unlock()
	d.app.Metrics.ConfigReloads.WithLabelValues("ok").Inc()
	d.log.Info().Msg("SIGHUP: config reloaded; the next pass uses it")
}

func needsRestart(old, cur *configs.Config) []string {
	var keys []string
	check := func(key string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			keys = append(keys, key)
		}
	}
	check("listen", old.Listen, cur.Listen)
	check("state.path", old.State.Path, cur.State.Path)
	check("tls", old.TLS, cur.TLS)
	check("sources", old.Sources, cur.Sources)
	check("sink", old.Sink, cur.Sink)
	check("log.format", old.Log.Format, cur.Log.Format)
	return keys
}

// rotateSecrets hands new secrets (API tokens and keys, SCIM push tokens) to the running
// sources and sink whose other settings did not change, and returns the sources and sink as
// they now run. A part with other changes runs on as it was, secrets included, until a
// restart (needsRestart names it).
func (d *Daemon) rotateSecrets(old, cur *configs.Config) ([]configs.SourceConfig, configs.SinkConfig) {
	oldBare, curBare := old.WithoutSecrets(), cur.WithoutSecrets()
	sources := slices.Clone(old.Sources)
	for i, o := range old.Sources {
		j := slices.IndexFunc(cur.Sources, func(c configs.SourceConfig) bool { return c.Name == o.Name })
		if j < 0 || reflect.DeepEqual(o, cur.Sources[j]) || !reflect.DeepEqual(oldBare.Sources[i], curBare.Sources[j]) {
			continue
		}
		if err := d.app.RotateSourceSecrets(cur.Sources[j]); err != nil {
			d.log.Error().Err(err).Str(logging.FieldSource, o.Name).Msg("SIGHUP: the source's new secrets were not applied; restart to apply them")
			continue
		}
		sources[i] = cur.Sources[j]
		d.log.Info().Str(logging.FieldSource, o.Name).Msg("SIGHUP: the source's secrets changed and apply from now on")
	}
	sink := old.Sink
	if cur.Sink.Jira != nil && !reflect.DeepEqual(old.Sink, cur.Sink) && reflect.DeepEqual(oldBare.Sink, curBare.Sink) {
		if err := d.app.RotateSinkSecrets(*cur.Sink.Jira); err != nil {
			d.log.Error().Err(err).Msg("SIGHUP: the sink's new secrets were not applied; restart to apply them")
		} else {
			sink = cur.Sink
			d.log.Info().Msg("SIGHUP: the Jira credentials changed and apply from now on")
		}
	}
	return sources, sink
}
