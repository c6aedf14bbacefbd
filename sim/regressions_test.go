package sim

import "testing"

// TestSimPipelineAfterClose: requests a client pipelines after closeSession
// (a multi-threaded client can) must be answered after the closeSession
// reply, never ahead of it. The simulator found engine.Node answering them
// SessionExpired at once, out of order (seeds 7, 8 and 10 with 3 voters);
// this keeps those seeds as a regression test.
func TestSimPipelineAfterClose(t *testing.T) {
	for _, seed := range []uint64{7, 8, 10} {
		o := testOptions(t, seed, 3)
		o.pipelineAfterClose = true
		o.VisualizationDir = t.TempDir()
		expectPass(t, Run(o))
	}
}

// TestSimLateVoterJoinsLeader: with two of five voters down for good, a
// voter that lost the race to decide must still join the leader that needs
// it for a quorum. Seed 569 found zab counting only servers out of the
// election, not its own vote: the same race repeated until the liveness
// bound.
func TestSimLateVoterJoinsLeader(t *testing.T) {
	expectPass(t, Run(Options{Seed: 569, Observers: -1, VisualizationDir: t.TempDir()}))
}
