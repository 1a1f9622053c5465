package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/cli"
	"github.com/idsync/idsync/internal/daemon"
	"github.com/idsync/idsync/reconcile"
)

// adminFlags address a running daemon's admin API.
type adminFlags struct {
	addr      string
	tokenFile string
}

func (f *adminFlags) bind(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.addr, "addr", "", "a running daemon's URL (e.g. http://127.0.0.1:8080): use its admin API instead of the state file")
	cmd.Flags().StringVar(&f.tokenFile, "token-file", "", "admin token file (default: IDSYNC_ADMIN_TOKEN, else the config's admin token)")
}

func (f *adminFlags) client(cfgPath string, cmd *cobra.Command) (cli.AdminClient, error) {
	c := cli.AdminClient{Base: f.addr}
	switch {
	case f.tokenFile != "":
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return c, fmt.Errorf("--token-file: %w", err)
		}
		c.Token = strings.TrimSpace(string(b))
	case os.Getenv("IDSYNC_ADMIN_TOKEN") != "":
		c.Token = os.Getenv("IDSYNC_ADMIN_TOKEN")
	default:
		path, err := cli.ConfigPath(cfgPath)
		if err != nil {
			return c, fmt.Errorf("no admin token: pass --token-file, set IDSYNC_ADMIN_TOKEN, or give the config (%w)", err)
		}
		cfg, err := configs.Load(path, cmd.Flags())
		if err != nil {
			return c, fmt.Errorf("reading the admin token from %s: %w", path, err)
		}
		c.Token = cfg.AdminToken.Value()
	}
	if c.Token == "" {
		return c, errors.New("no admin token: pass --token-file, set IDSYNC_ADMIN_TOKEN, or give a config with admin_token")
	}
	return c, nil
}

func newStatusCmd() *cobra.Command {
	var path, output string
	var remote adminFlags
	cmd := &cobra.Command{
		Use:   "status [--addr URL | -c FILE] [-o table|json]",
		Short: "Show the daemon's status (admin API), or the last runs and held plan from the state file",
		Long: `Show the daemon's status through its admin API (--addr): build, config, schedule and next
pass, sources, the pass in flight, the last pass, a held plan and the API budget. Without --addr,
the last 10 runs and the held plan from the state file (which fails while a daemon holds it).

The table is for people; -o json prints the API's answer (or the runs and hold) for scripts.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cli.CheckFormat(output); err != nil {
				return withCode(exitConfig, err)
			}
			out := cmd.OutOrStdout()
			if remote.addr != "" {
				c, err := remote.client(path, cmd)
				if err != nil {
					return withCode(exitConfig, err)
				}
				var raw json.RawMessage
				if _, err := c.Do(context.Background(), "GET", "/api/v1/status", &raw); err != nil {
					return withCode(exitConfig, err)
				}
				if output == "json" {
					var body map[string]any
					if err := json.Unmarshal(raw, &body); err != nil {
						return withCode(exitConfig, err)
					}
					return cli.WriteJSON(out, body)
				}
				var st daemon.Status
				if err := json.Unmarshal(raw, &st); err != nil {
					return withCode(exitConfig, fmt.Errorf("decoding the daemon's status: %w", err))
				}
				return cli.WriteDaemonStatus(out, st, time.Now())
			}
			st, err := readState(cmd, path)
			if err != nil {
				return err
			}
			defer st.Close()
			runs, err := st.Runs(10)
			if err != nil {
				return withCode(exitInternal, err)
			}
			body := struct {
				Runs []reconcile.Run     `json:"runs"`
				Hold *reconcile.HeldPlan `json:"hold,omitempty"`
			}{Runs: runs}
			for i := range body.Runs {
				body.Runs[i].Changes = nil
			}
			if h, err := st.HeldPlan(); err == nil {
				h.Changes = reconcile.Changes{}
				body.Hold = &h
			}
			if output == "json" {
				if body.Runs == nil {
					body.Runs = []reconcile.Run{}
				}
				return cli.WriteJSON(out, body)
			}
			return cli.WriteRuns(out, body.Runs, body.Hold, time.Now())
		},
	}
	cli.ConfigFlag(cmd.Flags(), &path)
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output: table or json")
	remote.bind(cmd)
	configs.BindFlags(cmd.Flags())
	return cmd
}
