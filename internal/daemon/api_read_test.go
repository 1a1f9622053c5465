package daemon

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idsync/idsync/reconcile"
)

// GET /api/v1/plan goes through the Runner: asked while a pass runs, its dry run starts only
// after that pass has finished, and it writes nothing to Jira.
func TestPlanWaitsForThePassInFlight(t *testing.T) {
	p := startInProcess(t, "")
	reading, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	p.sims.MiniOrange.SetUserHook(func(_, _ string, _ map[string]any) {
		once.Do(func() {
			close(reading)
			<-release
		})
	})
	if code, body := p.call("POST", "/api/v1/reconcile"); code != http.StatusAccepted {
		t.Fatalf("reconcile: %d %s", code, body)
	}
	select {
	case <-reading:
	case <-time.After(20 * time.Second):
		t.Fatal("the requested pass never read the source")
	}
	type answer struct {
		code int
		body []byte
	}
	planned := make(chan answer, 1)
	go func() {
		code, body := p.call("GET", "/api/v1/plan?run=true")
		planned <- answer{code, body}
	}()
	close(release)
	a := <-planned
	var plan reconcile.Run
	if a.code != http.StatusOK || json.Unmarshal(a.body, &plan) != nil || !plan.DryRun || plan.Changes == nil {
		t.Fatalf("plan: %d %.300s", a.code, a.body)
	}
	_, body := p.call("GET", "/api/v1/runs")
	var runs struct{ Runs []reconcile.Run }
	if err := json.Unmarshal(body, &runs); err != nil || len(runs.Runs) != 2 {
		t.Fatalf("runs: %v %s", err, body)
	}
	applied := runs.Runs[1] // oldest second: newest first
	if applied.DryRun || applied.ID == plan.ID || plan.Started.Before(applied.Finished) {
		t.Errorf("the plan's pass (%s, started %s) overlapped the pass in flight (%s, finished %s)",
			plan.ID, plan.Started, applied.ID, applied.Finished)
	}
	// After the applied pass, nothing is left to create: the plan says so as plan -o json does.
	code, body := p.call("GET", "/api/v1/plan")
	var c reconcile.Changes
	if code != http.StatusOK || json.Unmarshal(body, &c) != nil || len(c.CreateUsers) != 0 || !strings.Contains(string(body), `"createUsers"`) {
		t.Errorf("plan (Changes): %d %.300s", code, body)
	}
	for q, want := range map[string]int{"source=nope": 400, "user=": 400} {
		if code, body := p.call("GET", "/api/v1/plan?"+q); code != want {
			t.Errorf("plan?%s: %d %s, want %d", q, code, body, want)
		}
	}
}

func TestSinceParam(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"24h":                       now.Add(-24 * time.Hour),
		"2026-02-01T00:00:00Z":      time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC),
		"2026-02-01T00:00:00.5Z":    time.Date(2026, 2, 1, 0, 0, 0, 5e8, time.UTC),
		"2026-02-01T01:00:00+01:00": time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC),
	} {
		if got, err := sinceParam(in, now); err != nil || !got.Equal(want) {
			t.Errorf("sinceParam(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"-1h", "yesterday", "2026-02-01"} {
		if _, err := sinceParam(bad, now); err == nil {
			t.Errorf("sinceParam(%q) accepted", bad)
		}
	}
}
