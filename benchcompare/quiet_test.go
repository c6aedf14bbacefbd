package benchcompare

import (
	"context"
	"testing"
)

// settle returns at once when the context is done, and reports what it saw.
func TestSettleStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	waited, _, err := settle(ctx)
	if err == nil {
		t.Fatalf("settle with a cancelled context: no error after %v", waited)
	}
	if waited > quietTimeout/2 {
		t.Errorf("settle took %v with a cancelled context", waited)
	}
}
