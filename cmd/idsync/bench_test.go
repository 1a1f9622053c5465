package main

import (
	"strings"
	"testing"

	"github.com/idsync/idsync/internal/sim"
)

// bench --source measures the Google and LDAP sources too, each against its computed
// minimum; an unknown source is a usage error.
func TestBenchSources(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sim.Options{})
	if r := e.idsync("bench", "--source", "okta"); r.code != exitConfig || !strings.Contains(r.stderr, `--source "okta"`) {
		t.Fatalf("unknown source: %d %s", r.code, r.stderr)
	}
	r := e.idsync("bench", "--source", "google", "--scenario", "initial", "--users", "60", "--groups", "6", "--latency", "0", "--rate", "0")
	if r.code != 0 || !strings.Contains(r.stdout, "google users.list") || !strings.Contains(r.stdout, "writes == min_writes") {
		t.Fatalf("google bench: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}
