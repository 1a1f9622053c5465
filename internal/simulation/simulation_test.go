package simulation

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// ciSeeds is the seed set `make test` runs: sized to take about a minute on 2 cores under
// -race.
var ciSeeds = []uint64{6, 17, 34, 46, 51, 65, 71, 78, 80, 84, 87, 120}

// seedsFromEnv reads IDSYNC_SIM_SEED (one seed) or IDSYNC_SIM_SEEDS (that many seeds from
// IDSYNC_SIM_START, default 1); nil when neither is set.
func seedsFromEnv(t *testing.T) []uint64 {
	if v := os.Getenv("IDSYNC_SIM_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("IDSYNC_SIM_SEED=%q: %v", v, err)
		}
		return []uint64{s}
	}
	v := os.Getenv("IDSYNC_SIM_SEEDS")
	if v == "" {
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("IDSYNC_SIM_SEEDS=%q: want a positive count", v)
	}
	start := uint64(1)
	if s := os.Getenv("IDSYNC_SIM_START"); s != "" {
		if start, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("IDSYNC_SIM_START=%q: %v", s, err)
		}
	}
	out := make([]uint64, n)
	for i := range out {
		out[i] = start + uint64(i)
	}
	return out
}

// TestSimulation runs whole histories against the real wiring and checks every invariant
// after every pass. A failure names its seed, step and invariant, and how to replay it.
func TestSimulation(t *testing.T) {
	t.Parallel() // each runs its seeds on its own workers; they wait on loopback often
	seeds := seedsFromEnv(t)
	bulk := seeds != nil
	if !bulk {
		seeds = ciSeeds
	}
	o := Options{StateDir: os.Getenv("IDSYNC_SIM_STATE_DIR")}
	if v := os.Getenv("IDSYNC_SIM_HUGE_COUNT"); v != "" {
		o.HugeCount, _ = strconv.Atoi(v)
	}
	parallel := runtime.GOMAXPROCS(0)
	if bulk {
		// A world waits on loopback and on its state file about a third of the time:
		// three per core keep the cores busy.
		parallel *= 3
	}
	if v := os.Getenv("IDSYNC_SIM_PARALLEL"); v != "" {
		parallel, _ = strconv.Atoi(v)
	}
	start := time.Now()
	done := 0
	rs := RunMany(seeds, o, parallel, func(r Result) {
		done++
		if bulk && len(seeds) > 1 && done%50 == 0 {
			fmt.Printf("simulation: %d of %d seeds done (%s)\n", done, len(seeds), time.Since(start).Round(time.Second))
		}
	})
	sum := Summarize(rs, time.Since(start))
	if bulk {
		fmt.Print(sum.String())
	} else {
		t.Log("\n" + sum.String())
	}
	if len(rs) == 1 && rs[0].Failure == nil && os.Getenv("IDSYNC_SIM_LOG") != "" {
		for _, l := range rs[0].Log {
			t.Log(l)
		}
	}
	for _, r := range sum.Failures {
		if r.Err != nil {
			t.Errorf("seed %d: simulation error: %v\nreplay: IDSYNC_SIM_SEED=%d go test -run TestSimulation ./internal/simulation/", r.Seed, r.Err, r.Seed)
			continue
		}
		t.Errorf("%v\nreplay: %s", r.Failure, r.Failure.Replay())
		if len(seeds) == 1 {
			for _, l := range r.Log {
				t.Log(l)
			}
		}
	}
}
