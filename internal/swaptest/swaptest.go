// Package swaptest runs requests while credentials flip: the shape of the API clients'
// rotation race tests.
package swaptest

import (
	"sync"
	"testing"
	"time"
)

// Run calls request(worker, round) rounds times on each of workers goroutines while, on
// another one, swap(n) is called with n = 0, 1, 2, ... until every request has returned. It
// fails t when a request or a swap fails, or when fewer than two swaps happened (the flips did
// not overlap the requests).
func Run(t testing.TB, workers, rounds int, request func(worker, round int) error, swap func(n int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				errs <- request(w, i)
			}
		}()
	}
	done, swapped := make(chan struct{}), make(chan int)
	var swapErr error
	go func() {
		n := 0
		for {
			select {
			case <-done:
				swapped <- n
				return
			default:
			}
			if err := swap(n); err != nil && swapErr == nil {
				swapErr = err
			}
			n++
			time.Sleep(20 * time.Microsecond)
		}
	}()
	wg.Wait()
	close(done)
	if n := <-swapped; n < 2 || swapErr != nil {
		t.Fatalf("%d swaps during the run, error %v", n, swapErr)
	}
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("request during the swaps: %v", err)
		}
	}
}
