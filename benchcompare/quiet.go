package benchcompare

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
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
	for time.Since(start) < quietTimeout {
		idle0, total0, err := cpuTimes()
		if err != nil {
			return time.Since(start), false, err
		}
		select {
		case <-ctx.Done():
			return time.Since(start), false, ctx.Err()
		case <-time.After(quietWindow):
		}
		idle1, total1, err := cpuTimes()
		if err != nil {
			return time.Since(start), false, err
		}
		if total1 > total0 && float64(idle1-idle0)/float64(total1-total0) >= quietIdle {
			return time.Since(start), true, nil
		}
	}
	return time.Since(start), false, nil
}

// cpuTimes reads the idle (idle + iowait) and total ticks of all CPUs from
// /proc/stat's first line.
func cpuTimes() (idle, total uint64, err error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("benchcompare: %w", err)
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil {
		return 0, 0, fmt.Errorf("benchcompare: read /proc/stat: %w", err)
	}
	return parseCPUTimes(line)
}

func parseCPUTimes(line string) (idle, total uint64, err error) {
	fields := strings.Fields(line)
	if len(fields) < 6 || fields[0] != "cpu" {
		return 0, 0, fmt.Errorf("benchcompare: /proc/stat: unexpected first line %q", strings.TrimSpace(line))
	}
	for i, f := range fields[1:] {
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("benchcompare: /proc/stat: %w", err)
		}
		if i >= 8 { // guest and guest_nice are already counted in user and nice
			break
		}
		total += n
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	return idle, total, nil
}
