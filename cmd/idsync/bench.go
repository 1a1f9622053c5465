package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/bench"
	"github.com/idsync/idsync/internal/logging"
)

func newBenchCmd() *cobra.Command {
	var (
		o        bench.Options
		asJSON   bool
		logLevel string
		source   string
	)
	cmd := &cobra.Command{
		Use:   "bench --scenario initial|noop|churn|scim|plan|drift|process [--users N --groups G --memberships-per-user M --latency D --rate R] [--json]",
		Short: "Measure a scenario against the simulators: calls against the API minimum, time against the floor, memory",
		Long: `Runs one scale scenario against the built-in simulators (in-process, real HTTP on loopback, a
temporary state file) and reports Jira reads and writes as the simulator counted them against the
fewest calls the APIs allow, wall time against the floor the rate limit and latency impose, and
peak RSS. With --json the last line is one JSON object.

  initial  first sync into a Jira holding only its admin and app accounts
  noop     a second pass over the same org (the measured one)
  churn    after the first sync, 1% of the users move group, leave or are hired
  scim     the SCIM listener under concurrent clients (create, filter, member PATCH)
  plan     map and plan a big org in memory, no HTTP (default 100,000 users)
  drift    --drift-changes memberships removed by hand in Jira: incremental passes (which
           must write nothing), then the full pass that repairs them
  process  the daemon's own memory: "idsync run" in a child process, over a synced site
           (seeded directly), until its start-up pass (full, nothing to do) has finished; its
           peak RSS is reported (default 100,000 users, 10,000 groups, 10 groups each)

noop, churn and drift measure a scheduled pass: with the default --full-read-interval (1h)
a full pass runs first in the same process, uncounted, and the measured pass is incremental
(full_read: false); --full-read-interval 0 measures a full pass.

--source picks the IdP: miniorange (default), google (initial and noop, through the Directory
API simulator; source_reads against min_source_reads) or ldap (one full read of a throwaway
slapd holding --users people: requests against the minimum the page size allows; needs slapd).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logging.New(cmd.ErrOrStderr(), logLevel, logging.FormatAuto)
			if err != nil {
				return withCode(exitConfig, err)
			}
			o.Logger = log
			if o.Binary, err = os.Executable(); err != nil {
				return withCode(exitInternal, err)
			}
			// On the command line 0 means none; in bench.Options it means the default.
			if o.Latency == 0 {
				o.Latency = -1
			}
			if o.Rate == 0 {
				o.Rate = -1
			}
			if o.FullReadInterval == 0 {
				o.FullReadInterval = -1
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			run := bench.Run
			switch source {
			case "", "miniorange":
			case "google":
				run = bench.RunGoogle
			case "ldap":
				return benchLDAP(ctx, cmd, o, asJSON)
			default:
				return withCode(exitConfig, errorf("--source %q: one of miniorange, google, ldap", source))
			}
			res, err := run(ctx, o)
			if res != nil {
				out := cmd.OutOrStdout()
				if werr := bench.WriteTable(out, res); werr != nil {
					return withCode(exitInternal, werr)
				}
				if asJSON {
					if werr := bench.WriteJSON(out, res); werr != nil {
						return withCode(exitInternal, werr)
					}
				}
			}
			switch {
			case errors.Is(err, bench.ErrUsage):
				return withCode(exitConfig, err)
			case err != nil:
				return withCode(exitInternal, err)
			case res.PassResult != "" && res.PassResult != "ok":
				return withCode(exitPartial, errorf("the measured pass ended %q", res.PassResult))
			}
			return nil
		},
	}
	benchFlags(cmd.Flags(), &o)
	cmd.Flags().StringVar(&source, "source", "miniorange", "the IdP: miniorange | google | ldap")
	cmd.Flags().BoolVar(&asJSON, "json", false, "also print the result as one JSON object on the last line")
	cmd.Flags().StringVar(&logLevel, "log-level", "warn", "log level of the idsync parts under test (stderr)")
	return cmd
}

// benchFlags binds the scenario's options.
func benchFlags(f *pflag.FlagSet, o *bench.Options) {
	f.StringVar(&o.Scenario, "scenario", bench.ScenarioInitial, "initial | noop | churn | scim | plan | drift | process")
	f.DurationVar(&o.FullReadInterval, "full-read-interval", configs.DefaultFullReadInterval, "sink.jira.full_read_interval of the measured pass (0: it reads Jira in full)")
	f.IntVar(&o.DriftChanges, "drift-changes", 20, "drift: memberships removed by hand in Jira")
	f.IntVar(&o.Users, "users", 0, "users of the generated org, or SCIM requests per phase (default 2000; 100000 for plan)")
	f.IntVar(&o.Groups, "groups", 0, "groups of the generated org (default 100; 10000 for plan)")
	f.IntVar(&o.MembershipsPerUser, "memberships-per-user", 0, "groups per user (default 5; 10 for plan)")
	f.IntVar(&o.Disabled, "disabled", 0, "disabled users in the generated org")
	f.DurationVar(&o.Latency, "latency", bench.DefaultLatency, "latency of every simulator answer (0: none)")
	f.Float64Var(&o.Rate, "rate", bench.DefaultRate, "Jira requests/s across all endpoints, also the sink's pacing (0: unlimited)")
	f.IntVar(&o.Burst, "burst", 0, "burst of the Jira rate limit and of the sink's pacing (default rate/10)")
	f.Float64Var(&o.Pace, "pace", 0, "the sink paces at this fraction of --rate, as operators set rate_limit a little under their budget (default 0.95)")
	f.IntVar(&o.Concurrency, "concurrency", 0, "sink.jira.rate_limit.concurrency (default 8), or SCIM clients (default 16)")
	f.Int64Var(&o.Seed, "seed", 1, "seed of the generated org and of the churn")
	f.IntVar(&o.SourceBatchCap, "miniorange-batch-cap", 0, "most items per miniOrange page (default 200, as the simulator)")
	f.IntVar(&o.SourcePageSize, "page-size", 0, "sources[].miniorange.page_size (default 500)")
	f.StringVar(&o.JiraURL, "jira-url", "", "run against a running `idsync sim`: its Jira URL (initial and noop only; calls are counted client-side)")
	f.StringVar(&o.MiniOrangeURL, "miniorange-url", "", "run against a running `idsync sim`: its miniOrange URL")
	f.StringVar(&o.PlanLive, "plan-live", "synced", "plan scenario: the Jira planned against, synced (1% churn) or empty (first sync)")
	f.StringVar(&o.StateDir, "state-dir", "", "folder of the state file (default: a temporary folder, removed afterwards)")
}

// benchLDAP measures one full LDAP read (bench.RunLDAPRead): requests against the minimum.
func benchLDAP(ctx context.Context, cmd *cobra.Command, o bench.Options, asJSON bool) error {
	res, err := bench.RunLDAPRead(ctx, bench.LDAPOptions{Users: o.Users, Disabled: o.Disabled, PageSize: o.SourcePageSize, Logger: o.Logger})
	if err != nil {
		return withCode(exitInternal, err)
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "ldap read: %d users (%d disabled), %d groups, page size %d\n", res.Users, res.Disabled, res.Groups, res.PageSize)
	fmt.Fprintf(out, "requests  %d (minimum %d)\n", res.Reads, res.MinReads)
	fmt.Fprintf(out, "time      %.2fs (%.0f users/s; slapd started in %d ms)\n", res.Seconds, res.UsersPerSec, res.ServerStartMS)
	if asJSON {
		if err := json.NewEncoder(out).Encode(res); err != nil {
			return withCode(exitInternal, err)
		}
	}
	if res.Reads != res.MinReads {
		return withCode(exitPartial, errorf("the read made %d requests, the minimum is %d", res.Reads, res.MinReads))
	}
	return nil
}
