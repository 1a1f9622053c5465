package main

import "github.com/spf13/cobra"

func newDemoCmd() *cobra.Command {
	return &cobra.Command{Use: "demo", Short: "demo (not implemented in this build)", RunE: notImplemented("demo")}
}
