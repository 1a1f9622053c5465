//go:build unix

package state

import (
	"errors"
	"os"
	"syscall"
)

// unlockFile drops the flock bbolt took on f. Closing f alone is not enough after a panic
// inside bbolt.Open: the memory map bbolt made keeps the open file (and its lock) alive.
func unlockFile(f *os.File) { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }

// tryLockShared takes a shared flock on f without waiting; false means a writer holds it.
func tryLockShared(f *os.File) (bool, error) {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return false, nil
	}
	return err == nil, err
}
