package sim

import (
	"testing"
	"time"
)

// BenchmarkSimulate runs whole seeds (3 voters, every fault kind, the
// default 20 s fault phase plus the liveness phase and the checks) and
// reports how many simulated seconds one wall second buys, the figure
// that says how many seeds a campaign can afford.
func BenchmarkSimulate(b *testing.B) { benchmarkSeeds(b, 3) }

// BenchmarkSimulate5 is issue 11's figure: a loaded five-server ensemble
// (five voters, every fault kind, the seed's clients) in simulated seconds
// per wall second. Seeds run from 1, with the server kinds they draw
// (ZooKeeper's packets through zklink on every hop).
func BenchmarkSimulate5(b *testing.B) { benchmarkSeeds(b, 5) }

// benchmarkSeeds runs seeds from 1 with the given number of voters and
// reports simulated seconds and events per wall second.
func benchmarkSeeds(b *testing.B, nodes int) {
	var simulated time.Duration
	events := 0
	defer TuneGC()() // as zabkeeper sim runs seeds
	seed := uint64(1)
	for b.Loop() {
		rep := Run(Options{Seed: seed, Nodes: nodes, Observers: 0})
		if len(rep.Violations) > 0 {
			b.Fatalf("seed %d: %v", seed, rep.Violations)
		}
		simulated += rep.SimulatedTime
		events += rep.Events
		seed++
	}
	wall := b.Elapsed().Seconds()
	b.ReportMetric(simulated.Seconds()/wall, "sim-s/s")
	b.ReportMetric(float64(events)/wall, "events/s")
}
