package simulation

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"
)

// Options shape a simulation run.
type Options struct {
	Sizes Sizes
	// StateDir holds the runs' state files (os.TempDir when empty).
	StateDir string
	// IdP, when set, is the IdP every seed's world runs instead of the seed's own choice
	// (IdPFor).
	IdP IdP
	// HugeCount, when set, is the totalCount a lying miniOrange listing claims instead of
	// hugeCount: smaller, for code that sizes memory by a claimed count, where the full
	// claim would take the process down instead of failing I9.
	HugeCount int
}

// DefaultSizes is a modest org and a history long enough to reach holds, approvals,
// crashes and recoveries.
var DefaultSizes = Sizes{MinUsers: 20, MaxUsers: 40, Steps: 26}

// Stats count what a run did.
type Stats struct {
	Steps          int
	Passes         int
	CleanPasses    int // complete fault-free full passes (the ones I2 counts)
	Checks         int // invariant checks made
	Faults         int // faults the fronts and wrappers injected
	Crashes        int
	Pushes         int
	Approvals      int
	Holds          int // passes the breaker held
	Races          int // pushes that raced a pull
	Overdue        int // person-passes I2 checked for lost access
	Overruns       int // steps whose waits ran past the next grid point (a determinism risk)
	ConvergePasses int
}

func (s *Stats) add(o Stats) {
	s.Steps += o.Steps
	s.Passes += o.Passes
	s.CleanPasses += o.CleanPasses
	s.Checks += o.Checks
	s.Faults += o.Faults
	s.Crashes += o.Crashes
	s.Pushes += o.Pushes
	s.Approvals += o.Approvals
	s.Holds += o.Holds
	s.Races += o.Races
	s.Overdue += o.Overdue
	s.Overruns += o.Overruns
	s.ConvergePasses += o.ConvergePasses
}

// Result is one seed's outcome.
type Result struct {
	Seed    uint64
	IdP     IdP
	Failure *Failure // the first broken invariant (nil: none)
	Err     error    // the simulation itself failed
	Stats   Stats    // both runs together
	// Digest is a hash of the faulty run's step log and end state: equal for two runs of
	// one seed.
	Digest   string
	Log      []string // the faulty run's step log
	Duration time.Duration
	forced   bool // the IdP was Options.IdP, not the seed's choice
}

// Run simulates one seed: the history drawn from it, first without faults (the twin),
// then with faults and crashes, each pass checked against every invariant, and the two end
// states compared.
func Run(seed uint64, o Options) Result {
	start := time.Now()
	if o.Sizes.Steps == 0 {
		o.Sizes = DefaultSizes
	}
	idp := o.IdP
	if idp == "" {
		idp = IdPFor(seed)
	}
	res := Result{Seed: seed, IdP: idp, forced: o.IdP != ""}
	h := Generate(rand.New(rand.NewPCG(seed, 0x4157)), o.Sizes, idp)
	twin := newRun(seed, h, false, o)
	err := twin.execute()
	res.Stats.add(twin.stats)
	res.Stats.Faults += twin.fb.total()
	res.Stats.Steps += len(h.Steps)
	switch {
	case err != nil:
		res.Err = fmt.Errorf("seed %d (%s), fault-free run, step %d: %w", seed, idp, twin.step, err)
	case twin.fail != nil:
		res.Failure = twin.fail
	case !twin.converged:
		twin.violate(checkConvergence(nil, nil, false, twin.params.Grace+8, twin.lastConverge), nil)
		res.Failure = twin.fail
	}
	if res.Err != nil || res.Failure != nil {
		res.Log, res.Duration = twin.log, time.Since(start)
		res.Digest = digest(twin.log, twin.end)
		return res
	}
	faulty := newRun(seed, h, true, o)
	err = faulty.execute()
	res.Stats.add(faulty.stats)
	res.Stats.Faults += faulty.fb.total()
	res.Stats.Steps += len(h.Steps)
	if err != nil {
		res.Err = fmt.Errorf("seed %d (%s), faulty run, step %d: %w", seed, idp, faulty.step, err)
	}
	if err == nil && faulty.fail == nil {
		faulty.violate(checkConvergence(twin.end, faulty.end, faulty.converged, faulty.params.Grace+8, faulty.lastConverge), nil)
	}
	res.Failure = faulty.fail
	res.Log = faulty.log
	res.Digest = digest(faulty.log, faulty.end)
	res.Duration = time.Since(start)
	return res
}

// Replay is the command that runs the seed alone, as it ran.
func (r Result) Replay() string { return replayLine(r.Seed, r.IdP, r.forced) }

// digest hashes a step log and an end state.
func digest(log []string, end map[string]string) string {
	sum := sha256.New()
	for _, l := range log {
		sum.Write([]byte(l + "\n"))
	}
	for _, k := range sortedKeys(end) {
		sum.Write([]byte(k + "=" + end[k] + "\n"))
	}
	return hex.EncodeToString(sum.Sum(nil))
}

// RunMany runs seeds on parallel workers and returns the results in seed order.
func RunMany(seeds []uint64, o Options, parallel int, progress func(Result)) []Result {
	out := make([]Result, len(seeds))
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for range max(parallel, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i] = Run(seeds[i], o)
				if progress != nil {
					mu.Lock()
					progress(out[i])
					mu.Unlock()
				}
			}
		}()
	}
	for i := range seeds {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

// Summary is what a batch of seeds did.
type Summary struct {
	Seeds    int
	ByIdP    map[IdP]int // seeds per IdP
	Stats    Stats
	Slowest  uint64
	SlowTime time.Duration
	Wall     time.Duration
	Failures []Result
}

// Summarize adds results up.
func Summarize(rs []Result, wall time.Duration) Summary {
	s := Summary{Seeds: len(rs), Wall: wall, ByIdP: map[IdP]int{}}
	for _, r := range rs {
		s.ByIdP[r.IdP]++
		s.Stats.add(r.Stats)
		if r.Duration > s.SlowTime {
			s.Slowest, s.SlowTime = r.Seed, r.Duration
		}
		if r.Failure != nil || r.Err != nil {
			s.Failures = append(s.Failures, r)
		}
	}
	sort.Slice(s.Failures, func(i, j int) bool { return s.Failures[i].Seed < s.Failures[j].Seed })
	return s
}

func (s Summary) String() string {
	var b strings.Builder
	st := s.Stats
	fmt.Fprintf(&b, "simulation: %d seeds in %s\n", s.Seeds, s.Wall.Round(time.Millisecond))
	var by []string
	for _, k := range IdPs {
		if n := s.ByIdP[k]; n > 0 {
			by = append(by, fmt.Sprintf("%s %d", k, n))
		}
	}
	fmt.Fprintf(&b, "  IdPs: %s\n", strings.Join(by, ", "))
	fmt.Fprintf(&b, "  steps %d, passes %d (%d complete and fault-free), invariant checks %d\n", st.Steps, st.Passes, st.CleanPasses, st.Checks)
	fmt.Fprintf(&b, "  faults injected %d, crashes %d, pushes %d (%d racing a pull), held passes %d, approvals %d, leaver checks (I2) %d, clock overruns %d\n",
		st.Faults, st.Crashes, st.Pushes, st.Races, st.Holds, st.Approvals, st.Overdue, st.Overruns)
	fmt.Fprintf(&b, "  slowest seed %d (%s)\n", s.Slowest, s.SlowTime.Round(time.Millisecond))
	fmt.Fprintf(&b, "  failures: %d\n", len(s.Failures))
	for _, f := range s.Failures {
		if f.Err != nil {
			fmt.Fprintf(&b, "    seed %d: simulation error: %v\n      replay: %s\n", f.Seed, f.Err, f.Replay())
			continue
		}
		fmt.Fprintf(&b, "    %v\n      replay: %s\n", f.Failure, f.Failure.Replay())
	}
	return b.String()
}
