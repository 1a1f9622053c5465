package main

import (
	"github.com/spf13/cobra"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/cli"
)

func newStateCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "state", Short: "Look into the state file"}
	var path string
	inspect := &cobra.Command{
		Use:   "inspect -c FILE",
		Short: "Print the state file as JSON (links, ownership, runs, audit, held plans; never secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := cli.LoadConfig(path, cmd.Flags())
			if err != nil {
				return withCode(exitConfig, err)
			}
			st, err := cli.OpenState(cfg, cli.Logger(cfg, cmd.ErrOrStderr()), true)
			if err != nil {
				return withCode(exitConfig, err)
			}
			defer st.Close()
			return withCode(exitInternal, st.Dump(cmd.OutOrStdout()))
		},
	}
	inspect.Flags().StringVarP(&path, "config", "c", "", "config file")
	configs.BindFlags(inspect.Flags())
	cmd.AddCommand(inspect)
	return cmd
}
