package sim

import (
	"cmp"
	"fmt"
	"maps"
	"path"
	"slices"

	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/proto"
)

// Watch checks. Every connection's one-shot watches are modelled from the
// replies that set them (getData, exists, getChildren with the watch flag)
// and checked against the committed txns, which the simulator decodes
// itself:
//   - every event a client receives is explained: a committed txn at the
//     event's zxid changed the path the way the event says, and the
//     connection held a matching watch set below that zxid;
//   - every watch that had to fire fired, and in order: once a committed txn
//     above a watch's registration would trigger it, the event must reach
//     the client before any reply or event of a later zxid on that
//     connection (ZooKeeper's guarantee: a client sees the watch event
//     before it sees the data that fired it).
// Watches live as long as their connection: the simulated client does not
// re-register them (setWatches) when it reconnects.

// watchKey names one watch of a connection: a data watch (getData, exists)
// or a child watch (getChildren) on a path.
type watchKey struct {
	child bool
	path  string
}

// watchReg is a registered, not yet fired watch.
type watchReg struct {
	// reg is the zxid of the reply that set it: txns up to it do not fire it.
	reg int64
	// scanned is the newest zxid the committed txns were checked up to.
	scanned int64
}

// effectKind is what a txn did to one path.
type effectKind uint8

const (
	effCreate effectKind = iota + 1
	effSet
	effDelete
)

type effect struct {
	kind effectKind
	path string
}

// effectsOf lists what a committed txn did to the tree, in order, and keeps
// owners (ephemeral path → owning session) in step. Error txns and failed
// multis did nothing; a closeSession deleted, in path order, the ephemerals
// of the session it lists and those the session owns (as tree.Apply does).
func effectsOf(t *tree.Txn, session int64, owners map[string]int64) []effect {
	switch t.Type {
	case proto.OpCreate, proto.OpCreate2, proto.OpCreateContainer, proto.OpCreateTTL:
		if t.Mode == proto.ModeEphemeral || t.Mode == proto.ModeEphemeralSequential {
			owners[t.Path] = session
		}
		return []effect{{effCreate, t.Path}}
	case proto.OpSetData:
		return []effect{{effSet, t.Path}}
	case proto.OpDelete, proto.OpDeleteContainer:
		delete(owners, t.Path)
		return []effect{{effDelete, t.Path}}
	case proto.OpCloseSession:
		set := map[string]bool{}
		for _, p := range t.Paths {
			set[p] = true
		}
		for p, o := range owners {
			if o == session {
				set[p] = true
			}
		}
		var out []effect
		for _, p := range slices.Sorted(maps.Keys(set)) {
			if o, ok := owners[p]; ok && o == session {
				delete(owners, p)
				out = append(out, effect{effDelete, p})
			}
		}
		return out
	case proto.OpMulti:
		for i := range t.Ops {
			if t.Ops[i].Type == proto.OpError {
				return nil
			}
		}
		var out []effect
		for i := range t.Ops {
			out = append(out, effectsOf(&t.Ops[i], session, owners)...)
		}
		return out
	}
	return nil
}

// trigger returns the event type with which the first of effs fires watch
// k, or false when none does.
func trigger(k watchKey, effs []effect) (int32, bool) {
	for _, e := range effs {
		if !k.child {
			if e.path != k.path {
				continue
			}
			switch e.kind {
			case effCreate:
				return proto.EventNodeCreated, true
			case effSet:
				return proto.EventNodeDataChanged, true
			case effDelete:
				return proto.EventNodeDeleted, true
			}
			continue
		}
		if e.path == k.path && e.kind == effDelete {
			return proto.EventNodeDeleted, true
		}
		if e.path != "/" && path.Dir(e.path) == k.path && (e.kind == effCreate || e.kind == effDelete) {
			return proto.EventNodeChildrenChanged, true
		}
	}
	return 0, false
}

// noteTxnData remembers the bytes of a txn handed out for logging, by hash,
// so the committed txn at a zxid can be decoded later.
func (sm *Sim) noteTxnData(h uint64, data []byte) {
	if _, ok := sm.txnData[h]; !ok {
		sm.txnData[h] = data
	}
}

// noteCommitted decodes a txn the moment it joins the committed history
// (in zxid order) and records what it did to the tree.
func (sm *Sim) noteCommitted(z int64, h uint64) {
	data, ok := sm.txnData[h]
	if !ok {
		return
	}
	t, err := tree.UnmarshalTxn(data)
	if err != nil {
		sm.violation("committed txn 0x%x does not decode: %v", z, err)
		return
	}
	if effs := effectsOf(t, t.SessionID, sm.owners); len(effs) > 0 {
		sm.effects[z] = effs
	}
}

// effectsAt returns what the committed txn at z did.
func (sm *Sim) effectsAt(z int64) []effect { return sm.effects[z] }

// watchMissed checks that no committed txn up to upTo fired a watch of cn
// whose event has not arrived: what arrives now (a reply or an event at
// upTo or above) would otherwise reveal the change before the event.
//
// what says what arrived, for the violation only: it is formatted then.
func (sm *Sim) watchMissed(cn *conn, upTo int64, what func() string) {
	if len(cn.watches) == 0 {
		return
	}
	ck := sm.check
	if !sm.watchMissFound(cn, upTo) {
		// Nothing to report: the watches' scans advance, in any order.
		for _, w := range cn.watches {
			if upTo > max(w.reg, w.scanned) {
				w.scanned = upTo
			}
		}
		return
	}
	// In the keys' order, so that the violation reported is the seed's.
	for _, k := range sortedWatchKeys(cn.watches) {
		w := cn.watches[k]
		from := max(w.reg, w.scanned)
		if upTo <= from {
			continue
		}
		i, _ := slices.BinarySearch(ck.order, from+1)
		for ; i < len(ck.order) && ck.order[i] <= upTo; i++ {
			z := ck.order[i]
			if typ, ok := trigger(k, sm.effectsAt(z)); ok {
				sm.violation("watch: c%d conn %d (n%d) %s; its %s watch on %s, set at 0x%x, was fired by txn 0x%x (%s), whose event never came first",
					cn.cl.id, cn.id, cn.srv.id, what(), watchKind(k), k.path, w.reg, z, eventName(typ))
				delete(cn.watches, k)
				break
			}
		}
		if cn.watches[k] != nil {
			w.scanned = upTo
		}
	}
}

// watchEvent checks a watch event that reached cn's client and consumes
// the watches it fires.
func (sm *Sim) watchEvent(cn *conn, z int64, ev *proto.WatcherEvent) {
	sm.watchMissed(cn, z-1, func() string { return "got an event at a later zxid" })
	if _, ok := sm.check.committed[z]; !ok {
		sm.violation("watch: c%d conn %d (n%d) got %s on %s at 0x%x, which no server applied", cn.cl.id, cn.id, cn.srv.id, eventName(ev.Type), ev.Path, z)
		return
	}
	effs := sm.effectsAt(z)
	var fired []watchKey
	for k, w := range cn.watches {
		if k.path != ev.Path || w.reg >= z {
			continue
		}
		if typ, ok := trigger(k, effs); ok && typ == ev.Type {
			fired = append(fired, k)
		}
	}
	sortWatchKeys(fired)
	if len(fired) == 0 {
		sm.violation("watch: c%d conn %d (n%d) got %s on %s at 0x%x, which no watch of the connection explains (txn effects %v)",
			cn.cl.id, cn.id, cn.srv.id, eventName(ev.Type), ev.Path, z, effs)
		return
	}
	for _, k := range fired {
		delete(cn.watches, k)
	}
}

// watchSet records the watch a successful read reply set on cn at zxid z.
func (sm *Sim) watchSet(cn *conn, r *opRecord) {
	var k watchKey
	switch req := r.Req.(type) {
	case *proto.GetDataRequest:
		if !req.Watch || r.Err != proto.ErrOK {
			return
		}
		k = watchKey{false, req.Path}
	case *proto.ExistsRequest:
		if !req.Watch || (r.Err != proto.ErrOK && r.Err != proto.ErrNoNode) {
			return
		}
		k = watchKey{false, req.Path}
	case *proto.GetChildrenRequest:
		if !req.Watch || r.Err != proto.ErrOK {
			return
		}
		k = watchKey{true, req.Path}
	case *proto.GetChildren2Request:
		if !req.Watch || r.Err != proto.ErrOK {
			return
		}
		k = watchKey{true, req.Path}
	default:
		return
	}
	if cn.watches == nil {
		cn.watches = map[watchKey]*watchReg{}
	}
	if cn.watches[k] == nil {
		// A watch already set stays as it was: nothing fired it up to z
		// (watchMissed checked that before this reply).
		cn.watches[k] = &watchReg{reg: r.Zxid, scanned: r.Zxid}
	}
	sm.report.Counters["watches-set"]++
}

// watchMissFound reports whether watchMissed has a missed event to report
// on cn: the same scan without the sort, which is only needed to report
// the first in order.
func (sm *Sim) watchMissFound(cn *conn, upTo int64) bool {
	ck := sm.check
	for k, w := range cn.watches {
		from := max(w.reg, w.scanned)
		if upTo <= from {
			continue
		}
		i, _ := slices.BinarySearch(ck.order, from+1)
		for ; i < len(ck.order) && ck.order[i] <= upTo; i++ {
			if _, ok := trigger(k, sm.effectsAt(ck.order[i])); ok {
				return true
			}
		}
	}
	return false
}

func sortedWatchKeys(m map[watchKey]*watchReg) []watchKey {
	ks := slices.Collect(maps.Keys(m))
	sortWatchKeys(ks)
	return ks
}

// sortWatchKeys sorts data watches before child watches, each by path.
func sortWatchKeys(ks []watchKey) {
	slices.SortFunc(ks, func(a, b watchKey) int {
		if a.child != b.child {
			if a.child {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.path, b.path)
	})
}

func watchKind(k watchKey) string {
	if k.child {
		return "child"
	}
	return "data"
}

func eventName(t int32) string {
	switch t {
	case proto.EventNodeCreated:
		return "NodeCreated"
	case proto.EventNodeDeleted:
		return "NodeDeleted"
	case proto.EventNodeDataChanged:
		return "NodeDataChanged"
	case proto.EventNodeChildrenChanged:
		return "NodeChildrenChanged"
	}
	return fmt.Sprintf("event type %d", t)
}
