package dockertest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zabkeeper/zabkeeper/linearizability"
)

// The workload's znodes: shared keys every worker reads and writes (checked
// by Porcupine), and one marker per acknowledged create (checked for loss by
// a final listing). All are children of the root, which is never created or
// deleted: so each key and each marker is a Porcupine partition of its own
// (a create under a parent that the history creates joins the parent's
// partition, and one partition of every operation takes minutes to check).
const (
	keyPrefix    = "dtk"
	markerPrefix = "dtm-"
	nKeys        = 6
	// sessionTimeout is what the clients ask for: well above the time a
	// server takes to restart, so no session has to expire in a rolling
	// restart, and below the default maxSessionTimeout (40 s).
	sessionTimeout = 30 * time.Second
	// opPause spaces a worker's operations: the host shares two cores
	// with three servers and Docker.
	opPause = 5 * time.Millisecond
)

func keyPath(k int) string { return fmt.Sprintf("/%s%d", keyPrefix, k) }

// quiet drops go-zk's logging.
type quiet struct{}

func (quiet) Printf(string, ...any) {}

// recorder collects the history of every worker, the acknowledgement times
// of writes (for write pauses) and session expiries.
type recorder struct {
	mu       sync.Mutex
	h        linearizability.History
	acks     []int64         // Return times of acknowledged successful writes
	expired  map[int64]int64 // session -> when its expiry was noticed
	unknowns int
}

func newRecorder() *recorder { return &recorder{expired: map[int64]int64{}} }

func (r *recorder) add(op linearizability.Op) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.h.Add(op)
	switch {
	case !op.Completed():
		r.unknowns++
	case op.Kind.IsWrite() && op.Err == linearizability.ErrOK:
		r.acks = append(r.acks, op.Return)
	}
}

func (r *recorder) noteExpired(session int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.expired[session]; !ok && session != 0 {
		r.expired[session] = time.Now().UnixNano()
	}
}

// expiredBetween counts the sessions seen to expire in [from, to].
func (r *recorder) expiredBetween(from, to time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, at := range r.expired {
		if at >= from.UnixNano() && at <= to.UnixNano() {
			n++
		}
	}
	return n
}

// counts returns how many operations had an unknown outcome and how many
// sessions expired.
func (r *recorder) counts() (unknowns, expired int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.unknowns, len(r.expired)
}

// history returns the history with a closeSession appended for every
// session seen to expire.
func (r *recorder) history() linearizability.History {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := linearizability.History{Ops: slices.Clone(r.h.Ops)}
	for s, at := range r.expired {
		h.AddExpiry(s, at, linearizability.Unknown)
	}
	return h
}

// writePause returns the longest time without an acknowledged write that
// overlaps [from, to]: the gap from the last acknowledgement before from
// (or from itself) to the next one. It is to when no write was
// acknowledged after from by then.
func (r *recorder) writePause(from, to time.Time) time.Duration {
	r.mu.Lock()
	acks := slices.Clone(r.acks)
	r.mu.Unlock()
	slices.Sort(acks)
	f, t := from.UnixNano(), to.UnixNano()
	i := sort.Search(len(acks), func(i int) bool { return acks[i] >= f })
	prev := f
	if i > 0 {
		prev = acks[i-1]
	}
	var longest int64
	for ; i < len(acks) && prev <= t; i++ {
		longest = max(longest, acks[i]-prev)
		prev = acks[i]
	}
	if prev <= t {
		longest = max(longest, t-prev)
	}
	return time.Duration(longest)
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
	}
	return linearizability.ErrConnectionLoss, false
}

// worker is one client session connected to every server, issuing random
// operations on the shared keys and acknowledged-create markers.
type worker struct {
	id       int
	conn     *zk.Conn
	rec      *recorder
	rng      *rand.Rand
	seq      int
	lastSync bool
	// acked are the marker paths whose create was acknowledged.
	acked []string
}

func dial(addrs []string) (*zk.Conn, <-chan zk.Event, error) {
	addrs = slices.Clone(addrs)
	rand.Shuffle(len(addrs), func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
	conn, ev, err := zk.Connect(addrs, sessionTimeout, zk.WithLogger(quiet{}), zk.WithLogInfo(false))
	if err != nil {
		return nil, nil, fmt.Errorf("zk connect %s: %w", strings.Join(addrs, ","), err)
	}
	return conn, ev, nil
}

func newWorker(id int, addrs []string, rec *recorder, seed uint64) (*worker, error) {
	conn, ev, err := dial(addrs)
	if err != nil {
		return nil, err
	}
	w := &worker{id: id, conn: conn, rec: rec, rng: rand.New(rand.NewPCG(seed, uint64(id)))}
	go func() {
		var last int64
		for e := range ev {
			switch {
			case e.State == zk.StateHasSession:
				last = conn.SessionID()
			case e.State == zk.StateExpired:
				rec.noteExpired(last)
			}
		}
	}()
	return w, nil
}

// session waits for the connection to have a session, or stop.
func (w *worker) session(stop <-chan struct{}) int64 {
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

// do records one operation: call fills in the outcome fields.
func (w *worker) do(op linearizability.Op, call func(op *linearizability.Op) error) linearizability.Op {
	op.Call = time.Now().UnixNano()
	err := call(&op)
	code, ok := errCode(err)
	if ok {
		op.Return, op.Err = time.Now().UnixNano(), code
	} else {
		op.Return, op.Err = linearizability.Unknown, 0
		if errors.Is(err, zk.ErrSessionExpired) {
			w.rec.noteExpired(op.Session)
		}
	}
	if op.Kind.IsRead() && w.lastSync {
		op.SyncedBefore = true
	}
	w.lastSync = op.Kind == linearizability.Sync && ok && code == linearizability.ErrOK
	w.rec.add(op)
	return op
}

func (w *worker) data() []byte {
	w.seq++
	return fmt.Appendf(nil, "w%d-%d", w.id, w.seq)
}

// run issues operations until stop is closed.
func (w *worker) run(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(opPause):
		}
		sess := w.session(stop)
		if sess == 0 {
			return
		}
		w.step(sess)
	}
}

func (w *worker) step(sess int64) {
	key := keyPath(w.rng.IntN(nKeys))
	switch r := w.rng.IntN(100); {
	case r < 35:
		w.do(linearizability.Op{Session: sess, Kind: linearizability.SetData, Path: key, Data: w.data(), Version: -1},
			func(op *linearizability.Op) error {
				st, err := w.conn.Set(op.Path, op.Data, op.Version)
				if err == nil {
					op.StatVersion, op.Mzxid, op.Czxid = st.Version, st.Mzxid, st.Czxid
				}
				return err
			})
	case r < 45:
		w.do(linearizability.Op{Session: sess, Kind: linearizability.Create, Path: key, Data: w.data()},
			func(op *linearizability.Op) error {
				name, err := w.conn.Create(op.Path, op.Data, 0, zk.WorldACL(zk.PermAll))
				op.Name = name
				return err
			})
	case r < 52:
		w.do(linearizability.Op{Session: sess, Kind: linearizability.Delete, Path: key, Version: -1},
			func(op *linearizability.Op) error { return w.conn.Delete(op.Path, op.Version) })
	case r < 75:
		w.syncGet(sess, key)
	default:
		w.marker(sess)
	}
}

// syncGet is a linearizable read: a sync, then a getData of the same path.
func (w *worker) syncGet(sess int64, key string) linearizability.Op {
	op := w.do(linearizability.Op{Session: sess, Kind: linearizability.Sync, Path: key},
		func(op *linearizability.Op) error { _, err := w.conn.Sync(op.Path); return err })
	if !op.Completed() || op.Err != linearizability.ErrOK {
		return op
	}
	return w.do(linearizability.Op{Session: sess, Kind: linearizability.GetData, Path: key},
		func(op *linearizability.Op) error {
			data, st, err := w.conn.Get(op.Path)
			if err == nil {
				op.RespData = slices.Clone(data)
				op.StatVersion, op.Mzxid, op.Czxid = st.Version, st.Mzxid, st.Czxid
			}
			return err
		})
}

// marker creates a znode of its own name; an acknowledged one must exist
// at the end.
func (w *worker) marker(sess int64) {
	w.seq++
	p := fmt.Sprintf("/%sw%d-%d", markerPrefix, w.id, w.seq)
	op := w.do(linearizability.Op{Session: sess, Kind: linearizability.Create, Path: p, Data: []byte{}},
		func(op *linearizability.Op) error {
			name, err := w.conn.Create(op.Path, op.Data, 0, zk.WorldACL(zk.PermAll))
			op.Name = name
			return err
		})
	if op.Completed() && op.Err == linearizability.ErrOK {
		w.acked = append(w.acked, p)
	}
}

// load is the set of workers running against the ensemble.
type load struct {
	rec     *recorder
	workers []*worker
	stop    chan struct{}
	wg      sync.WaitGroup
	closed  sync.Once
}

func startLoad(addrs []string, n int, seed uint64) (*load, error) {
	l := &load{rec: newRecorder(), stop: make(chan struct{})}
	for i := range n {
		w, err := newWorker(i, addrs, l.rec, seed)
		if err != nil {
			l.close()
			return nil, err
		}
		l.workers = append(l.workers, w)
	}
	for _, w := range l.workers {
		l.wg.Go(func() { w.run(l.stop) })
	}
	return l, nil
}

// close stops the workers and closes their sessions.
func (l *load) close() { l.closed.Do(l.shutdown) }

func (l *load) shutdown() {
	close(l.stop)
	// A worker may wait for a reply while no server answers; closing its
	// connection ends the wait (the op is recorded with an unknown outcome).
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
	for _, w := range l.workers {
		w.conn.Close()
	}
	<-done
}

// finalCheck reads every key with a sync first (so Porcupine sees the final
// state) and lists the markers: it returns the acknowledged markers that
// are missing.
func (l *load) finalCheck(addrs []string) (acked int, lost []string, err error) {
	w, err := newWorker(len(l.workers), addrs, l.rec, 0)
	if err != nil {
		return 0, nil, err
	}
	defer w.conn.Close()
	never := make(chan struct{})
	for k := range nKeys {
		_, err := waitFor(60*time.Second, "final read of "+keyPath(k), func() (bool, string) {
			op := w.syncGet(w.session(never), keyPath(k))
			return op.Kind == linearizability.GetData && op.Completed(), fmt.Sprintf("%s err %d", op.Kind, op.Err)
		})
		if err != nil {
			return 0, nil, err
		}
	}
	var children []string
	if _, err := waitFor(60*time.Second, "list the markers", func() (bool, string) {
		if _, err := w.conn.Sync("/"); err != nil {
			return false, err.Error()
		}
		var err error
		children, _, err = w.conn.Children("/")
		return err == nil, fmt.Sprint(err)
	}); err != nil {
		return 0, nil, err
	}
	have := map[string]bool{}
	for _, c := range children {
		have["/"+c] = true
	}
	for _, wk := range l.workers {
		for _, p := range wk.acked {
			acked++
			if !have[p] {
				lost = append(lost, p)
			}
		}
	}
	return acked, lost, nil
}

// snapshotAcks returns the acknowledgement times recorded so far, in the
// order recorded.
func (r *recorder) snapshotAcks() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.acks)
}
