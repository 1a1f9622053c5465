package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// small is a scenario on a small org without latency or rate limit, with a shrunk miniOrange
// page cap so that every listing takes several pages.
func small(t *testing.T, scenario string) Options {
	t.Helper()
	return Options{Scenario: scenario, Users: 30, Groups: 5, MembershipsPerUser: 2, Latency: -1, Rate: -1,
		SourceBatchCap: 7, Concurrency: 4, StateDir: t.TempDir(), Logger: zerolog.Nop()}
}

// checkPass asserts what every pass scenario must show: a clean pass, and reads no lower than
// the minimum (a count below it would mean the formula is wrong) and within 5% of it.
func checkPass(t *testing.T, r *Result) {
	t.Helper()
	if r.PassResult != "ok" || r.FailedItems != 0 {
		t.Fatalf("pass ended %q with %d failed items: %v", r.PassResult, r.FailedItems, r.Errors)
	}
	// min_jira_reads is what a full read needs; an incremental pass reads only what it writes.
	incremental := r.FullRead != nil && !*r.FullRead
	if (!incremental && r.Reads < int64(r.MinJiraReads)) || r.SourceReads < int64(r.MinSourceReads) {
		t.Errorf("reads %d (source %d) below the minimum %d (source %d): calls %v",
			r.Reads, r.SourceReads, r.MinJiraReads, r.MinSourceReads, r.Calls)
	}
	if float64(r.Reads+r.SourceReads) > MaxReadsFactor*float64(r.MinReads) {
		t.Errorf("reads %d + %d exceed 1.05 x min_reads %d: calls %v", r.Reads, r.SourceReads, r.MinReads, r.Calls)
	}
	if r.Throttled != 0 {
		t.Errorf("throttled = %d without a rate limit", r.Throttled)
	}
	if r.PeakRSSBytes == 0 || r.WallSeconds <= 0 {
		t.Errorf("peak RSS %d, wall %v", r.PeakRSSBytes, r.WallSeconds)
	}
}

// checkWrites asserts writes == min_writes. The only excess tolerated is the adds to the
// product's default group of accounts created in the same pass, which POST /user already put
// there (Jira answers 400, already a member); they are reported as wasted_writes, and any other
// extra write fails.
func checkWrites(t *testing.T, r *Result, _ int) {
	t.Helper()
	if r.Writes != int64(r.MinWrites) || r.WastedWrites != 0 {
		t.Errorf("writes = %d (%d wasted), want exactly min_writes %d: calls %v", r.Writes, r.WastedWrites, r.MinWrites, r.Calls)
	}
}

func TestInitialEndToEnd(t *testing.T) {
	r, err := Run(t.Context(), small(t, ScenarioInitial))
	if err != nil {
		t.Fatal(err)
	}
	checkPass(t, r)
	checkWrites(t, r, r.Users)
	if r.Users != 30 || r.Groups != 5 || r.Memberships != 60 || r.Mode != "in-process" || r.Counters != "simulator" {
		t.Errorf("result = %+v", r)
	}
	// 30 users + 5 groups (each holds members with 60 memberships spread over 5) + 60 adds.
	if r.MinWrites != 95 {
		t.Errorf("min_writes = %d, want 95", r.MinWrites)
	}
	if r.FloorSeconds != 0 || r.Ratio != 0 {
		t.Errorf("floor %v and ratio %v without rate or latency, want 0", r.FloorSeconds, r.Ratio)
	}
}

func TestNoopEndToEnd(t *testing.T) {
	r, err := Run(t.Context(), small(t, ScenarioNoop))
	if err != nil {
		t.Fatal(err)
	}
	checkPass(t, r)
	if r.Writes != 0 || r.MinWrites != 0 {
		t.Errorf("noop: writes %d, min_writes %d; want 0: calls %v", r.Writes, r.MinWrites, r.Calls)
	}
	if r.FullRead == nil || *r.FullRead || r.Reads > MaxIncrementalNoopReads {
		t.Errorf("noop: full_read %v with %d Jira reads; want an incremental pass of at most %d", r.FullRead, r.Reads, MaxIncrementalNoopReads)
	}
	if len(r.Goals) != 2 || !r.Goals[0].Met || !r.Goals[1].Met {
		t.Errorf("goals = %+v", r.Goals)
	}
	// --full-read-interval 0: the measured pass reads in full, exactly the minimum.
	o := small(t, ScenarioNoop)
	o.FullReadInterval = -1
	full, err := Run(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	if full.FullRead == nil || !*full.FullRead || full.Reads != int64(full.MinJiraReads) {
		t.Errorf("full noop: full_read %v, %d Jira reads; want a full read of exactly min_jira_reads %d", full.FullRead, full.Reads, full.MinJiraReads)
	}
}

func TestDriftEndToEnd(t *testing.T) {
	o := small(t, ScenarioDrift)
	o.DriftChanges = 7
	r, err := Run(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	checkPass(t, r)
	if r.DriftChanges != 7 || r.DriftIncrementalPasses != driftIncrementalPasses || r.DriftIncrementalWrites != 0 {
		t.Errorf("drift: %d changes, %d incremental passes writing %d; want 7, %d, 0", r.DriftChanges, r.DriftIncrementalPasses, r.DriftIncrementalWrites, driftIncrementalPasses)
	}
	if r.DriftRepaired == nil || !*r.DriftRepaired || r.DriftRepairWrites != 7 || r.DriftRepairReads != int64(r.MinJiraReads) {
		t.Errorf("repair: repaired %v with %d writes and %d reads; want true, 7, %d", r.DriftRepaired, r.DriftRepairWrites, r.DriftRepairReads, r.MinJiraReads)
	}
	for _, g := range r.Goals {
		if !g.Met {
			t.Errorf("goal %q not met: %s", g.Name, g.Got)
		}
	}
}

func TestChurnEndToEnd(t *testing.T) {
	o := small(t, ScenarioChurn)
	r, err := Run(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	checkPass(t, r)
	// 4 people: 2 move, 1 leaves, 1 is hired.
	if r.Changed != 4 {
		t.Errorf("changed = %d, want 4", r.Changed)
	}
	checkWrites(t, r, 1)
	// 2 moves (a removal and an add each), the leaver's 2 groups and the default group, the
	// hire and their group, and no group to create (each of the 5 groups has members).
	if r.MinWrites != 4+3+2 {
		t.Errorf("min_writes = %d, want 9", r.MinWrites)
	}
}

func TestRateAndLatencyAreMeasured(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the simulated latency")
	}
	o := small(t, ScenarioNoop)
	o.Latency, o.Rate, o.Burst = 5*time.Millisecond, 400, 5
	o.FullReadInterval = -1 // the floor is that of a full read
	r, err := Run(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	checkPass(t, r)
	if r.FloorSeconds <= 0 || r.Ratio <= 0 || r.WallSeconds < r.FloorSeconds {
		t.Errorf("floor %v, ratio %v, wall %v: the pass cannot beat the floor", r.FloorSeconds, r.Ratio, r.WallSeconds)
	}
	if r.LatencyMS != 5 || r.Rate != 400 {
		t.Errorf("latency %v ms, rate %v", r.LatencyMS, r.Rate)
	}
}

func TestSCIMEndToEnd(t *testing.T) {
	o := small(t, ScenarioSCIM)
	o.Users, o.Concurrency = 40, 4
	r, err := Run(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	if r.CreateRPS <= 0 || r.FilterRPS <= 0 || r.PatchRPS <= 0 || r.CreateP99ms < r.CreateP50ms || r.PatchP50ms <= 0 {
		t.Errorf("scim result = %+v", r)
	}
	var buf bytes.Buffer
	if err := WriteJSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"create_rps", "filter_rps", "patch_rps", "create_p50_ms", "create_p99_ms",
		"filter_p50_ms", "filter_p99_ms", "patch_p50_ms", "patch_p99_ms", "scenario", "peak_rss_bytes"} {
		if _, ok := m[k]; !ok {
			t.Errorf("scim JSON has no %q: %s", k, buf.String())
		}
	}
}

func TestPlanScenario(t *testing.T) {
	for _, live := range []string{"synced", "empty"} {
		t.Run(live, func(t *testing.T) {
			o := small(t, ScenarioPlan)
			o.Users, o.Groups, o.MembershipsPerUser, o.PlanLive = 400, 20, 3, live
			r, err := Run(t.Context(), o)
			if err != nil {
				t.Fatal(err)
			}
			created := r.Users
			if live == "synced" {
				created = 1 // 1% of 400 is 4 people: 2 moves, 1 leaver, 1 hire
				if r.Changed != 4 {
					t.Errorf("changed = %d, want 4", r.Changed)
				}
			}
			if r.PlannedWrites != r.MinWrites+int(r.WastedWrites) || r.WastedWrites > int64(created) {
				t.Errorf("planned writes %d, min_writes %d, wasted %d", r.PlannedWrites, r.MinWrites, r.WastedWrites)
			}
			if r.PeakRSSBytes == 0 || r.PlannedItems == 0 || r.Memberships != 1200 || r.Mode != "plan-only" {
				t.Errorf("result = %+v", r)
			}
		})
	}
}

func TestOptionsRejected(t *testing.T) {
	for _, o := range []Options{
		{Scenario: "bogus"},
		{Scenario: ScenarioInitial, Users: -1},
		{Scenario: ScenarioInitial, Groups: 3, MembershipsPerUser: 4},
		{Scenario: ScenarioChurn, JiraURL: "http://127.0.0.1:18081", MiniOrangeURL: "http://127.0.0.1:18082"},
		{Scenario: ScenarioNoop, JiraURL: "http://127.0.0.1:18081"},
		{Scenario: ScenarioPlan, PlanLive: "half"},
	} {
		if _, err := Run(context.Background(), o); !errors.Is(err, ErrUsage) {
			t.Errorf("Run(%+v) = %v, want ErrUsage", o, err)
		}
	}
}

func TestRemoteAgainstServedSimulators(t *testing.T) {
	// A running `idsync sim` is played by the in-process simulators served on loopback.
	o := small(t, ScenarioNoop)
	norm := o
	if err := norm.normalize(); err != nil {
		t.Fatal(err)
	}
	sims, err := startSims(norm)
	if err != nil {
		t.Fatal(err)
	}
	defer sims.Close()
	o.JiraURL, o.MiniOrangeURL = sims.JiraURL, sims.MiniOrangeURL
	r, err := Run(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	checkPass(t, r)
	if r.Mode != "remote" || r.Counters != "client-transport" || r.Writes != 0 || r.Users != 30 {
		t.Errorf("remote noop = %+v", r)
	}
	// The simulator served the measured pass and, before it, the inventory and the first sync.
	if got := sims.Jira.Reads(); got <= r.Reads {
		t.Errorf("the simulator served %d Jira reads in all, the measured pass alone counted %d", got, r.Reads)
	}
	// The state folder is no longer fresh: a second run refuses it.
	if _, err := Run(t.Context(), o); !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "fresh state") {
		t.Errorf("second run on a used state folder: %v, want a refusal", err)
	}
	// The site is no longer fresh either: a run with a new state folder refuses to measure it.
	o.StateDir = t.TempDir()
	if _, err := Run(t.Context(), o); err == nil || !strings.Contains(err.Error(), "fresh") {
		t.Errorf("second remote run on a used site: %v, want a refusal", err)
	}
}

func TestCountingTransport(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(status) }))
	defer srv.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer other.Close()
	ct, err := newCountingTransport(srv.URL, other.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer ct.closeIdle()
	c := &http.Client{Transport: ct}
	send := func(method, url string) {
		req, _ := http.NewRequestWithContext(t.Context(), method, url+"/rest/api/3/group/user", nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	send(http.MethodGet, srv.URL)
	send(http.MethodPost, srv.URL)
	status = http.StatusBadRequest
	send(http.MethodPost, srv.URL)
	status = http.StatusTooManyRequests
	send(http.MethodGet, srv.URL)
	send(http.MethodPost, other.URL)
	got := ct.counts()
	if got.reads != 1 || got.writes != 2 || got.throttled != 1 || got.source != 1 {
		t.Errorf("counts = %+v, want 1 read, 2 writes, 1 throttled, 1 source call", got)
	}
	if w := wastedWrites(got.calls); w != 1 {
		t.Errorf("wasted writes = %d, want 1 (the 400): %v", w, got.calls)
	}
	ct.reset()
	if got := ct.counts(); got.reads+got.writes+got.throttled+got.source != 0 || len(got.calls) != 0 {
		t.Errorf("after reset: %+v", got)
	}
	if _, err := newCountingTransport(srv.URL, srv.URL); !errors.Is(err, ErrUsage) {
		t.Errorf("same URL twice: %v, want ErrUsage", err)
	}
}

func TestWriteTable(t *testing.T) {
	r := &Result{Scenario: ScenarioInitial, Mode: "in-process", Counters: "simulator", Users: 2, Reads: 3, MinReads: 4,
		MinWrites: 5, Writes: 6, Calls: map[string]int64{"jira GET /x 200": 3}}
	r.Goals = goals(r)
	var buf bytes.Buffer
	if err := WriteTable(&buf, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"initial (in-process, counters: simulator)", "jira GET /x 200", "writes == min_writes", "no"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, buf.String())
		}
	}
}
