package main

import (
	"context"
	"net/url"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/idsync/idsync/internal/cli"
	"github.com/idsync/idsync/reconcile"
)

func newPlanCmd() *cobra.Command {
	var f passFlags
	var remote adminFlags
	cmd := &cobra.Command{
		Use:   "plan [-c FILE] [--user NAME] [--source NAME] [-o table|json] [--addr URL [--token-file F]]",
		Short: "Show what a pass would change (reconcile --dry-run); -o json prints the Changes value",
		Long: `Show what a pass would change, without changing anything (reconcile --dry-run). The table
lists at most 200 rows per kind; -o json prints the whole Changes value.

Without --addr the pass runs in this process, which needs the state file: it fails while a
daemon holds it. With --addr the running daemon makes the plan (GET /api/v1/plan) through its
runner, after the pass in flight if there is one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if remote.addr != "" {
				return remotePlan(cmd, f, &remote)
			}
			return runPass(cmd, f, true)
		},
	}
	addPassFlags(cmd, &f)
	remote.bind(cmd)
	return cmd
}

// remotePlan asks a running daemon for the plan and prints it as plan does.
func remotePlan(cmd *cobra.Command, f passFlags, remote *adminFlags) error {
	if err := cli.CheckFormat(f.output); err != nil {
		return withCode(exitConfig, err)
	}
	c, err := remote.client(f.config, cmd)
	if err != nil {
		return withCode(exitConfig, err)
	}
	q := url.Values{"run": {"true"}}
	if f.source != "" {
		q.Set("source", f.source)
	}
	for _, u := range f.users {
		q.Add("user", u)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var run reconcile.Run
	if err := c.Fetch(ctx, "/api/v1/plan?"+q.Encode(), &run); err != nil {
		return withCode(exitConfig, err)
	}
	printPass(cmd, run, f, true)
	if code := cli.ExitCode(run); code != exitOK {
		return withCode(code, errSilent)
	}
	return nil
}
