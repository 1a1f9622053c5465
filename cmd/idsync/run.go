package main

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/cli"
	"github.com/idsync/idsync/internal/daemon"
)

func newRunCmd() *cobra.Command {
	var opts daemon.Options
	cmd := &cobra.Command{
		Use:   "run [-c FILE]",
		Short: "Run the daemon: scheduled passes, SCIM listener, admin API, metrics",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := cli.ConfigPath(opts.ConfigPath)
			if err != nil {
				return withCode(exitConfig, err)
			}
			opts.ConfigPath = path
			opts.Flags = cmd.Flags()
			opts.LogOutput = cmd.ErrOrStderr()
			err = daemon.Run(context.Background(), opts)
			switch {
			case err == nil:
				return nil
			case errors.Is(err, daemon.ErrForced):
				return withCode(exitForced, err)
			case errors.Is(err, daemon.ErrShutdownTimeout):
				return withCode(exitInternal, err)
			default:
				return withCode(exitConfig, err)
			}
		},
	}
	cli.ConfigFlag(cmd.Flags(), &opts.ConfigPath)
	cmd.Flags().BoolVar(&opts.NoInitialPass, "no-initial-pass", false, "do not run a pass at start-up")
	configs.BindFlags(cmd.Flags())
	return cmd
}
