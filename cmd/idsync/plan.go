package main

import (
	"github.com/spf13/cobra"
)

func newPlanCmd() *cobra.Command {
	var f passFlags
	cmd := &cobra.Command{
		Use:   "plan -c FILE [-o table|json]",
		Short: "Show what a pass would change (reconcile --dry-run); -o json prints the Changes value",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPass(cmd, f, true)
		},
	}
	addPassFlags(cmd, &f)
	return cmd
}
