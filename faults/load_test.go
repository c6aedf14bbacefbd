package faults

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zabkeeper/zabkeeper/faults/load"
	"github.com/zabkeeper/zabkeeper/linearizability"
)

// The keys the workers race on come in groups: group g is a parent /g<g>,
// created at setup, and keysPerGroup children. Every operation stays inside
// one group (a multi touches two keys of one group, getChildren lists one
// parent), so the groups share no state and the linearizability checker
// puts each in a Porcupine partition of its own (linearizability/
// partition.go): a long history is many small searches, not one huge one.
// Only the closeSession of an expired session can join groups (it touches
// every group where the session created an ephemeral).
const (
	nGroups      = 8
	keysPerGroup = 2
)

func groupParent(g int) string { return fmt.Sprintf("/g%d", g) }
func groupKey(g, k int) string { return fmt.Sprintf("/g%d/k%d", g, k) }

// groupParents and loadPaths list every parent and every key.
var groupParents, loadPaths = func() (ps, ks []string) {
	for g := range nGroups {
		ps = append(ps, groupParent(g))
		for k := range keysPerGroup {
			ks = append(ks, groupKey(g, k))
		}
	}
	return ps, ks
}()

// sessionTimeout is long next to the faults (a few seconds), so sessions
// should survive them; an expiry is still handled (recorded with
// AddExpiry).
const sessionTimeout = 10 * time.Second

// maxPendingWatches bounds the watches a worker has set and not yet seen
// fire.
const maxPendingWatches = 8

// dialClient opens a go-zk session of the harness: sessionTimeout, a tap
// under it for the replies' zxids.
func dialClient(id int, addrs []string, rec *load.Recorder, logger zk.Logger) (*load.Session, error) {
	tap := load.NewTap()
	conn, _, err := load.Connect(addrs, sessionTimeout, logger, tap)
	if err != nil {
		return nil, err
	}
	return &load.Session{ID: id, Conn: conn, Tap: tap, Rec: rec}, nil
}

// worker is one client session issuing random operations.
type worker struct {
	*load.Session
	watches *watchLog
	rng     *rand.Rand
	// versions is the last Stat.version this worker saw per path.
	versions map[string]int32
	sessions map[int64]bool
	ops      int
	pending  atomic.Int32 // watches set and not yet fired
	// reader: the worker only reads, each time after a sync
	// (-faults.readers).
	reader bool
	// paused, while true, holds the worker between two operations (during
	// an idle gap; nil: never).
	paused *atomic.Bool
	// drops: with -faults.client-drops, when the worker next drops its
	// connection (zero: never) and how many times it did.
	nextDrop time.Time
	dropRng  *rand.Rand
	drops    int
}

func newWorker(id int, addrs []string, rec *load.Recorder, watches *watchLog, seed uint64, logger zk.Logger) (*worker, error) {
	c, err := dialClient(id, addrs, rec, logger)
	if err != nil {
		return nil, fmt.Errorf("worker %d: %w", id, err)
	}
	return &worker{
		Session: c, watches: watches, rng: rand.New(rand.NewPCG(seed, uint64(id))),
		versions: map[string]int32{}, sessions: map[int64]bool{},
		dropRng: rand.New(rand.NewPCG(seed, dropStream+uint64(id))),
	}, nil
}

// run issues operations until stop is closed.
func (w *worker) run(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		if w.paused != nil && w.paused.Load() {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		sess := w.WaitSession(stop)
		if sess == 0 {
			return
		}
		if w.dropDue() {
			w.dropConnection(stop)
			continue
		}
		if w.reader {
			// Paced: a sync answered without a round trip would otherwise
			// flood the history.
			select {
			case <-stop:
				return
			case <-time.After(readerPause):
			}
		}
		for s := range w.sessions {
			if s != sess {
				w.Rec.NoteExpired(s) // go-zk moved on to a new session
			}
		}
		w.sessions[sess] = true
		w.step(sess)
		w.ops++
	}
}

func (w *worker) version(path string) int32 {
	if v, ok := w.versions[path]; ok && w.rng.IntN(4) != 0 {
		return v
	}
	return -1
}

func (w *worker) mode() int32 {
	if w.rng.IntN(2) == 0 {
		return zk.FlagEphemeral
	}
	return 0
}

func (w *worker) step(sess int64) {
	g := w.rng.IntN(nGroups)
	key := groupKey(g, w.rng.IntN(keysPerGroup))
	parent := groupParent(g)
	if w.reader {
		w.syncRead(sess, key, parent)
		return
	}
	canWatch := w.pending.Load() < maxPendingWatches
	switch r := w.rng.IntN(100); {
	case r < 16:
		w.create(sess, key, w.Data(), w.mode())
	case r < 34:
		w.setData(sess, key)
	case r < 42:
		w.delete(sess, key)
	case r < 52:
		w.multi(sess, g)
	case r < 62:
		w.get(sess, key, false)
	case r < 66:
		w.exists(sess, key, false)
	case r < 69:
		w.children(sess, parent, false)
	case r < 78:
		switch w.rng.IntN(3) {
		case 0:
			w.get(sess, key, canWatch)
		case 1:
			w.exists(sess, key, canWatch)
		default:
			w.children(sess, parent, canWatch)
		}
	default:
		w.syncRead(sess, key, parent)
	}
}

// syncRead issues a sync, then a read of the same path: a linearizable
// read.
func (w *worker) syncRead(sess int64, key, parent string) {
	path := key
	if w.rng.IntN(5) == 0 {
		path = parent
	}
	op, _ := w.Do(linearizability.Op{Session: sess, Kind: linearizability.Sync, Path: path},
		func(*linearizability.Op) error { _, err := w.Conn.Sync(path); return err })
	if !op.Completed() || op.Err != linearizability.ErrOK {
		return
	}
	switch {
	case path == parent:
		w.children(sess, parent, false)
	case w.rng.IntN(4) == 0:
		w.exists(sess, key, false)
	default:
		w.get(sess, key, false)
	}
}

func (w *worker) create(sess int64, path string, data []byte, mode int32) linearizability.Op {
	op := linearizability.Op{Session: sess, Kind: linearizability.Create, Path: path, Data: data, Mode: mode}
	op, _ = w.Do(op, func(op *linearizability.Op) error {
		name, err := w.Conn.Create(path, op.Data, op.Mode, zk.WorldACL(zk.PermAll))
		if err == nil {
			op.Name = name
			w.versions[path] = 0
		}
		return err
	})
	return op
}

func (w *worker) setData(sess int64, path string) {
	op := linearizability.Op{Session: sess, Kind: linearizability.SetData, Path: path, Data: w.Data(), Version: w.version(path)}
	w.Do(op, func(op *linearizability.Op) error {
		st, err := w.Conn.Set(path, op.Data, op.Version)
		if err == nil && st != nil {
			op.StatVersion, op.Mzxid, op.Czxid = st.Version, st.Mzxid, st.Czxid
			w.versions[path] = st.Version
		}
		return err
	})
}

func (w *worker) delete(sess int64, path string) {
	op := linearizability.Op{Session: sess, Kind: linearizability.Delete, Path: path, Version: w.version(path)}
	w.Do(op, func(op *linearizability.Op) error {
		err := w.Conn.Delete(path, op.Version)
		if err == nil {
			delete(w.versions, path)
		}
		return err
	})
}

// multi issues one of four two-op transactions on keys of group g.
func (w *worker) multi(sess int64, g int) {
	k1, k2 := groupKey(g, w.rng.IntN(keysPerGroup)), groupKey(g, w.rng.IntN(keysPerGroup))
	var subs []linearizability.Op
	switch w.rng.IntN(4) {
	case 0: // conditional update
		subs = []linearizability.Op{
			{Kind: linearizability.Check, Path: k1, Version: w.version(k1)},
			{Kind: linearizability.SetData, Path: k2, Data: w.Data(), Version: w.version(k2)},
		}
	case 1:
		subs = []linearizability.Op{
			{Kind: linearizability.Create, Path: k1, Data: w.Data(), Mode: w.mode()},
			{Kind: linearizability.SetData, Path: k2, Data: w.Data(), Version: -1},
		}
	case 2: // replace
		subs = []linearizability.Op{
			{Kind: linearizability.Delete, Path: k1, Version: w.version(k1)},
			{Kind: linearizability.Create, Path: k1, Data: w.Data(), Mode: w.mode()},
		}
	default:
		subs = []linearizability.Op{
			{Kind: linearizability.SetData, Path: k1, Data: w.Data(), Version: w.version(k1)},
			{Kind: linearizability.SetData, Path: k2, Data: w.Data(), Version: -1},
		}
	}
	reqs := make([]any, len(subs))
	for i, s := range subs {
		switch s.Kind {
		case linearizability.Create:
			reqs[i] = &zk.CreateRequest{Path: s.Path, Data: s.Data, Acl: zk.WorldACL(zk.PermAll), Flags: s.Mode}
		case linearizability.SetData:
			reqs[i] = &zk.SetDataRequest{Path: s.Path, Data: s.Data, Version: s.Version}
		case linearizability.Delete:
			reqs[i] = &zk.DeleteRequest{Path: s.Path, Version: s.Version}
		case linearizability.Check:
			reqs[i] = &zk.CheckVersionRequest{Path: s.Path, Version: s.Version}
		}
	}
	op := linearizability.Op{Session: sess, Kind: linearizability.Multi, Ops: subs}
	w.Do(op, func(op *linearizability.Op) error {
		mr, err := w.Conn.Multi(reqs...)
		if len(mr) != len(op.Ops) {
			// No per-op results: the multi did not reach the server, or
			// the server refused it as a whole.
			if err == nil {
				err = fmt.Errorf("multi: %d results for %d ops", len(mr), len(op.Ops))
			}
			return err
		}
		for i := range mr {
			s := &op.Ops[i]
			s.Err = load.SubCode(mr[i].Error)
			if s.Err != linearizability.ErrOK {
				continue
			}
			switch s.Kind {
			case linearizability.Create:
				s.Name = mr[i].String
			case linearizability.SetData:
				if st := mr[i].Stat; st != nil {
					s.StatVersion, s.Mzxid, s.Czxid = st.Version, st.Mzxid, st.Czxid
				}
			}
		}
		if err == nil {
			for _, s := range op.Ops {
				switch s.Kind {
				case linearizability.Create:
					w.versions[s.Path] = 0
				case linearizability.SetData:
					w.versions[s.Path] = s.StatVersion
				case linearizability.Delete:
					delete(w.versions, s.Path)
				}
			}
		}
		return nil // the multi's own code is 0; the per-op codes say the rest
	})
}

// get reads path, setting a data watch if watch.
func (w *worker) get(sess int64, path string, watch bool) linearizability.Op {
	var ch <-chan zk.Event
	op, gen := w.Do(linearizability.Op{Session: sess, Kind: linearizability.GetData, Path: path}, func(op *linearizability.Op) error {
		var data []byte
		var st *zk.Stat
		var err error
		if watch {
			data, st, ch, err = w.Conn.GetW(path)
		} else {
			data, st, err = w.Conn.Get(path)
		}
		if err == nil && st != nil {
			op.RespData = recordedData(path, data)
			op.StatVersion, op.Mzxid, op.Czxid = st.Version, st.Mzxid, st.Czxid
			w.versions[path] = st.Version
		}
		return err
	})
	if ch != nil {
		w.watches.track(w, op, watchData, gen, ch)
	}
	return op
}

// exists checks path, setting a watch if watch: a data watch if the node
// exists, an exist watch (fires on its creation) if not. It returns the
// recorded op and the watch set (nil if none).
func (w *worker) exists(sess int64, path string, watch bool) (linearizability.Op, *watchRec) {
	var ch <-chan zk.Event
	op, gen := w.Do(linearizability.Op{Session: sess, Kind: linearizability.Exists, Path: path}, func(op *linearizability.Op) error {
		var ok bool
		var st *zk.Stat
		var err error
		if watch {
			ok, st, ch, err = w.Conn.ExistsW(path)
		} else {
			ok, st, err = w.Conn.Exists(path)
		}
		if err != nil {
			return err
		}
		if !ok {
			return zk.ErrNoNode // go-zk hides the NoNode reply
		}
		op.Exists = true
		if st != nil {
			op.StatVersion, op.Mzxid, op.Czxid = st.Version, st.Mzxid, st.Czxid
		}
		return nil
	})
	if ch != nil && op.Completed() {
		kind := watchExist
		if op.Exists {
			kind = watchData
		}
		return op, w.watches.track(w, op, kind, gen, ch)
	}
	return op, nil
}

// children lists parent, setting a child watch if watch.
func (w *worker) children(sess int64, parent string, watch bool) {
	var ch <-chan zk.Event
	op, gen := w.Do(linearizability.Op{Session: sess, Kind: linearizability.GetChildren, Path: parent}, func(op *linearizability.Op) error {
		var kids []string
		var err error
		if watch {
			kids, _, ch, err = w.Conn.ChildrenW(parent)
		} else {
			kids, _, err = w.Conn.Children(parent)
		}
		if err == nil {
			op.Children = append([]string{}, kids...)
		}
		return err
	})
	if ch != nil {
		w.watches.track(w, op, watchChild, gen, ch)
	}
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
