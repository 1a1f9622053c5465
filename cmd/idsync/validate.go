package main

import "github.com/spf13/cobra"

func newValidateCmd() *cobra.Command {
	return &cobra.Command{Use: "validate", Short: "validate (not implemented in this build)", RunE: notImplemented("validate")}
}
