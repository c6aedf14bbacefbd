package sim

import (
	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/internal/minheap"
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

func (e *event) before(f *event) bool {
	if e.at != f.at {
		return e.at < f.at
	}
	return e.seq < f.seq
}

// queue orders events on (at, seq): equal times run in scheduling order.
type queue struct {
	h   *minheap.Heap[*event]
	seq uint64
}

func newQueue() *queue { return &queue{h: minheap.New((*event).before)} }

func (q *queue) push(e *event) {
	q.seq++
	e.seq = q.seq
	q.h.Push(e)
}

func (q *queue) peek() *event {
	e, _ := q.h.Peek()
	return e
}

func (q *queue) pop() *event { return q.h.Pop() }
