package main

import (
	"github.com/spf13/cobra"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/cli"
	"github.com/idsync/idsync/state"
)

func newStateCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "state", Short: "Look into the state file"}
	var path string
	inspect := &cobra.Command{
		Use:   "inspect -c FILE",
		Short: "Print the state file as JSON (links, ownership, runs, audit, held plans; never secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := readState(cmd, path)
			if err != nil {
				return err
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

// readState loads the config at path and opens its state file read-only (state inspect,
// audit, status); errors carry the exit code.
func readState(cmd *cobra.Command, path string) (*state.Store, error) {
	cfg, err := cli.LoadConfig(path, cmd.Flags())
	if err != nil {
		return nil, withCode(exitConfig, err)
	}
	st, err := cli.OpenState(cfg, cli.Logger(cfg, cmd.ErrOrStderr()), true)
	if err != nil {
		return nil, withCode(exitConfig, err)
	}
	return st, nil
}
