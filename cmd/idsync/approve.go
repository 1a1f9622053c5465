package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os/user"

	"github.com/spf13/cobra"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/cli"
	"github.com/idsync/idsync/reconcile"
)

func newApproveCmd() *cobra.Command {
	var path string
	var remote adminFlags
	cmd := &cobra.Command{
		Use:   "approve [-c FILE] RUN_ID",
		Short: "Approve the changes the circuit breaker held back in run RUN_ID (the latest held run)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			runID := args[0]
			out := cmd.OutOrStdout()
			if remote.addr != "" {
				c, err := remote.client(path, cmd)
				if err != nil {
					return withCode(exitConfig, err)
				}
				var h reconcile.HeldPlan
				if _, err := c.Do(context.Background(), "GET", "/api/v1/held", &h); err != nil {
					return withCode(exitConfig, err)
				}
				if h.RunID != runID {
					return withCode(exitConfig, fmt.Errorf("approving run %s: it is not the latest held run; the latest is %s", runID, h.RunID))
				}
				printApproval(out, h)
				if _, err := c.Do(context.Background(), "POST", "/api/v1/held/"+url.PathEscape(runID)+"/approve", nil); err != nil {
					return withCode(exitConfig, err)
				}
				fmt.Fprintf(out, "approved %s: the next complete pass applies exactly these items where it still plans them\n", runID)
				return nil
			}
			cfg, err := cli.LoadConfig(path, cmd.Flags())
			if err != nil {
				return withCode(exitConfig, err)
			}
			a, err := cli.OpenApp(cfg, cli.Logger(cfg, cmd.ErrOrStderr()), nil)
			if err != nil {
				return withCode(exitConfig, err)
			}
			defer a.Close()
			by := "cli"
			if u, err := user.Current(); err == nil {
				by = "cli:" + u.Username
			}
			// The plan of one run id never changes, so what is printed is what Approve binds.
			if h, err := a.Store.HeldPlan(); err == nil && h.RunID == runID {
				printApproval(out, h)
			}
			if _, err := a.Runner.Approve(runID, by); err != nil {
				return withCode(exitConfig, err)
			}
			fmt.Fprintf(out, "approved %s: the next complete pass (idsync reconcile, or the daemon's next scheduled pass) applies exactly these items where it still plans them\n", runID)
			return nil
		},
	}
	cli.ConfigFlag(cmd.Flags(), &path)
	remote.bind(cmd)
	configs.BindFlags(cmd.Flags())
	return cmd
}

// printApproval says what an approval covers before it is recorded: counts per kind and the
// first people of each. Nothing else is approved: other deactivations and removals of later
// passes face the circuit breaker on their own.
func printApproval(w io.Writer, h reconcile.HeldPlan) {
	fmt.Fprintf(w, "run %s held %d deactivations and %d removals (%s)\n", h.RunID, h.Deactivations, h.Removals, h.Reason)
	fmt.Fprintf(w, "approving exactly: %s\n", h.Summary(10))
}
