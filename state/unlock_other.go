//go:build !unix

package state

import "os"

// unlockFile: elsewhere bbolt's lock goes with the handle, which the caller closes.
func unlockFile(*os.File) {}

// tryLockShared: elsewhere the file is checked without a lock (bbolt locks it right after).
func tryLockShared(*os.File) (bool, error) { return true, nil }
