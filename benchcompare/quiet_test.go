package benchcompare

import (
	"context"
	"testing"
)

func TestParseCPUTimes(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	idle, total, err := parseCPUTimes("cpu  100 2 30 400 5 6 7 8 50 1\n")
	if err != nil {
		t.Fatal(err)
	}
	if idle != 405 || total != 100+2+30+400+5+6+7+8 {
		t.Errorf("idle %d, total %d; want 405 and 558 (guest time is inside user time)", idle, total)
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4 5", "cpu 1 2 3", "cpu 1 2 x 4 5 6"} {
		if _, _, err := parseCPUTimes(bad); err == nil {
			t.Errorf("parseCPUTimes(%q) accepted", bad)
		}
	}
}

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
	if _, _, err := cpuTimes(); err != nil {
		t.Errorf("cpuTimes on this machine: %v", err)
	}
}
