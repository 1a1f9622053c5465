// Package proctest holds what process-level tests of the idsync binary share: building it,
// a clean environment, and the checks every output gets (no secret, no data race).
package proctest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Build compiles cmd/idsync to dir/idsync (with -race when race is set) and returns the path.
func Build(dir string, race bool) (string, error) {
	path := filepath.Join(dir, "idsync")
	args := []string{"build", "-o", path}
	if race {
		args = append(args, "-race")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	out, err := exec.Command(goBin, append(args, "github.com/idsync/idsync/cmd/idsync")...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("building idsync: %v\n%s", err, out)
	}
	return path, nil
}

// CleanEnv is this process's environment without IDSYNC_* settings, plus extra.
func CleanEnv(extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "IDSYNC_") {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}

// Tail is the last n bytes of s, marked when cut.
func Tail(s string, n int) string {
	if len(s) > n {
		return "...\n" + s[len(s)-n:]
	}
	return s
}

// NoRace fails t when a race-built binary reported a data race.
func NoRace(t testing.TB, stderr string) {
	t.Helper()
	if strings.Contains(stderr, "WARNING: DATA RACE") {
		t.Errorf("data race in the idsync binary:\n%s", Tail(stderr, 8000))
	}
}

// NoSecrets fails t when text holds any of secrets.
func NoSecrets(t testing.TB, what, text string, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%s: output contains the secret %q", what, s)
		}
	}
}
