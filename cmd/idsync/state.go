package main

import "github.com/spf13/cobra"

func newStateCmd() *cobra.Command {
	return &cobra.Command{Use: "state", Short: "state (not implemented in this build)", RunE: notImplemented("state")}
}
