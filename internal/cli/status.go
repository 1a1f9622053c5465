package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/idsync/idsync/internal/daemon"
	"github.com/idsync/idsync/reconcile"
)

// WriteDaemonStatus writes a running daemon's status (GET /api/v1/status) as `idsync status
// --addr` shows it: one line per subject, then the pass in flight and the last one.
func WriteDaemonStatus(w io.Writer, st daemon.Status, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "daemon\tidsync %s (revision %s, %s), up %s since %s\n", st.Build.Version, st.Build.Revision,
		st.Build.GoVersion, st.Uptime, when(st.Started, now))
	fmt.Fprintf(tw, "config\t%s\n", st.ConfigFile)
	sched := st.Schedule
	if !st.NextPass.IsZero() {
		sched += ", next pass " + when(st.NextPass, now)
		if st.Jitter != "" {
			sched += " (up to " + st.Jitter + " later: jitter)"
		}
	}
	fmt.Fprintf(tw, "schedule\t%s\n", sched)
	srcs := make([]string, len(st.Sources))
	for i, s := range st.Sources {
		srcs[i] = fmt.Sprintf("%s (%s", s.Name, s.Type)
		if s.Push && s.Type != "scim" {
			srcs[i] += ", push"
		}
		srcs[i] += fmt.Sprintf(", priority %d)", s.Priority)
	}
	fmt.Fprintf(tw, "sources\t%s\n", strings.Join(srcs, ", "))
	r := st.Runner
	switch {
	case r.Current != nil:
		c := r.Current
		line := fmt.Sprintf("run %s (%s%s) since %s", c.ID, c.Trigger, targetOf(*c), when(c.Started, now))
		if r.Total > 0 {
			line += fmt.Sprintf(", %d of %d items settled", r.Done, r.Total)
		}
		fmt.Fprintf(tw, "running\t%s\n", line)
	default:
		fmt.Fprintf(tw, "running\tno pass\n")
	}
	if r.Pending {
		fmt.Fprintf(tw, "pending\ta requested pass waits for the running one\n")
	}
	if r.Last != nil {
		fmt.Fprintf(tw, "last pass\t%s\n", runLine(*r.Last, now))
	} else {
		fmt.Fprintf(tw, "last pass\tnone since start\n")
	}
	if h := r.Hold; h != nil {
		fmt.Fprintf(tw, "HELD\t%s\n", holdLine(*h))
	}
	for _, a := range r.Standing {
		fmt.Fprintf(tw, "refused\t%s %s (%s), approved by %s in run %s; Jira refuses it since %s, retried every full pass\n",
			a.Change.Kind, a.Change.Who(), a.Change.What(), a.By, a.RunID, when(a.Since, now))
	}
	if b := st.Budget; b != nil {
		fmt.Fprintf(tw, "api budget\t%s: %d of %d remaining, %d throttled (as of %s)\n", b.Target, b.Remaining, b.Limit, b.Throttled, when(b.UpdatedAt, now))
	}
	return tw.Flush()
}

// WriteRuns writes the last runs from the state file, newest first, and the open held plan
// (`idsync status` without --addr).
func WriteRuns(w io.Writer, runs []reconcile.Run, hold *reconcile.HeldPlan, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tTRIGGER\tSTARTED\tTOOK\tRESULT\tITEMS\tTARGET")
	for _, r := range runs {
		took := "-"
		if !r.Finished.IsZero() {
			took = r.Finished.Sub(r.Started).Round(time.Millisecond).String()
		}
		result := r.Result
		if r.DryRun {
			result += " (dry run)"
		}
		target := r.Target
		if target == "" {
			target = "all"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Trigger, r.Started.Local().Format(time.DateTime), took, result, itemCounts(r), target)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(runs) == 0 {
		fmt.Fprintln(w, "no runs recorded yet")
	}
	if hold != nil {
		fmt.Fprintf(w, "\nHELD: %s\n", holdLine(*hold))
	}
	return nil
}

func runLine(r reconcile.Run, now time.Time) string {
	s := fmt.Sprintf("run %s (%s%s): %s", r.ID, r.Trigger, targetOf(r), r.Result)
	if r.DryRun {
		s += " (dry run)"
	}
	if !r.Finished.IsZero() {
		s += fmt.Sprintf(" in %s, finished %s", r.Finished.Sub(r.Started).Round(time.Millisecond), when(r.Finished, now))
	}
	s += "; items " + itemCounts(r)
	if r.JiraRead != "" {
		s += "; Jira read " + r.JiraRead
	}
	if len(r.Errors) > 0 {
		s += fmt.Sprintf("; %d errors (idsync audit)", len(r.Errors))
	}
	return s
}

func targetOf(r reconcile.Run) string {
	if r.Target == "" {
		return ""
	}
	return ", " + r.Target
}

func holdLine(h reconcile.HeldPlan) string {
	s := fmt.Sprintf("run %s held %d deactivations and %d removals (%s)", h.RunID, h.Deactivations, h.Removals, h.Reason)
	if h.Approved {
		return s + fmt.Sprintf("; approved by %s, applied by the next complete pass", h.ApprovedBy)
	}
	return s + "; approve with: idsync approve " + h.RunID
}

// itemCounts sums a run's items by result across kinds: "12 ok, 1 failed" ("none" when empty).
func itemCounts(r reconcile.Run) string {
	byResult := map[string]int{}
	for _, m := range r.Counts {
		for res, n := range m {
			byResult[res] += n
		}
	}
	results := make([]string, 0, len(byResult))
	for res, n := range byResult {
		if n > 0 {
			results = append(results, res)
		}
	}
	if len(results) == 0 {
		return "none"
	}
	slices.SortFunc(results, func(a, b string) int {
		if d := resultOrder(a) - resultOrder(b); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(results))
	for i, res := range results {
		parts[i] = fmt.Sprintf("%d %s", byResult[res], res)
	}
	return strings.Join(parts, ", ")
}

// when is a time in local time with how far it is from now: "2026-01-02 15:04:05 (in 12m0s)".
func when(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := t.Sub(now).Round(time.Second)
	rel := "now"
	switch {
	case d > 0:
		rel = "in " + d.String()
	case d < 0:
		rel = (-d).String() + " ago"
	}
	return t.Local().Format(time.DateTime) + " (" + rel + ")"
}
