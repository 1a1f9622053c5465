package bench

import (
	"os"
	"strconv"
	"testing"

	"github.com/rs/zerolog"
)

// The scenarios as Go benchmarks, for medians over runs (one pass per iteration, on the
// issue's reference org unless IDSYNC_BENCH_USERS, IDSYNC_BENCH_GROUPS and
// IDSYNC_BENCH_MEMBERSHIPS say otherwise):
//
//	go test -run '^$' -bench 'Scenario/initial' -benchtime 1x -count 3 ./internal/bench/
//
// An initial pass of the reference org takes over a minute (its floor is 60.5 s).
func BenchmarkScenario(b *testing.B) {
	for _, s := range []string{ScenarioInitial, ScenarioNoop, ScenarioChurn, ScenarioSCIM, ScenarioPlan} {
		b.Run(s, func(b *testing.B) {
			o := Options{Scenario: s, Users: envInt("IDSYNC_BENCH_USERS"), Groups: envInt("IDSYNC_BENCH_GROUPS"),
				MembershipsPerUser: envInt("IDSYNC_BENCH_MEMBERSHIPS"), Logger: zerolog.Nop()}
			var r *Result
			for b.Loop() {
				o.StateDir = b.TempDir()
				var err error
				if r, err = Run(b.Context(), o); err != nil {
					b.Fatal(err)
				}
			}
			switch s {
			case ScenarioSCIM:
				b.ReportMetric(r.CreateRPS, "create_rps")
				b.ReportMetric(r.FilterRPS, "filter_rps")
				b.ReportMetric(r.PatchRPS, "patch_rps")
				b.ReportMetric(r.PatchP99ms, "patch_p99_ms")
			case ScenarioPlan:
				b.ReportMetric(r.PlanSeconds, "plan_s")
				b.ReportMetric(float64(r.PlannedWrites-r.MinWrites), "planned-min_writes")
			default:
				b.ReportMetric(r.Ratio, "ratio")
				b.ReportMetric(float64(r.Writes-int64(r.MinWrites)), "writes-min_writes")
				b.ReportMetric(float64(r.Reads+r.SourceReads)/float64(r.MinReads), "reads/min_reads")
				b.ReportMetric(float64(r.Throttled), "throttled")
			}
			b.ReportMetric(float64(r.PeakRSSBytes)/(1<<20), "peak_rss_MiB")
		})
	}
}

func envInt(name string) int {
	n, _ := strconv.Atoi(os.Getenv(name))
	return n
}
