package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteTable prints a result for people.
func WriteTable(w io.Writer, r *Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k string, format string, args ...any) {
		fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, args...))
	}
	row("scenario", "%s (%s, counters: %s)", r.Scenario, r.Mode, r.Counters)
	row("org", "%d users, %d groups, %d memberships", r.Users, r.Groups, r.Memberships)
	if r.Changed > 0 {
		row("changed", "%d people (%.2f Jira reads each)", r.Changed, r.ReadsPerChanged)
	}
	if r.FullRead != nil {
		kind := "incremental"
		if *r.FullRead {
			kind = "full"
		}
		row("jira read", "%s", kind)
	}
	if r.Scenario == ScenarioDrift {
		row("drift", "%d memberships removed by hand", r.DriftChanges)
		row("incremental passes", "%d: %d reads, %d writes", r.DriftIncrementalPasses, r.DriftIncrementalReads, r.DriftIncrementalWrites)
		row("repaired", "%v by the full pass after them (%d passes in all): %d reads, %d writes", r.DriftRepaired != nil && *r.DriftRepaired,
			r.DriftPassesToRepair, r.DriftRepairReads, r.DriftRepairWrites)
	}
	switch r.Scenario {
	case ScenarioSCIM:
		row("clients", "%d", r.Concurrency)
		fmt.Fprintf(tw, "\nphase\trequests/s\tp50 ms\tp99 ms\n")
		fmt.Fprintf(tw, "create\t%.0f\t%.2f\t%.2f\n", r.CreateRPS, r.CreateP50ms, r.CreateP99ms)
		fmt.Fprintf(tw, "filter\t%.0f\t%.2f\t%.2f\n", r.FilterRPS, r.FilterP50ms, r.FilterP99ms)
		fmt.Fprintf(tw, "patch\t%.0f\t%.2f\t%.2f\n", r.PatchRPS, r.PatchP50ms, r.PatchP99ms)
		fmt.Fprintln(tw)
	case ScenarioPlan:
		row("jira before", "%s", r.PlanLive)
		row("map", "%.2f s", r.MapSeconds)
		row("plan", "%.2f s", r.PlanSeconds)
		row("planned", "%d items, %d writes (min_writes %d, wasted %d)", r.PlannedItems, r.PlannedWrites, r.MinWrites, r.WastedWrites)
		row("heap at end", "%s", mib(r.HeapBytes))
	case ScenarioProcess:
		row("jira reads", "%d (min %d)", r.Reads, r.MinJiraReads)
		row("source reads", "%d (min %d)", r.SourceReads, r.MinSourceReads)
		row("writes", "%d", r.Writes)
		row("pass", "%s, %d failed items", r.PassResult, r.FailedItems)
		row("idsync's peak RSS", "%s: the measured pass's own process", mib(r.ProcessPeakRSSBytes))
	default:
		row("site", "latency %.0f ms, rate %.0f/s, concurrency %d", r.LatencyMS, r.Rate, r.Concurrency)
		row("jira reads", "%d (min %d)", r.Reads, r.MinJiraReads)
		row("source reads", "%d (min %d)", r.SourceReads, r.MinSourceReads)
		row("reads, total", "%d (min_reads %d, x%.3f)", r.Reads+r.SourceReads, r.MinReads, ratioOf(float64(r.Reads+r.SourceReads), float64(r.MinReads)))
		row("writes", "%d (min_writes %d, wasted %d)", r.Writes, r.MinWrites, r.WastedWrites)
		row("throttled (429)", "%d (early retries %d)", r.Throttled, r.EarlyRetries)
		row("pass", "%s, %d failed items", r.PassResult, r.FailedItems)
		row("to first write", "%.2f s", r.ReadSeconds)
		row("floor", "%.2f s", r.FloorSeconds)
		row("ratio", "%.3f (wall / floor)", r.Ratio)
	}
	row("wall", "%.2f s", r.WallSeconds)
	row("peak RSS", "%s", mib(r.PeakRSSBytes))
	for _, e := range r.Errors {
		row("error", "%s", e)
	}
	if len(r.Calls) > 0 {
		fmt.Fprintln(tw, "\ncalls\tcount")
		for _, k := range sortedCalls(r.Calls) {
			fmt.Fprintf(tw, "%s\t%d\n", k, r.Calls[k])
		}
	}
	if len(r.Goals) > 0 {
		fmt.Fprintln(tw, "\ngoal\twant\tgot\tmet")
		for _, g := range r.Goals {
			met := "no"
			if g.Met {
				met = "yes"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", g.Name, g.Want, g.Got, met)
		}
	}
	return tw.Flush()
}

// WriteJSON prints the result as one JSON object on one line.
func WriteJSON(w io.Writer, r *Result) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encoding the result: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB (%d bytes)", float64(b)/(1<<20), b) }

func ratioOf(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
