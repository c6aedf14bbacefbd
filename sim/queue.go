package sim

import (
	"github.com/zabkeeper/zabkeeper/engine/zab"
)

// evKind names what an event does.
type evKind uint8

const (
	evTick      evKind = iota + 1 // a server's clock ticks
	evFsync                       // a server's disk finishes an fsync
	evRestart                     // a crashed server comes back
	evToServer                    // a client packet reaches its server
	evToClient                    // a server packet reaches its client
	evClientRun                   // a client wakes up to act
	evFault                       // the fault scheduler considers injecting a fault
	evHeal                        // a network fault ends
	evPhase                       // the fault phase ends
	evCheck                       // the liveness phase checks its goals
	evResume                      // a stalled server runs again
	evPeer                        // a peer message reaches its server outside the network (wire.go)
	evStop                        // a server stopping gracefully goes down (faults.go)
	evReconfig                    // the operator considers a reconfig (reconfig.go)
)

var evNames = [...]string{"", "tick", "fsync", "restart", "to-server", "to-client", "client", "fault", "heal", "phase", "check", "resume", "peer", "stop", "reconfig"}

func (k evKind) String() string { return evNames[k] }

// event is one entry of the queue. Fields are used as the kind says.
type event struct {
	at   int64 // virtual µs
	seq  uint64
	kind evKind
	node int64
	gen  uint64 // server incarnation the event belongs to
	zxid int64  // evFsync: entries up to this append sequence
	cl   *client
	cn   *conn
	pkt  *packet
	heal func()
	msg  *zab.Message // evPeer
}

// clone returns a copy of e on the heap, for a stalled server to hold: the
// loop's event is a value on its stack.
func (e *event) clone() *event {
	c := *e
	return &c
}

func (e *event) before(f *event) bool {
	if e.at != f.at {
		return e.at < f.at
	}
	return e.seq < f.seq
}

// queue orders events on (at, seq): equal times run in scheduling order.
// The events sit in slots (a free list reuses them) and the binary
// min-heap holds only their keys: a sift moves 24-byte keys without
// pointers instead of whole events (the collector's write barriers on
// every move), and scheduling an event allocates nothing (the caller's
// &event{...} stays on its stack). The order is the same strict total
// order as any heap's.
type queue struct {
	keys  []qkey
	slots []event
	free  []int32
	seq   uint64
}

// qkey is an event's place in the heap: its order and its slot.
type qkey struct {
	at   int64
	seq  uint64
	slot int32
}

func (k qkey) before(o qkey) bool {
	if k.at != o.at {
		return k.at < o.at
	}
	return k.seq < o.seq
}

func newQueue() *queue { return &queue{} }

// push adds a copy of *e.
func (q *queue) push(e *event) {
	q.seq++
	var slot int32
	if n := len(q.free); n > 0 {
		slot = q.free[n-1]
		q.free = q.free[:n-1]
		q.slots[slot] = *e
	} else {
		slot = int32(len(q.slots))
		q.slots = append(q.slots, *e)
	}
	q.slots[slot].seq = q.seq
	x := qkey{at: e.at, seq: q.seq, slot: slot}
	q.keys = append(q.keys, x)
	k := q.keys
	i := len(k) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !x.before(k[p]) {
			break
		}
		k[i] = k[p]
		i = p
	}
	k[i] = x
}

func (q *queue) peekAt() (at int64, ok bool) {
	if len(q.keys) == 0 {
		return 0, false
	}
	return q.keys[0].at, true
}

func (q *queue) pop() event {
	k := q.keys
	top := k[0]
	e := q.slots[top.slot]
	q.slots[top.slot] = event{} // let the garbage collector have its pointers
	q.free = append(q.free, top.slot)
	last := len(k) - 1
	x := k[last]
	k = k[:last]
	q.keys = k
	if last == 0 {
		return e
	}
	i := 0
	for {
		l := 2*i + 1
		if l >= last {
			break
		}
		m := l
		if r := l + 1; r < last && k[r].before(k[l]) {
			m = r
		}
		if !k[m].before(x) {
			break
		}
		k[i] = k[m]
		i = m
	}
	k[i] = x
	return e
}
