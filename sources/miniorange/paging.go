package miniorange

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/idsync/idsync/reconcile"
)

// ErrIncomplete marks a Snapshot that could not read the whole directory: a failed page, a
// listing shorter than its totalCount, a count that changed mid-read or is beyond
// max_objects, a page that repeats items, a user whose status is missing or unknown, or
// listings that contradict each other. Such a pass may create and update but must not
// deactivate or remove anything.
var ErrIncomplete = errors.New("incomplete read")

// pager runs the page requests of one Snapshot. The client bounds the requests in flight;
// the pager bounds the goroutines and the memory, whatever the listings claim: at most
// 4 x Concurrency member listings are read at a time, and each listing has at most window
// page requests started beyond the pages it has taken in. The first error cancels every
// other request.
type pager struct {
	ctx    context.Context
	g      *errgroup.Group
	starts chan struct{} // member listings being read
	// window is how many of a listing's pages may be requested ahead of the first one not
	// yet received: enough to keep every request slot busy while one page is slow.
	window int
	// maxObjects bounds a listing's totalCount (sources[].max_objects).
	maxObjects int
	pages      atomic.Int64
}

func newPager(ctx context.Context, concurrency, maxObjects int) *pager {
	g, gctx := errgroup.WithContext(ctx)
	return &pager{
		ctx: gctx,
		g:   g,
		// More listings may be under way than requests may fly, so a listing busy decoding a
		// page never leaves a request slot idle.
		starts:     make(chan struct{}, 4*concurrency),
		window:     2 * concurrency,
		maxObjects: maxObjects,
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

// maxPrealloc caps the room a listing reserves up front: a listing grows with the items it
// receives, never with the totalCount it claims.
const maxPrealloc = 4096

// page is one answer of an offset-paged listing.
type page[T any] struct {
	total *int
	items []T
}

// fetcher reads the items [start, start+size) of a listing.
type fetcher[T any] func(ctx context.Context, start, size int) (page[T], error)

func (p *pager) fetch(ctx context.Context, what string, start, size int, fetch func(ctx context.Context, start, size int) (*int, int, error)) (int, int, error) {
	p.pages.Add(1)
	total, n, err := fetch(ctx, start, size)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: page at startIndex %d: %w", what, start, err)
	}
	reconcile.ReportReadProgress(ctx, 1, n)
	if total == nil {
		return 0, 0, fmt.Errorf("%w: %s: page at startIndex %d has no totalCount", ErrIncomplete, what, start)
	}
	return *total, n, nil
}

// readListing reads a whole listing and returns its items in listing order.
//
// startIndex is an offset, so once the first page has told the total and the server's
// batch cap (a page shorter than asked is legal), the remaining pages are requested in
// parallel (the client's in-flight bound applies), at most p.window ahead of the first page
// not yet received, so goroutines and buffered pages stay bounded. The totalCount is checked
// against max_objects before anything else. Every page must report the same totalCount; a
// range answered short is continued from where it stopped; an empty page before the total
// is reached, or a page longer than asked, fails the read. Duplicates are checked by the
// caller once the listing is whole.
func readListing[T any](p *pager, what string, pageSize int, fetch fetcher[T]) ([]T, error) {
	var first page[T]
	total, n, err := p.fetch(p.ctx, what, 0, pageSize, func(ctx context.Context, start, size int) (*int, int, error) {
		var err error
		first, err = fetch(ctx, start, size)
		return first.total, len(first.items), err
	})
	if err != nil {
		return nil, err
	}
	switch {
	case total < 0:
		return nil, fmt.Errorf("%w: %s: negative totalCount %d", ErrIncomplete, what, total)
	case total > p.maxObjects:
		return nil, fmt.Errorf("%w: %s: totalCount %d is more than max_objects (%d): a corrupt count, or a directory larger than this source is configured for (raise sources[].max_objects if it is real)",
			ErrIncomplete, what, total, p.maxObjects)
	case n > pageSize:
		return nil, fmt.Errorf("%w: %s: first page holds %d items, more than the %d asked", ErrIncomplete, what, n, pageSize)
	case n > total:
		return nil, fmt.Errorf("%w: %s: first page holds %d items but totalCount is %d", ErrIncomplete, what, n, total)
	case n == 0 && total > 0:
		return nil, fmt.Errorf("%w: %s: first page is empty but totalCount is %d", ErrIncomplete, what, total)
	}
	if n == total {
		return first.items, nil
	}
	items := make([]T, 0, min(total, max(maxPrealloc, n)))
	items = append(items, first.items...)
	first.items = nil

	// A dispatcher queues one result slot per range, in listing order, and starts its
	// request; the queue holds at most p.window slots, so no more ranges are under way than
	// that plus the one being taken in. Ranges are taken in queue order.
	g, ctx := errgroup.WithContext(p.ctx)
	queue := make(chan chan []T, max(p.window, 1))
	step := n
	g.Go(func() error {
		defer close(queue)
		for start := n; start < total; start += step {
			end := min(start+step, total)
			res := make(chan []T, 1)
			select {
			case queue <- res:
			case <-ctx.Done():
				return nil // whoever cancelled reports why
			}
			g.Go(func() error {
				got, err := fillRange(ctx, p, what, total, start, end, fetch)
				if err != nil {
					return err
				}
				res <- got
				return nil
			})
		}
		return nil
	})
take:
	for res := range queue {
		select {
		case got := <-res:
			items = append(items, got...)
		case <-ctx.Done():
			break take
		}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if len(items) != total {
		if err := p.ctx.Err(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s: read %d of totalCount %d", ErrIncomplete, what, len(items), total)
	}
	return items, nil
}

// fillRange reads items [start, end), continuing after short pages.
func fillRange[T any](ctx context.Context, p *pager, what string, total, start, end int, fetch fetcher[T]) ([]T, error) {
	var out []T
	for pos := start; pos < end; {
		want := end - pos
		var got []T
		t, n, err := p.fetch(ctx, what, pos, want, func(ctx context.Context, start, size int) (*int, int, error) {
			pg, err := fetch(ctx, start, size)
			got = pg.items
			return pg.total, len(pg.items), err
		})
		if err != nil {
			return nil, err
		}
		switch {
		case t != total:
			return nil, fmt.Errorf("%w: %s: totalCount changed from %d to %d during the read (at startIndex %d)",
				ErrIncomplete, what, total, t, pos)
		case n == 0:
			return nil, fmt.Errorf("%w: %s: listing ended at %d of totalCount %d", ErrIncomplete, what, pos, total)
		case n > want:
			return nil, fmt.Errorf("%w: %s: page at startIndex %d holds %d items, more than the %d asked",
				ErrIncomplete, what, pos, n, want)
		}
		if out == nil {
			out = got
		} else {
			out = append(out, got...)
		}
		pos += n
	}
	return out, nil
}
