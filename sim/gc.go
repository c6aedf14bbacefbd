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
// -cpuprofile); at 400 a seed costs about half the CPU. It changes no
// draw: seeds replay bit for bit either way.
const CampaignGCPercent = 400

// TuneGC sets the process's GC target for running seeds, unless GOGC is
// set, and returns the function that restores the previous one.
func TuneGC() (restore func()) {
	if os.Getenv("GOGC") != "" {
		return func() {}
	}
	old := debug.SetGCPercent(CampaignGCPercent)
	return func() { debug.SetGCPercent(old) }
}
