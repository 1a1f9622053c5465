package simulation

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/idsync/idsync/sources/ldap/ldaptest"
)

// ciSeeds is the seed set `make test` runs: sized to take about a minute on 2 cores under
// -race. The seeds choose their IdP (IdPFor): 46 and 87 run Google Workspace, 71 and 80 LDAP
// on a real slapd, the others miniOrange.
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

// idpFromEnv reads IDSYNC_SIM_IDP: the IdP every seed runs instead of its own choice.
func idpFromEnv(t *testing.T) IdP {
	v := IdP(os.Getenv("IDSYNC_SIM_IDP"))
	if v != "" && !slices.Contains(IdPs, v) {
		t.Fatalf("IDSYNC_SIM_IDP=%q: want one of %v", v, IdPs)
	}
	return v
}

// noSlapd reports whether a seed could not run for want of slapd on a machine that may skip
// the LDAP tests (not with IDSYNC_REQUIRE_SLAPD=1, where it is a failure, as in CI).
func noSlapd(err error) bool {
	return errors.Is(err, ldaptest.ErrUnavailable) && os.Getenv(ldaptest.RequireEnv) != "1"
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
	o := Options{StateDir: os.Getenv("IDSYNC_SIM_STATE_DIR"), IdP: idpFromEnv(t)}
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
			if noSlapd(r.Err) {
				t.Logf("seed %d (LDAP) not run: %v (install with: %s; %s=1 makes this a failure)", r.Seed, r.Err, ldaptest.InstallHint, ldaptest.RequireEnv)
				continue
			}
			t.Errorf("seed %d: simulation error: %v\nreplay: %s", r.Seed, r.Err, r.Replay())
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
