package sim

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// Fault kinds, as Options.Faults names them.
const (
	FaultNet   = "net"   // delays, link cuts, partitions, flapping, client connection resets
	FaultCrash = "crash" // server crashes and restarts
	FaultDisk  = "disk"  // fsync latency, torn writes, fsync errors, corruption
	FaultClock = "clock" // clock-rate skew between servers
)

// AllFaults lists every fault kind.
var AllFaults = []string{FaultNet, FaultCrash, FaultDisk, FaultClock}

// ParseFaults turns a comma-separated list ("all", "none", or kinds) into a
// sorted set of kinds.
func ParseFaults(s string) ([]string, error) {
	out := []string{}
	for _, f := range strings.Split(s, ",") {
		switch f = strings.TrimSpace(strings.ToLower(f)); f {
		case "", "none":
		case "all":
			out = append(out, AllFaults...)
		case FaultNet, FaultCrash, FaultDisk, FaultClock:
			out = append(out, f)
		default:
			return nil, fmt.Errorf("unknown fault kind %q (want all, none, net, crash, disk, clock)", f)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Server kinds, as Options.PeerProtocol forces them on every server
// (kinds.go).
const (
	// PeerZooKeeper: every server ZooKeeper-like (no hello, no link
	// capabilities).
	PeerZooKeeper = "zookeeper"
	// PeerZabkeeper: every server native (hellos with every capability).
	PeerZabkeeper = "zabkeeper"
)

// Options configures one simulation run.
type Options struct {
	// Seed determines everything about the run.
	Seed uint64
	// Nodes is the number of voters (3 or 5 typically); 0 lets the seed
	// choose 3 or 5.
	Nodes int
	// Observers is the number of observers; negative lets the seed choose
	// 0 or 1 (the zero value means none).
	Observers int
	// Faults are the enabled fault kinds (see ParseFaults); nil means all.
	// Use []string{} for none.
	Faults []string
	// Duration is the virtual time of the fault phase; 0 means 20 s. The
	// liveness phase follows.
	Duration time.Duration
	// Clients is the number of client sessions; 0 lets the seed choose 2–6.
	Clients int
	// Trace receives readable trace lines; nil turns tracing off.
	Trace io.Writer
	// TraceNode keeps only lines about this server (0 = all).
	TraceNode int64
	// TraceFrom and TraceTo bound traced virtual time (TraceTo 0 = end).
	TraceFrom, TraceTo time.Duration
	// VisualizationDir receives the Porcupine HTML of a failing history;
	// empty means the ZABKEEPER_SIM_DIR environment variable, then
	// os.TempDir().
	VisualizationDir string
	// NewReplica builds replicas; nil means the real engine.Node.
	NewReplica Factory
	// PeerProtocol forces every server's kind (kinds.go); every hop goes
	// through netstub/zklink whatever it says. "zookeeper": every server
	// ZooKeeper-like (announces nothing: no link has capabilities);
	// "zabkeeper": every server native (announces zab.AllCaps with a
	// nonce per incarnation). Neither switches kind at restarts. "" lets
	// the seed draw each server's kind and the switches (kindDraws).
	PeerProtocol string
	// NoObligationChecks turns off the durability-obligation checks
	// (obligations.go), to measure what the faults and the end-to-end
	// invariants catch on their own.
	NoObligationChecks bool

	// mutateApplied lets tests falsify what a server is seen to apply, to
	// show the checker fails.
	mutateApplied func(node, zxid int64, hash uint64) uint64
	// wireFault lets tests plant a codec fault: it may change the packets
	// a server writes on a leader/learner connection.
	wireFault func(from, to int64, pkts []quorum.Packet) []quorum.Packet
	// lyingDisk makes crashes lose fsynced records too, to show the
	// durability checks fail when storage breaks its promise.
	lyingDisk bool
	// readOnlyMode turns read-only mode and read-only clients on whatever
	// the seed draws.
	readOnlyMode bool
	// pipelineAfterClose lets clients send requests after closeSession,
	// as a multi-threaded client may.
	pipelineAfterClose bool
}

// Report is the outcome of one run.
type Report struct {
	Seed  uint64
	Nodes int
	// Observers and Clients are the drawn cluster shape.
	Observers, Clients int
	// SimulatedTime is the virtual time the run covered.
	SimulatedTime time.Duration
	// FaultsByKind counts injected faults by kind ("crash", "partition", …).
	FaultsByKind map[string]int
	// OpsChecked is the number of client operations in the history.
	OpsChecked int
	// Committed is the number of txns committed cluster-wide.
	Committed int
	// Counters count protocol events worth knowing a seed exercised:
	// "elections" (leaders established), "truncations", "snap-syncs",
	// "ops-unknown" (client ops without a reply), "sessions-expired",
	// "kind-switches" (restarts that switched a server's kind),
	// "links-capable" and "links-zookeeper" (handshakes that gave a link
	// every capability, or none).
	Counters map[string]int
	// PeerKinds is what every incarnation of every server was: KindsNative,
	// KindsZooKeeper or KindsMixed; InitialKinds the first kinds, a letter a
	// server (N native, Z ZooKeeper-like).
	PeerKinds, InitialKinds string
	// Violations describe every invariant that failed; empty = pass.
	Violations []string
	// Warnings are checks that could not conclude (a checker timeout).
	Warnings []string
	// LinTimedOut is set when Porcupine gave up (linTimeout) before it
	// could decide the history: the seed passed without that check.
	LinTimedOut bool
	// Panicked is set when a replica or the simulator panicked; the panic
	// and its stack are the last violation.
	Panicked bool
	// TraceHash hashes every event in order, then DiskDigest; equal seeds
	// give equal hashes.
	TraceHash uint64
	// DiskDigest hashes the names and bytes of every file on every
	// machine's disk at the end of the run.
	DiskDigest uint64
	// Events is the number of events processed.
	Events int
	// Visualization is the path of the Porcupine HTML written on a
	// linearizability failure.
	Visualization string
	// ReplayCommand replays this run exactly.
	ReplayCommand string
}

// Failed reports whether any invariant failed.
func (r *Report) Failed() bool { return len(r.Violations) > 0 }

func replayCommand(o *Options) string {
	faults := strings.Join(o.Faults, ",")
	if len(o.Faults) == 0 {
		faults = "none"
	}
	if len(o.Faults) == len(AllFaults) {
		faults = "all"
	}
	shape := fmt.Sprintf("nodes %d -observers %d -clients %d -faults %s -duration %s",
		o.Nodes, o.Observers, o.Clients, faults, o.Duration)
	if o.PeerProtocol != "" {
		shape += " -peer-protocol " + o.PeerProtocol
	}
	return fmt.Sprintf("go test ./sim -run 'TestSim$' -seed %d -%s   or   zabkeeper sim --seed %d --%s",
		o.Seed, shape, o.Seed, strings.ReplaceAll(shape, " -", " --"))
}
