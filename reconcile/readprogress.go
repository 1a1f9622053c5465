package reconcile

import (
	"context"
	"sync"
)

type readProgressKey struct{}

// readProgress adds up what a source's page readers report and hands the running totals on.
type readProgress struct {
	mu             sync.Mutex
	pages, objects int
	report         func(pages, objects int)
}

// WithReadProgress returns a context under which a source's ReportReadProgress calls add up:
// report receives the running totals of pages and objects (users, groups, members, entries:
// whatever the pages held) after each call. The calls to report are serialised and their
// totals never decrease, however many goroutines the source reads pages on. report must be
// quick: it runs on the source's page readers.
func WithReadProgress(ctx context.Context, report func(pages, objects int)) context.Context {
	if report == nil {
		return ctx
	}
	return context.WithValue(ctx, readProgressKey{}, &readProgress{report: report})
}

// ReportReadProgress tells whoever watches a read that pages more pages, holding objects
// objects, were read (a source calls it once per page with 1 and the page's item count). It
// does nothing when ctx carries no reporter, so sources call it unconditionally.
func ReportReadProgress(ctx context.Context, pages, objects int) {
	rp, ok := ctx.Value(readProgressKey{}).(*readProgress)
	if !ok || (pages <= 0 && objects <= 0) {
		return
	}
	rp.mu.Lock()
	defer rp.mu.Unlock()
	rp.pages += max(pages, 0)
	rp.objects += max(objects, 0)
	rp.report(rp.pages, rp.objects)
}
