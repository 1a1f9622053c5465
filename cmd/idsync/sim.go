package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/idsync/idsync/internal/sim"
)

func newSimCmd() *cobra.Command {
	var o sim.Options
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Serve the Jira Cloud + JSM and miniOrange simulators on loopback (pair with configs/demo.yaml)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := sim.Start(o)
			if err != nil {
				return withCode(exitConfig, err)
			}
			defer s.Close()
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Jira Cloud + JSM + admin API simulator: %s (admin@example.com / sim-jira-token, org API key sim-org-key)\n", s.JiraURL)
			fmt.Fprintf(out, "miniOrange simulator:                   %s (customer key 100001, API key sim-mo-api-key)\n", s.MiniOrangeURL)
			fmt.Fprintf(out, "org: %d users, %d groups\n", len(s.MiniOrange.Users()), len(s.MiniOrange.Groups()))
			fmt.Fprintln(out, "in another terminal: idsync run -c configs/demo.yaml   (Ctrl-C here stops the simulators)")
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			<-ctx.Done()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.JiraAddr, "jira-addr", sim.DefaultJiraAddr, "Jira simulator listen address (loopback)")
	f.StringVar(&o.MiniOrangeAddr, "miniorange-addr", sim.DefaultMiniOrangeAddr, "miniOrange simulator listen address (loopback)")
	f.IntVar(&o.Org.Users, "users", 0, "generate an org of this many users (0: the default 200-user org)")
	f.IntVar(&o.Org.Groups, "groups", 15, "groups of the generated org")
	f.IntVar(&o.Org.MembershipsPerUser, "memberships-per-user", 2, "groups per user in the generated org")
	f.IntVar(&o.Org.DisabledCount, "disabled", 5, "disabled users in the generated org")
	f.Int64Var(&o.Seed, "seed", 1, "seed for the generated org, latency jitter and faults")
	f.DurationVar(&o.Latency, "latency", 0, "added to every simulator answer")
	f.DurationVar(&o.Jitter, "jitter", 0, "random extra latency, up to this")
	f.Float64Var(&o.JiraRate, "rate", 0, "Jira requests/s across all endpoints; beyond it 429 + Retry-After (0: unlimited)")
	f.IntVar(&o.JiraBurst, "burst", 0, "Jira rate-limit burst")
	f.Float64Var(&o.FaultRate, "fault-rate", 0, "fraction of Jira requests that fail (5xx, 503 + Retry-After, resets, slow)")
	f.Float64Var(&o.SourceErrorRate, "source-error-rate", 0, "fraction of miniOrange requests that answer 500")
	f.DurationVar(&o.IndexLag, "index-lag", 0, "Jira search-index lag after creating a user")
	f.IntVar(&o.MOBatchCap, "miniorange-batch-cap", 0, "most items per miniOrange page (default 200)")
	f.IntVar(&o.Seats, "seats", 0, "Jira licensed-seat limit (0: unlimited)")
	return cmd
}
