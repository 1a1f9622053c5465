package miniorange

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
)

// ErrIncomplete marks a Snapshot that could not read the whole directory: a failed page, a
// listing shorter than its totalCount, a count that changed mid-read, a page that repeats
// items, or listings that contradict each other. Such a pass may create and update but must
// not deactivate or remove anything.
var ErrIncomplete = errors.New("incomplete read")

// pager runs the page requests of one Snapshot. The client bounds the requests in flight;
// the pager bounds how many listings wait for their first page (and so its goroutines). The
// first error cancels every other request.
type pager struct {
	ctx    context.Context
	g      *errgroup.Group
	starts chan struct{} // listings waiting for their first page
	pages  atomic.Int64
}

func newPager(ctx context.Context, concurrency int) *pager {
	g, gctx := errgroup.WithContext(ctx)
	return &pager{
		ctx: gctx,
		g:   g,
		// More listings may wait than requests may fly, so a listing busy decoding its first
		// page never leaves a request slot idle.
		starts: make(chan struct{}, 4*concurrency),
	}
}

func acquire(ctx context.Context, sem chan struct{}) error {
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// maxListing bounds a listing's totalCount, so a corrupt count cannot make the read
// allocate without limit (a 50M-entry listing is far past the 1M memberships idsync targets).
const maxListing = 50_000_000

// page is one answer of an offset-paged listing.
type page[T any] struct {
	total *int
	items []T
}

// fetcher reads the items [start, start+size) of a listing.
type fetcher[T any] func(ctx context.Context, start, size int) (page[T], error)

func (p *pager) fetch(what string, start, size int, fetch func(ctx context.Context, start, size int) (*int, int, error)) (int, int, error) {
	p.pages.Add(1)
	total, n, err := fetch(p.ctx, start, size)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: page at startIndex %d: %w", what, start, err)
	}
	if total == nil {
		return 0, 0, fmt.Errorf("%w: %s: page at startIndex %d has no totalCount", ErrIncomplete, what, start)
	}
	return *total, n, nil
}

// readListing reads a whole listing and hands the items to done, in listing order.
//
// startIndex is an offset, so once the first page has told the total and the server's
// batch cap (a page shorter than asked is legal), the remaining pages are requested in
// in parallel (the client's in-flight bound applies). Every page must report the same totalCount; a range
// answered short is continued from where it stopped; an empty page before the total is
// reached, or a page longer than asked, fails the read. Duplicates are checked by the caller
// once the listing is whole.
func readListing[T any](p *pager, what string, pageSize int, fetch fetcher[T], done func([]T) error) error {
	var first page[T]
	total, n, err := p.fetch(what, 0, pageSize, func(ctx context.Context, start, size int) (*int, int, error) {
		var err error
		first, err = fetch(ctx, start, size)
		return first.total, len(first.items), err
	})
	if err != nil {
		return err
	}
	switch {
	case total < 0:
		return fmt.Errorf("%w: %s: negative totalCount %d", ErrIncomplete, what, total)
	case total > maxListing:
		return fmt.Errorf("%w: %s: totalCount %d is beyond what idsync reads (%d)", ErrIncomplete, what, total, maxListing)
	case n > pageSize:
		return fmt.Errorf("%w: %s: first page holds %d items, more than the %d asked", ErrIncomplete, what, n, pageSize)
	case n > total:
		return fmt.Errorf("%w: %s: first page holds %d items but totalCount is %d", ErrIncomplete, what, n, total)
	case n == 0 && total > 0:
		return fmt.Errorf("%w: %s: first page is empty but totalCount is %d", ErrIncomplete, what, total)
	}
	items := make([]T, total)
	copy(items, first.items)
	if n == total {
		return done(items)
	}
	step := n
	var pending atomic.Int64
	pending.Store(int64((total - n + step - 1) / step))
	for start := n; start < total; start += step {
		end := min(start+step, total)
		p.g.Go(func() error {
			if err := fillRange(p, what, total, start, end, items, fetch); err != nil {
				return err
			}
			if pending.Add(-1) == 0 {
				return done(items)
			}
			return nil
		})
	}
	return nil
}

// fillRange reads items [start, end) into items, continuing after short pages.
func fillRange[T any](p *pager, what string, total, start, end int, items []T, fetch fetcher[T]) error {
	for pos := start; pos < end; {
		want := end - pos
		var got []T
		t, n, err := p.fetch(what, pos, want, func(ctx context.Context, start, size int) (*int, int, error) {
			pg, err := fetch(ctx, start, size)
			got = pg.items
			return pg.total, len(pg.items), err
		})
		if err != nil {
			return err
		}
		switch {
		case t != total:
			return fmt.Errorf("%w: %s: totalCount changed from %d to %d during the read (at startIndex %d)",
				ErrIncomplete, what, total, t, pos)
		case n == 0:
			return fmt.Errorf("%w: %s: listing ended at %d of totalCount %d", ErrIncomplete, what, pos, total)
		case n > want:
			return fmt.Errorf("%w: %s: page at startIndex %d holds %d items, more than the %d asked",
				ErrIncomplete, what, pos, n, want)
		}
		copy(items[pos:], got)
		pos += n
	}
	return nil
}
