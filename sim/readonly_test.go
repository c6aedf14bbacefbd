package sim

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// readOnlyOptions runs a seed with read-only mode on and faults that leave
// servers looking for a leader long enough to enter it.
func readOnlyOptions(t *testing.T, seed uint64, wrap func(Replica) Replica) Options {
	o := testOptions(t, seed, 3)
	o.Faults, o.readOnlyMode = []string{FaultNet, FaultCrash}, true
	o.VisualizationDir = t.TempDir()
	if wrap != nil {
		o.NewReplica = func(c ReplicaConfig, d Durable) (Replica, error) {
			r, err := defaultFactory(c, d)
			if err != nil {
				return nil, err
			}
			return wrap(r), nil
		}
	}
	return o
}

// Read-only mode runs in the simulator and its rules hold: clean seeds
// serve read-only sessions, refuse their writes and pass.
func TestSimReadOnlyMode(t *testing.T) {
	sessions, reads, refused := 0, 0, 0
	for seed := uint64(1); seed <= 20 && (sessions == 0 || reads == 0 || refused == 0); seed++ {
		r := Run(readOnlyOptions(t, seed, nil))
		expectPass(t, r)
		sessions += r.Counters["read-only-sessions"]
		reads += r.Counters["read-only-reads"]
		refused += r.Counters["read-only-writes-refused"]
	}
	t.Logf("read-only sessions %d, reads %d, writes refused %d", sessions, reads, refused)
	require.Positive(t, sessions)
	require.Positive(t, reads)
	require.Positive(t, refused)
}

// Each read-only rule has a check that fails on a replica breaking it,
// within 40 seeds (the uncommitted read is first caught at seed 31 with
// the current draws).
func TestSimCheckerCatchesReadOnlyBugs(t *testing.T) {
	for _, tc := range []struct {
		name string
		wrap func(Replica) Replica
		want string
	}{
		{"keeps read-only clients after the election", func(r Replica) Replica { return keepReadOnlyConns{r} }, "still open"},
		{"accepts writes in read-only mode", func(r Replica) Replica { return acceptReadOnlyWrites{r} }, "not NotReadOnly"},
		{"serves uncommitted data in read-only mode", func(r Replica) Replica { return uncommittedReadOnlyReads{r, roConns{}} }, "but the committed txn"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var found string
			for seed := uint64(1); seed <= 40 && found == ""; seed++ {
				if r := Run(readOnlyOptions(t, seed, tc.wrap)); r.Failed() {
					found = strings.Join(r.Violations, "\n")
					t.Logf("seed %d: %s", seed, found)
				}
			}
			require.Contains(t, found, "read-only:")
			require.Contains(t, found, tc.want)
		})
	}
}
