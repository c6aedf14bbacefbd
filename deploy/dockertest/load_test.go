package dockertest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zabkeeper/zabkeeper/faults/load"
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

// worker is one client session connected to every server, issuing random
// operations on the shared keys and acknowledged-create markers.
type worker struct {
	*load.Session
	rng *rand.Rand
	// acked are the marker paths whose create was acknowledged.
	acked []string
}

func newWorker(id int, addrs []string, rec *load.Recorder, seed uint64) (*worker, error) {
	addrs = slices.Clone(addrs)
	rand.Shuffle(len(addrs), func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
	conn, ev, err := load.Connect(addrs, sessionTimeout, quiet{}, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", strings.Join(addrs, ","), err)
	}
	w := &worker{Session: &load.Session{ID: id, Conn: conn, Rec: rec}, rng: rand.New(rand.NewPCG(seed, uint64(id)))}
	go w.NoteExpiries(ev)
	return w, nil
}

// run issues operations until stop is closed.
func (w *worker) run(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(opPause):
		}
		sess := w.WaitSession(stop)
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
		w.Do(linearizability.Op{Session: sess, Kind: linearizability.SetData, Path: key, Data: w.Data(), Version: -1},
			func(op *linearizability.Op) error {
				st, err := w.Conn.Set(op.Path, op.Data, op.Version)
				if err == nil {
					op.StatVersion, op.Mzxid, op.Czxid = st.Version, st.Mzxid, st.Czxid
				}
				return err
			})
	case r < 45:
		w.Do(linearizability.Op{Session: sess, Kind: linearizability.Create, Path: key, Data: w.Data()},
			func(op *linearizability.Op) error {
				name, err := w.Conn.Create(op.Path, op.Data, 0, zk.WorldACL(zk.PermAll))
				op.Name = name
				return err
			})
	case r < 52:
		w.Do(linearizability.Op{Session: sess, Kind: linearizability.Delete, Path: key, Version: -1},
			func(op *linearizability.Op) error { return w.Conn.Delete(op.Path, op.Version) })
	case r < 75:
		w.SyncGet(sess, key)
	default:
		w.marker(sess)
	}
}

// marker creates a znode of its own name; an acknowledged one must exist
// at the end.
func (w *worker) marker(sess int64) {
	p := fmt.Sprintf("/%sw%d-%d", markerPrefix, w.ID, w.Seq())
	op, _ := w.Do(linearizability.Op{Session: sess, Kind: linearizability.Create, Path: p, Data: []byte{}},
		func(op *linearizability.Op) error {
			name, err := w.Conn.Create(op.Path, op.Data, 0, zk.WorldACL(zk.PermAll))
			op.Name = name
			return err
		})
	if op.Completed() && op.Err == linearizability.ErrOK {
		w.acked = append(w.acked, p)
	}
}

// workload is the set of workers running against the ensemble.
type workload struct {
	rec     *load.Recorder
	workers []*worker
	stop    chan struct{}
	wg      sync.WaitGroup
	closed  sync.Once
}

func startLoad(addrs []string, n int, seed uint64) (*workload, error) {
	l := &workload{rec: load.NewRecorder(), stop: make(chan struct{})}
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
func (l *workload) close() { l.closed.Do(l.shutdown) }

func (l *workload) shutdown() {
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
		w.Conn.Close()
	}
	<-done
}

// finalCheck reads every key with a sync first (so Porcupine sees the final
// state) and lists the markers: it returns the acknowledged markers that
// are missing.
func (l *workload) finalCheck(addrs []string) (acked int, lost []string, err error) {
	w, err := newWorker(len(l.workers), addrs, l.rec, 0)
	if err != nil {
		return 0, nil, err
	}
	defer w.Conn.Close()
	never := make(chan struct{})
	for k := range nKeys {
		_, err := waitFor(60*time.Second, "final read of "+keyPath(k), func() (bool, string) {
			op := w.SyncGet(w.WaitSession(never), keyPath(k))
			return op.Kind == linearizability.GetData && op.Completed(), fmt.Sprintf("%s err %d", op.Kind, op.Err)
		})
		if err != nil {
			return 0, nil, err
		}
	}
	var children []string
	if _, err := waitFor(60*time.Second, "list the markers", func() (bool, string) {
		if _, err := w.Conn.Sync("/"); err != nil {
			return false, err.Error()
		}
		var err error
		children, _, err = w.Conn.Children("/")
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
