package reliability

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// long is IDSYNC_LONG=1: full sizes and trial counts (`make reliability`).
var long = os.Getenv("IDSYNC_LONG") == "1"

func TestMain(m *testing.M) {
	code := m.Run()
	cleanupBinary()
	if code == 0 {
		if err := goleak.Find(
			goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
			goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
			goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	if err := figures.write(); err != nil {
		fmt.Fprintln(os.Stderr, "reliability report:", err)
		code = 1
	}
	os.Exit(code)
}

// --- figures -----------------------------------------------------------------------------------

// faultFigure is one scenario of the fault matrix.
type faultFigure struct {
	Name   string `json:"name"`
	Target string `json:"target"` // jira | miniorange
	// FaultsInjected counts faults the simulator really injected (5xx, resets, cut bodies,
	// slow answers, error bodies, skewed or shifted pages); Throttled counts 429 answers.
	FaultsInjected   int64 `json:"faultsInjected"`
	Throttled        int64 `json:"throttled"`
	PassesWithFaults int   `json:"passesWithFaults"`
	// PassesToConverge counts the passes that did work before one found nothing to do,
	// summed over the scenario's phases; Baseline is the same for the fault-free run.
	PassesToConverge int `json:"passesToConverge"`
	BaselinePasses   int `json:"baselinePasses"`
	// FailedItems counts items passes reported failed or skipped (retried later).
	FailedItems   int     `json:"failedItemsReported"`
	Incomplete    int     `json:"incompleteReads"`
	Duplicates    int     `json:"duplicates"`
	Lost          int     `json:"lost"`
	ExtraRemovals int     `json:"extraRemovals"`
	EarlyRetries  int64   `json:"earlyRetries"`
	Seconds       float64 `json:"seconds"`
}

// crashFigure sums the crash trials.
type crashFigure struct {
	Trials     int   `json:"trials"`
	Kills      int   `json:"kills"`
	KillsAtMs  []int `json:"killsAtMs"`
	PassMs     int   `json:"uncrashedPassMs"`
	Users      int   `json:"users"`
	Writes     int   `json:"jiraWritesPerTrial"`
	MaxRestart int   `json:"maxRestartsToConverge"`
	Duplicates int   `json:"duplicates"`
	Lost       int   `json:"lost"`
	// Unaudited counts Jira writes without an audit record (see the report).
	Unaudited int `json:"unaudited"`
}

type scimFigure struct {
	Writes int `json:"acknowledgedWrites"`
	Kills  int `json:"kills"`
	Lost   int `json:"lost"`
}

type namedFigure struct {
	Name   string `json:"name"`
	Result string `json:"result"`
}

type report struct {
	Long        bool               `json:"long"`
	Faults      []faultFigure      `json:"faults,omitempty"`
	Crash       *crashFigure       `json:"crash,omitempty"`
	SCIM        *scimFigure        `json:"scimAck,omitempty"`
	Outages     []namedFigure      `json:"outages,omitempty"`
	Hostile     []namedFigure      `json:"hostileData,omitempty"`
	FuzzTargets []string           `json:"fuzzTargets,omitempty"`
	FuzzTime    string             `json:"fuzzTime"`
	Seconds     map[string]float64 `json:"testSeconds,omitempty"`
}

type figureBook struct {
	mu sync.Mutex
	r  report
}

var figures = &figureBook{r: report{Long: long, Seconds: map[string]float64{}}}

func (f *figureBook) update(fn func(r *report)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.r)
}

// timed records how long a test took, for the report.
func timed(t *testing.T) {
	start := time.Now()
	t.Cleanup(func() {
		figures.update(func(r *report) { r.Seconds[t.Name()] = time.Since(start).Round(time.Millisecond).Seconds() })
	})
}

// write stores the figures as JSON at IDSYNC_RELIABILITY_REPORT, if set, and prints a
// summary in the long run.
func (f *figureBook) write() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	sort.Slice(f.r.Faults, func(i, j int) bool { return f.r.Faults[i].Name < f.r.Faults[j].Name })
	f.r.FuzzTime = os.Getenv("FUZZTIME")
	if f.r.FuzzTime == "" {
		f.r.FuzzTime = "5s per target in CI (make fuzz FUZZTIME=5s)"
	}
	b, err := json.MarshalIndent(f.r, "", "  ")
	if err != nil {
		return err
	}
	if path := os.Getenv("IDSYNC_RELIABILITY_REPORT"); path != "" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if long {
		fmt.Printf("reliability figures:\n%s\n", b)
	}
	return nil
}
