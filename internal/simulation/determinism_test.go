package simulation

import (
	"os"
	"testing"
)

// TestDeterministic runs one seed twice: the same seed must make the same history, the same
// faults, the same passes and writes, and the same end state.
func TestDeterministic(t *testing.T) {
	t.Parallel() // each runs its seeds on its own workers; they wait on loopback often
	seeds := []uint64{ciSeeds[0]}
	if s := seedsFromEnv(t); s != nil && os.Getenv("IDSYNC_SIM_DETERMINISM") != "" {
		seeds = s
	}
	for _, seed := range seeds {
		a := Run(seed, Options{})
		b := Run(seed, Options{})
		if a.Err != nil || b.Err != nil {
			t.Fatalf("seed %d: %v / %v", seed, a.Err, b.Err)
		}
		if a.Digest == "" || a.Digest != b.Digest {
			for i := range min(len(a.Log), len(b.Log)) {
				if a.Log[i] != b.Log[i] {
					t.Fatalf("seed %d: runs differ at log line %d:\n  %s\n  %s", seed, i, a.Log[i], b.Log[i])
				}
			}
			t.Fatalf("seed %d: digests differ (%s, %s); logs of %d and %d lines", seed, a.Digest, b.Digest, len(a.Log), len(b.Log))
		}
		if (a.Failure == nil) != (b.Failure == nil) {
			t.Fatalf("seed %d: one run failed, the other not: %v / %v", seed, a.Failure, b.Failure)
		}
	}
}
