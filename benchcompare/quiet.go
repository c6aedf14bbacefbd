package benchcompare

import (
	"context"
	"syscall"
	"time"

	"github.com/zabkeeper/zabkeeper/internal/cpustat"
)

// Before each measurement the machine is brought back to quiet, so that
// neither system measures what the other left behind: the other's
// workload just deleted up to a few hundred thousand znodes (a system
// twice as fast made twice as many), and its snapshot, log preallocation,
// JIT compiler or collector may still be at work.
const (
	quietWindow  = 500 * time.Millisecond // how long the host's CPU is watched at a time
	quietIdle    = 0.9                    // the share of the host's CPU that must be idle
	quietTimeout = 15 * time.Second       // then the measurement starts anyway (logged)
)

// settle writes back every dirty page (sync(2)), then waits until the
// host's CPUs were at least quietIdle idle over one quietWindow, at most
// quietTimeout. It reports how long it waited and whether the host became
// quiet.
func settle(ctx context.Context) (time.Duration, bool, error) {
	start := time.Now()
	syscall.Sync()
	idle0, total0, err := cpustat.Read()
	if err != nil {
		return time.Since(start), false, err
	}
	for time.Since(start) < quietTimeout {
		select {
		case <-ctx.Done():
			return time.Since(start), false, ctx.Err()
		case <-time.After(quietWindow):
		}
		idle1, total1, err := cpustat.Read()
		if err != nil {
			return time.Since(start), false, err
		}
		if total1 > total0 && float64(idle1-idle0)/float64(total1-total0) >= quietIdle {
			return time.Since(start), true, nil
		}
		idle0, total0 = idle1, total1 // one window's end is the next one's start
	}
	return time.Since(start), false, nil
}
