// Package intern shares equal strings. A big site's data repeats a few thousand group names
// and a hundred thousand account ids about a million times over; held once each, a pass
// needs a fraction of the memory.
//
// Unlike the standard library's unique package, whose canonical values may be dropped (and
// made again, as a new copy) whenever no Handle is held, a Strings keeps every value it has
// seen for as long as the Strings itself lives: make one per read and let it go with it.
package intern

import "sync"

// Strings is a set of shared strings, safe for concurrent use. The zero value is ready.
type Strings struct {
	mu sync.Mutex
	m  map[string]string
}

// Get returns the shared string equal to v, keeping v as that string when it is the first.
func (s *Strings) Get(v string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w, ok := s.m[v]; ok {
		return w
	}
	if s.m == nil {
		s.m = map[string]string{}
	}
	s.m[v] = v
	return v
}

// Len is the number of distinct strings held.
func (s *Strings) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
