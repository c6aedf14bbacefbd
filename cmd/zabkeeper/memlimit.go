package main

import (
	"errors"
	"log/slog"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// setMemoryLimit gives the Go runtime a soft memory limit (GOMEMLIMIT) of
// 90% of the container's memory limit (cgroup v1 or v2), so that a server
// whose tree grows towards the limit collects garbage harder instead of
// being killed for memory; the 10% left is for memory the Go heap does not
// count (stacks of the runtime, cgo, the page cache of a tmpfs data dir).
// The collector's target is set by setGCTarget.
//
// It is a process-wide setting, so it is made here and not in the server
// package (which tests run many times in one process). GOMEMLIMIT or
// AUTOMEMLIMIT=off in the environment leaves the runtime's own setting;
// GOGC in the environment overrides setGCTarget's default. The library does what is fiddly to
// hand-write: finding the process's cgroup among v1 and v2 mount layouts.
func setMemoryLimit(logger *slog.Logger) {
	limit, err := memlimit.Set(memlimit.WithProvider(memlimit.FromCgroup), memlimit.WithRatio(0.9))
	switch {
	case errors.Is(err, memlimit.ErrNoCgroup) || errors.Is(err, memlimit.ErrNoLimit) || (err == nil && limit == math.MaxInt64):
		logger.Debug("no container memory limit: GOMEMLIMIT left unset")
	case err != nil:
		logger.Warn("cannot read the container memory limit; GOMEMLIMIT left unset", "err", err)
	default:
		logger.Info("soft memory limit from the container's", "GOMEMLIMIT", limit)
	}
}

// serverGCPercent is the server's garbage-collector target when GOGC is not
// set and the live heap is large: the heap may grow by a quarter of the live
// data between collections, not Go's default of all of it. The tree keeps
// its znodes where the collector does not scan them (engine/tree/store.go),
// so a collection costs milliseconds even with a million znodes and
// collecting four times as often costs about 1% of a core, while the
// server's RSS falls by a quarter to a third (BENCHMARKS.md, "A tree the
// collector does not scan").
const serverGCPercent = 25

// minHeapGoal is the least heap the collector lets the server grow to
// between collections. With a small tree a quarter of the live heap is a
// megabyte or two, which the write path allocates in tens of milliseconds:
// 30 collections a second on a leader under load, each with its assist,
// mark workers and wake-ups (BENCHMARKS.md, "quorumcpu"). 32 MiB is the
// goal of GOGC=25 at 25.6 MiB of live heap, about 120,000 znodes, so a
// server with a larger tree (where RSS matters) collects as before.
const minHeapGoal = 32 << 20

// gcPercentFor is the GOGC that makes the next heap goal
// max(live*(1+serverGCPercent/100), minHeapGoal) for a live heap of live
// bytes (the runtime's goal is live*(1+GOGC/100), plus a share of stacks
// and globals this leaves out).
func gcPercentFor(live uint64) int {
	const maxPercent = 100_000 // a live heap under 32 KiB: the runtime's own start
	if live == 0 {
		return maxPercent
	}
	if live*(100+serverGCPercent) >= minHeapGoal*100 {
		return serverGCPercent
	}
	p := (minHeapGoal - live) * 100 / live
	if (minHeapGoal-live)*100%live != 0 {
		p++
	}
	return int(min(p, maxPercent))
}

// setGCTarget sets the server's garbage-collector target unless GOGC is in
// the environment (the operator's choice, which the runtime has already
// applied): gcPercentFor of the live heap, recomputed after every
// collection by a finalizer the collection runs (the runtime has no other
// hook for the end of a cycle, and a ticker would wake an idle server).
// Before the first collection the live heap is unknown; the runtime's first
// goal is 4 MiB x GOGC/100, so the start takes minHeapGoal's percent of it.
// The returned function stops the adjusting. The hook is one per process
// (tests run the server command many times in one).
func setGCTarget(logger *slog.Logger) (stop func()) {
	if v, set := os.LookupEnv("GOGC"); set {
		gcFloorOn.Store(false)
		logger.Debug("garbage-collector target from the environment", "GOGC", v)
		return func() {}
	}
	debug.SetGCPercent(gcPercentFor(4 << 20))
	gcFloorOn.Store(true)
	gcHookOnce.Do(func() {
		armGCHook(func() bool {
			if gcFloorOn.Load() {
				debug.SetGCPercent(gcPercentFor(liveHeap()))
			}
			return true
		})
	})
	return func() { gcFloorOn.Store(false) }
}

var (
	gcFloorOn  atomic.Bool // the hook sets the target
	gcHookOnce sync.Once
)

// liveHeap is the heap the last collection marked live, in bytes.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// gcSentinel is allocated only for its finalizer. It holds a pointer so it is
// never one of the tiny allocator's shared blocks, whose finalizers run late.
type gcSentinel struct{ _ *int }

// armGCHook calls f on the finalizer goroutine after every garbage
// collection until f returns false: each run re-arms it with a new
// unreachable sentinel, which the next collection finds.
func armGCHook(f func() bool) {
	s := &gcSentinel{}
	runtime.SetFinalizer(s, func(*gcSentinel) {
		if f() {
			armGCHook(f)
		}
	})
}
