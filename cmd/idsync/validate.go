package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/cli"
)

func newValidateCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "validate [-c FILE]",
		Short: "Check a config file and list every problem with its field path",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := cli.ConfigPath(path)
			if err != nil {
				return withCode(exitConfig, err)
			}
			cfg, err := configs.LoadAndValidate(path, cmd.Flags())
			if err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s is not valid:\n%v\n", path, err)
				return withCode(exitConfig, errSilent)
			}
			for _, w := range cfg.Warnings() {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", w.Error())
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s is valid: %d source(s), sink %s, schedule %q\n", path, len(cfg.Sources), cfg.Sink.Type, cfg.Schedule)
			return nil
		},
	}
	cli.ConfigFlag(cmd.Flags(), &path)
	configs.BindFlags(cmd.Flags())
	return cmd
}
