package main

import (
	"context"
	"fmt"
	"net/url"
	"os/user"

	"github.com/spf13/cobra"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/cli"
)

func newApproveCmd() *cobra.Command {
	var path string
	var remote adminFlags
	cmd := &cobra.Command{
		Use:   "approve -c FILE RUN_ID",
		Short: "Approve the changes the circuit breaker held back in run RUN_ID (the latest held run)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			runID := args[0]
			if remote.addr != "" {
				c, err := remote.client(path, cmd)
				if err != nil {
					return withCode(exitConfig, err)
				}
				if _, err := c.Do(context.Background(), "POST", "/api/v1/held/"+url.PathEscape(runID)+"/approve", nil); err != nil {
					return withCode(exitConfig, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "approved %s: the next complete pass may exceed the circuit breaker once\n", runID)
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
			if err := a.Runner.Approve(runID, by); err != nil {
				return withCode(exitConfig, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "approved %s: the next complete pass (idsync reconcile, or the daemon's next scheduled pass) may exceed the circuit breaker once\n", runID)
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "config file")
	remote.bind(cmd)
	configs.BindFlags(cmd.Flags())
	return cmd
}
