package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime"
	"syscall"
	"time"

	"github.com/zabkeeper/zabkeeper/internal/cpustat"
	"github.com/zabkeeper/zabkeeper/internal/procs"
)

// The server runs with as many Ps (GOMAXPROCS) as its load needs, not as
// many as the machine has. A P with nothing to do is not free: each time a
// goroutine is readied while a P is idle, the runtime wakes a thread to
// spin on it, and on a small VM that wake-up (a futex call, an IPI, a vCPU
// out of HLT) costs more than the parallelism gives back. On the 2-core
// machine we measure, with the clients on the same host, one P instead of
// two: standalone, 64 sessions, set 70,400 against 63,100 ops/s (six
// runs each: 69,100-71,600 against 58,800-65,300), create +17%, get +9%
// with p99 0.8-1.1 against 4.6-5.4 ms (BENCHMARKS.md, "procs probe").
//
// So the server starts on one P and tries a second (or more) only when it
// keeps the ones it has busy and the host has idle CPU to run another on.
// Busy and idle say a P might help, not that it does: a server bound by
// its round trips to the clients and the disk, not by CPU, looks busy and
// leaves the host idle, and is slower with the second P. So the controller
// measures: a P is kept only if the server's work rate (Server.Work:
// requests received, txns logged) rose by probeGain over the probe;
// otherwise the Ps go back and the next try waits, twice as long each time
// one fails. A P is taken away when the load fits in fewer, without a
// probe.
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

// Probing a P: how long, what it must gain, how long a failed one waits.
const (
	probeIntervals = 2    // intervals measured with the new Ps
	probeGain      = 0.05 // the work rate must rise this much to keep them
	firstBackoff   = 20   // intervals (10 s) after the first failed probe
	maxBackoff     = 600  // intervals (5 min): the longest wait
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

// procsSample is what one interval showed.
type procsSample struct {
	ours, idle float64 // CPU cores: the server's, the host's idle (negative: unknown)
	work       float64 // the server's work per second (negative: unknown)
}

// procsController decides the Ps interval by interval; it holds no clock
// and no goroutine, so a test drives it with made-up samples.
type procsController struct {
	most, cur int

	probing  bool
	from     int     // the Ps before the probe
	baseline float64 // the work rate with them
	gained   float64 // work rates summed over the probe's intervals
	measured int     // intervals of the probe so far

	lastWork float64 // the previous interval's work rate at cur Ps, or -1
	wait     int     // intervals before the next probe may start
	backoff  int     // the wait after the next failed probe
}

func newProcsController(most int) *procsController {
	return &procsController{most: most, cur: 1, lastWork: -1, backoff: firstBackoff}
}

// procsDecision says what a step did, for the log.
type procsDecision int

const (
	procsSame     procsDecision = iota
	procsFewer                  // the load fits in fewer Ps
	procsProbe                  // more Ps, on trial
	procsKept                   // the probe raised the work rate
	procsReverted               // it did not: back to the Ps before it
)

// step takes one interval's sample and returns the Ps for the next one.
func (c *procsController) step(s procsSample) (int, procsDecision) {
	if c.wait > 0 {
		c.wait--
	}
	if c.probing {
		if s.work >= 0 {
			c.gained += s.work
			c.measured++
			if c.measured < probeIntervals {
				return c.cur, procsSame
			}
		}
		c.probing = false
		if s.work >= 0 && c.gained/float64(c.measured) >= c.baseline*(1+probeGain) {
			c.backoff = firstBackoff
			c.lastWork = s.work
			return c.cur, procsKept
		}
		c.cur, c.lastWork = c.from, -1
		c.wait, c.backoff = c.backoff, min(2*c.backoff, maxBackoff)
		return c.cur, procsReverted
	}
	next := nextProcs(c.cur, c.most, s.ours, s.idle)
	switch {
	case next < c.cur:
		c.cur, c.lastWork = next, -1
		return c.cur, procsFewer
	case next > c.cur && c.wait == 0 && s.work > 0:
		// The baseline is the mean of the last two intervals at these Ps
		// when there are two: one interval's rate is noisy.
		c.baseline = s.work
		if c.lastWork >= 0 {
			c.baseline = (s.work + c.lastWork) / 2
		}
		c.probing, c.from, c.gained, c.measured = true, c.cur, 0, 0
		c.cur = next
		return c.cur, procsProbe
	}
	c.lastWork = s.work
	return c.cur, procsSame
}

// startProcsController adapts GOMAXPROCS until the returned function is
// called (it waits for the controller to stop and gives back the Ps it
// started with). work is the server's work count (Server.Work).
func startProcsController(logger *slog.Logger, work func() int64) (stop func()) {
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
	c := newProcsController(maxProcs)
	procs.Manage(c.cur, maxProcs)
	go func() {
		defer close(done)
		runProcsController(ctx, c, work, logger)
	}()
	return func() {
		cancel()
		<-done
		procs.Unmanage(maxProcs)
	}
}

func runProcsController(ctx context.Context, c *procsController, work func() int64, logger *slog.Logger) {
	ticker := time.NewTicker(procsInterval)
	defer ticker.Stop()
	lastAt := time.Now()
	lastCPU, _ := processCPU()
	lastWork := work()
	lastIdle, idleErr := hostIdle()
	if idleErr != nil {
		logger.Debug("host idle CPU unknown: the server stays on one P", "err", idleErr)
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
		s := procsSample{ours: (cpu - lastCPU).Seconds() / wall, idle: -1, work: -1}
		if idle, err := hostIdle(); err == nil && idleErr == nil {
			s.idle = (idle - lastIdle).Seconds() / wall
			lastIdle = idle
		}
		if w := work(); w >= lastWork {
			s.work = float64(w-lastWork) / wall
			lastWork = w
		}
		lastAt, lastCPU = now, cpu
		from := c.cur
		next, d := c.step(s)
		if next != procs.Base() {
			procs.Set(next) // a P lent to a snapshot (procs.Lend) comes on top
		}
		if d != procsSame {
			logger.Debug("GOMAXPROCS "+d.String(), "from", from, "to", next, "cpu_cores", fmt.Sprintf("%.2f", s.ours),
				"host_idle_cores", fmt.Sprintf("%.2f", s.idle), "work_per_s", fmt.Sprintf("%.0f", s.work),
				"baseline_per_s", fmt.Sprintf("%.0f", c.baseline), "next_probe_after", time.Duration(c.wait)*procsInterval)
		}
	}
}

func (d procsDecision) String() string {
	switch d {
	case procsFewer:
		return "lowered: the load fits in fewer Ps"
	case procsProbe:
		return "raised on trial"
	case procsKept:
		return "kept: the work rate rose"
	case procsReverted:
		return "reverted: the work rate did not rise"
	}
	return "unchanged"
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

// hostIdle is the idle time of all the host's CPUs (idle and iowait)
// since boot.
func hostIdle() (time.Duration, error) {
	idle, _, err := cpustat.Read()
	return cpustat.Ticks(idle), err
}
