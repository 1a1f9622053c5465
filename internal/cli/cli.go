// Package cli holds what the one-shot commands share: loading the config with every problem
// printed, opening the app with a clear message when the daemon holds the state file, output
// formats, the progress bar and exit codes from a run's outcome.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/app"
	"github.com/idsync/idsync/internal/logging"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/reconcile/runner"
	"github.com/idsync/idsync/state"
)

// Exit codes of one-shot commands, documented in docs/reference.md.
const (
	ExitOK      = 0
	ExitPartial = 1 // some items failed
	ExitConfig  = 2 // config, usage or connection error (including an incomplete source read)
	ExitHeld    = 3 // the circuit breaker held changes back
	ExitNotImpl = 4
)

// ErrLockedHint is appended when the daemon holds the state file.
const ErrLockedHint = "a running daemon (idsync run) holds this state file: use its admin API instead " +
	"(idsync status --addr URL, idsync plan --addr URL, idsync audit --addr URL, idsync approve --addr URL RUN_ID, " +
	"idsync state backup --addr URL OUT, POST /api/v1/reconcile), or stop it first"

// DefaultConfigPath is the config file every command reads when neither -c nor
// $IDSYNC_CONFIG names one: where the packages and the OCI image put it.
const DefaultConfigPath = "/etc/idsync/idsync.yaml"

// ConfigEnv is the environment variable that names the config file when -c is not given.
const ConfigEnv = "IDSYNC_CONFIG"

// ConfigUsage is the help text of every command's -c flag.
const ConfigUsage = "config file (default $" + ConfigEnv + ", else " + DefaultConfigPath + ")"

// defaultConfig is DefaultConfigPath; tests point it elsewhere.
var defaultConfig = DefaultConfigPath

// ConfigFlag adds the -c/--config flag to fs, bound to path.
func ConfigFlag(fs *pflag.FlagSet, path *string) {
	fs.StringVarP(path, "config", "c", "", ConfigUsage)
}

// ConfigPath resolves the config file: the -c flag, else $IDSYNC_CONFIG, else
// DefaultConfigPath. A file named by the flag or the variable is returned as given (loading
// it reports a missing one); the default is returned only when it exists, and otherwise the
// error names the variable and the default both.
func ConfigPath(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if p := os.Getenv(ConfigEnv); p != "" {
		return p, nil
	}
	if _, err := os.Stat(defaultConfig); err != nil {
		return "", fmt.Errorf("no config file: pass -c FILE, set %s, or create %s (%v)", ConfigEnv, defaultConfig, err)
	}
	return defaultConfig, nil
}

// LoadConfig loads and validates the config file (ConfigPath resolves an empty path); the
// error lists every problem.
func LoadConfig(path string, fs *pflag.FlagSet) (*configs.Config, error) {
	path, err := ConfigPath(path)
	if err != nil {
		return nil, err
	}
	cfg, err := configs.LoadAndValidate(path, fs)
	if err != nil {
		return nil, fmt.Errorf("config %s:\n%w", path, err)
	}
	return cfg, nil
}

// Logger builds the logger of a one-shot command: the config's level and format, on stderr.
func Logger(cfg *configs.Config, w io.Writer) zerolog.Logger {
	log, err := logging.New(w, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		log, _ = logging.New(w, "info", "auto")
	}
	return log
}

// OpenApp wires the app for a one-shot command (no SCIM listener).
func OpenApp(cfg *configs.Config, log zerolog.Logger, obs runner.Observer) (*app.App, error) {
	for _, w := range cfg.Warnings() {
		log.Warn().Str("key", w.Path).Msg(w.Msg)
	}
	a, err := app.Open(cfg, app.Options{Logger: log, Observer: obs})
	if err != nil {
		if errors.Is(err, state.ErrLocked) {
			return nil, fmt.Errorf("%w\n%s", err, ErrLockedHint)
		}
		return nil, err
	}
	for _, w := range a.Store.Warnings() {
		log.Warn().Msg(w)
	}
	a.Store.SetRetention(state.Retention{Runs: cfg.State.Retention.Runs, Audit: cfg.State.Retention.Audit})
	return a, nil
}

// ApplyRetention deletes what state.retention no longer keeps after a one-shot pass, as the
// daemon does after its passes (for sites that run `idsync reconcile` from cron). A failure
// is logged: the next pass tries again.
func ApplyRetention(a *app.App, log zerolog.Logger) {
	start := time.Now()
	p, err := a.Store.ApplyRetention(start)
	if err != nil {
		log.Warn().Err(err).Msg("state retention not applied; the next pass tries again")
		return
	}
	if p.Runs+p.Audit > 0 {
		log.Info().Int("runs", p.Runs).Int("audit_records", p.Audit).Bool("more", p.More).
			Dur("took_ms", time.Since(start)).Msg("state retention: old records deleted")
	}
}

// OpenState opens the state file alone (state inspect, audit).
func OpenState(cfg *configs.Config, log zerolog.Logger, readOnly bool) (*state.Store, error) {
	st, err := state.Open(cfg.State.Path, state.Options{ReadOnly: readOnly, Logger: log})
	if err != nil {
		if errors.Is(err, state.ErrLocked) {
			return nil, fmt.Errorf("%w\n%s", err, ErrLockedHint)
		}
		return nil, err
	}
	return st, nil
}

// ExitCode maps a run's outcome to the command's exit code.
func ExitCode(run reconcile.Run) int {
	if run.Result == reconcile.ResultHeld {
		return ExitHeld
	}
	if run.Result == reconcile.ResultFailed {
		return ExitConfig
	}
	for _, s := range run.Sources {
		if !s.Complete {
			return ExitConfig
		}
	}
	for _, byResult := range run.Counts {
		if byResult["failed"] > 0 || byResult["skipped"] > 0 {
			return ExitPartial
		}
	}
	if run.Result == reconcile.ResultPartial {
		return ExitPartial
	}
	return ExitOK
}

// NoneFound reports whether a targeted run found its people in no source: every source
// read complete and empty (a typo in --user).
func NoneFound(run reconcile.Run) bool {
	if run.Target == "" || len(run.Sources) == 0 {
		return false
	}
	for _, s := range run.Sources {
		if !s.Complete || s.Users > 0 {
			return false
		}
	}
	return true
}

// CheckFormat accepts table or json.
func CheckFormat(f string) error {
	if f != "table" && f != "json" {
		return fmt.Errorf("-o %q: want table or json", f)
	}
	return nil
}

// Stderr is where one-shot commands log (a variable so tests can capture it).
var Stderr io.Writer = os.Stderr

// CollapseIntents drops the write-ahead "started" audit records whose outcome was recorded
// too, so the log reads one line per change; a "started" record without an outcome (the
// process died mid-change) stays visible.
func CollapseIntents(recs []reconcile.AuditRecord) []reconcile.AuditRecord {
	return state.CollapseIntents(recs, nil)
}

// RowsCut reports whether a plan table of run with at most max rows per kind (and per guard of
// its held items) leaves rows out, so the reader can be told where the rest is.
func RowsCut(run reconcile.Run, max int) bool {
	if max <= 0 {
		return false
	}
	if run.Changes != nil {
		for _, k := range reconcile.Kinds {
			if len(*run.Changes.List(k)) > max {
				return true
			}
		}
	}
	held := run.HeldByGuard
	if held == nil {
		held = map[string]int{}
		for _, h := range run.HeldItems {
			held[h.Guard]++
		}
	}
	for g, n := range held {
		if g != reconcile.GuardOwnership && n > max {
			return true
		}
	}
	return false
}
