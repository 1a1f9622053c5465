package main

import "github.com/spf13/cobra"

func newApproveCmd() *cobra.Command {
	return &cobra.Command{Use: "approve", Short: "approve (not implemented in this build)", RunE: notImplemented("approve")}
}
