package faults

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zabkeeper/zabkeeper/linearizability"
)

// Paths the workers race on, under one parent created at setup.
const parent = "/f"

var loadPaths = []string{parent + "/a", parent + "/b", parent + "/c", parent + "/d"}

// sessionTimeout is long next to the 1-2 s faults, so sessions should
// survive them; an expiry is still handled (recorded with AddExpiry).
const sessionTimeout = 10 * time.Second

// recorder collects operations from concurrent workers.
type recorder struct {
	mu       sync.Mutex
	h        linearizability.History
	expired  map[int64]int64 // session -> when the expiry was noticed
	unknowns int
}

func newRecorder() *recorder { return &recorder{expired: map[int64]int64{}} }

func (r *recorder) add(op linearizability.Op) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if op.Return == linearizability.Unknown {
		r.unknowns++
	}
	r.h.Add(op)
}

func (r *recorder) noteExpired(session int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.expired[session]; !ok && session != 0 {
		r.expired[session] = time.Now().UnixNano()
	}
}

// history returns the recorded history with an expiry op appended for
// every session that was seen to expire.
func (r *recorder) history() linearizability.History {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := linearizability.History{Ops: append([]linearizability.Op(nil), r.h.Ops...)}
	for s, at := range r.expired {
		h.AddExpiry(s, at, linearizability.Unknown)
	}
	return h
}

// errCode maps a go-zk error to a ZooKeeper reply code; ok is false when
// the outcome is unknown (connection lost, session gone, client closing).
func errCode(err error) (code int32, ok bool) {
	switch {
	case err == nil:
		return linearizability.ErrOK, true
	case errors.Is(err, zk.ErrNoNode):
		return linearizability.ErrNoNode, true
	case errors.Is(err, zk.ErrNodeExists):
		return linearizability.ErrNodeExists, true
	case errors.Is(err, zk.ErrBadVersion):
		return linearizability.ErrBadVersion, true
	case errors.Is(err, zk.ErrNotEmpty):
		return linearizability.ErrNotEmpty, true
	case errors.Is(err, zk.ErrNoChildrenForEphemerals):
		return linearizability.ErrNoChildrenForEphemeral, true
	}
	// ErrConnectionClosed, ErrSessionExpired, ErrNoServer, ErrClosing,
	// timeouts and anything unexpected: the request may or may not have
	// been applied.
	return linearizability.ErrConnectionLoss, false
}

// worker is one client session issuing random operations.
type worker struct {
	id   int
	conn *zk.Conn
	rec  *recorder
	rng  *rand.Rand
	seq  int
	// versions is the last Stat.version this worker saw per path.
	versions map[string]int32
	lastSync bool // the previous op of the session was a completed sync
	sessions map[int64]bool
	ops      int
}

func newWorker(id int, addrs []string, rec *recorder, seed uint64, logger zk.Logger) (*worker, error) {
	conn, _, err := zk.Connect(addrs, sessionTimeout, zk.WithLogger(logger), zk.WithLogInfo(false))
	if err != nil {
		return nil, err
	}
	return &worker{
		id: id, conn: conn, rec: rec, rng: rand.New(rand.NewPCG(seed, uint64(id))),
		versions: map[string]int32{}, sessions: map[int64]bool{},
	}, nil
}

// waitSession blocks until the connection has a session (or stop closes);
// it returns the session id, 0 if stopped.
func (w *worker) waitSession(stop <-chan struct{}) int64 {
	for {
		if w.conn.State() == zk.StateHasSession {
			if s := w.conn.SessionID(); s != 0 {
				return s
			}
		}
		select {
		case <-stop:
			return 0
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// run issues operations until stop is closed.
func (w *worker) run(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		sess := w.waitSession(stop)
		if sess == 0 {
			return
		}
		for s := range w.sessions {
			if s != sess {
				w.rec.noteExpired(s) // go-zk moved on to a new session
			}
		}
		w.sessions[sess] = true
		w.step(sess)
		w.ops++
	}
}

func (w *worker) data() []byte {
	w.seq++
	return fmt.Appendf(nil, "w%d-%d", w.id, w.seq)
}

// finish fills in the outcome fields shared by every op and records it.
func (w *worker) finish(op linearizability.Op, err error) (completed bool) {
	code, ok := errCode(err)
	if !ok {
		op.Return = linearizability.Unknown
		op.Err = 0
		if errors.Is(err, zk.ErrSessionExpired) {
			w.rec.noteExpired(op.Session)
		}
	} else {
		op.Return = time.Now().UnixNano()
		op.Err = code
	}
	if op.Kind.IsRead() && w.lastSync {
		op.SyncedBefore = true
	}
	w.lastSync = op.Kind == linearizability.Sync && ok && code == linearizability.ErrOK
	w.rec.add(op)
	return ok
}

func (w *worker) version(path string) int32 {
	if v, ok := w.versions[path]; ok && w.rng.IntN(4) != 0 {
		return v
	}
	return -1
}

func (w *worker) step(sess int64) {
	path := loadPaths[w.rng.IntN(len(loadPaths))]
	op := linearizability.Op{Session: sess, Path: path}
	switch r := w.rng.IntN(100); {
	case r < 20: // create, persistent or ephemeral
		op.Kind = linearizability.Create
		op.Data = w.data()
		var flags int32
		if w.rng.IntN(2) == 0 {
			flags = zk.FlagEphemeral
		}
		op.Mode = flags
		op.Call = time.Now().UnixNano()
		name, err := w.conn.Create(path, op.Data, flags, zk.WorldACL(zk.PermAll))
		if err == nil {
			op.Name = name
			w.versions[path] = 0
		}
		w.finish(op, err)
	case r < 45: // setData with a version (or -1)
		op.Kind = linearizability.SetData
		op.Data = w.data()
		op.Version = w.version(path)
		op.Call = time.Now().UnixNano()
		st, err := w.conn.Set(path, op.Data, op.Version)
		if err == nil && st != nil {
			op.StatVersion, op.Mzxid, op.Czxid = st.Version, st.Mzxid, st.Czxid
			w.versions[path] = st.Version
		}
		w.finish(op, err)
	case r < 55: // delete
		op.Kind = linearizability.Delete
		op.Version = w.version(path)
		op.Call = time.Now().UnixNano()
		err := w.conn.Delete(path, op.Version)
		if err == nil {
			delete(w.versions, path)
		}
		w.finish(op, err)
	case r < 75: // plain get
		w.get(op)
	default: // sync, then get
		op.Kind = linearizability.Sync
		op.Call = time.Now().UnixNano()
		_, err := w.conn.Sync(path)
		if w.finish(op, err) && err == nil {
			w.get(linearizability.Op{Session: sess, Path: path})
		}
	}
}

func (w *worker) get(op linearizability.Op) {
	op.Kind = linearizability.GetData
	op.Call = time.Now().UnixNano()
	data, st, err := w.conn.Get(op.Path)
	if err == nil && st != nil {
		op.RespData = append([]byte{}, data...)
		op.StatVersion, op.Mzxid, op.Czxid = st.Version, st.Mzxid, st.Czxid
		w.versions[op.Path] = st.Version
	}
	w.finish(op, err)
}

// zkLogger discards go-zk's chatter but counts lines.
type zkLogger struct {
	mu    sync.Mutex
	lines int
}

func (l *zkLogger) Printf(string, ...any) {
	l.mu.Lock()
	l.lines++
	l.mu.Unlock()
}
