//go:build linux

package state

import (
	"go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// releaseMap drops the state file's pages from this process's page tables; the kernel's page
// cache keeps them, and a later read maps them again at the cost of a minor fault. A bulk
// read of a big file would otherwise leave most of the file resident in the daemon: each
// fault on the memory map also maps up to 15 neighbouring cached pages (fault-around), and
// the owned records of a big site sit scattered among audit pages.
//
// It must run inside tx: bbolt only moves its memory map under a lock every open
// transaction holds, so the address range stays mapped. The map is read-only and shared, so
// dropping pages loses nothing.
func releaseMap(tx *bbolt.Tx) {
	base := tx.DB().Info().Data
	if base == 0 {
		return
	}
	_, _, _ = unix.Syscall(unix.SYS_MADVISE, base, uintptr(tx.Size()), unix.MADV_DONTNEED)
}
