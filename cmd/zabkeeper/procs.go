package main

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/zabkeeper/zabkeeper/internal/procs"
)

// The server runs with as many Ps (GOMAXPROCS) as its load needs, not as
// many as the machine has. A P with nothing to do is not free: each time a
// goroutine is readied while a P is idle, the runtime wakes a thread to
// spin on it, and on a small VM that wake-up (a futex call, an IPI, a vCPU
// out of HLT) costs more than the parallelism gives back. On the 2-core
// machine we measure, with the clients on the same host, one P instead of
// two: 1 session on 3 servers, set p50 1.03/0.98 -> 0.78/0.73 ms; 64
// sessions, 3 servers, set +17%; standalone set +24%, create +20%
// (BENCHMARKS.md, "procs"). A second P is added only when the server
// keeps the ones it has busy and the host has idle CPU to run another on;
// one is taken away when the load fits in fewer.
//
// GOMAXPROCS in the environment is the operator's choice and turns this
// off. It starts once the server has recovered its data (a snapshot loads
// with every P) and stops with it. A snapshot being written borrows one
// more P on top of the controller's choice (internal/procs).

// procsInterval is how often the server's CPU use is looked at.
const procsInterval = 500 * time.Millisecond

// Thresholds, in CPU cores used over the last interval per P.
const (
	procsBusy = 0.85 // the server keeps its Ps this busy: it may need more
	procsFits = 0.6  // the load would fit in fewer Ps this busy
	// procsIdleHost is the idle CPU, in cores, the host must have for
	// another P to run on.
	procsIdleHost = 0.5
)

// nextProcs is the number of Ps for a server that used ourCores of CPU
// over the last interval with cur Ps, on a host that had idleCores idle
// (negative: unknown), most Ps at most.
func nextProcs(cur, most int, ourCores, idleCores float64) int {
	if cur < most && ourCores >= procsBusy*float64(cur) && idleCores >= procsIdleHost {
		// As many more as the idle CPU can run, doubling at most.
		return min(most, cur*2, cur+int(math.Max(1, math.Floor(idleCores))))
	}
	if cur > 1 {
		if need := int(math.Ceil(ourCores / procsFits)); need < cur {
			return max(1, need)
		}
	}
	return cur
}

// startProcsController adapts GOMAXPROCS until the returned function is
// called (it waits for the controller to stop and gives back the Ps it
// started with).
func startProcsController(logger *slog.Logger) (stop func()) {
	if _, set := os.LookupEnv("GOMAXPROCS"); set {
		logger.Debug("GOMAXPROCS set in the environment: the server keeps it")
		return func() {}
	}
	maxProcs := runtime.GOMAXPROCS(0)
	if maxProcs <= 1 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	procs.Manage(maxProcs, maxProcs)
	go func() {
		defer close(done)
		runProcsController(ctx, maxProcs, logger)
	}()
	return func() {
		cancel()
		<-done
		procs.Unmanage(maxProcs)
	}
}

func runProcsController(ctx context.Context, maxProcs int, logger *slog.Logger) {
	ticker := time.NewTicker(procsInterval)
	defer ticker.Stop()
	lastAt := time.Now()
	lastCPU, _ := processCPU()
	lastIdle, idleErr := hostIdle()
	if idleErr != nil {
		logger.Debug("host idle CPU unknown: the server does not add Ps past its start", "err", idleErr)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		now := time.Now()
		wall := now.Sub(lastAt).Seconds()
		cpu, err := processCPU()
		if err != nil || wall <= 0 {
			continue
		}
		ourCores := (cpu - lastCPU).Seconds() / wall
		idleCores := -1.0
		if idle, err := hostIdle(); err == nil && idleErr == nil {
			idleCores = (idle - lastIdle).Seconds() / wall
			lastIdle = idle
		}
		lastAt, lastCPU = now, cpu
		cur := procs.Base() // a P lent to a snapshot (procs.Lend) comes on top
		if next := nextProcs(cur, maxProcs, ourCores, idleCores); next != cur {
			procs.Set(next)
			logger.Debug("GOMAXPROCS adjusted", "from", cur, "to", next, "cpu_cores", fmt.Sprintf("%.2f", ourCores), "host_idle_cores", fmt.Sprintf("%.2f", idleCores))
		}
	}
}

// processCPU is the CPU time the process has used (user and system, all
// its threads, the kernel's io_uring workers among them).
func processCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// hostIdle is the idle time of all the host's CPUs (idle and iowait, the
// first line of /proc/stat) since boot.
func hostIdle() (time.Duration, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("read /proc/stat: %w", err)
	}
	return parseIdle(line)
}

// userHz is the unit of /proc/stat's times, USER_HZ, 100 on every Linux
// architecture Go supports.
const userHz = 100

// parseIdle reads idle+iowait from /proc/stat's "cpu" line.
func parseIdle(line string) (time.Duration, error) {
	fields := strings.Fields(line)
	if len(fields) < 6 || fields[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected first line %q", strings.TrimSpace(line))
	}
	var ticks uint64
	for _, f := range fields[4:6] { // idle, iowait
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHz, nil
}
