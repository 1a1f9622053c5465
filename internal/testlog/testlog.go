// Package testlog holds the log sink tests hand to components that log from many
// goroutines.
package testlog

import (
	"strings"
	"sync"
)

// Buffer collects what is written to it, safely from any goroutine.
type Buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String is everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
