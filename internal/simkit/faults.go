package simkit

import "sync"

// FaultList holds a simulator's injected faults, F being the simulator's own Fault type (what
// a fault does and where it hits are the simulator's business). Each fault fires on the
// requests it matches, at most its number of times. All methods are safe for concurrent use.
type FaultList[F any] struct {
	mu     sync.Mutex
	faults []*listedFault[F]
}

type listedFault[F any] struct {
	fault F
	times int // 0: every time
	fired int
}

// Add injects f, to fire at most times times (0: every time it matches). fired reports how
// often it has fired so far.
func (l *FaultList[F]) Add(f F, times int) (fired func() int) {
	lf := &listedFault[F]{fault: f, times: times}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.faults = append(l.faults, lf)
	return func() int {
		l.mu.Lock()
		defer l.mu.Unlock()
		return lf.fired
	}
}

// Clear removes every fault.
func (l *FaultList[F]) Clear() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.faults = nil
}

// Fire returns the first fault, in the order added, that match accepts and that has firings
// left, and counts the firing; ok is false when none fires.
func (l *FaultList[F]) Fire(match func(*F) bool) (f F, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, lf := range l.faults {
		if !match(&lf.fault) || (lf.times > 0 && lf.fired >= lf.times) {
			continue
		}
		lf.fired++
		return lf.fault, true
	}
	return f, false
}
