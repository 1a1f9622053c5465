package main

import "github.com/spf13/cobra"

func newSimCmd() *cobra.Command {
	return &cobra.Command{Use: "sim", Short: "sim (not implemented in this build)", RunE: notImplemented("sim")}
}
