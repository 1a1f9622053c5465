package cli

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/schollz/progressbar/v3"

	"github.com/idsync/idsync/internal/logging"
	"github.com/idsync/idsync/internal/metrics"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/reconcile/runner"
)

// Progress shows a pass's progress on a terminal only (NewProgress returns nil otherwise, and
// a nil *Progress is a no-op observer): during the reads, one line that says what each source
// has read so far (pages and objects after each page, the source's totals once its read is
// complete) and the API requests sent per target; during the apply phase, a bar.
type Progress struct {
	w  io.Writer
	mu sync.Mutex
	// bar is the apply phase's bar, nil before it.
	bar *progressbar.ProgressBar

	// The read phase: the line is redrawn every readTick until the apply phase or the end.
	requests  func() map[string]float64 // API requests sent so far by target (nil: none shown)
	reading   bool
	sources   map[string]*sourceProgress
	order     []string
	stopRead  chan struct{}
	readDone  chan struct{}
	lineWidth int
}

// sourceProgress is what one source has read so far.
type sourceProgress struct {
	pages, objects int
	done           bool
	run            reconcile.SourceRun
}

var _ runner.Observer = (*Progress)(nil)

// readTick is how often the read line is redrawn.
const readTick = 200 * time.Millisecond

// NewProgress returns a progress observer when w is a terminal, else nil.
func NewProgress(w io.Writer) *Progress {
	if !logging.IsTerminal(w) {
		return nil
	}
	return &Progress{w: w}
}

// Observer returns p as a runner.Observer, or nil when there is no terminal.
func (p *Progress) Observer() runner.Observer {
	if p == nil {
		return nil
	}
	return p
}

// CountRequests gives the read line its request counts: count returns the API requests sent
// so far by target (RequestCounts reads them from the metrics).
func (p *Progress) CountRequests(count func() map[string]float64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.requests = count
	p.mu.Unlock()
}

func (p *Progress) ChangeApplied(reconcile.Kind, string) {}
func (p *Progress) Held(int)                             {}

// PassStarted starts the read line.
func (p *Progress) PassStarted(reconcile.Run) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reading {
		return
	}
	p.reading, p.sources, p.order = true, map[string]*sourceProgress{}, nil
	p.stopRead, p.readDone = make(chan struct{}), make(chan struct{})
	go p.readLoop(p.stopRead, p.readDone)
}

func (p *Progress) readLoop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(readTick)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			p.mu.Lock()
			p.drawRead()
			p.mu.Unlock()
		}
	}
}

// SourceProgress records a source's running totals, which the read line shows until the
// source's read ends (runner.Observer: the Runner sends them after each page a source reads).
func (p *Progress) SourceProgress(source string, pages, objects int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	sp := p.source(source)
	sp.pages, sp.objects = pages, objects
}

// SourceRead records a source's finished read.
func (p *Progress) SourceRead(sr reconcile.SourceRun) {
	p.mu.Lock()
	defer p.mu.Unlock()
	sp := p.source(sr.Name)
	sp.done, sp.run = true, sr
}

func (p *Progress) source(name string) *sourceProgress {
	if p.sources == nil {
		p.sources = map[string]*sourceProgress{}
	}
	sp := p.sources[name]
	if sp == nil {
		sp = &sourceProgress{}
		p.sources[name] = sp
		p.order = append(p.order, name)
	}
	return sp
}

// readLine is the read phase's line: each source's progress, then the requests per target.
func (p *Progress) readLine() string {
	parts := make([]string, 0, len(p.order)+1)
	for _, name := range p.order {
		sp := p.sources[name]
		switch {
		case sp.done && sp.run.Complete:
			parts = append(parts, fmt.Sprintf("%s: %d users, %d groups", name, sp.run.Users, sp.run.Groups))
		case sp.done:
			parts = append(parts, name+": incomplete")
		default:
			parts = append(parts, fmt.Sprintf("%s: %d pages, %d objects", name, sp.pages, sp.objects))
		}
	}
	if p.requests != nil {
		counts := p.requests()
		targets := slices.Sorted(maps.Keys(counts))
		reqs := make([]string, 0, len(targets))
		for _, t := range targets {
			reqs = append(reqs, fmt.Sprintf("%s %.0f", t, counts[t]))
		}
		if len(reqs) > 0 {
			parts = append(parts, "requests: "+strings.Join(reqs, ", "))
		}
	}
	if len(parts) == 0 {
		return "reading sources"
	}
	return "reading  " + strings.Join(parts, " | ")
}

// drawRead redraws the read line in place (callers hold mu).
func (p *Progress) drawRead() {
	if !p.reading {
		return
	}
	line := p.readLine()
	pad := max(0, p.lineWidth-len(line))
	fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
	p.lineWidth = len(line)
}

// endRead stops the read line and clears it (callers hold mu; it is released while the
// drawing goroutine ends, since that goroutine takes mu).
func (p *Progress) endRead() {
	if !p.reading {
		return
	}
	p.reading = false
	stop, done := p.stopRead, p.readDone
	p.mu.Unlock()
	close(stop)
	<-done
	p.mu.Lock()
	if p.lineWidth > 0 {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.lineWidth))
		p.lineWidth = 0
	}
}

// Progress ends the read line and moves the apply bar; the first call sizes it.
func (p *Progress) Progress(done, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if total <= 0 {
		return
	}
	p.endRead()
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

// PassFinished clears the read line or the bar.
func (p *Progress) PassFinished(reconcile.Run) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.endRead()
	if p.bar != nil {
		_ = p.bar.Finish()
		p.bar = nil
	}
}

// RequestCounts returns a function that reads the API requests sent so far by target
// (idsync_api_requests_total summed over endpoint, method and code) from m.
func RequestCounts(m *metrics.Metrics) func() map[string]float64 {
	return func() map[string]float64 {
		out := map[string]float64{}
		if m == nil {
			return out
		}
		ch := make(chan prometheus.Metric, 64)
		go func() {
			m.APIRequests.Collect(ch)
			close(ch)
		}()
		for pm := range ch {
			var d dto.Metric
			if pm.Write(&d) != nil {
				continue
			}
			for _, l := range d.GetLabel() {
				if l.GetName() == "target" {
					out[l.GetValue()] += d.GetCounter().GetValue()
				}
			}
		}
		return out
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
