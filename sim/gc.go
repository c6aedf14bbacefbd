package sim

import (
	"os"
	"runtime/debug"
)

// CampaignGCPercent is the garbage collector's target while seeds run
// (zabkeeper sim, the benchmarks). A seed's live heap is a few MB, but it
// allocates fast: the disk package's 256 KiB read and write buffers on
// every restart and snapshot, the MemFS copy of a file on every fsync.
// At Go's default of 100 the collector took about 40% of the CPU of a
// five-server campaign (go test ./sim -bench BenchmarkSimulate5
// -cpuprofile); at 400 a seed costs about half the CPU. With fewer
// allocations left, 1000 saved about another 10% of BenchmarkSimulate5's
// CPU against 400 (BENCHMARKS.md, "Simulator speed (issue 11)"), for about
// 60 MB of RSS instead of 33. It changes no draw: seeds replay bit for bit
// either way.
const CampaignGCPercent = 1000

// CampaignMemoryLimit caps the heap the higher target may grow to: a seed
// whose history Porcupine struggles with holds hundreds of MB, and the
// collector works harder near the limit instead of letting that heap grow
// fivefold.
const CampaignMemoryLimit = 1 << 30

// TuneGC sets the process's GC target and soft memory limit for running
// seeds, unless GOGC or GOMEMLIMIT is set, and returns the function that
// restores the previous ones.
func TuneGC() (restore func()) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	oldLimit := debug.SetMemoryLimit(CampaignMemoryLimit)
	old := debug.SetGCPercent(CampaignGCPercent)
	return func() {
		debug.SetGCPercent(old)
		debug.SetMemoryLimit(oldLimit)
	}
}
