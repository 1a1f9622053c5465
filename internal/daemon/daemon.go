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
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/app"
	"github.com/idsync/idsync/internal/logging"
	"github.com/idsync/idsync/reconcile"
)

// ErrForced is returned when a second stop signal cut a graceful shutdown short.
var ErrForced = errors.New("forced exit on second signal")

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
	started time.Time
	ctx     context.Context

	cfgMu      sync.RWMutex
	cfg        *configs.Config
	adminToken atomic.Pointer[configs.Secret]
	closing    atomic.Bool
}

// Run loads the config, starts everything, and blocks until a stop signal or ctx ends.
func Run(ctx context.Context, opts Options) error {
	cfg, err := configs.LoadAndValidate(opts.ConfigPath, opts.Flags)
	if err != nil {
		return fmt.Errorf("config %s: %w", opts.ConfigPath, err)
	}
	out := opts.LogOutput
	if out == nil {
		out = os.Stderr
	}
	log, err := logging.New(out, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return err
	}
	// The level lives in zerolog's global level so SIGHUP can change it for every component.
	zerolog.SetGlobalLevel(log.GetLevel())
	log = log.Level(zerolog.TraceLevel)
	for _, w := range cfg.Warnings() {
		log.Warn().Str("key", w.Path).Msg(w.Msg)
	}

	d := &Daemon{opts: opts, log: log, health: newHealth(), started: time.Now(), cfg: cfg}
	d.adminToken.Store(&cfg.AdminToken)

	a, err := app.Open(cfg, app.Options{
		Logger:   log,
		Observer: healthObserver{d.health},
		BaseURL:  baseURL(cfg),
	})
	if err != nil {
		return err
	}
	d.app = a
	for _, w := range a.Store.Warnings() {
		log.Warn().Str(logging.FieldComponent, "state").Msg(w)
	}
	return d.serve(ctx)
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

func (d *Daemon) serve(parent context.Context) (err error) {
	cfg := d.config()
	// passCtx ends passes at shutdown; the executor finishes and journals the item in flight.
	passCtx, stopPasses := context.WithCancel(context.WithoutCancel(parent))
	defer stopPasses()
	d.ctx = passCtx

	d.sched = newScheduler(passCtx, d.log.With().Str(logging.FieldComponent, "schedule").Logger(),
		func(ctx context.Context) {
			if _, err := d.app.RunOnce(ctx, reconcile.RunOptions{Trigger: reconcile.TriggerSchedule}); err != nil && ctx.Err() == nil {
				d.log.Error().Err(err).Msg("scheduled pass failed")
			}
		},
		func() { d.app.Metrics.ScheduledSkipped.Inc() })

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		_ = d.app.Close()
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	srv := d.newServer()
	serveErr := make(chan error, 1)
	go func() {
		var e error
		if cfg.TLS.Enabled() {
			e = srv.ServeTLS(ln, cfg.TLS.CertFile, cfg.TLS.KeyFile)
		} else {
			e = srv.Serve(ln)
		}
		if !errors.Is(e, http.ErrServerClosed) {
			serveErr <- e
		}
		close(serveErr)
	}()
	d.log.Info().Str("listen", ln.Addr().String()).Bool("tls", cfg.TLS.Enabled()).Msg("listening")
	if d.opts.Listening != nil {
		d.opts.Listening(ln.Addr().String())
	}

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = d.app.Runner.Serve(passCtx)
	}()
	if err := d.sched.set(cfg.Schedule, cfg.Jitter); err != nil {
		_ = srv.Close()
		_ = d.app.Close()
		return fmt.Errorf("schedule: %w", err)
	}
	if !d.opts.NoInitialPass {
		d.app.Runner.Request(reconcile.RunOptions{Trigger: reconcile.TriggerStartup})
	}

	sigs := d.opts.Signals
	if sigs == nil {
		ch := make(chan os.Signal, 4)
		signal.Notify(ch, syscall.SIGUSR1, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
		defer signal.Stop(ch)
		sigs = ch
	}

	var stopReason string
	for stopReason == "" {
		select {
		case <-parent.Done():
			stopReason = "context done"
		case e := <-serveErr:
			if e != nil {
				d.log.Error().Err(e).Msg("listener failed")
				err = fmt.Errorf("listener: %w", e)
				stopReason = "listener failed"
			}
		case s := <-sigs:
			switch s {
			case syscall.SIGUSR1:
				d.log.Info().Msg("SIGUSR1: pass requested")
				d.app.Runner.Request(reconcile.RunOptions{Trigger: reconcile.TriggerSignal})
			case syscall.SIGHUP:
				d.reload()
			default:
				stopReason = s.String()
			}
		}
	}

	// Graceful stop, bounded by shutdown_timeout; a second signal forces exit.
	d.log.Info().Str("reason", stopReason).Dur("timeout", cfg.ShutdownTimeout).Msg("shutting down")
	d.closing.Store(true)
	done := make(chan struct{})
	go func() {
		defer close(done)
		stopPasses()
		d.sched.stop()
		wg.Wait()
		shCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		if e := srv.Shutdown(shCtx); e != nil {
			d.log.Warn().Err(e).Msg("listener did not close in time")
			_ = srv.Close()
		}
		d.app.SaveBudget()
		if e := d.app.Close(); e != nil {
			d.log.Error().Err(e).Msg("closing state")
		}
	}()
	timeout := time.NewTimer(cfg.ShutdownTimeout + 5*time.Second)
	defer timeout.Stop()
	select {
	case <-done:
		d.log.Info().Msg("stopped")
		return err
	case s := <-sigs:
		d.log.Warn().Str("signal", s.String()).Msg("second signal: exiting now")
		return ErrForced
	case <-timeout.C:
		d.log.Error().Msg("shutdown timed out; exiting")
		return errors.New("shutdown timed out")
	}
}

// reload re-reads the config file (SIGHUP). A file that does not validate keeps the running
// config, and every problem is logged. Mapping, safety, schedule, log level and the admin
// token apply at once; keys that need a restart are named in a warning.
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
	d.app.Runner.Reconfigure(cfg.Mapping, cfg.Safety)
	d.adminToken.Store(&cfg.AdminToken)
	if lvl, err := zerolog.ParseLevel(cfg.Log.Level); err == nil {
		zerolog.SetGlobalLevel(lvl)
	}
	if keys := needsRestart(old, cfg); len(keys) > 0 {
		d.log.Warn().Strs("keys", keys).Msg("SIGHUP: these changes take effect after a restart")
	}
	// Keep restart-only parts as they run, so status never shows what is not in effect.
	cfg.Listen, cfg.State, cfg.TLS, cfg.Sources, cfg.Sink = old.Listen, old.State, old.TLS, old.Sources, old.Sink
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
	check("state", old.State, cur.State)
	check("tls", old.TLS, cur.TLS)
	check("sources", old.Sources, cur.Sources)
	check("sink", old.Sink, cur.Sink)
	check("log.format", old.Log.Format, cur.Log.Format)
	return keys
}
