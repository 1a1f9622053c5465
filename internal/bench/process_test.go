package bench

import (
	"testing"

	"github.com/idsync/idsync/internal/proctest"
)

// The process scenario seeds a synced site, runs the measured pass in a child idsync, and
// reports that process's own peak: the pass must read exactly the minimum and change nothing.
func TestProcessScenario(t *testing.T) {
	bin, err := proctest.Build(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	o := small(t, ScenarioProcess)
	o.Binary = bin
	r, err := Run(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	checkPass(t, r)
	if r.FullRead == nil || !*r.FullRead || r.Reads != int64(r.MinJiraReads) || r.Writes != 0 {
		t.Errorf("full_read %v, %d Jira reads (min %d), %d writes; want a full read of the minimum and no write", r.FullRead, r.Reads, r.MinJiraReads, r.Writes)
	}
	// The child's peak was read from its own /proc entry while it ran.
	if r.ProcessPeakRSSBytes < 1<<20 || r.ProcessPeakRSSBytes >= MaxProcessRSS {
		t.Errorf("process peak RSS %d, want a measured value under the goal", r.ProcessPeakRSSBytes)
	}
	if len(r.Goals) != 2 || !r.Goals[0].Met || !r.Goals[1].Met {
		t.Errorf("goals = %+v", r.Goals)
	}

	o = small(t, ScenarioProcess)
	if _, err := Run(t.Context(), o); err == nil {
		t.Error("the process scenario ran without an idsync binary")
	}
}
