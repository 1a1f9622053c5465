package bench

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"time"
)

// PeakRSS is the process's peak resident set size in bytes: VmHWM from /proc/self/status on
// Linux, else getrusage's maxrss; 0 when neither is available.
func PeakRSS() uint64 {
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		if v, ok := parseVmHWM(b); ok {
			return v
		}
	}
	return rusagePeak()
}

// pollInterval is how often watchPeak reads a child's VmHWM.
const pollInterval = 20 * time.Millisecond

// watchPeak follows the VmHWM of process pid until stop is closed and returns the last value
// read: the high-water mark only grows, so that is the child's peak up to at most
// pollInterval before it exited. getrusage cannot tell: a child started by os/exec shares
// this process's memory until its execve, and Linux folds that memory's high-water mark into
// the child's ru_maxrss. 0 where /proc is not available.
func watchPeak(pid int, stop <-chan struct{}) uint64 {
	path := "/proc/" + strconv.Itoa(pid) + "/status"
	var peak uint64
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		if b, err := os.ReadFile(path); err == nil {
			if v, ok := parseVmHWM(b); ok && v > peak {
				peak = v
			}
		}
		select {
		case <-stop:
			return peak
		case <-t.C:
		}
	}
}

// parseVmHWM reads the "VmHWM:  123456 kB" line of /proc/self/status.
func parseVmHWM(status []byte) (uint64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, false
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, false
		}
		return kb * 1024, true
	}
	return 0, false
}
