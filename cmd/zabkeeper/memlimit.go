package main

import (
	"errors"
	"log/slog"
	"math"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// setMemoryLimit gives the Go runtime a soft memory limit (GOMEMLIMIT) of
// 90% of the container's memory limit (cgroup v1 or v2), so that a server
// whose tree grows towards the limit collects garbage harder instead of
// being killed for memory; the 10% left is for memory the Go heap does not
// count (stacks of the runtime, cgo, the page cache of a tmpfs data dir).
// The garbage collector otherwise keeps its default target (GOGC=100: the
// heap may grow to about twice the live data between collections).
//
// It is a process-wide setting, so it is made here and not in the server
// package (which tests run many times in one process). GOMEMLIMIT or
// AUTOMEMLIMIT=off in the environment leaves the runtime's own setting;
// GOGC is honoured as ever (GOGC=50 trades garbage-collector CPU for a
// smaller heap: BENCHMARKS.md, Memory). The library does what is fiddly to
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
