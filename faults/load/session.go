package load

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zabkeeper/zabkeeper/linearizability"
)

// Connect opens a go-zk client of addrs asking for timeout as its session
// timeout, logging to logger (go-zk's informational lines off), dialing
// through tap if it is not nil.
func Connect(addrs []string, timeout time.Duration, logger zk.Logger, tap *Tap) (*zk.Conn, <-chan zk.Event, error) {
	// go-zk's option type is unexported: no slice of options.
	var conn *zk.Conn
	var ev <-chan zk.Event
	var err error
	if tap != nil {
		conn, ev, err = zk.Connect(addrs, timeout, zk.WithLogger(logger), zk.WithLogInfo(false), zk.WithDialer(tap.Dial))
	} else {
		conn, ev, err = zk.Connect(addrs, timeout, zk.WithLogger(logger), zk.WithLogInfo(false))
	}
	if err != nil {
		return nil, nil, fmt.Errorf("zk connect: %w", err)
	}
	return conn, ev, nil
}

// Session is one go-zk client whose calls are recorded. It issues one
// request at a time: Do is not safe for concurrent use.
type Session struct {
	// ID numbers the session's owner among the test's clients; it names
	// the payloads of Data.
	ID   int
	Conn *zk.Conn
	// Tap, if not nil, is Conn's dialer: Do then records each reply's
	// zxid and the connection generation it came on.
	Tap *Tap
	Rec *Recorder

	seq int
	// lastSync: the previous call was a successful sync, so a read now
	// is a synced (linearizable) read.
	lastSync bool
}

// Seq returns the next number of the session's sequence (1, 2, ...), which
// Data also draws from.
func (s *Session) Seq() int {
	s.seq++
	return s.seq
}

// Data returns a payload no other call returns: "w<ID>-<Seq>".
func (s *Session) Data() []byte {
	return fmt.Appendf(nil, "w%d-%d", s.ID, s.Seq())
}

// WaitSession blocks until the connection has a session (or stop closes);
// it returns the session id, 0 if stopped.
func (s *Session) WaitSession(stop <-chan struct{}) int64 {
	for {
		if s.Conn.State() == zk.StateHasSession {
			if id := s.Conn.SessionID(); id != 0 {
				return id
			}
		}
		select {
		case <-stop:
			return 0
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// NoteExpiries reads a go-zk event channel until it closes and notes each
// session that go-zk reports expired. Run it on a goroutine of its own.
func (s *Session) NoteExpiries(ev <-chan zk.Event) {
	var last int64
	for e := range ev {
		switch e.State {
		case zk.StateHasSession:
			last = s.Conn.SessionID()
		case zk.StateExpired:
			s.Rec.NoteExpired(last)
		}
	}
}

// Do issues one request and records it. op carries the request; call
// performs it and, on success, fills in the reply fields. It returns the
// recorded op and the connection generation the reply came on (0 if none,
// or without a Tap). An error go-zk maps to no ZooKeeper code leaves the
// outcome unknown; ErrSessionExpired also notes the session expired. A
// read right after a successful sync is marked SyncedBefore.
func (s *Session) Do(op linearizability.Op, call func(op *linearizability.Op) error) (linearizability.Op, int) {
	if s.Tap != nil {
		s.Tap.Begin()
	}
	op.Call = time.Now().UnixNano()
	err := call(&op)
	now := time.Now().UnixNano()
	code, ok := ErrCode(err)
	gen := 0
	if ok {
		op.Return, op.Err = now, code
		if s.Tap != nil {
			if z, g, got := s.Tap.Reply(); got {
				op.Zxid, gen = z, g
			}
		}
	} else {
		op.Return, op.Err = linearizability.Unknown, 0
		if errors.Is(err, zk.ErrSessionExpired) {
			s.Rec.NoteExpired(op.Session)
		}
	}
	if op.Kind.IsRead() && s.lastSync {
		op.SyncedBefore = true
	}
	s.lastSync = op.Kind == linearizability.Sync && ok && code == linearizability.ErrOK
	s.Rec.Add(op)
	return op, gen
}

// Sync records a sync of path.
func (s *Session) Sync(sess int64, path string) linearizability.Op {
	op, _ := s.Do(linearizability.Op{Session: sess, Kind: linearizability.Sync, Path: path},
		func(*linearizability.Op) error { _, err := s.Conn.Sync(path); return err })
	return op
}

// SyncGet is a linearizable read: a sync, then (if the sync succeeded) a
// getData of the same path. It returns the last op recorded.
func (s *Session) SyncGet(sess int64, path string) linearizability.Op {
	op := s.Sync(sess, path)
	if !op.Completed() || op.Err != linearizability.ErrOK {
		return op
	}
	op, _ = s.Do(linearizability.Op{Session: sess, Kind: linearizability.GetData, Path: path},
		func(op *linearizability.Op) error {
			data, st, err := s.Conn.Get(op.Path)
			if err == nil && st != nil {
				op.RespData = slices.Clone(data)
				op.StatVersion, op.Mzxid, op.Czxid = st.Version, st.Mzxid, st.Czxid
			}
			return err
		})
	return op
}
