package reconcile

import (
	"context"
	"testing"
)

func TestIsFullReadDefaultsToFull(t *testing.T) {
	ctx := context.Background()
	if !IsFullRead(ctx) {
		t.Fatal("a context that says nothing must ask for a full read")
	}
	if IsFullRead(WithFullRead(ctx, false)) {
		t.Fatal("WithFullRead(false) must ask for an incremental read")
	}
	if !IsFullRead(WithFullRead(WithFullRead(ctx, false), true)) {
		t.Fatal("the innermost WithFullRead wins")
	}
}
