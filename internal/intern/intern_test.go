package intern

import (
	"fmt"
	"sync"
	"testing"
	"unsafe"
)

func TestGetShares(t *testing.T) {
	var s Strings
	a := s.Get(fmt.Sprint("group-", 7))
	b := s.Get(fmt.Sprint("group-", 7))
	if a != b || unsafe.StringData(a) != unsafe.StringData(b) {
		t.Fatal("equal strings were not shared")
	}
	if c := s.Get("group-8"); c != "group-8" || s.Len() != 2 {
		t.Fatalf("Get(group-8) = %q, Len = %d", c, s.Len())
	}
}

func TestGetConcurrent(t *testing.T) {
	var s Strings
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				if got, want := s.Get(fmt.Sprint(i%100)), fmt.Sprint(i%100); got != want {
					t.Errorf("worker %d: Get = %q, want %q", w, got, want)
				}
			}
		}()
	}
	wg.Wait()
	if s.Len() != 100 {
		t.Fatalf("Len = %d, want 100", s.Len())
	}
}
