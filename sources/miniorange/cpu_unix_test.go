//go:build unix

package miniorange

import (
	"syscall"
	"time"
)

// processCPU is the user+system CPU time this process has used (client and in-process
// simulator together), which machine load does not inflate the way it inflates wall time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
