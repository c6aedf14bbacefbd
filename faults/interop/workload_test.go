package interop

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zabkeeper/zabkeeper/faults/load"
	"github.com/zabkeeper/zabkeeper/linearizability"
)

// sessionTimeout is what every client asks for: within the 4-40 s that
// tickTime 2000 allows, and longer than a partition takes ZooKeeper itself
// to notice (syncLimit*tickTime = 10 s) plus a reconnect, so no session
// should expire in any scenario.
const sessionTimeout = 30 * time.Second

// The writers race on a few keys under one parent, and add znodes of
// their own under another (so the servers' trees have some breadth to
// compare); the holder keeps an ephemeral beside them.
const (
	parent    = "/interop"
	logParent = "/interop-log"
	ephemeral = "/interop-holder"
	nKeys     = 4
	nWriters  = 2
	// opPause paces each writer: a few hundred ops a second in all keeps
	// the history small enough for Porcupine over a run of minutes.
	opPause = 4 * time.Millisecond
)

var keys = func() []string {
	out := make([]string, nKeys)
	for i := range out {
		out[i] = fmt.Sprintf("%s/k%d", parent, i)
	}
	return out
}()

// quietLogger drops go-zk's reconnect chatter.
type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}

// workload is the load of every scenario: recorded writer sessions
// (faults/load) and one session holding an ephemeral.
type workload struct {
	rec     *load.Recorder
	writers []*load.Session
	holder  *load.Session
	// holderSession is the holder's session id, holderExpired set if go-zk
	// ever reported it expired.
	holderSession int64
	holderExpired atomic.Bool
	stop          chan struct{}
	wg            sync.WaitGroup
	stopOnce      sync.Once
}

// session opens a recorded go-zk session of addrs.
func session(id int, addrs []string, rec *load.Recorder) (*load.Session, <-chan zk.Event, error) {
	tap := load.NewTap()
	conn, ev, err := load.Connect(addrs, sessionTimeout, quietLogger{}, tap)
	if err != nil {
		return nil, nil, err
	}
	return &load.Session{ID: id, Conn: conn, Tap: tap, Rec: rec}, ev, nil
}

// startWorkload creates the parent and keys and the holder's ephemeral
// (each recorded), then starts the writers.
func startWorkload(t *testing.T, addrs []string) *workload {
	t.Helper()
	w := &workload{rec: load.NewRecorder(), stop: make(chan struct{})}
	t.Cleanup(w.close)
	setup, ev, err := session(0, addrs, w.rec)
	if err != nil {
		t.Fatal(err)
	}
	go setup.NoteExpiries(ev)
	w.writers = append(w.writers, setup)
	for _, p := range append([]string{parent, logParent}, keys...) {
		if err := mustCreate(setup, p, 0); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i < nWriters; i++ {
		s, ev, err := session(i, addrs, w.rec)
		if err != nil {
			t.Fatal(err)
		}
		go s.NoteExpiries(ev)
		w.writers = append(w.writers, s)
	}
	// The holder's session: its expiry would show as an event.
	h, hev, err := session(100, addrs, w.rec)
	if err != nil {
		t.Fatal(err)
	}
	w.holder = h
	if err := mustCreate(h, ephemeral, linearizability.ModeEphemeral); err != nil {
		t.Fatal(err)
	}
	w.holderSession = h.Conn.SessionID()
	go func() {
		for e := range hev {
			if e.State == zk.StateExpired {
				w.holderExpired.Store(true)
				w.rec.NoteExpired(w.holderSession)
			}
		}
	}()
	for i, s := range w.writers {
		w.wg.Go(func() { w.write(s, uint64(i)) })
	}
	return w
}

// mustCreate creates path (recorded), retrying an unknown outcome.
func mustCreate(s *load.Session, path string, mode int32) error {
	deadline := time.Now().Add(syncWait)
	inDoubt := false
	for {
		sess := s.WaitSession(nil)
		op, _ := s.Do(linearizability.Op{Session: sess, Kind: linearizability.Create, Path: path, Data: s.Data(), Mode: mode},
			func(op *linearizability.Op) error {
				name, err := s.Conn.Create(op.Path, op.Data, op.Mode, zk.WorldACL(zk.PermAll))
				op.Name = name
				return err
			})
		switch {
		case op.Completed() && (op.Err == linearizability.ErrOK || inDoubt && op.Err == linearizability.ErrNodeExists):
			return nil
		case op.Completed():
			return fmt.Errorf("create %s: %s", path, op.String())
		}
		inDoubt = true
		if time.Now().After(deadline) {
			return fmt.Errorf("create %s: no answer within %v", path, syncWait)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// write runs one writer until stop: mostly setData of a random key, some
// creates and deletes, and linearizable reads (sync then getData).
func (w *workload) write(s *load.Session, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 17))
	for {
		select {
		case <-w.stop:
			return
		case <-time.After(opPause):
		}
		sess := s.WaitSession(w.stop)
		if sess == 0 {
			return
		}
		key := keys[rng.IntN(len(keys))]
		switch r := rng.IntN(100); {
		case r < 70:
			s.Do(linearizability.Op{Session: sess, Kind: linearizability.SetData, Path: key, Data: s.Data(), Version: -1},
				func(op *linearizability.Op) error {
					st, err := s.Conn.Set(op.Path, op.Data, op.Version)
					if err == nil && st != nil {
						op.StatVersion, op.Mzxid, op.Czxid = st.Version, st.Mzxid, st.Czxid
					}
					return err
				})
		case r < 78:
			s.Do(linearizability.Op{Session: sess, Kind: linearizability.Create, Path: key, Data: s.Data()},
				func(op *linearizability.Op) error {
					name, err := s.Conn.Create(op.Path, op.Data, 0, zk.WorldACL(zk.PermAll))
					op.Name = name
					return err
				})
		case r < 83:
			s.Do(linearizability.Op{Session: sess, Kind: linearizability.Delete, Path: key, Version: -1},
				func(op *linearizability.Op) error { return s.Conn.Delete(op.Path, op.Version) })
		case r < 88:
			data := s.Data() // unique: it names the znode too
			s.Do(linearizability.Op{Session: sess, Kind: linearizability.Create, Path: logParent + "/" + string(data), Data: data},
				func(op *linearizability.Op) error {
					name, err := s.Conn.Create(op.Path, op.Data, 0, zk.WorldACL(zk.PermAll))
					op.Name = name
					return err
				})
		default:
			s.SyncGet(sess, key)
		}
	}
}

// waitAcks waits until n more writes have been acknowledged (since the
// call), or d passes.
func (w *workload) waitAcks(n int, d time.Duration) error {
	start := len(w.rec.Acks())
	deadline := time.Now().Add(d)
	for len(w.rec.Acks())-start < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("fewer than %d writes acknowledged in %v", n, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// stopWriters ends the writers (the sessions stay open).
func (w *workload) stopWriters() {
	w.stopOnce.Do(func() { close(w.stop) })
	w.wg.Wait()
}

func (w *workload) close() {
	w.stopWriters()
	for _, s := range append(slices.Clone(w.writers), w.holder) {
		if s != nil {
			s.Conn.Close()
		}
	}
}

// finalReads records a synced getData of every key (retrying until one
// completes), for the acknowledged-writes check.
func (w *workload) finalReads() error {
	s := w.writers[0]
	for _, k := range keys {
		deadline := time.Now().Add(syncWait)
		for {
			sess := s.WaitSession(nil)
			if op := s.SyncGet(sess, k); op.Kind == linearizability.GetData && op.Completed() {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("final read of %s: no answer within %v", k, syncWait)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// nodeView is one znode as one server serves it.
type nodeView struct {
	data     []byte
	stat     zk.Stat
	children []string
}

// readTree reads every znode but /zookeeper (each server's own view of its
// configuration, which differs: the proxies' ports) from the server at addr
// only, after a sync.
func readTree(addr string) (map[string]nodeView, error) {
	conn, _, err := zk.Connect([]string{addr}, sessionTimeout, zk.WithLogger(quietLogger{}), zk.WithLogInfo(false))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if _, err := conn.Sync("/"); err != nil {
		return nil, fmt.Errorf("sync on %s: %w", addr, err)
	}
	tree := map[string]nodeView{}
	var walk func(path string) error
	walk = func(path string) error {
		data, st, err := conn.Get(path)
		if err != nil {
			return fmt.Errorf("get %s on %s: %w", path, addr, err)
		}
		kids, _, err := conn.Children(path)
		if err != nil {
			return fmt.Errorf("children of %s on %s: %w", path, addr, err)
		}
		sort.Strings(kids)
		tree[path] = nodeView{data: data, stat: *st, children: kids}
		for _, k := range kids {
			child := strings.TrimSuffix(path, "/") + "/" + k
			if child == "/zookeeper" {
				continue
			}
			if err := walk(child); err != nil {
				return err
			}
		}
		return nil
	}
	return tree, walk("/")
}

// diffTrees lists how b differs from a (at most 10 lines).
func diffTrees(a, b map[string]nodeView) []string {
	var out []string
	paths := make([]string, 0, len(a)+len(b))
	for p := range a {
		paths = append(paths, p)
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	for _, p := range paths {
		x, okA := a[p]
		y, okB := b[p]
		switch {
		case !okA:
			out = append(out, p+": only on the second server")
		case !okB:
			out = append(out, p+": missing on the second server")
		case !bytes.Equal(x.data, y.data):
			out = append(out, fmt.Sprintf("%s: data %q vs %q", p, x.data, y.data))
		case x.stat != y.stat:
			out = append(out, fmt.Sprintf("%s: Stat %+v vs %+v", p, x.stat, y.stat))
		case !slices.Equal(x.children, y.children):
			out = append(out, fmt.Sprintf("%s: children %v vs %v", p, x.children, y.children))
		}
		if len(out) == 10 {
			break
		}
	}
	return out
}
