package sim

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// The codec hop is real: a fault planted in what a server writes on a
// simulated connection is caught, each by the check that names it
// (wire.go), within the first few seeds of ZooKeeper-like servers.
func TestSimCatchesCodecFaults(t *testing.T) {
	faults := []struct {
		name  string
		want  string
		fault func() func(from, to int64, pkts []quorum.Packet) []quorum.Packet
	}{
		{
			// A learner's link that drops one ACK of its expansion: a
			// ZooKeeper leader would drop the follower.
			name: "drop-one-ack", want: "wire: ", fault: func() func(int64, int64, []quorum.Packet) []quorum.Packet {
				return dropFirst(func(p quorum.Packet) bool { return p.Type == quorum.Ack && zab.Counter(p.Zxid) != 0 })
			},
		},
		{
			// A leader's link that drops one COMMIT: a ZooKeeper follower
			// would exit on the next.
			name: "drop-one-commit", want: "wire: ", fault: func() func(int64, int64, []quorum.Packet) []quorum.Packet {
				return dropFirst(func(p quorum.Packet) bool { return p.Type == quorum.Commit })
			},
		},
		{
			// A leader's link that stamps every LEADERINFO with the wrong
			// epoch: no learner can sync (its NEWLEADER names another
			// epoch), the ensemble never establishes a leader. (One wrong
			// LEADERINFO alone is survived: the learner elects again.)
			name: "mis-stamped-epoch", want: "liveness: ", fault: func() func(int64, int64, []quorum.Packet) []quorum.Packet {
				return func(_, _ int64, pkts []quorum.Packet) []quorum.Packet {
					for i := range pkts {
						if pkts[i].Type == quorum.LeaderInfo {
							e, _, _ := quorum.DecodeLeaderInfo(&pkts[i])
							pkts[i] = quorum.NewLeaderInfo(e + 1)
						}
					}
					return pkts
				}
			},
		},
		{
			// A packet the reader's Link cannot decode: the connection
			// closes with MsgLinkDown and the error is reported.
			name: "unknown-packet", want: "codec: ", fault: func() func(int64, int64, []quorum.Packet) []quorum.Packet {
				done := false
				return func(_, _ int64, pkts []quorum.Packet) []quorum.Packet {
					if !done && len(pkts) > 0 && pkts[0].Type == quorum.Ping {
						done = true
						return append(pkts, quorum.Packet{Type: quorum.PacketType(99)})
					}
					return pkts
				}
			},
		},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			for seed := uint64(1); seed <= 5; seed++ {
				o := Options{Seed: seed, Nodes: 3, Observers: 0, PeerProtocol: PeerZooKeeper}
				o.wireFault = f.fault()
				r := Run(o)
				if r.Failed() {
					require.Contains(t, r.Violations[0], f.want)
					t.Logf("caught at seed %d: %s", seed, r.Violations[0])
					clean := Run(Options{Seed: seed, Nodes: 3, Observers: 0, PeerProtocol: PeerZooKeeper})
					require.False(t, clean.Failed(), "seed %d fails without the fault: %v", seed, clean.Violations)
					return
				}
			}
			t.Fatalf("no seed in 1..5 caught %s", f.name)
		})
	}
}

// A server's kind is what its links announce: a handshake between two
// native servers gives the link every capability, one with a
// ZooKeeper-like end none (checkReceived fails the seed otherwise); mixed
// seeds have both, and restarts switch kinds on some of them.
func TestSimPeerKinds(t *testing.T) {
	counts := map[string]int{}
	mixed := 0
	for seed := uint64(1); seed <= 40 && (mixed < 4 || counts["kind-switches"] == 0); seed++ {
		o := Options{Seed: seed, Nodes: 5, Observers: 0}
		if d := newKindDraws(&o, 5); d.initialString() == "NNNNN" || d.initialString() == "ZZZZZ" {
			continue
		}
		r := Run(o)
		expectPass(t, r)
		require.Equal(t, KindsMixed, r.PeerKinds)
		mixed++
		for _, k := range []string{"links-capable", "links-zookeeper", "kind-switches"} {
			counts[k] += r.Counters[k]
		}
	}
	require.GreaterOrEqual(t, mixed, 4)
	t.Logf("%d mixed seeds: %v", mixed, counts)
	require.NotZero(t, counts["links-capable"])
	require.NotZero(t, counts["links-zookeeper"])
	require.NotZero(t, counts["kind-switches"])

	r := Run(Options{Seed: 1, Nodes: 3, Observers: 0, PeerProtocol: PeerZabkeeper})
	expectPass(t, r)
	require.Equal(t, KindsNative, r.PeerKinds)
	require.NotZero(t, r.Counters["links-capable"])
	require.Zero(t, r.Counters["links-zookeeper"])
	require.Zero(t, r.Counters["kind-switches"])
}

func dropFirst(match func(quorum.Packet) bool) func(int64, int64, []quorum.Packet) []quorum.Packet {
	done := false
	return func(_, _ int64, pkts []quorum.Packet) []quorum.Packet {
		if done {
			return pkts
		}
		for i, p := range pkts {
			if match(p) {
				done = true
				return append(pkts[:i:i], pkts[i+1:]...)
			}
		}
		return pkts
	}
}

// Compat mode's connections live as zktcp's do: learners open them with
// FOLLOWERINFO, leaders accept them, role changes close them quietly,
// cuts break them, the other end hears of a close, and SNAP bodies cross
// them through quorum.CopySnapshotBody. Seeds 100-109, five voters.
func TestSimWireConnections(t *testing.T) {
	seen := map[string]int{}
	kinds := []string{"wire: conn ", "wire: accepts conn", "wire: closes conn", "closed", "breaks: the link is cut"}
	for seed := uint64(100); seed < 110; seed++ {
		var trace strings.Builder
		o := Options{Seed: seed, Nodes: 5, Observers: -1, PeerProtocol: PeerZooKeeper, Trace: &trace}
		r := Run(o)
		expectPass(t, r)
		seen["snap bodies"] += r.Counters["wire-snap-bodies"]
		for _, line := range strings.Split(trace.String(), "\n") {
			if !strings.Contains(line, " wire: ") {
				continue
			}
			for _, k := range kinds {
				if strings.Contains(line, k) {
					seen[k]++
				}
			}
		}
	}
	t.Logf("%v", seen)
	for _, k := range append(kinds, "snap bodies") {
		require.NotZero(t, seen[k], "no %q in seeds 100-109", k)
	}
}
