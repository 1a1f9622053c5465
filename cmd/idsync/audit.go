package main

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/cli"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/state"
)

// auditFlags are audit's filters and output.
type auditFlags struct {
	path, user, output string
	since              time.Duration
	intents            bool
}

func newAuditCmd() *cobra.Command {
	var f auditFlags
	var remote adminFlags
	cmd := &cobra.Command{
		Use:   "audit [-c FILE] [--since DURATION] [--user NAME] [-o table|json] [--addr URL [--token-file F]]",
		Short: "Show the audit log: who changed what, when, why, and how it went",
		Long: `Show the audit log: who changed what, when, why, and how it went, oldest first.

Without --addr the state file is opened read-only, which fails while a daemon holds it; with
--addr the running daemon answers (GET /api/v1/audit, read page by page) with the same filters.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cli.CheckFormat(f.output); err != nil {
				return withCode(exitConfig, err)
			}
			if f.since < 0 {
				return withCode(exitConfig, fmt.Errorf("--since must be positive"))
			}
			var (
				recs []reconcile.AuditRecord
				err  error
			)
			if remote.addr != "" {
				recs, err = remoteAudit(cmd, f, &remote)
			} else {
				recs, err = localAudit(cmd, f)
			}
			if err != nil {
				return err
			}
			return printAudit(cmd, recs, f.output)
		},
	}
	cli.ConfigFlag(cmd.Flags(), &f.path)
	cmd.Flags().DurationVar(&f.since, "since", 0, "only records newer than this (e.g. 24h); default all")
	cmd.Flags().StringVar(&f.user, "user", "", "only records about this user (userName, key or accountId)")
	cmd.Flags().StringVarP(&f.output, "output", "o", "table", "output: table or json")
	cmd.Flags().BoolVar(&f.intents, "intents", false, "also show the write-ahead \"started\" record of every change that has an outcome")
	remote.bind(cmd)
	configs.BindFlags(cmd.Flags())
	return cmd
}

func localAudit(cmd *cobra.Command, f auditFlags) ([]reconcile.AuditRecord, error) {
	st, err := readState(cmd, f.path)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	var from time.Time
	if f.since > 0 {
		from = time.Now().Add(-f.since)
	}
	recs, err := st.Audit(from, f.user)
	if err != nil {
		return nil, withCode(exitInternal, err)
	}
	if !f.intents {
		recs = cli.CollapseIntents(recs)
	}
	return recs, nil
}

// remoteAudit reads every page of the daemon's audit log with the command's filters; the
// records come out as localAudit's do (by time, also with --user).
func remoteAudit(cmd *cobra.Command, f auditFlags, remote *adminFlags) ([]reconcile.AuditRecord, error) {
	c, err := remote.client(f.path, cmd)
	if err != nil {
		return nil, withCode(exitConfig, err)
	}
	q := url.Values{"limit": {strconv.Itoa(state.MaxAuditPageSize)}, "intents": {strconv.FormatBool(f.intents)}}
	if f.since > 0 {
		// One absolute time for every page, from this machine's clock as the local command.
		q.Set("since", time.Now().Add(-f.since).UTC().Format(time.RFC3339Nano))
	}
	if f.user != "" {
		q.Set("user", f.user)
	}
	var recs []reconcile.AuditRecord
	for {
		var page state.AuditPage
		if _, err := c.Do(context.Background(), "GET", "/api/v1/audit?"+q.Encode(), &page); err != nil {
			return nil, withCode(exitConfig, err)
		}
		recs = append(recs, page.Records...)
		if page.Next == "" {
			break
		}
		q.Set("cursor", page.Next)
	}
	if f.user != "" {
		slices.SortStableFunc(recs, func(a, b reconcile.AuditRecord) int { return a.Time.Compare(b.Time) })
	}
	return recs, nil
}

func printAudit(cmd *cobra.Command, recs []reconcile.AuditRecord, output string) error {
	if output == "json" {
		if recs == nil {
			recs = []reconcile.AuditRecord{}
		}
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
}
