package state

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/bbolt"
)

// lockProbeTimeout bounds the check that a backup's target is not a state file some idsync
// holds open: a free file opens at once, so only a held one waits this long.
const lockProbeTimeout = 100 * time.Millisecond

// Backup writes a consistent point-in-time copy of the whole state file to w and returns the
// bytes written. It is safe while passes, SCIM pushes and API calls write: it runs in one read
// transaction, so the copy holds every transaction committed before it began and none after,
// and the writers go on meanwhile. The copy is a complete state file that Open accepts.
//
// A writer that must grow the file waits for open read transactions, so w should be fast (a
// local file), not a slow network peer.
func (s *Store) Backup(w io.Writer) (int64, error) {
	var n int64
	err := s.view(func(tx *bbolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("backing up state file %s: %w", s.path, err)
	}
	return n, nil
}

// BackupFile is a backup written to disk and verified.
type BackupFile struct {
	// Path is the absolute path of the backup.
	Path string
	// Size is its length in bytes.
	Size int64
	// SchemaVersion is the schema version of the copy (the store's at the time of the copy).
	SchemaVersion int
}

// WriteBackupFile writes a Backup of s to path; see WriteBackupFrom for how.
func WriteBackupFile(s *Store, path string) (BackupFile, error) {
	return WriteBackupFrom(path, s.path, s.Backup)
}

// WriteBackupFrom writes the state file that write produces (Store.Backup, or a download
// from the daemon's admin API) to path, never leaving a partial or unreadable file there: it
// writes a temporary file with mode 0600 in path's folder, syncs it, checks that it opens as
// a state file, and only then renames it over path. A copy that does not open is removed and
// the error says why; whatever path held before stays as it was.
//
// It refuses a path that is live, the state file being copied (same cleaned absolute path,
// or the same file through a link), and a path that is a state file some idsync holds open,
// since replacing a file under a running daemon loses its writes. The folder must exist.
func WriteBackupFrom(path, live string, write func(io.Writer) (int64, error)) (BackupFile, error) {
	if path == "" {
		return BackupFile{}, errors.New("writing a backup: no file given")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return BackupFile{}, fmt.Errorf("writing backup %s: %w", path, err)
	}
	if err := checkBackupTarget(abs, live); err != nil {
		return BackupFile{}, err
	}
	dir := filepath.Dir(abs)
	if info, err := os.Stat(dir); err != nil || !info.IsDir() {
		return BackupFile{}, fmt.Errorf("writing backup %s: folder %s does not exist (create it first)", abs, dir)
	}

	tmp, err := os.CreateTemp(dir, "."+filepath.Base(abs)+".tmp-*")
	if err != nil {
		return BackupFile{}, fmt.Errorf("writing backup %s: %w", abs, err)
	}
	renamed := false
	defer func() {
		_ = tmp.Close() // a no-op once closed below
		if !renamed {
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return BackupFile{}, fmt.Errorf("writing backup %s: %w", abs, err)
	}
	n, err := write(tmp)
	if err != nil {
		return BackupFile{}, fmt.Errorf("writing backup %s: %w", abs, err)
	}
	if err := tmp.Sync(); err != nil {
		return BackupFile{}, fmt.Errorf("writing backup %s: syncing: %w", abs, err)
	}
	if err := tmp.Close(); err != nil {
		return BackupFile{}, fmt.Errorf("writing backup %s: %w", abs, err)
	}
	version, err := verifyBackup(tmp.Name())
	if err != nil {
		return BackupFile{}, fmt.Errorf("backup %s was not written: the copy does not open as a state file (removed): %w", abs, err)
	}
	if err := os.Rename(tmp.Name(), abs); err != nil {
		return BackupFile{}, fmt.Errorf("writing backup %s: %w", abs, err)
	}
	renamed = true
	// The rename is durable once the folder is synced; systems that cannot sync a folder
	// (Windows) make it durable on their own.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return BackupFile{Path: abs, Size: n, SchemaVersion: version}, nil
}

// checkBackupTarget refuses a backup target that is the live state file or a state file in
// use, and a folder.
func checkBackupTarget(abs, live string) error {
	target, statErr := os.Stat(abs)
	if live != "" {
		liveAbs, err := filepath.Abs(live)
		if err != nil {
			liveAbs = filepath.Clean(live)
		}
		same := liveAbs == abs
		if !same && statErr == nil {
			if li, err := os.Stat(liveAbs); err == nil && os.SameFile(target, li) {
				same = true
			}
		}
		if same {
			return fmt.Errorf("refusing to write the backup over the live state file %s: choose another file", liveAbs)
		}
	}
	switch {
	case errors.Is(statErr, fs.ErrNotExist):
		return nil
	case statErr != nil:
		return fmt.Errorf("writing backup %s: %w", abs, statErr)
	case target.IsDir():
		return fmt.Errorf("writing backup %s: it is a folder; name the backup file (e.g. %s)",
			abs, filepath.Join(abs, "idsync-state-"+time.Now().UTC().Format("20060102T150405Z")+".db"))
	case !target.Mode().IsRegular() || target.Size() == 0:
		return nil
	}
	st, err := Open(abs, Options{ReadOnly: true, Timeout: lockProbeTimeout})
	if errors.Is(err, ErrLocked) {
		return fmt.Errorf("refusing to write the backup over %s: it is a state file a running idsync holds open", abs)
	}
	if err == nil {
		_ = st.Close()
	}
	return nil
}

// verifyBackup opens a copy read-only as Open would at restore and returns its schema
// version.
func verifyBackup(path string) (int, error) {
	st, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		return 0, err
	}
	v := st.SchemaVersion()
	return v, st.Close()
}
