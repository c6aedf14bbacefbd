package faults

import (
	"fmt"
	"path"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zabkeeper/zabkeeper/linearizability"
)

// Watches. Workers set data, exist and child watches with getData, exists
// and getChildren, and the harness checks every event that fires against
// the recorded history:
//
//   - plausible: the event's path is the watched one, its type is one the
//     watch can deliver, and some recorded write (acknowledged or of
//     unknown outcome, called before the event arrived, and not already
//     visible to the read that set the watch) could have caused it. After
//     a reconnect the server answers the client's setWatches by comparing
//     zxids, as ZooKeeper does: a data watch on a node deleted and created
//     again since fires NodeDataChanged (its mzxid is newer), so a create
//     explains that event too;
//   - not missed: a watch whose session stayed on one connection from the
//     moment it was set to the end of the run, followed by an acknowledged
//     write that triggers it (called after the watch was set), must have
//     fired by the end. Across a reconnect the client re-registers the
//     watch itself (setWatches, with its last seen zxid), which this check
//     leaves alone.

type watchKind int

const (
	watchData  watchKind = iota // getData, or exists of a node that exists
	watchExist                  // exists of a node that does not exist
	watchChild                  // getChildren
)

func (k watchKind) String() string {
	return [...]string{"data", "exist", "child"}[k]
}

// watchRec is one watch set by a worker.
type watchRec struct {
	worker *worker
	kind   watchKind
	reg    linearizability.Op // the read that set it
	gen    int                // connection generation of the read's reply (0: unknown)

	mu    sync.Mutex
	fired bool // the channel delivered
	ev    zk.Event
	at    int64 // when the event was received
	evGen int   // connection generation when it was received
}

func (r *watchRec) state() (fired bool, ev zk.Event, at int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fired, r.ev, r.at
}

// reconnected reports whether the client dialed again between the read
// that set the watch and the event (or may have: the generation is read
// when the event is received).
func (r *watchRec) reconnected() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gen == 0 || r.evGen != r.gen
}

func (r *watchRec) String() string {
	fired, ev, at := r.state()
	s := fmt.Sprintf("%s watch of worker %d on %s set by %s", r.kind, r.worker.ID, r.reg.Path, r.reg.String())
	if fired {
		s += fmt.Sprintf(", fired %s at %d", ev.Type, at)
	} else {
		s += ", not fired"
	}
	return s
}

// watchLog holds every watch set during a run.
type watchLog struct {
	mu   sync.Mutex
	recs []*watchRec
	wg   sync.WaitGroup
}

// track records a watch and waits for its event in a goroutine of its own,
// which ends when the event arrives or the client closes.
func (l *watchLog) track(w *worker, reg linearizability.Op, kind watchKind, gen int, ch <-chan zk.Event) *watchRec {
	r := &watchRec{worker: w, kind: kind, reg: reg, gen: gen}
	l.mu.Lock()
	l.recs = append(l.recs, r)
	l.mu.Unlock()
	w.pending.Add(1)
	l.wg.Go(func() {
		ev, ok := <-ch
		gen := w.Tap.Generation()
		r.mu.Lock()
		r.fired, r.at, r.evGen = true, time.Now().UnixNano(), gen
		if ok {
			r.ev = ev
		} else {
			r.ev = zk.Event{Type: zk.EventNotWatching, Path: reg.Path}
		}
		r.mu.Unlock()
		w.pending.Add(-1)
	})
	return r
}

func (l *watchLog) all() []*watchRec {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*watchRec(nil), l.recs...)
}

// writeEffect is one change a recorded write may make: a top-level write or
// a sub-operation of a multi.
type writeEffect struct {
	kind      linearizability.OpKind // Create, Delete or SetData
	path      string
	ephemeral bool
	session   int64
	call      int64
	acked     bool // completed successfully (else: outcome unknown)
	// zxidBound is an upper bound of the change's zxid (its Stat mzxid,
	// else the reply zxid); 0 if unknown.
	zxidBound int64
}

// effects lists the changes every write of h may have made: acknowledged
// successful ones and those of unknown outcome; failed writes change
// nothing.
func effects(h linearizability.History) []writeEffect {
	var out []writeEffect
	add := func(op, top *linearizability.Op, acked bool) {
		switch op.Kind {
		case linearizability.Create, linearizability.Delete, linearizability.SetData:
		default:
			return
		}
		e := writeEffect{kind: op.Kind, path: op.Path, ephemeral: op.Mode == linearizability.ModeEphemeral,
			session: top.Session, call: top.Call, acked: acked}
		if acked {
			e.zxidBound = top.Zxid
			if op.Kind == linearizability.SetData && op.Mzxid > 0 {
				e.zxidBound = op.Mzxid
			}
		}
		out = append(out, e)
	}
	for i := range h.Ops {
		op := &h.Ops[i]
		known := op.Completed()
		if op.Kind != linearizability.Multi {
			if !known || op.Err == linearizability.ErrOK {
				add(op, op, known)
			}
			continue
		}
		if known && op.Err != linearizability.ErrOK {
			continue
		}
		ok := true
		for j := range op.Ops {
			ok = ok && op.Ops[j].Err == linearizability.ErrOK
		}
		if known && !ok {
			continue
		}
		for j := range op.Ops {
			add(&op.Ops[j], op, known)
		}
	}
	return out
}

// effectIndex holds the changes of a history by the path they change and
// by that path's parent: a watch on p can only be fired or explained by a
// change of p or of a child of p, so the checks look at those alone
// instead of at every write of the run.
type effectIndex struct {
	byPath, byParent map[string][]writeEffect
}

func indexEffects(effs []writeEffect) effectIndex {
	x := effectIndex{byPath: map[string][]writeEffect{}, byParent: map[string][]writeEffect{}}
	for _, e := range effs {
		x.byPath[e.path] = append(x.byPath[e.path], e)
		parent := path.Dir(e.path)
		x.byParent[parent] = append(x.byParent[parent], e)
	}
	return x
}

// about returns the changes of p and of its children.
func (x effectIndex) about(p string) []writeEffect {
	return append(append([]writeEffect(nil), x.byPath[p]...), x.byParent[p]...)
}

// triggers reports whether change e fires a watch of kind on watched (for
// the missed-watch check: what must fire it).
func triggers(kind watchKind, watched string, e writeEffect) bool {
	switch kind {
	case watchData:
		return e.path == watched && (e.kind == linearizability.SetData || e.kind == linearizability.Delete)
	case watchExist:
		return e.path == watched && e.kind == linearizability.Create
	default:
		return path.Dir(e.path) == watched && (e.kind == linearizability.Create || e.kind == linearizability.Delete)
	}
}

// explainsEvent reports whether change e can be the cause of an event of
// type typ on path p, directly or (byExpiry) because e created an ephemeral
// node of a session that expired since. reconnected says whether the event
// may come from the server's answer to setWatches.
func explainsEvent(typ zk.EventType, p string, e writeEffect, expired map[int64]bool, reconnected bool) (direct, byExpiry bool) {
	eph := e.kind == linearizability.Create && e.ephemeral && expired[e.session]
	switch typ {
	case zk.EventNodeCreated:
		return e.path == p && e.kind == linearizability.Create, false
	case zk.EventNodeDataChanged:
		return e.path == p && (e.kind == linearizability.SetData || reconnected && e.kind == linearizability.Create), false
	case zk.EventNodeDeleted:
		return e.path == p && e.kind == linearizability.Delete, e.path == p && eph
	case zk.EventNodeChildrenChanged:
		child := path.Dir(e.path) == p
		return child && (e.kind == linearizability.Create || e.kind == linearizability.Delete), child && eph
	}
	return false, false
}

// allowedEvents are the event types a watch of each kind can deliver. go-zk
// hands a NodeDataChanged or NodeDeleted to exist watchers too, and a
// NodeDeleted of the parent to child watchers.
var allowedEvents = map[watchKind][]zk.EventType{
	watchData:  {zk.EventNodeDataChanged, zk.EventNodeDeleted},
	watchExist: {zk.EventNodeCreated, zk.EventNodeDataChanged, zk.EventNodeDeleted},
	watchChild: {zk.EventNodeChildrenChanged, zk.EventNodeDeleted},
}

// watchReport sums up the watch checks.
type watchReport struct {
	set, fired, notWatching, pending int
	mustFire                         int // watches the missed-watch check applied to
	implausible, missed              []string
	implausibleAt                    []int64 // when each implausible event arrived
}

// mustFire reports whether r must have fired by now: it was set on a
// connection that is still the worker's, and an acknowledged write that
// triggers it was issued after the read that set it returned.
func mustFire(r *watchRec, effs effectIndex) bool {
	if r.gen == 0 || r.gen != r.worker.Tap.Generation() {
		return false
	}
	for _, e := range effs.about(r.reg.Path) {
		if e.acked && e.call > r.reg.Return && triggers(r.kind, r.reg.Path, e) {
			return true
		}
	}
	return false
}

// waitWatches polls until every watch that must fire has fired, or d
// passes.
func waitWatches(l *watchLog, h linearizability.History, d time.Duration) {
	effs := indexEffects(effects(h))
	deadline := time.Now().Add(d)
	for _, r := range l.all() {
		for mustFire(r, effs) && time.Now().Before(deadline) {
			if fired, _, _ := r.state(); fired {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// checkWatches runs both checks over every watch of l against h.
func checkWatches(l *watchLog, h linearizability.History) watchReport {
	effs := indexEffects(effects(h))
	expired := map[int64]bool{}
	for _, op := range h.Ops {
		if op.Kind == linearizability.CloseSession {
			expired[op.Session] = true
		}
	}
	var rep watchReport
	for _, r := range l.all() {
		rep.set++
		fired, ev, at := r.state()
		switch {
		case !fired:
			rep.pending++
			if mustFire(r, effs) {
				rep.mustFire++
				rep.missed = append(rep.missed, r.String())
			}
			continue
		case ev.Type == zk.EventNotWatching:
			rep.notWatching++
			continue
		}
		rep.fired++
		if mustFire(r, effs) {
			rep.mustFire++
		}
		if why := implausible(r, ev, at, effs, expired); why != "" {
			rep.implausible = append(rep.implausible, why+": "+r.String())
			rep.implausibleAt = append(rep.implausibleAt, at)
		}
	}
	return rep
}

// implausible returns why event ev of watch r cannot be right, or "".
func implausible(r *watchRec, ev zk.Event, at int64, effs effectIndex, expired map[int64]bool) string {
	if ev.Path != r.reg.Path {
		return fmt.Sprintf("event for path %s", ev.Path)
	}
	allowed := false
	for _, typ := range allowedEvents[r.kind] {
		allowed = allowed || typ == ev.Type
	}
	if !allowed {
		return fmt.Sprintf("%s cannot fire a %s watch", ev.Type, r.kind)
	}
	for _, e := range effs.about(ev.Path) {
		if e.call >= at {
			continue
		}
		direct, byExpiry := explainsEvent(ev.Type, ev.Path, e, expired, r.reconnected())
		if byExpiry {
			return "" // the expiry's own zxid is not recorded
		}
		// A change the read that set the watch already saw cannot fire it.
		if direct && (r.reg.Zxid == 0 || e.zxidBound == 0 || e.zxidBound > r.reg.Zxid) {
			return ""
		}
	}
	return fmt.Sprintf("no recorded write explains %s", ev.Type)
}
