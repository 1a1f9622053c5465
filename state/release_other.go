//go:build !linux

package state

import "go.etcd.io/bbolt"

// releaseMap is a no-op where MADV_DONTNEED is not known to leave a shared file map intact.
func releaseMap(*bbolt.Tx) {}
