package simulation

import (
	"fmt"
	"os"
	"runtime"
	"testing"
)

// regressions are seeds that caught real defects: each failed the invariant named here on
// the code before the fix (commit 3c4304a) and must pass from the fix on. They ran miniOrange
// worlds, and still do whatever IdP the seed would choose now (Options.IdP). A history change
// (a new event kind, a different draw) changes what a seed does: when that happens, find
// new seeds with `make simulate` on the old commit and replace them here.
var regressions = []struct {
	seed      uint64
	invariant string
	defect    string
}{
	{219, I2, "remove-access stopped at the first group it could not leave (a group Jira refuses, 403): the leaver kept product access"},
	{517, I4, "a push-triggered pass whose push-store read failed counted its read as complete and acted on an older pulled snapshot: a person a push had deleted got access back"},
	{31, I4, "a miniOrange user record without a status was taken as active: a disabled person got access back"},
	{14, I9, "a lying totalCount sized the read (goroutines and memory by the claim, not by the pages received)"},
	{15, I8, "a push newer than the pull replaced the whole pulled record: groups only the pull knows were removed, then added back"},
	{16, I8, "the same, on a rename pushed while the pull read the users listing"},
	{4, I5, "an approval was a count: approving N held deactivations let the next pass deactivate any N x 1.1 people"},
	{11, I5, "a breaker threshold of 0 switched the breaker off instead of holding every change"},
	// Caught on commit 9e46324, before standing approvals.
	{102, I6, "a deactivation Jira never lets finish (a group it refuses to leave, 403) was planned and counted again every pass: each approval covered only the held half, and the hold flipped between two sets forever"},
	{3, I6, "the same, in the faulty run"},
	{173, I6, "the same, with max_deactivations 0"},
}

func TestRegressionSeeds(t *testing.T) {
	t.Parallel() // each runs its seeds on its own workers; they wait on loopback often
	if os.Getenv("IDSYNC_SIM_SEED") != "" || os.Getenv("IDSYNC_SIM_SEEDS") != "" {
		t.Skip("a seed was chosen: TestSimulation runs it")
	}
	seeds := make([]uint64, len(regressions))
	for i, r := range regressions {
		seeds[i] = r.seed
	}
	rs := RunMany(seeds, Options{IdP: IdPMiniOrange}, runtime.GOMAXPROCS(0), nil)
	for i, r := range rs {
		reg := regressions[i]
		t.Run(fmt.Sprintf("seed-%d", reg.seed), func(t *testing.T) {
			if r.Err != nil {
				t.Fatalf("simulation error: %v", r.Err)
			}
			if r.Failure != nil {
				t.Errorf("%v\nthis seed caught (%s): %s\nreplay: %s", r.Failure, reg.invariant, reg.defect, r.Failure.Replay())
			}
		})
	}
}
