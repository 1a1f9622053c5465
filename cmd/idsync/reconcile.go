package main

import "github.com/spf13/cobra"

func newReconcileCmd() *cobra.Command {
	return &cobra.Command{Use: "reconcile", Short: "reconcile (not implemented in this build)", RunE: notImplemented("reconcile")}
}
