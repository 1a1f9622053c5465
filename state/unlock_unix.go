//go:build unix

package state

import (
	"os"
	"syscall"
)

// unlockFile drops the flock bbolt took on f. Closing f alone is not enough after a panic
// inside bbolt.Open: the memory map bbolt made keeps the open file (and its lock) alive.
func unlockFile(f *os.File) { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }
