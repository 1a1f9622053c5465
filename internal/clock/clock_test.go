package clock

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestWait(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Wait(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled wait returned %v", err)
	}
	if err := (Real{}).Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatalf("a short sleep returned %v", err)
	}
	if err := Wait(context.Background(), 0); err != nil {
		t.Fatalf("a zero wait returned %v", err)
	}
}
