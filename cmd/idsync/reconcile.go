package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/cli"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/reconcile/runner"
)

type passFlags struct {
	config string
	dryRun bool
	users  []string
	source string
	output string
	full   bool
}

func newReconcileCmd() *cobra.Command {
	var f passFlags
	cmd := &cobra.Command{
		Use:   "reconcile [-c FILE] [--dry-run] [--full] [--user NAME] [--source NAME] [-o table|json]",
		Short: "Run one pass in the foreground; the exit code says how it went (0 ok, 1 items failed, 2 config/connection error, 3 held)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPass(cmd, f, false)
		},
	}
	addPassFlags(cmd, &f)
	cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, "plan only: write nothing to Jira or to the ownership records")
	cmd.Flags().BoolVar(&f.full, "full", false, "read Jira and the sources in full (what every manual pass does; the run record says so)")
	return cmd
}

func addPassFlags(cmd *cobra.Command, f *passFlags) {
	cli.ConfigFlag(cmd.Flags(), &f.config)
	cmd.Flags().StringSliceVar(&f.users, "user", nil, "reconcile only this user (userName; repeatable)")
	cmd.Flags().StringVar(&f.source, "source", "", "read only this source (others' last snapshots stand in; nothing is removed)")
	cmd.Flags().StringVarP(&f.output, "output", "o", "table", "output: table or json")
	configs.BindFlags(cmd.Flags())
}

// planRows is how many rows per kind a plan table lists; -o json has them all.
const planRows = 200

// printPass prints a pass as plan (planOnly) or reconcile does: the Changes value or the run
// record with -o json, else the plan table (plan, --dry-run) and the summary.
func printPass(cmd *cobra.Command, run reconcile.Run, f passFlags, planOnly bool) {
	out := cmd.OutOrStdout()
	switch {
	case f.output == "json" && planOnly && run.Result == reconcile.ResultFailed:
		// No plan could be made: an empty Changes would read as "nothing to do".
		cli.Summary(cmd.ErrOrStderr(), run)
	case f.output == "json" && planOnly:
		changes := run.Changes
		if changes == nil {
			changes = &reconcile.Changes{}
		}
		_ = cli.WriteJSON(out, changes)
	case f.output == "json":
		_ = cli.WriteJSON(out, run)
	default:
		if run.Changes != nil && (planOnly || f.dryRun) {
			_ = reconcile.RenderRun(out, run, reconcile.RenderOptions{MaxRows: planRows, Links: true})
			if cli.RowsCut(run, planRows) {
				fmt.Fprintf(out, "\nOnly the first %d rows of each kind are listed: idsync plan -o json lists every item.\n", planRows)
			}
			cmd.Println()
		}
		cli.Summary(out, run)
	}
}

// runPass is reconcile and plan: one pass, its output, and the exit code from its outcome.
func runPass(cmd *cobra.Command, f passFlags, planOnly bool) error {
	if err := cli.CheckFormat(f.output); err != nil {
		return withCode(exitConfig, err)
	}
	cfg, err := cli.LoadConfig(f.config, cmd.Flags())
	if err != nil {
		return withCode(exitConfig, err)
	}
	log := cli.Logger(cfg, cmd.ErrOrStderr())
	progress := cli.NewProgress(cmd.ErrOrStderr())
	a, err := cli.OpenApp(cfg, log, progress.Observer())
	if err != nil {
		return withCode(exitConfig, err)
	}
	defer a.Close()
	progress.CountRequests(cli.RequestCounts(a.Metrics))

	if f.source != "" {
		found := false
		for _, s := range cfg.Sources {
			found = found || s.Name == f.source
		}
		if !found {
			return withCode(exitConfig, errorf("--source %q: no such source in %s", f.source, cfg.Path))
		}
	}
	// The first interrupt finishes the items in flight, journals them and stops; once it has
	// arrived the default action is restored, so a second one kills at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop)
	run, err := a.RunOnce(ctx, runner.RunOptions{
		Trigger: reconcile.TriggerCLI, DryRun: f.dryRun || planOnly, Users: f.users, Source: f.source, Full: f.full,
	})
	if err != nil && run.ID == "" {
		return withCode(exitConfig, err)
	}
	if run.ID != "" && !run.DryRun {
		cli.ApplyRetention(a, log)
	}
	printPass(cmd, run, f, planOnly)
	if err != nil {
		log.Error().Err(err).Msg("pass ended with an error")
	}
	if len(f.users) > 0 && cli.NoneFound(run) {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: no source has %s; nothing was done for them\n", strings.Join(f.users, ", "))
	}
	if code := cli.ExitCode(run); code != exitOK {
		return withCode(code, errSilent)
	}
	if err != nil {
		return withCode(exitPartial, errSilent)
	}
	return nil
}
