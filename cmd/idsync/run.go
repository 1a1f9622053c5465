package main

import "github.com/spf13/cobra"

func newRunCmd() *cobra.Command {
	return &cobra.Command{Use: "run", Short: "run (not implemented in this build)", RunE: notImplemented("run")}
}
