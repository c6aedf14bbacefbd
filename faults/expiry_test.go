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

// Session expiries while the faults run. Each of -faults.expirers loops
// opens a short session (expiryTimeout), creates an ephemeral znode of its
// own key with it, and has a partner (a long-lived session) sync and set a
// watch on that znode. Then the short session's client is cut off past its
// timeout (3 to 4 timeouts), by its tap: half the time its connection is
// closed, half the time it stays open and silent, like a paused process.
// When the client comes back it learns that the session expired, or, if a
// fault kept the ensemble from expiring it, that the session lives on.
//
// After an expiry the ephemeral must vanish exactly once:
//   - the partner's watch fires NodeDeleted (within recoverWait);
//   - the partner's synced exists then answers NoNode;
//   - the partner creates the same key (persistent, its own data), which
//     must succeed, and a synced read a moment later must still show the
//     partner's data: the expiry's delete is not applied again over it.
//
// Every one of these operations is recorded, the expiry too (as a
// closeSession of unknown commit time), so Porcupine and the acknowledged-
// writes check judge them with the rest of the history. A hold that no
// fault overlapped must end in an expiry: with a steady leader, a session
// silent for three timeouts expires.

var faultsExpirers = flag.Int("faults.expirers", 1,
	"loops of short sessions cut off past their timeout while the faults run (0: none)")

// expiryTimeout is the short sessions' timeout: 10 ticks.
const expiryTimeout = 2 * time.Second

// expirerIDs number the short sessions, expPartnerIDs the partners.
const (
	expirerIDs    = 4 << 20
	expPartnerIDs = 5 << 20
	expiryStream  = 0xe8 << 16
)

func expParent(i int) string { return fmt.Sprintf("/exp%d", i) }
func expKey(i int) string    { return expParent(i) + "/e" }

func expPaths(n int) []string {
	var out []string
	for i := range n {
		out = append(out, expKey(i))
	}
	return out
}

// expiryHold is one cut-off of a short session.
type expiryHold struct {
	session  int64
	mode     string // "closed" or "silent"
	from, to time.Time
	// outcome: "expired", "survived" or "unknown" (the client learnt
	// neither within recoverWait).
	outcome string
}

// expirers runs the loops and keeps what they saw.
type expirers struct {
	addrs   []string
	rec     *load.Recorder
	watches *watchLog
	logger  zk.Logger
	seed    uint64

	mu        sync.Mutex
	next      int
	holds     []expiryHold
	vanished  int // NodeDeleted seen after an expiry
	recreated int // partner's create after an expiry acknowledged
	kept      int // the partner's znode still there afterwards
	found     []finding
}

func (x *expirers) report(f finding) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.found = append(x.found, f)
}

func (x *expirers) run(stop <-chan struct{}, n int) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(x.seed, expiryStream+uint64(i)))
			partner, err := newWorker(expPartnerIDs+i, x.addrs, x.rec, x.watches, x.seed, x.logger)
			if err != nil {
				return
			}
			defer partner.Conn.Close()
			for {
				select {
				case <-stop:
					return
				case <-time.After(between(rng, 20*time.Millisecond, 200*time.Millisecond)):
				}
				x.round(stop, i, partner, rng)
			}
		})
	}
	wg.Wait()
}

// shortSession is a short session's client with what its events said.
type shortSession struct {
	*load.Session
	mu      sync.Mutex
	expired bool
	last    int64 // session id of the last StateHasSession
}

func (s *shortSession) state() (expired bool, last int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expired, s.last
}

func (x *expirers) dial() (*shortSession, error) {
	x.mu.Lock()
	x.next++
	id := expirerIDs + x.next
	x.mu.Unlock()
	tap := load.NewTap()
	conn, ev, err := load.Connect(x.addrs, expiryTimeout, x.logger, tap)
	if err != nil {
		return nil, err
	}
	s := &shortSession{Session: &load.Session{ID: id, Conn: conn, Tap: tap, Rec: x.rec}}
	go func() {
		for e := range ev {
			s.mu.Lock()
			switch e.State {
			case zk.StateExpired:
				s.expired = true
			case zk.StateHasSession:
				s.last = conn.SessionID()
			}
			s.mu.Unlock()
		}
	}()
	return s, nil
}

// closeRecorded closes s's client and records the closeSession it sends
// (its reply seen by the tap, if any).
func (x *expirers) closeRecorded(s *shortSession, sess int64) {
	call := time.Now().UnixNano()
	s.Conn.Close()
	op := linearizability.Op{Session: sess, Call: call, Return: linearizability.Unknown, Kind: linearizability.CloseSession}
	if code, zxid, at, ok := s.Tap.CloseReply(); ok && code == 0 {
		op.Return, op.Zxid = at, zxid
	}
	x.rec.Add(op)
}

// round is one short session: create, watch, cut off, and the checks.
func (x *expirers) round(stop <-chan struct{}, i int, partner *worker, rng *rand.Rand) {
	key := expKey(i)
	psess := partner.WaitSession(stop)
	if psess == 0 {
		return
	}
	// What an earlier round left: the partner's own znode.
	partner.Do(linearizability.Op{Session: psess, Kind: linearizability.Delete, Path: key, Version: -1},
		func(op *linearizability.Op) error { return partner.Conn.Delete(key, -1) })

	s, err := x.dial()
	if err != nil {
		return
	}
	sess := s.WaitSession(timeoutChan(stop, 10*time.Second))
	if sess == 0 {
		s.Conn.Close() // no session was made, nothing recorded
		return
	}
	create := linearizability.Op{Session: sess, Kind: linearizability.Create, Path: key, Data: s.Data(), Mode: zk.FlagEphemeral}
	create, _ = s.Do(create, func(op *linearizability.Op) error {
		name, err := s.Conn.Create(key, op.Data, zk.FlagEphemeral, zk.WorldACL(zk.PermAll))
		op.Name = name
		return err
	})
	if !create.Completed() || create.Err != linearizability.ErrOK {
		x.closeRecorded(s, sess)
		return
	}
	if op := partner.Sync(psess, key); !op.Completed() || op.Err != linearizability.ErrOK {
		x.closeRecorded(s, sess)
		return
	}
	ex, watch := partner.exists(psess, key, true)
	if !ex.Completed() || !ex.Exists || watch == nil {
		x.closeRecorded(s, sess)
		return
	}

	h := expiryHold{session: sess, mode: "silent"}
	closeConn := rng.IntN(2) == 0
	if closeConn {
		h.mode = "closed"
	}
	hold := between(rng, 3*expiryTimeout, 4*expiryTimeout)
	h.from = time.Now()
	s.Tap.Hold(closeConn)
	// No dial succeeds during the hold: a connection of a later
	// generation was made after it.
	_, heldGen := s.Tap.Quiet()
	select {
	case <-stop:
		// The run ends: a hold cut short proves nothing.
		s.Tap.Release()
		x.closeRecorded(s, sess)
		return
	case <-time.After(hold):
	}
	s.Tap.Release()
	h.to = time.Now()

	// The outcome: go-zk reports the expiry, or reconnects within the
	// session. A stop of the run does not cut this short: the outcome
	// decides the checks below.
	h.outcome = "unknown"
	deadline := time.Now().Add(recoverWait)
	for time.Now().Before(deadline) {
		expired, _ := s.state()
		if expired {
			h.outcome = "expired"
			break
		}
		if _, gen := s.Tap.Quiet(); gen > heldGen && s.Conn.State() == zk.StateHasSession && s.Conn.SessionID() == sess {
			h.outcome = "survived"
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	x.mu.Lock()
	x.holds = append(x.holds, h)
	x.mu.Unlock()
	if h.outcome != "expired" {
		x.closeRecorded(s, sess)
		return
	}
	x.rec.NoteExpired(sess)
	s.Conn.Close() // go-zk's new session: no operation of it is recorded
	x.afterExpiry(i, partner, psess, sess, watch)
}

// afterExpiry checks that the expired session's ephemeral vanished, once.
func (x *expirers) afterExpiry(i int, partner *worker, psess, sess int64, watch *watchRec) {
	key := expKey(i)
	deadline := time.Now().Add(recoverWait)
	for {
		fired, ev, _ := watch.state()
		if fired {
			if ev.Type != zk.EventNodeDeleted {
				if ev.Type == zk.EventNotWatching {
					return // the partner's session ended: nothing to judge
				}
				x.report(finding{check: checkExpiry, at: time.Now().UnixNano(),
					msg: fmt.Sprintf("ephemeral %s of expired session %#x: the partner's watch fired %s, want NodeDeleted", key, sess, ev.Type)})
				return
			}
			break
		}
		if time.Now().After(deadline) {
			x.report(finding{check: checkExpiry, at: time.Now().UnixNano(),
				msg: fmt.Sprintf("ephemeral %s of expired session %#x: no NodeDeleted within %v of the client learning of the expiry", key, sess, recoverWait)})
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The NodeDeleted came from the session's closeSession: it was
	// committed by then.
	_, _, deletedAt := watch.state()
	x.rec.ConfirmExpired(sess, deletedAt)
	x.mu.Lock()
	x.vanished++
	x.mu.Unlock()

	if op := partner.Sync(psess, key); !op.Completed() || op.Err != linearizability.ErrOK {
		return
	}
	if ex, _ := partner.exists(psess, key, false); ex.Completed() && ex.Exists {
		x.report(finding{check: checkExpiry, at: ex.Return,
			msg: fmt.Sprintf("ephemeral %s of expired session %#x: still there after its NodeDeleted (synced %s)", key, sess, ex.String())})
		return
	}
	create := partner.create(psess, key, partner.Data(), 0)
	if !create.Completed() {
		return
	}
	if create.Err == linearizability.ErrNodeExists {
		x.report(finding{check: checkExpiry, at: create.Return,
			msg: fmt.Sprintf("ephemeral %s of expired session %#x: re-create by the partner refused after the NodeDeleted (%s)", key, sess, create.String())})
		return
	}
	if create.Err != linearizability.ErrOK {
		return
	}
	x.mu.Lock()
	x.recreated++
	x.mu.Unlock()
	// A moment later, across whatever fault is under way: the partner's
	// znode must still be there, with its data.
	time.Sleep(500 * time.Millisecond)
	if op := partner.Sync(psess, key); !op.Completed() || op.Err != linearizability.ErrOK {
		return
	}
	g := partner.get(psess, key, false)
	if !g.Completed() {
		return
	}
	if g.Err != linearizability.ErrOK || string(g.RespData) != string(create.Data) {
		x.report(finding{check: checkExpiry, at: g.Return,
			msg: fmt.Sprintf("%s: the partner's znode, created after session %#x expired, is gone or changed: %s (created by %s)", key, sess, g.String(), create.String())})
		return
	}
	x.mu.Lock()
	x.kept++
	x.mu.Unlock()
}

// timeoutChan closes after d or when stop closes.
func timeoutChan(stop <-chan struct{}, d time.Duration) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		select {
		case <-stop:
		case <-time.After(d):
		}
	}()
	return ch
}

// check returns the findings of the loops and, for every hold that no
// fault overlapped (from its start to the ensemble being whole again), a
// finding if the session did not expire.
func (x *expirers) check(faults []faultRecord) []finding {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := append([]finding(nil), x.found...)
	for _, h := range x.holds {
		if h.outcome == "expired" || overlapsFault(h.from, h.to, faults) {
			continue
		}
		out = append(out, finding{check: checkExpiry, at: h.to.UnixNano(),
			msg: fmt.Sprintf("session %#x cut off (%s) for %v, over %d times its timeout of %v, with no fault under way: %s, not expired",
				h.session, h.mode, h.to.Sub(h.from).Round(time.Millisecond), int(h.to.Sub(h.from)/expiryTimeout), expiryTimeout, h.outcome)})
	}
	return out
}

// overlapsFault reports whether [from, to] overlaps a fault, from its
// start to the ensemble being whole again (idle gaps are no faults).
func overlapsFault(from, to time.Time, faults []faultRecord) bool {
	for _, f := range faults {
		if f.kind == faultIdle {
			continue
		}
		end := f.healed.Add(f.rec.full)
		if f.healed.IsZero() {
			end = time.Now()
		}
		if !f.start.After(to) && !end.Before(from) {
			return true
		}
	}
	return false
}

func (x *expirers) String() string {
	x.mu.Lock()
	defer x.mu.Unlock()
	counts := map[string]int{}
	for _, h := range x.holds {
		counts[h.outcome]++
	}
	return fmt.Sprintf("session expiries: %d short sessions (timeout %v) cut off for 3-4 timeouts: %d expired, %d survived (a fault held the expiry back), %d unknown; after the expiries %d ephemerals vanished (NodeDeleted), %d re-created by the partner, %d of those still there afterwards",
		len(x.holds), expiryTimeout, counts["expired"], counts["survived"], counts["unknown"], x.vanished, x.recreated, x.kept)
}
