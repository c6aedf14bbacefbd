package main

import (
	"errors"
	"log/slog"
	"math"
	"os"
	"runtime/debug"

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
// set: the heap may grow by a quarter of the live data between
// collections, not Go's default of all of it. The tree keeps its znodes
// where the collector does not scan them (engine/tree/store.go), so a
// collection costs milliseconds even with a million znodes and collecting
// four times as often costs about 1% of a core, while the server's RSS
// falls by a quarter to a third (BENCHMARKS.md, "A tree the collector does
// not scan").
const serverGCPercent = 25

// setGCTarget sets the server's garbage-collector target to
// serverGCPercent unless GOGC is in the environment (the operator's
// choice, which the runtime has already applied).
func setGCTarget(logger *slog.Logger) {
	if v, set := os.LookupEnv("GOGC"); set {
		logger.Debug("garbage-collector target from the environment", "GOGC", v)
		return
	}
	debug.SetGCPercent(serverGCPercent)
}
