package main

import (
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The collector's target keeps the next heap goal at
// max(live*1.25, minHeapGoal): a small heap gets a percent that reaches the
// floor, a large one GOGC=25.
func TestGCPercentFor(t *testing.T) {
	const mib = 1 << 20
	goal := func(live uint64) uint64 { return live * uint64(100+gcPercentFor(live)) / 100 }
	for _, tc := range []struct {
		live uint64
		want int
	}{
		{0, 100_000},
		{1, 100_000},
		{1 * mib, 3100},
		{4 * mib, 700},
		{16 * mib, 100},
		{20 * mib, 60},
		{26843546, serverGCPercent},     // 1.25x is just above 32 MiB
		{26843545, serverGCPercent + 1}, // just below
		{32 * mib, serverGCPercent},
		{210 * mib, serverGCPercent},
		{1 << 40, serverGCPercent},
	} {
		require.Equal(t, tc.want, gcPercentFor(tc.live), "live %d", tc.live)
	}
	// Whatever the live heap, the goal is at least the floor and at most
	// a byte-rounding above the larger of the floor and GOGC=25's goal.
	for live := uint64(128 << 10); live < 1<<30; live = live*9/8 + 1 {
		g := goal(live)
		require.GreaterOrEqual(t, g, uint64(minHeapGoal), "live %d", live)
		require.LessOrEqual(t, g, max(uint64(minHeapGoal)+live/100+1, live*125/100), "live %d", live)
	}
}

// The server's collector target is gcPercentFor of the live heap unless GOGC
// is in the environment, which wins; after a collection the hook has set it
// from that collection's live heap.
func TestSetGCTarget(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })

	t.Setenv("GOGC", "80") // restores the environment afterwards
	debug.SetGCPercent(80) // what the runtime made of it at start
	setGCTarget(logger)()
	runtime.GC()
	require.Equal(t, 80, debug.SetGCPercent(80), "GOGC in the environment is the operator's")

	require.NoError(t, os.Unsetenv("GOGC"))
	stop := setGCTarget(logger)
	t.Cleanup(stop)
	require.Equal(t, gcPercentFor(4<<20), debug.SetGCPercent(7), "before the first collection")
	runtime.GC()
	got := 7
	for deadline := time.Now().Add(10 * time.Second); got == 7 && time.Now().Before(deadline); {
		runtime.Gosched()
		got = debug.SetGCPercent(7) // reads the target, leaving 7 while the hook has not run
	}
	require.NotEqual(t, 7, got, "the hook ran after the collection")
	require.Equal(t, gcPercentFor(liveHeap()), got)
}
