package cli

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/idsync/idsync/internal/logging"
	"github.com/idsync/idsync/reconcile"
)

// Progress shows a pass's apply progress as a bar, on a terminal only (NewProgress returns
// nil otherwise, and a nil *Progress is a no-op observer).
type Progress struct {
	w   io.Writer
	mu  sync.Mutex
	bar *progressbar.ProgressBar
}

// NewProgress returns a progress observer when w is a terminal, else nil.
func NewProgress(w io.Writer) *Progress {
	if !logging.IsTerminal(w) {
		return nil
	}
	return &Progress{w: w}
}

// Observer returns p as a reconcile.Observer, or nil when there is no terminal.
func (p *Progress) Observer() reconcile.Observer {
	if p == nil {
		return nil
	}
	return p
}

func (p *Progress) PassStarted(reconcile.Run)            {}
func (p *Progress) ChangeApplied(reconcile.Kind, string) {}
func (p *Progress) SourceRead(reconcile.SourceRun)       {}
func (p *Progress) Held(int)                             {}

// Progress moves the bar; the first call sizes it.
func (p *Progress) Progress(done, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if total <= 0 {
		return
	}
	if p.bar == nil {
		p.bar = progressbar.NewOptions(total,
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetDescription("applying"),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	p.bar.ChangeMax(total)
	_ = p.bar.Set(done)
}

// PassFinished clears the bar.
func (p *Progress) PassFinished(reconcile.Run) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		_ = p.bar.Finish()
		p.bar = nil
	}
}

// Summary writes a short human summary of a run.
func Summary(w io.Writer, run reconcile.Run) {
	took := run.Finished.Sub(run.Started).Round(time.Millisecond)
	mode := ""
	if run.DryRun {
		mode = " (dry run)"
	}
	fmt.Fprintf(w, "run %s%s: %s in %s", run.ID, mode, run.Result, took)
	if run.Target != "" {
		fmt.Fprintf(w, " [%s]", run.Target)
	}
	fmt.Fprintln(w)
	for _, s := range run.Sources {
		state := "complete"
		if !s.Complete {
			state = "INCOMPLETE: " + s.Error
		}
		fmt.Fprintf(w, "  source %s: %d users, %d groups, %s\n", s.Name, s.Users, s.Groups, state)
	}
	kinds := make([]string, 0, len(run.Counts))
	for k := range run.Counts {
		kinds = append(kinds, string(k))
	}
	sort.Slice(kinds, func(i, j int) bool { return kindOrder(kinds[i]) < kindOrder(kinds[j]) })
	for _, k := range kinds {
		byResult := run.Counts[reconcile.Kind(k)]
		results := make([]string, 0, len(byResult))
		for r, n := range byResult {
			if n > 0 {
				results = append(results, r)
			}
		}
		slices.SortFunc(results, func(a, b string) int {
			return cmp.Or(cmp.Compare(resultOrder(a), resultOrder(b)), cmp.Compare(a, b))
		})
		parts := make([]string, len(results))
		for i, r := range results {
			parts[i] = fmt.Sprintf("%d %s", byResult[r], r)
		}
		fmt.Fprintf(w, "  %-28s %s\n", k, strings.Join(parts, ", "))
	}
	if run.Held > 0 {
		fmt.Fprintf(w, "  HELD: %d changes wait for approval: idsync approve -c FILE %s\n", run.Held, run.ID)
	}
	for i, e := range run.Errors {
		if i == 10 {
			fmt.Fprintf(w, "  ... %d more errors (idsync audit)\n", len(run.Errors)-i)
			break
		}
		fmt.Fprintf(w, "  error: %s\n", e)
	}
}

// resultOrder lists the usual item results first, in this order; others follow by name.
func resultOrder(r string) int {
	i := slices.Index([]string{reconcile.ItemOK, reconcile.ItemDoneByCreate, reconcile.ItemFailed, reconcile.ItemSkipped,
		reconcile.ItemHeld, reconcile.ItemUnsupported, reconcile.ItemPlanned}, r)
	if i < 0 {
		return 100
	}
	return i
}

func kindOrder(k string) int {
	for i, kk := range reconcile.Kinds {
		if string(kk) == k {
			return i
		}
	}
	return len(reconcile.Kinds)
}
