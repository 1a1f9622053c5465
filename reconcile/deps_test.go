package reconcile_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The domain is pure: the model, mapping, planner and guards reach no logger, metrics or
// state package, directly or through another import. The runtime (Runner, executor, journal
// replay, source reading) lives in reconcile/runner.
func TestDomainImportsNoRuntime(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 5 {
		t.Fatalf("go list -deps listed %d packages: %q", len(deps), out)
	}
	for _, d := range deps {
		for _, banned := range []string{"github.com/rs/zerolog", "github.com/idsync/idsync/internal/metrics", "github.com/idsync/idsync/state",
			"github.com/idsync/idsync/reconcile/runner", "github.com/prometheus/"} {
			if strings.HasPrefix(d, banned) {
				t.Errorf("reconcile depends on %s", d)
			}
		}
	}
}
