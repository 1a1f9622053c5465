package main

import "github.com/spf13/cobra"

func newAuditCmd() *cobra.Command {
	return &cobra.Command{Use: "audit", Short: "audit (not implemented in this build)", RunE: notImplemented("audit")}
}
