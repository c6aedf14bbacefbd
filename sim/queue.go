package sim

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
)

var evNames = [...]string{"", "tick", "fsync", "restart", "to-server", "to-client", "client", "fault", "heal", "phase", "check", "resume"}

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
}

func (e *event) before(f *event) bool {
	if e.at != f.at {
		return e.at < f.at
	}
	return e.seq < f.seq
}

// queue is a binary min-heap of events on (at, seq).
type queue struct {
	h   []*event
	seq uint64
}

func (q *queue) push(e *event) {
	q.seq++
	e.seq = q.seq
	q.h = append(q.h, e)
	i := len(q.h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !q.h[i].before(q.h[p]) {
			break
		}
		q.h[i], q.h[p] = q.h[p], q.h[i]
		i = p
	}
}

func (q *queue) peek() *event {
	if len(q.h) == 0 {
		return nil
	}
	return q.h[0]
}

func (q *queue) pop() *event {
	h := q.h
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h[last] = nil
	h = h[:last]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(h) && h[l].before(h[m]) {
			m = l
		}
		if r < len(h) && h[r].before(h[m]) {
			m = r
		}
		if m == i {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	q.h = h
	return top
}
