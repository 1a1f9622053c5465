package main

import "github.com/spf13/cobra"

func newPlanCmd() *cobra.Command {
	return &cobra.Command{Use: "plan", Short: "plan (not implemented in this build)", RunE: notImplemented("plan")}
}
