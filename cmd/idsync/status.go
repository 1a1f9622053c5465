package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/cli"
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
	case cfgPath != "":
		cfg, err := configs.Load(cfgPath, cmd.Flags())
		if err != nil {
			return c, fmt.Errorf("reading the admin token from %s: %w", cfgPath, err)
		}
		c.Token = cfg.AdminToken.Value()
	}
	if c.Token == "" {
		return c, errors.New("no admin token: pass --token-file, set IDSYNC_ADMIN_TOKEN, or -c FILE")
	}
	return c, nil
}

func newStatusCmd() *cobra.Command {
	var path string
	var remote adminFlags
	cmd := &cobra.Command{
		Use:   "status [--addr URL | -c FILE]",
		Short: "Show the daemon's status (admin API), or the last runs and held plan from the state file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if remote.addr != "" {
				c, err := remote.client(path, cmd)
				if err != nil {
					return withCode(exitConfig, err)
				}
				var body map[string]any
				if _, err := c.Do(context.Background(), "GET", "/api/v1/status", &body); err != nil {
					return withCode(exitConfig, err)
				}
				return cli.WriteJSON(cmd.OutOrStdout(), body)
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
			out := struct {
				Runs []reconcile.Run     `json:"runs"`
				Hold *reconcile.HeldPlan `json:"hold,omitempty"`
			}{Runs: runs}
			for i := range out.Runs {
				out.Runs[i].Changes = nil
			}
			if h, err := st.HeldPlan(); err == nil {
				h.Changes = reconcile.Changes{}
				out.Hold = &h
			}
			return cli.WriteJSON(cmd.OutOrStdout(), out)
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "config file")
	remote.bind(cmd)
	configs.BindFlags(cmd.Flags())
	return cmd
}
