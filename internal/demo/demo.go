// Package demo is `idsync demo`: idsync's whole job on the built-in simulators, narrated step
// by step with the real plan tables. Everything runs in this process over real HTTP on
// loopback: the miniOrange and Jira Cloud + JSM simulators, the state file, the Runner and the
// SCIM listener.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/app"
	"github.com/idsync/idsync/internal/cli"
	"github.com/idsync/idsync/internal/logging"
	"github.com/idsync/idsync/internal/sim"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/reconcile/runner"
	"github.com/idsync/idsync/sinks/jira/jiratest"
	"github.com/idsync/idsync/sources/miniorange/miniorangetest"
)

// The demo's fixed credentials: the simulators' public defaults (DESIGN "Simulator defaults").
const (
	SCIMToken  = "demo-scim-token"
	AdminToken = "demo-admin-token"
	sourceName = "corp"
	// CustomersToken is the customers_only source's own push token (Customer Sync).
	CustomersToken = "demo-customers-token"
	customersName  = "customers"
)

// Options tune a demo run.
type Options struct {
	Out io.Writer // the narration
	// Log receives idsync's own logs (discarded when nil).
	Log io.Writer
	// StatePath keeps the state file (a temporary one, removed afterwards, when empty).
	StatePath string
	// MaxRows caps plan rows shown per change kind.
	MaxRows int
}

// Demo is one run's moving parts.
type demo struct {
	o         Options
	out       io.Writer
	sims      *sim.Sims
	log       zerolog.Logger
	statePath string
	scim      string // SCIM base URL of the source
	scimBase  string // the listener's /scim/v2/ URL
	start     time.Time
	step      int

	// app is the running idsync; the suspend step restarts it with another config. appMu
	// guards the pointer for the SCIM listener's goroutines; stopRunner ends its Runner loop.
	appMu      sync.Mutex
	app        *app.App
	stopRunner func()
}

// Run plays the seven steps and returns nil when every check held.
func Run(ctx context.Context, o Options) (err error) {
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.MaxRows == 0 {
		o.MaxRows = 6
	}
	d := &demo{o: o, out: o.Out, start: time.Now()}

	d.sims, err = sim.Start(sim.Options{JiraAddr: "127.0.0.1:0", MiniOrangeAddr: "127.0.0.1:0", Seed: 1})
	if err != nil {
		return fmt.Errorf("starting the simulators: %w", err)
	}
	defer d.sims.Close()
	// Like many real sites, jira-software grants access through a legacy group beyond its
	// default group: remove-access must take leavers out of it, suspend keeps it.
	if err := d.sims.Jira.LoadSeed(jiratest.LegacyAccessSeed()); err != nil {
		return err
	}

	statePath := o.StatePath
	if statePath == "" {
		dir, err := os.MkdirTemp("", "idsync-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		statePath = filepath.Join(dir, "idsync.db")
	}
	d.statePath = statePath
	logOut := o.Log
	if logOut == nil {
		logOut = io.Discard
	}
	// The SCIM listener, the Runner and the demo log from several goroutines; the caller's
	// writer need not be safe for that.
	logOut = zerolog.SyncWriter(logOut)
	d.log, _ = logging.New(logOut, "info", logging.FormatJSON)
	if err := d.open(ctx, d.config(configs.DeactivateRemoveAccess)); err != nil {
		return err
	}
	defer d.close()

	// The SCIM listener, on its own loopback port; the Runner's request loop serves pushes.
	stopSCIM, err := d.serveSCIM()
	if err != nil {
		return err
	}
	defer stopSCIM()

	d.intro(statePath)
	for _, step := range []func(context.Context) error{d.initialSync, d.idpChanges, d.scimPush, d.customerSync, d.massRemoval, d.suspend, d.summary} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// open validates cfg, opens idsync on it and starts its Runner's request loop.
func (d *demo) open(ctx context.Context, cfg *configs.Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("demo config: %w", err)
	}
	a, err := app.Open(cfg, app.Options{Logger: d.log})
	if err != nil {
		return err
	}
	d.appMu.Lock()
	d.app = a
	d.appMu.Unlock()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = a.Runner.Serve(runCtx)
	}()
	d.stopRunner = func() { cancel(); <-done }
	return nil
}

// close stops the Runner loop and closes idsync (its state file too).
func (d *demo) close() {
	if d.stopRunner != nil {
		d.stopRunner()
		d.stopRunner = nil
	}
	_ = d.current().Close()
}

func (d *demo) current() *app.App {
	d.appMu.Lock()
	defer d.appMu.Unlock()
	return d.app
}

// config is the demo's idsync config with the given deactivation method; suspend names the
// simulator's organization and leaves directory_id unset (its only directory is found).
func (d *demo) config(deactivate string) *configs.Config {
	cfg := configs.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.AdminToken = AdminToken
	cfg.State.Path = d.statePath
	cfg.Schedule = "@every 15m"
	cfg.Sources = []configs.SourceConfig{{
		Name: sourceName, Type: configs.SourceMiniOrange, Priority: 10,
		MiniOrange: &configs.MiniOrangeConfig{
			BaseURL: d.sims.MiniOrangeURL, CustomerKey: miniorangetest.DefaultCustomerKey,
			APIKey: miniorangetest.DefaultAPIKey, PageSize: 500,
		},
		Push: &configs.PushConfig{Enabled: true, Token: SCIMToken, Debounce: 300 * time.Millisecond},
	}, {
		// Customer Sync: the IdP's second provisioning app, with its own URL and token.
		Name: customersName, Type: configs.SourceSCIM, CustomersOnly: true,
		Push: &configs.PushConfig{Enabled: true, Token: CustomersToken, Debounce: 300 * time.Millisecond},
	}}
	cfg.Sink = configs.SinkConfig{Type: configs.SinkJira, Jira: &configs.JiraConfig{
		BaseURL: d.sims.JiraURL, Email: jiratest.DefaultEmail, APIToken: jiratest.DefaultAPIToken,
		Products: []string{"jira-software"}, Deactivate: deactivate,
		RateLimit: configs.RateLimit{RequestsPerSecond: 500, Burst: 100, Concurrency: 8},
		AdminAPI:  &configs.AdminAPIConfig{BaseURL: d.sims.JiraURL, OrgAPIKey: jiratest.DefaultOrgAPIKey},
	}}
	if deactivate == configs.DeactivateSuspend {
		cfg.Sink.Jira.AdminAPI.OrgID = jiratest.DefaultOrgID
	}
	cfg.Mapping = configs.MappingConfig{
		ImportUsers: true, ImportGroups: true,
		Groups:        []configs.GroupMapping{{IdP: "Engineering", Jira: []string{"engineering", "developers"}}},
		DefaultGroups: []string{"jira-software-users"},
		Customers: []configs.CustomerMapping{{IdP: "Jira-Service-group", ServiceDesks: []string{"DEMO"}},
			{Source: customersName, ServiceDesks: []string{"DEMO"}}},
		DisplayName: "displayName",
	}
	cfg.Safety = configs.SafetyConfig{Policy: configs.PolicySync, GracePasses: 1, MaxDeactivations: 25, MaxDeactivationPercent: 10, MaxMembershipRemovals: 250}
	cfg.ApplyDefaults()
	return cfg
}

func (d *demo) serveSCIM() (func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	// The listener outlives a restart of idsync: it serves whichever idsync runs.
	mux.Handle("/scim/v2/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.current().SCIM.ServeHTTP(w, r)
	}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error().Err(err).Msg("demo SCIM listener")
		}
	}()
	d.scimBase = "http://" + ln.Addr().String() + "/scim/v2/"
	d.scim = d.scimBase + sourceName
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

func (d *demo) intro(statePath string) {
	fmt.Fprintln(d.out, "idsync demo: the whole job on built-in simulators (real HTTP on loopback, no network).")
	fmt.Fprintf(d.out, "  miniOrange simulator  %s  (%d users, %d groups)\n", d.sims.MiniOrangeURL, len(d.sims.MiniOrange.Users()), len(d.sims.MiniOrange.Groups()))
	fmt.Fprintf(d.out, "  Jira Cloud simulator  %s  (a site admin, an app account, service desk DEMO; jira-software\n", d.sims.JiraURL)
	fmt.Fprintf(d.out, "                        grants access through jira-software-users and %s)\n", jiratest.LegacyAccessGroup)
	fmt.Fprintf(d.out, "  SCIM listener         %s\n", d.scim)
	fmt.Fprintf(d.out, "  state file            %s\n", statePath)
	fmt.Fprintln(d.out, "  mapping: Engineering -> engineering, developers; other IdP groups same-name (import_groups);")
	fmt.Fprintln(d.out, "           everyone -> jira-software-users; Jira-Service-group -> customers of DEMO;")
	fmt.Fprintln(d.out, "           the customers_only source \"customers\" (its own SCIM URL and token) -> customers of DEMO")
	fmt.Fprintln(d.out, "  safety:  grace 1 pass, circuit breaker at 25 deactivations or 10%")
	fmt.Fprintln(d.out, "  deactivate: remove-access (step 6 restarts idsync with suspend)")
}

func (d *demo) heading(title string) {
	d.step++
	fmt.Fprintf(d.out, "\n== Step %d: %s ==\n", d.step, title)
}

// pass shows the plan (a dry run), then applies it and prints the summary.
func (d *demo) pass(ctx context.Context, o runner.RunOptions) (reconcile.Run, error) {
	dry := o
	dry.DryRun = true
	plan, err := d.app.RunOnce(ctx, dry)
	if err != nil && plan.ID == "" {
		return plan, fmt.Errorf("planning: %w", err)
	}
	if plan.Changes != nil {
		fmt.Fprintln(d.out, "Plan:")
		if err := reconcile.RenderRun(indent(d.out), plan, reconcile.RenderOptions{MaxRows: d.o.MaxRows}); err != nil {
			return plan, err
		}
	}
	run, err := d.app.RunOnce(ctx, o)
	if err != nil && run.ID == "" {
		return run, fmt.Errorf("applying: %w", err)
	}
	fmt.Fprintln(d.out, "Applied:")
	cli.Summary(indent(d.out), run)
	return run, nil
}

// indent prefixes every line written to w with two spaces.
func indent(w io.Writer) io.Writer { return &prefixWriter{w: w, prefix: "  ", bol: true} }

type prefixWriter struct {
	w      io.Writer
	prefix string
	bol    bool
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	var sb strings.Builder
	for _, c := range string(b) {
		if p.bol {
			sb.WriteString(p.prefix)
			p.bol = false
		}
		sb.WriteRune(c)
		if c == '\n' {
			p.bol = true
		}
	}
	if _, err := io.WriteString(p.w, sb.String()); err != nil {
		return 0, err
	}
	return len(b), nil
}

// check fails the demo when an expectation does not hold, so a test running it catches rot.
func check(ok bool, format string, args ...any) error {
	if ok {
		return nil
	}
	return fmt.Errorf("demo check failed: "+format, args...)
}
