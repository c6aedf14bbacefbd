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
// It is a binary min-heap of event values, not pointers: scheduling an
// event then allocates nothing (the caller's &event{...} stays on its
// stack), and the order is the same strict total order as any heap's.
type queue struct {
	items []event
	seq   uint64
}

func newQueue() *queue { return &queue{} }

// push adds a copy of *e.
func (q *queue) push(e *event) {
	q.seq++
	q.items = append(q.items, *e)
	it := q.items
	i := len(it) - 1
	it[i].seq = q.seq
	x := it[i]
	for i > 0 {
		p := (i - 1) / 2
		if !x.before(&it[p]) {
			break
		}
		it[i] = it[p]
		i = p
	}
	it[i] = x
}

// peekAt returns the time of the next event; ok is false when none is
// queued.
func (q *queue) peekAt() (at int64, ok bool) {
	if len(q.items) == 0 {
		return 0, false
	}
	return q.items[0].at, true
}

// pop removes and returns the next event. It panics on an empty queue.
func (q *queue) pop() event {
	it := q.items
	top := it[0]
	last := len(it) - 1
	x := it[last]
	it[last] = event{} // let the garbage collector have its pointers
	it = it[:last]
	q.items = it
	if last == 0 {
		return top
	}
	i := 0
	for {
		l := 2*i + 1
		if l >= last {
			break
		}
		m := l
		if r := l + 1; r < last && it[r].before(&it[l]) {
			m = r
		}
		if !it[m].before(&x) {
			break
		}
		it[i] = it[m]
		i = m
	}
	it[i] = x
	return top
}
