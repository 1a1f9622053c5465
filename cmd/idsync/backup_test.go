package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/idsync/idsync/internal/sim"
)

// TestStateBackup: `state backup` copies the state file offline and, with --addr, from a
// running daemon; both copies open as state files with the links of the live one. It refuses
// the live file, and without --addr it points at the admin API while the daemon holds the file.
func TestStateBackup(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sim.Options{})
	e.writeConfig(e.cfg)
	cfg := e.configPath()
	if r := e.idsync("reconcile", "-c", cfg); r.code != 0 {
		t.Fatalf("reconcile: exit %d\n%s", r.code, r.stderr)
	}
	liveLinks, _ := stateRecords(t, e.statePath())
	if len(liveLinks) == 0 {
		t.Fatal("no links after a pass")
	}
	backups := t.TempDir()

	// checkBackup opens a backup and compares its links with the live file's.
	checkBackup := func(t *testing.T, r cmdResult, out string) {
		t.Helper()
		if r.code != 0 || !strings.Contains(r.stdout, "backup written: "+out) {
			t.Fatalf("state backup: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		info, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		if mode := info.Mode().Perm(); mode != 0o600 {
			t.Errorf("backup mode %#o, want 0600", mode)
		}
		if links, _ := stateRecords(t, out); len(links) != len(liveLinks) {
			t.Errorf("the backup holds %d links, the state file %d", len(links), len(liveLinks))
		}
	}

	t.Run("offline", func(t *testing.T) {
		out := filepath.Join(backups, "offline.db")
		checkBackup(t, e.idsync("state", "backup", "-c", cfg, out), out)
	})

	t.Run("refuses the live state file", func(t *testing.T) {
		before, err := os.ReadFile(e.statePath())
		if err != nil {
			t.Fatal(err)
		}
		r := e.idsync("state", "backup", "-c", cfg, e.statePath())
		if r.code != exitConfig || !strings.Contains(r.stderr, "live state file") {
			t.Errorf("backup over the live file: exit %d\n%s", r.code, r.stderr)
		}
		if after, _ := os.ReadFile(e.statePath()); string(after) != string(before) {
			t.Error("the live state file changed")
		}
	})

	d := e.startDaemon("--no-initial-pass")

	t.Run("without --addr while the daemon holds the file", func(t *testing.T) {
		out := filepath.Join(backups, "locked.db")
		r := e.idsync("state", "backup", "-c", cfg, out)
		if r.code != exitConfig || !strings.Contains(r.stderr, "idsync state backup --addr URL OUT") {
			t.Errorf("backup while the daemon runs: exit %d\n%s", r.code, r.stderr)
		}
		if _, err := os.Stat(out); err == nil {
			t.Error("a backup was written")
		}
	})

	t.Run("--addr", func(t *testing.T) {
		out := filepath.Join(backups, "remote.db")
		checkBackup(t, e.idsync("state", "backup", "--addr", d.url(""), "-c", cfg, out), out)
	})

	t.Run("--addr refuses the live state file", func(t *testing.T) {
		r := e.idsync("state", "backup", "--addr", d.url(""), "-c", cfg, e.statePath())
		if r.code != exitConfig || !strings.Contains(r.stderr, "live state file") {
			t.Errorf("backup --addr over the live file: exit %d\n%s", r.code, r.stderr)
		}
		// Without -c the daemon's lock on the file gives it away.
		tok := filepath.Join(backups, "token")
		if err := os.WriteFile(tok, []byte(e.adminToken), 0o600); err != nil {
			t.Fatal(err)
		}
		r = e.idsync("state", "backup", "--addr", d.url(""), "--token-file", tok, e.statePath())
		if r.code != exitConfig || !strings.Contains(r.stderr, "a running idsync holds open") {
			t.Errorf("backup --addr without -c over the live file: exit %d\n%s", r.code, r.stderr)
		}
	})

	t.Run("--addr with a wrong token", func(t *testing.T) {
		tok := filepath.Join(backups, "wrong-token")
		if err := os.WriteFile(tok, []byte("wrong-token-0123456789"), 0o600); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(backups, "unauthorized.db")
		r := e.idsync("state", "backup", "--addr", d.url(""), "--token-file", tok, out)
		if r.code != exitConfig || !strings.Contains(r.stderr, "401 unauthorized") {
			t.Errorf("backup with a wrong token: exit %d\n%s", r.code, r.stderr)
		}
		if _, err := os.Stat(out); err == nil {
			t.Error("a backup was written")
		}
	})

	entries, err := os.ReadDir(backups)
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range entries {
		if strings.Contains(en.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", en.Name())
		}
	}
	d.signal(syscall.SIGTERM)
	if code, _ := d.wait(25 * time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM: %d", code)
	}
}
