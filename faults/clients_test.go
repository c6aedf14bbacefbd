package faults

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zabkeeper/zabkeeper/faults/load"
	"github.com/zabkeeper/zabkeeper/linearizability"
)

// Client behaviours the default load leaves out, each behind a flag:
//
//   - readers: workers that only sync and read. A worker that writes blocks
//     on its first write to a leader that lost its quorum; a reader keeps
//     reading, so a deposed leader that still answers sync on its own
//     (ZOOKEEPER-1675) is seen serving stale reads after a sync.
//   - client drops: each worker now and then closes its TCP connection
//     under go-zk, as a network blip would. go-zk reconnects to the next
//     server of its list with the same session and its last seen zxid, and
//     that server must not serve it if it is behind (ZooKeeper's single
//     system image: a client never goes back in time). A server that lags
//     (a slow or held link from the leader) is where that rule matters.
//   - closers: short sessions that each send an ephemeral create and, right
//     behind it without waiting for the reply, closeSession. The leader then
//     prepares the close while the create is still in flight, and the close
//     must remove that ephemeral too (ZOOKEEPER-2355). The close is recorded
//     with its reply, so the checker knows the session ended and its
//     ephemerals with it; a partner session then creates the same key,
//     which must succeed.

var (
	faultsClientDrops = flag.Duration("faults.client-drops", 0,
		"mean time between two drops of a worker's client connection (0: never); the client reconnects to another server with its session")
	faultsClosers = flag.Int("faults.closers", 0,
		"sessions at a time that create an ephemeral and close the session right behind it (0: none)")
	faultsReaders = flag.Int("faults.readers", 0,
		"extra workers that only read, each time after a sync (0: none)")
)

// readerPause is the pause of a reader between two sync-then-read pairs.
const readerPause = 2 * time.Millisecond

// dropStream and closerStream separate the random streams of drops and
// closers from the workers' own.
const (
	dropStream   = 0xd509 << 16
	closerStream = 0xc105 << 16
)

// dropDue reports whether the worker should drop its connection now, and
// schedules the next drop.
func (w *worker) dropDue() bool {
	mean := *faultsClientDrops
	if mean <= 0 {
		return false
	}
	now := time.Now()
	if w.nextDrop.IsZero() {
		w.nextDrop = now.Add(between(w.dropRng, mean/2, mean*3/2))
		return false
	}
	if now.Before(w.nextDrop) {
		return false
	}
	w.nextDrop = now.Add(between(w.dropRng, mean/2, mean*3/2))
	return true
}

// dropConnection closes the worker's connection under go-zk and waits
// until go-zk has dialed again (or stop closes).
func (w *worker) dropConnection(stop <-chan struct{}) {
	gen := w.Tap.Generation()
	w.Tap.Drop()
	w.drops++
	for w.Tap.Generation() == gen {
		select {
		case <-stop:
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// closerIDs number the closers' sessions (their data payloads are
// "w<id>-1"), above any worker's id; partnerIDs number the partners.
const (
	closerIDs  = 1 << 20
	partnerIDs = 2 << 20
)

// Each closer loop has a parent of its own with one key: nobody else
// writes there, so what its partner finds pins down what the close did,
// and each loop is a Porcupine partition of its own (creates under one
// parent share its child list, which would join them).
func closerParent(i int) string { return fmt.Sprintf("/closer%d", i) }
func closerKey(i int) string    { return closerParent(i) + "/k" }

// closers runs loops of short sessions until stop closes. Each loop has a
// partner, a long-lived session that, once a close is acknowledged,
// creates the same key (and deletes it again): the close removed the
// ephemeral, so the create must succeed. A leader whose view of the tree
// forgot that the close removes the ephemeral still in flight answers
// NodeExists until it has applied the close itself (it applies only what
// its own disk holds, so it can be behind the followers that answered the
// client).
type closers struct {
	addrs   []string
	rec     *load.Recorder
	watches *watchLog
	logger  zk.Logger
	seed    uint64

	mu       sync.Mutex
	next     int // id of the next session
	sessions int // sessions that got to send their create
	closed   int // closes acknowledged
}

func (cs *closers) run(stop <-chan struct{}, n int) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(cs.seed, closerStream+uint64(i)))
			partner, err := newWorker(partnerIDs+i, cs.addrs, cs.rec, cs.watches, cs.seed, cs.logger)
			if err != nil {
				return
			}
			defer partner.Conn.Close()
			key := closerKey(i)
			for {
				select {
				case <-stop:
					return
				case <-time.After(between(rng, 20*time.Millisecond, 80*time.Millisecond)):
				}
				psess := partner.WaitSession(stop)
				if psess == 0 {
					return
				}
				partner.delete(psess, key) // left over from an earlier round, if any
				if cs.once(stop, key) {
					if op := partner.create(psess, key, partner.Data(), 0); op.Completed() && op.Err == linearizability.ErrOK {
						partner.delete(psess, key)
					}
				}
			}
		})
	}
	wg.Wait()
}

// once opens a session, sends an ephemeral create of key and closeSession
// right behind it, and records both. It reports whether the close was
// acknowledged.
func (cs *closers) once(stop <-chan struct{}, key string) bool {
	cs.mu.Lock()
	cs.next++
	id := closerIDs + cs.next
	cs.mu.Unlock()
	w, err := newWorker(id, cs.addrs, cs.rec, cs.watches, cs.seed, cs.logger)
	if err != nil {
		return false // a dial error: try again later
	}
	defer w.Conn.Close()
	deadline := time.Now().Add(5 * time.Second)
	for w.Conn.State() != zk.StateHasSession || w.Conn.SessionID() == 0 {
		if time.Now().After(deadline) {
			return false // closed unused by the deferred Close; nothing recorded
		}
		select {
		case <-stop:
			return false
		case <-time.After(5 * time.Millisecond):
		}
	}
	sess := w.Conn.SessionID()
	// go-zk gives up on the create when Close is called, so its outcome
	// comes from the reply the tap saw (the name is not parsed: the path).
	create := linearizability.Op{Session: sess, Kind: linearizability.Create, Path: key, Data: w.Data(), Mode: zk.FlagEphemeral}
	w.Tap.Begin()
	create.Call = time.Now().UnixNano()
	created := make(chan struct{})
	go func() {
		defer close(created)
		_, _ = w.Conn.Create(key, create.Data, zk.FlagEphemeral, zk.WorldACL(zk.PermAll))
	}()
	// The close follows the create on the wire, not its reply.
sent:
	for w.Tap.RequestsSent() == 0 {
		select {
		case <-created: // failed before it was sent
			break sent
		case <-time.After(time.Millisecond):
		}
	}
	call := time.Now().UnixNano()
	w.Conn.Close()
	<-created
	create.Return = linearizability.Unknown
	if code, zxid, at, ok := w.Tap.ReplyHeader(); ok {
		create.Return, create.Err, create.Zxid = at, code, zxid
	}
	cs.rec.Add(create)
	closeOp := linearizability.Op{Session: sess, Call: call, Return: linearizability.Unknown, Kind: linearizability.CloseSession}
	if code, zxid, at, ok := w.Tap.CloseReply(); ok && code == 0 {
		closeOp.Return, closeOp.Zxid = at, zxid
	}
	cs.rec.Add(closeOp)
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.sessions++
	if closeOp.Return == linearizability.Unknown {
		return false
	}
	cs.closed++
	return true
}

func (cs *closers) String() string {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return fmt.Sprintf("closers: %d sessions sent an ephemeral create and closeSession right behind it, %d closes acknowledged, each followed by a partner's create of the key",
		cs.sessions, cs.closed)
}
