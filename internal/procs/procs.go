// Package procs owns the process's GOMAXPROCS while a controller manages
// it: the controller sets the Ps the load needs (Manage, Set), and
// background work that would otherwise share the event loop's P borrows
// one more while it runs (Lend).
//
// A server usually runs with one P (cmd/zabkeeper/procs.go). A snapshot of
// a large tree is a few hundred milliseconds of CPU on another goroutine;
// on one P the event loop then runs only when the snapshot yields or is
// preempted, and every client request waits longer for as long as the
// snapshot lasts: 3 servers, set after 250,000 creates, p99 20 ms and
// p99.9 40-60 ms with one P against 11 and 19 ms with two (BENCHMARKS.md
// "snapshot stalls"). A lent P is busy while it is lent, so it costs none
// of the idle-P wake-ups that make one P the better default.
package procs

import (
	"runtime"
	"sync"
)

var (
	mu      sync.Mutex
	managed bool
	base    int // the Ps the controller chose
	most    int // never more Ps than this
	lent    int
)

// Manage starts managing GOMAXPROCS with base Ps, at most most. Until it
// is called (GOMAXPROCS set by the operator, one CPU) Lend does nothing.
func Manage(basePs, mostPs int) {
	mu.Lock()
	defer mu.Unlock()
	managed, base, most = true, basePs, mostPs
	apply()
}

// Unmanage stops managing and sets GOMAXPROCS to n; loans out are repaid
// without effect.
func Unmanage(n int) {
	mu.Lock()
	defer mu.Unlock()
	managed = false
	runtime.GOMAXPROCS(n)
}

// Set changes the Ps the controller wants (loans come on top).
func Set(basePs int) {
	mu.Lock()
	defer mu.Unlock()
	base = basePs
	apply()
}

// Base returns the Ps the controller chose.
func Base() int {
	mu.Lock()
	defer mu.Unlock()
	return base
}

// Lend adds a P for the caller's background work until the returned
// function is called (once).
func Lend() (giveBack func()) {
	mu.Lock()
	defer mu.Unlock()
	lent++
	apply()
	var once sync.Once
	return func() {
		once.Do(func() {
			mu.Lock()
			defer mu.Unlock()
			lent--
			apply()
		})
	}
}

// apply sets GOMAXPROCS to base plus the loans, at most most; mu is held.
func apply() {
	if !managed {
		return
	}
	want := min(base+lent, most)
	if runtime.GOMAXPROCS(0) != want {
		runtime.GOMAXPROCS(want)
	}
}
