package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/cli"
)

func newAuditCmd() *cobra.Command {
	var path, user, output string
	var since time.Duration
	var intents bool
	cmd := &cobra.Command{
		Use:   "audit -c FILE [--since DURATION] [--user NAME] [-o table|json]",
		Short: "Show the audit log: who changed what, when, why, and how it went",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cli.CheckFormat(output); err != nil {
				return withCode(exitConfig, err)
			}
			if since < 0 {
				return withCode(exitConfig, fmt.Errorf("--since must be positive"))
			}
			st, err := readState(cmd, path)
			if err != nil {
				return err
			}
			defer st.Close()
			var from time.Time
			if since > 0 {
				from = time.Now().Add(-since)
			}
			recs, err := st.Audit(from, user)
			if err != nil {
				return withCode(exitInternal, err)
			}
			if !intents {
				recs = cli.CollapseIntents(recs)
			}
			if output == "json" {
				return cli.WriteJSON(cmd.OutOrStdout(), recs)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tRUN\tACTOR\tACTION\tUSER\tTARGET\tRESULT\tREASON")
			for _, r := range recs {
				who := r.UserName
				if who == "" {
					who = r.AccountID
				}
				reason := r.Reason
				if r.Error != "" {
					reason += " (" + r.Error + ")"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Time.Local().Format(time.DateTime), r.RunID, r.Actor, r.Action, who, r.Target, r.Result, reason)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%d records\n", len(recs))
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "config file")
	cmd.Flags().DurationVar(&since, "since", 0, "only records newer than this (e.g. 24h); default all")
	cmd.Flags().StringVar(&user, "user", "", "only records about this user (userName, key or accountId)")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output: table or json")
	cmd.Flags().BoolVar(&intents, "intents", false, "also show the write-ahead \"started\" record of every change that has an outcome")
	configs.BindFlags(cmd.Flags())
	return cmd
}
