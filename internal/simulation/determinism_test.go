package simulation

import (
	"os"
	"runtime"
	"slices"
	"testing"
)

// TestDeterministic runs a seed of each IdP twice: the same seed must make the same history,
// the same faults, the same passes and writes, and the same end state.
func TestDeterministic(t *testing.T) {
	t.Parallel() // each runs its seeds on its own workers; they wait on loopback often
	var seeds []uint64
	for _, k := range IdPs {
		if i := slices.IndexFunc(ciSeeds, func(s uint64) bool { return IdPFor(s) == k }); i >= 0 {
			seeds = append(seeds, ciSeeds[i])
		}
	}
	if s := seedsFromEnv(t); s != nil && os.Getenv("IDSYNC_SIM_DETERMINISM") != "" {
		seeds = s
	}
	// Both runs of every seed at once: each world is its own.
	twice := make([]uint64, 0, 2*len(seeds))
	for _, seed := range seeds {
		twice = append(twice, seed, seed)
	}
	rs := RunMany(twice, Options{}, runtime.GOMAXPROCS(0), nil)
	for i, seed := range seeds {
		a, b := rs[2*i], rs[2*i+1]
		if a.Err != nil || b.Err != nil {
			if noSlapd(a.Err) {
				t.Logf("seed %d (LDAP) not run: %v", seed, a.Err)
				continue
			}
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
