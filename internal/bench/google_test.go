package bench

import (
	"context"
	"errors"
	"testing"

	"github.com/rs/zerolog"
)

// The Google minimum, counted by hand: one token, users 501 at 500 a page (2), three groups
// at 200 a page (1), members 0 (1, an empty listing is still asked), 200 (1) and 201 (2),
// one nested group outside the listing with 3 members (1): 9.
func TestGoogleMinimumByHand(t *testing.T) {
	s := GoogleShape{PageSize: 500, Users: 501, GroupMembers: []int{0, 200, 201}, NestedOutside: []int{3}}
	if got := s.MinSourceReads(); got != 9 {
		t.Errorf("MinSourceReads = %d, want 9", got)
	}
	// A page size of 100 caps every listing at 100: users 6, groups 1, members 1+2+3, nested 1.
	s.PageSize = 100
	if got := s.MinSourceReads(); got != 1+6+1+6+1 {
		t.Errorf("page_size 100: MinSourceReads = %d, want 15", got)
	}
	// A server cap of 50 below both: users 11, groups 1, members 1+4+5, nested 1.
	s.PageSize, s.ServerCap = 500, 50
	if got := s.MinSourceReads(); got != 1+11+1+10+1 {
		t.Errorf("server cap 50: MinSourceReads = %d, want 24", got)
	}
}

func googleSmall(t *testing.T, scenario string) Options {
	t.Helper()
	return Options{Scenario: scenario, Users: 40, Groups: 6, MembershipsPerUser: 2, Disabled: 2, Latency: -1, Rate: -1,
		SourceBatchCap: 9, Concurrency: 4, StateDir: t.TempDir(), Logger: zerolog.Nop()}
}

// The Google source reads exactly the minimum (every page at the simulator's cap, nothing
// twice), and Jira gets exactly the writes the scenario needs.
func TestGoogleInitialAndNoop(t *testing.T) {
	r, err := RunGoogle(context.Background(), googleSmall(t, ScenarioInitial))
	if err != nil {
		t.Fatal(err)
	}
	checkPass(t, r)
	checkWrites(t, r, 0)
	if r.SourceReads != int64(r.MinSourceReads) {
		t.Errorf("source_reads %d, want exactly min_source_reads %d: %v", r.SourceReads, r.MinSourceReads, r.Calls)
	}
	if r.Users != 40 || r.MinWrites == 0 {
		t.Errorf("users %d, min_writes %d", r.Users, r.MinWrites)
	}
	n, err := RunGoogle(context.Background(), googleSmall(t, ScenarioNoop))
	if err != nil {
		t.Fatal(err)
	}
	checkPass(t, n)
	if n.Writes != 0 || n.SourceReads != int64(n.MinSourceReads) {
		t.Errorf("noop: writes %d, source_reads %d (min %d)", n.Writes, n.SourceReads, n.MinSourceReads)
	}
}

func TestGoogleRefusesOtherScenarios(t *testing.T) {
	o := googleSmall(t, ScenarioChurn)
	if _, err := RunGoogle(context.Background(), o); !errors.Is(err, ErrUsage) {
		t.Errorf("churn: %v", err)
	}
}
