package bench

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
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
