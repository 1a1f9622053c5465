package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/idsync/idsync/internal/demo"
)

func newDemoCmd() *cobra.Command {
	var o demo.Options
	var verbose bool
	cmd := &cobra.Command{
		Use:   "demo [--state FILE]",
		Short: "Show idsync's whole job on built-in simulators (no network beyond loopback)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out = cmd.OutOrStdout()
			if verbose {
				o.Log = cmd.ErrOrStderr()
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := demo.Run(ctx, o); err != nil {
				return withCode(exitPartial, err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&o.StatePath, "state", "", "keep the state file here (default: a temporary file, removed afterwards)")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "also print idsync's logs (JSON) on stderr")
	cmd.Flags().IntVar(&o.MaxRows, "rows", 6, "plan rows shown per change kind")
	return cmd
}
