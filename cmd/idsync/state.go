package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/cli"
	"github.com/idsync/idsync/state"
)

func newStateCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "state", Short: "Look into the state file"}
	var path string
	inspect := &cobra.Command{
		Use:   "inspect [-c FILE]",
		Short: "Print the state file as JSON (links, ownership, runs, audit, held plans; never secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := readState(cmd, path)
			if err != nil {
				return err
			}
			defer st.Close()
			return withCode(exitInternal, st.Dump(cmd.OutOrStdout()))
		},
	}
	cli.ConfigFlag(inspect.Flags(), &path)
	configs.BindFlags(inspect.Flags())
	cmd.AddCommand(inspect, newStateBackupCmd(), newStateCompactCmd())
	return cmd
}

func newStateCompactCmd() *cobra.Command {
	var path string
	var force bool
	cmd := &cobra.Command{
		Use:   "compact [-c FILE] OUT [--force]",
		Short: "Write a compacted copy of the state file to OUT (offline: stop the daemon first)",
		Long: `Write a compacted copy of the state file to OUT, with mode 0600. bbolt keeps the pages that
state.retention frees inside the file for reuse, so the file does not shrink on its own; the
copy holds the same records in as few pages as they need.

The copy is written beside OUT, checked to open as a state file with the same schema version
and the same number of records in every bucket, then renamed over OUT. OUT must not exist
unless --force is given; the state file itself is refused. The state file is opened
read-only, which fails while a daemon holds it.

To shrink the live file: stop the daemon, run idsync state compact OUT, move OUT over the
state file (keep the old one until the daemon runs again), start the daemon.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := readState(cmd, path)
			if err != nil {
				return err
			}
			defer st.Close()
			c, err := state.WriteCompactFile(st, args[0], force)
			if err != nil {
				return withCode(exitConfig, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "compacted copy written: %s (%d bytes, from %d; schema v%d; %d runs, %d audit records, %d links)\n",
				c.Path, c.Size, c.SourceSize, c.SchemaVersion, c.Records["runs"], c.Records["audit"], c.Records["links"])
			return nil
		},
	}
	cli.ConfigFlag(cmd.Flags(), &path)
	cmd.Flags().BoolVar(&force, "force", false, "replace OUT when it exists")
	configs.BindFlags(cmd.Flags())
	return cmd
}

func newStateBackupCmd() *cobra.Command {
	var path string
	var remote adminFlags
	cmd := &cobra.Command{
		Use:   "backup [-c FILE] OUT [--addr URL [--token-file F]]",
		Short: "Write a consistent copy of the state file to OUT (from a running daemon with --addr)",
		Long: `Write a consistent copy of the state file to OUT, with mode 0600. The copy is written
beside OUT, synced, checked to open as a state file, then renamed over OUT, so OUT is never
a partial file. OUT's folder must exist; the live state file is refused.

Without --addr the state file is opened read-only, which fails while a daemon holds it; with
--addr the running daemon sends the copy (GET /api/v1/state/backup), while passes go on.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var (
				b   state.BackupFile
				err error
			)
			if remote.addr != "" {
				b, err = remoteBackup(cmd, path, &remote, args[0])
			} else {
				b, err = localBackup(cmd, path, args[0])
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "backup written: %s (%d bytes, schema v%d)\n", b.Path, b.Size, b.SchemaVersion)
			return nil
		},
	}
	cli.ConfigFlag(cmd.Flags(), &path)
	remote.bind(cmd)
	configs.BindFlags(cmd.Flags())
	return cmd
}

// localBackup copies the state file named by the config, which no daemon may hold.
func localBackup(cmd *cobra.Command, path, out string) (state.BackupFile, error) {
	st, err := readState(cmd, path)
	if err != nil {
		return state.BackupFile{}, err
	}
	defer st.Close()
	b, err := state.WriteBackupFile(st, out)
	return b, withCode(exitConfig, err)
}

// remoteBackup downloads the copy from a running daemon. With a config (-c, $IDSYNC_CONFIG or
// the default file) its state file is refused as OUT; without one, WriteBackupFrom still
// refuses a state file the daemon holds.
func remoteBackup(cmd *cobra.Command, path string, remote *adminFlags, out string) (state.BackupFile, error) {
	c, err := remote.client(path, cmd)
	if err != nil {
		return state.BackupFile{}, withCode(exitConfig, err)
	}
	live := ""
	if path, err := cli.ConfigPath(path); err == nil {
		cfg, err := configs.Load(path, cmd.Flags())
		if err != nil {
			return state.BackupFile{}, withCode(exitConfig, fmt.Errorf("config %s:\n%w", path, err))
		}
		live = cfg.State.Path
	}
	// An interrupted download ends as an error, so its temporary file is removed.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, err := state.WriteBackupFrom(out, live, func(w io.Writer) (int64, error) {
		return c.Download(ctx, "/api/v1/state/backup", w)
	})
	return b, withCode(exitConfig, err)
}

// readState loads the config at path and opens its state file read-only (state inspect,
// audit, status); errors carry the exit code.
func readState(cmd *cobra.Command, path string) (*state.Store, error) {
	cfg, err := cli.LoadConfig(path, cmd.Flags())
	if err != nil {
		return nil, withCode(exitConfig, err)
	}
	st, err := cli.OpenState(cfg, cli.Logger(cfg, cmd.ErrOrStderr()), true)
	if err != nil {
		return nil, withCode(exitConfig, err)
	}
	return st, nil
}
