package zab

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRandomized runs seeded storms of crashes, restarts, partitions (loud
// and silent), dropped links, slow disks, local snapshots, leadership
// transfers (whose departing leader then lives on, or crashes) and proposals,
// checking the invariants after every step; then the faults stop and the
// cluster must elect a leader, sync everyone and commit a new txn everywhere
// within a bound.
func TestRandomized(t *testing.T) {
	if traceSeed != 0 {
		traceOn = true
		runRandomized(t, traceSeed)
		return
	}
	seeds := *randomSeeds
	if testing.Short() {
		seeds = 40
	}
	var totalSteps, totalCommitted, totalEpochs int
	sent := map[MsgType]int{}
	lastSent = sent
	for seed := *firstSeed; seed < *firstSeed+seeds; seed++ {
		var steps, committed, epochs int
		ok := t.Run(fmt.Sprint(seed), func(t *testing.T) {
			steps, committed, epochs = runRandomized(t, uint64(seed))
		})
		if !ok {
			return
		}
		totalSteps += steps
		totalCommitted += committed
		totalEpochs += epochs
	}
	t.Logf("%d seeds, %d steps, %d txns committed, %d established epochs; DIFF %d TRUNC %d SNAP %d INFORM %d TIMEOUTNOW %d; crashes %d; slowest recovery %d ticks",
		seeds, totalSteps, totalCommitted, totalEpochs, sent[MsgDiff], sent[MsgTrunc], sent[MsgSnap], sent[MsgInform], sent[MsgTimeoutNow], totalCrashes, maxLivenessTicks)
}

var (
	randomSeeds = flag.Int("zab.seeds", 200, "seeds for TestRandomized")
	firstSeed   = flag.Int("zab.seed", 1, "first seed for TestRandomized")
)

// traceSeed, when set, replays one seed with a full trace.
var traceSeed uint64 = 0

// Liveness bound, in calm steps (each ~1/10 a tick).
const livenessSteps = 20000

func runRandomized(t *testing.T, seed uint64) (steps, committed, epochs int) {
	r := rand.New(rand.NewPCG(seed, 0xa11ce))
	o := clusterOpts{
		seed:       seed,
		voters:     []int{1, 3, 3, 3, 5, 5}[r.IntN(6)],
		observers:  r.IntN(2),
		fsyncDelay: []int{0, 1, 2, 3, 8}[r.IntN(5)],
		maxLog:     []int{0, 3, 8, 50}[r.IntN(4)],
	}
	c := newCluster(t, o)
	r = c.rng
	// Swarm testing: each seed draws its own weather.
	pCrash := r.Float64() * []float64{0.005, 0.01, 0.03}[r.IntN(3)]
	pRestart := 0.02
	pPart := r.Float64() * 0.01
	pHeal := 0.01
	pDrop := r.Float64() * 0.01
	pProp := 0.05 + r.Float64()*0.1
	pSnap := 0.005
	pTransfer := r.Float64() * 0.005
	faultSteps := 1500 + r.IntN(1500)
	for i := 0; i < faultSteps; i++ {
		c.step++
		x := r.Float64()
		switch {
		case x < pCrash:
			c.crash(c.ids[r.IntN(len(c.ids))])
		case x < pCrash+pRestart:
			c.restart(c.ids[r.IntN(len(c.ids))])
		case x < pCrash+pRestart+pPart:
			var group []int64
			for _, id := range c.ids {
				if r.IntN(2) == 0 {
					group = append(group, id)
				}
			}
			c.doPartition(group, r.IntN(2) == 0)
		case x < pCrash+pRestart+pPart+pHeal:
			if r.IntN(2) == 0 {
				c.healAll()
			} else {
				// A stalled connection finally times out and breaks.
				for _, k := range sortedLinks(c.frozen) {
					c.cutLink(k[0], k[1])
				}
			}
		case x < pCrash+pRestart+pPart+pHeal+pDrop:
			a, b := c.ids[r.IntN(len(c.ids))], c.ids[r.IntN(len(c.ids))]
			if a != b && c.linkUp(a, b) {
				c.cutLink(a, b)
				delete(c.cut, linkKey(a, b))
			}
		case x < pCrash+pRestart+pPart+pHeal+pDrop+pProp:
			if l, ok := c.leader(); ok {
				for k := r.IntN(3); k >= 0; k-- {
					c.propose(l)
				}
			}
		case x < pCrash+pRestart+pPart+pHeal+pDrop+pProp+pSnap:
			c.localSnapshot(c.ids[r.IntN(len(c.ids))])
		case x < pCrash+pRestart+pPart+pHeal+pDrop+pProp+pSnap+pTransfer:
			if l, ok := c.leader(); ok {
				c.transfer(l)
			}
		default:
			if (r.IntN(10) == 0 && c.queued() < 4*len(c.ids)) || !c.deliverOne() {
				c.tickAll()
			}
		}
		c.flushDue()
		c.checkInvariants()
	}
	// Faults stop: heal, restart everyone, and demand progress.
	c.healAll()
	for _, id := range c.ids {
		c.restart(id)
	}
	start, startTicks := c.step, c.ticks
	c.awaitSynced(livenessSteps)
	// A leader still handing over (a transfer of the storm) takes no
	// proposal until its successor leads or the transfer is abandoned.
	var z int64
	c.runUntil("a leader taking a proposal", livenessSteps, func() bool {
		l, ok := c.leader()
		if ok {
			z, ok = c.propose(l)
		}
		return ok
	})
	c.awaitApplied(z, c.ids, livenessSteps)
	require.LessOrEqual(t, c.ticks-startTicks, livenessTicks, "liveness took too many ticks")
	if d := c.ticks - startTicks; d > maxLivenessTicks {
		maxLivenessTicks = d
	}
	_ = start
	for _, id := range c.ids {
		require.Equal(t, c.global, c.nodes[id].app.ents, "server %d state after liveness", id)
	}
	for k, v := range c.sent {
		lastSent[k] += v
	}
	totalCrashes += c.crashes
	return c.step, len(c.global), len(c.leaders)
}

var (
	lastSent         map[MsgType]int
	totalCrashes     int
	maxLivenessTicks int
)

// livenessTicks bounds, in ticks, how long a healed cluster may take to
// elect, sync every server and commit a txn everywhere. With ElectionTicks
// 4, InitLimit 10 and SyncLimit 5 a few failed rounds fit comfortably.
const livenessTicks = 400

// localSnapshot has a server snapshot its applied state and drop the log it
// covers, as the caller's purge would.
func (c *cluster) localSnapshot(id int64) {
	n := c.nodes[id]
	if n.p == nil || len(n.app.ents) == 0 {
		return
	}
	d := n.disk
	z := n.app.last()
	if z <= d.snapZxid {
		return
	}
	d.snapZxid = z
	d.snapData = encodeEntries(n.app.ents)
	k := 0
	for k < len(d.log) && d.log[k].Zxid <= z {
		k++
	}
	d.log = append([]Entry(nil), d.log[k:]...)
}

func sortedLinks(m map[[2]int64]bool) [][2]int64 {
	var out [][2]int64
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i][0] != out[j][0] {
			return out[i][0] < out[j][0]
		}
		return out[i][1] < out[j][1]
	})
	return out
}
