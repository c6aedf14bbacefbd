package sim

import (
	"math/rand/v2"
	"strings"

	"github.com/zabkeeper/zabkeeper/engine/zab"
)

// Server kinds (docs/ZAB.md, "What the simulator must do"). Every hop goes
// through netstub/zklink; what differs between servers is what their links
// announce. A native server (zabkeeper) announces zab.AllCaps and a nonce
// in its hello, as netstub/zktcp does; a ZooKeeper-like server announces
// nothing, as Apache ZooKeeper, so its links carry no capabilities and the
// engines at both ends behave toward it as toward ZooKeeper (REVALIDATE
// instead of a moveSession REQUEST, SYNC pairing, no TIMEOUTNOW, a raw SNAP
// body). Per seed the servers are all native, all ZooKeeper-like or mixed,
// and on half of the seeds a restart may switch a server's kind: the
// rolling migration, in both directions.

// Kind mixes, as Report.PeerKinds names them: what every incarnation of
// every server of the run was.
const (
	KindsNative    = "native"
	KindsZooKeeper = "zookeeper"
	KindsMixed     = "mixed"
)

// kindDraws decides each incarnation's kind and nonce, from a generator
// seeded by the seed alone: drawing from the run's own generator would
// change every later draw.
type kindDraws struct {
	rng *rand.Rand
	// initial is each server's first kind, by index (true: native).
	initial []bool
	// switchProb is the chance that a restart switches the server's kind.
	switchProb float64
	// seen records which kinds ran: bit 0 native, bit 1 ZooKeeper-like.
	seen int
}

// newKindDraws draws the servers' kinds: as forced by o.PeerProtocol, else
// all ZooKeeper-like on a quarter of the seeds, all native on three eighths
// and mixed on the rest (at least one of each kind), with kind switches at
// restarts on half of the unforced seeds.
func newKindDraws(o *Options, servers int) kindDraws {
	r := rand.New(rand.NewPCG(o.Seed, 0x7a6b6b696e64)) // "zkkind"
	d := kindDraws{rng: r, initial: make([]bool, servers)}
	mix := r.IntN(8)
	switch o.PeerProtocol {
	case PeerZooKeeper:
		mix = 0
	case PeerZabkeeper:
		mix = 2
	}
	switch {
	case mix < 2:
	case mix < 5:
		for i := range d.initial {
			d.initial[i] = true
		}
	default:
		// k ZooKeeper-like servers, 1 ≤ k < servers, at random places.
		k := 1 + r.IntN(servers-1)
		for i, p := range r.Perm(servers) {
			d.initial[p] = i >= k
		}
	}
	if o.PeerProtocol == "" && r.IntN(2) == 0 {
		d.switchProb = 0.2 + 0.5*r.Float64()
	}
	return d
}

// next returns the kind of s's incarnation starting (s.gen already counts
// it) and its nonce
// (zero for a ZooKeeper-like server: it sends no hello), and whether the
// kind switched from the previous incarnation.
func (d *kindDraws) next(s *server) (native bool, nonce int64, switched bool) {
	native = d.initial[s.id-1]
	if s.gen > 1 {
		native = s.native
		if d.switchProb > 0 && d.rng.Float64() < d.switchProb {
			native, switched = !native, true
		}
	}
	if native {
		d.seen |= 1
		nonce = d.rng.Int64() | 1
	} else {
		d.seen |= 2
	}
	return native, nonce, switched
}

// mix names what ran (KindsNative, KindsZooKeeper, KindsMixed).
func (d *kindDraws) mix() string {
	switch d.seen {
	case 1:
		return KindsNative
	case 2:
		return KindsZooKeeper
	}
	return KindsMixed
}

// initialString renders the first kinds, one letter a server: N native,
// Z ZooKeeper-like.
func (d *kindDraws) initialString() string {
	var b strings.Builder
	for _, n := range d.initial {
		if n {
			b.WriteByte('N')
		} else {
			b.WriteByte('Z')
		}
	}
	return b.String()
}

// announce sets what s's new incarnation's links announce.
func (sm *Sim) announce(s *server) {
	native, nonce, switched := sm.kinds.next(s)
	s.native = native
	if native {
		s.zk.Announce(zab.AllCaps, nonce)
	}
	if switched {
		sm.report.Counters["kind-switches"]++
	}
	sm.hash.add(11, s.id, int64(s.gen), nonce)
	sm.tracef(s.id, "n%d is %s (nonce %#x)", s.id, kindName(native), uint64(nonce))
}

// kindName names a server's kind for trace lines and violations.
func kindName(native bool) string {
	if native {
		return "native (announces every capability)"
	}
	return "ZooKeeper-like (no hello)"
}
