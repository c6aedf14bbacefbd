// Package cpustat reads the host's CPU times from /proc/stat: how much of
// all CPUs' time since boot was idle, and how much there was in all. The
// server's Ps controller and bench compare's wait for a quiet host both
// compare two readings.
package cpustat

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// TickHz is the unit of /proc/stat's times, USER_HZ: 100 on every Linux
// architecture Go supports.
const TickHz = 100

// Ticks converts a count of /proc/stat ticks to a duration.
func Ticks(n uint64) time.Duration { return time.Duration(n) * time.Second / TickHz }

// Read returns the idle (idle and iowait) and total ticks of all CPUs
// since boot, from the first line of /proc/stat.
func Read() (idle, total uint64, err error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("cpustat: %w", err)
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil {
		return 0, 0, fmt.Errorf("cpustat: read /proc/stat: %w", err)
	}
	return Parse(line)
}

// Parse reads /proc/stat's "cpu" line: user nice system idle iowait irq
// softirq steal guest guest_nice. Guest time is already inside user and
// nice, so the total leaves it out.
func Parse(line string) (idle, total uint64, err error) {
	fields := strings.Fields(line)
	if len(fields) < 6 || fields[0] != "cpu" {
		return 0, 0, fmt.Errorf("cpustat: /proc/stat: unexpected first line %q", strings.TrimSpace(line))
	}
	for i, f := range fields[1:] {
		if i >= 8 {
			break
		}
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("cpustat: /proc/stat: %w", err)
		}
		total += n
		if i == 3 || i == 4 {
			idle += n
		}
	}
	return idle, total, nil
}
