//go:build !unix

package state

import "os"

// unlockFile: elsewhere bbolt's lock goes with the handle, which the caller closes.
func unlockFile(*os.File) {}
