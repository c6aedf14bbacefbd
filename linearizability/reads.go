package linearizability

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
)

// Violation is one breach of ZooKeeper's read guarantees found by CheckReads.
type Violation struct {
	Op     Op
	Reason string
}

// String renders the violation for a test log.
func (v Violation) String() string { return v.Reason + ": " + v.Op.String() }

// CheckReads checks the guarantees ZooKeeper gives every read, synced or not
// (reads are served by the session's server and may be stale, but never
// inconsistent). It assumes the history starts from an empty server (only
// /, /zookeeper, /zookeeper/quota and /zookeeper/config exist). Checks:
//
//  1. Monotonic (FIFO, single system image): in each session's issue order,
//     the reply zxids of its completed operations never decrease. Operations
//     without a reply, with Zxid 0 (not recorded) or with a reply code the
//     model does not know (SessionExpired, NoAuth, ...) are skipped.
//  2. Read-your-writes: a read's Zxid is at least the zxid of every write of
//     its own session that completed before it (reply Zxid, Stat mzxid and
//     czxid); and a write's reply Zxid is never below its own Stat zxids.
//  3. State: a completed read (getData, exists, getChildren answering 0 or
//     NoNode, with Zxid > 0) returns exactly the tree obtained by applying,
//     in zxid order, every successful write whose zxid is <= the read's
//     Zxid. Only the writes that can affect what the read observes are
//     considered: those that create, delete or set its path, and, for
//     getChildren P, create or delete children of P, plus closeSession of a
//     session that created an ephemeral there. The state comparison covers
//     existence, data, Stat.version, Stat.mzxid/czxid when recorded, and the
//     set of children.
//
// A write's zxid is exact when it comes from its own reply: the Stat of a
// setData or create2 (Mzxid, Czxid; in a multi, any sub-result's Stat), or
// else ReplyHeader.zxid, which ZooKeeper sets to the write's own zxid.
// ReplyHeader.zxid is distrusted for the whole history as soon as the history
// shows it is not the write's own zxid: some write's reply Zxid differs from
// its Stat zxid, or two different successful writes got the same zxid (then
// only Stat zxids are exact, and writes sharing a zxid are inexact).
//
// The state check of a read R is skipped (never reported) when it is
// undecidable, that is when some write W that can affect R, and that was
// issued before R returned (W.Call <= R.Return; a write issued later gets a
// zxid above R's), is
//   - of unknown outcome (it may have been applied, at an unknown zxid), or
//   - successful but without an exact zxid, or
//   - a successful sequential create whose returned name was not recorded.
//
// Failed writes (any error code) change nothing and are ignored.
func CheckReads(h History) []Violation {
	var out []Violation
	flagged := map[int]bool{}
	order := sessionOrder(&h)
	sessions := make([]int64, 0, len(order))
	for s := range order {
		sessions = append(sessions, s)
	}
	sort.Slice(sessions, func(i, j int) bool { return sessions[i] < sessions[j] })

	// 1 and 2: per-session zxid order.
	for _, s := range sessions {
		var last int64
		lastIdx := -1
		var ownWrite int64
		ownIdx := -1
		for _, i := range order[s] {
			op := &h.Ops[i]
			if !op.Completed() || classify(op) != classChecked {
				continue
			}
			if op.Zxid > 0 && op.Zxid < last {
				flagged[i] = true
				out = append(out, Violation{Op: *op, Reason: fmt.Sprintf(
					"reply zxid %#x is below the session's previous reply zxid %#x (history[%d]): a session never sees an older view", op.Zxid, last, lastIdx)})
			} else if op.Zxid > 0 {
				last, lastIdx = op.Zxid, i
			}
			if op.Kind.IsRead() && op.Zxid > 0 && !flagged[i] && op.Zxid < ownWrite {
				flagged[i] = true
				out = append(out, Violation{Op: *op, Reason: fmt.Sprintf(
					"read at zxid %#x does not see its own session's earlier write at zxid %#x (history[%d])", op.Zxid, ownWrite, ownIdx)})
			}
			if op.Kind.IsWrite() {
				if sz := statZxid(op); op.Zxid > 0 && sz > op.Zxid {
					out = append(out, Violation{Op: *op, Reason: fmt.Sprintf(
						"reply zxid %#x is below the write's own Stat zxid %#x", op.Zxid, sz)})
				}
				if z := max(op.Zxid, statZxid(op)); z > ownWrite {
					ownWrite, ownIdx = z, i
				}
			}
		}
	}

	// 3: state at the read's zxid.
	writes := indexWrites(collectWrites(&h))
	for i := range h.Ops {
		r := &h.Ops[i]
		if !r.Kind.IsRead() || !r.Completed() || r.Zxid <= 0 || flagged[i] {
			continue
		}
		if r.Err != ErrOK && r.Err != ErrNoNode {
			continue
		}
		if reason, ok := checkReadState(r, writes); !ok {
			out = append(out, Violation{Op: *r, Reason: reason})
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Op.Call < out[b].Op.Call })
	return out
}

// statZxid is the zxid a write's reply carries in a Stat (0 if none).
func statZxid(op *Op) int64 {
	var z int64
	switch op.Kind {
	case Create:
		z = max(op.Czxid, op.Mzxid)
	case SetData:
		z = op.Mzxid
	case Multi:
		for i := range op.Ops {
			z = max(z, statZxid(&op.Ops[i]))
		}
	}
	return z
}

// write is a write that may have changed the tree, as CheckReads sees it.
type write struct {
	idx     int
	op      *Op
	unknown bool  // outcome unknown: may or may not have been applied
	zxid    int64 // valid when exact
	exact   bool
	// What it can change: nodes (exact paths), patterns (parent + name
	// prefix, for sequential creates of unknown name), lists (paths whose
	// child list changes) and, for closeSession, the session's ephemerals
	// (expanded into nodes/patterns/lists).
	nodes    map[string]bool
	patterns []string // sequential prefixes: a node p matches if strings.HasPrefix(p, prefix) and parentOf(p) == parentOf(prefix)
	lists    map[string]bool
	unnamed  bool // a successful sequential create without a recorded name
	mark     int  // writeIndex.affecting's last pass that listed it
}

// writeIndex finds the writes that can affect a read by the read's path,
// instead of asking every write of the history for every read.
// checkReadState's answer depends only on which writes affect the read,
// not on their order (exact zxids are unique and applied sorted).
type writeIndex struct {
	byNode    map[string][]*write
	byList    map[string][]*write
	patterned []*write // writes with sequential prefixes, asked one by one
	pass      int
}

func indexWrites(ws []*write) *writeIndex {
	x := &writeIndex{byNode: map[string][]*write{}, byList: map[string][]*write{}}
	for _, w := range ws {
		for p := range w.nodes {
			x.byNode[p] = append(x.byNode[p], w)
		}
		for p := range w.lists {
			x.byList[p] = append(x.byList[p], w)
		}
		if len(w.patterns) > 0 {
			x.patterned = append(x.patterned, w)
		}
	}
	return x
}

// affecting appends to out every write that affects r (write.affects),
// each once.
func (x *writeIndex) affecting(r *Op, out []*write) []*write {
	x.pass++
	add := func(w *write) {
		if w.mark != x.pass {
			w.mark = x.pass
			out = append(out, w)
		}
	}
	for _, w := range x.byNode[r.Path] {
		add(w)
	}
	for _, w := range x.patterned {
		if w.touchesNode(r.Path) {
			add(w)
		}
	}
	if r.Kind == GetChildren {
		for _, w := range x.byList[r.Path] {
			add(w)
		}
	}
	return out
}

func (w *write) touchesNode(p string) bool {
	if w.nodes[p] {
		return true
	}
	for _, pre := range w.patterns {
		if parentOf(p) == parentOf(pre) && strings.HasPrefix(p, pre) {
			return true
		}
	}
	return false
}

// affects reports whether w can change what read r observes.
func (w *write) affects(r *Op) bool {
	if w.touchesNode(r.Path) {
		return true
	}
	return r.Kind == GetChildren && w.lists[r.Path]
}

// succeeded reports whether a completed write's reply says it was applied.
func succeeded(op *Op) bool {
	if classify(op) != classChecked || op.Err != ErrOK {
		return false
	}
	if op.Kind == Multi {
		return firstFailure(op.Ops) < 0
	}
	return op.Kind != Check
}

// collectWrites gathers the successful and the unknown-outcome writes with
// their effects and zxids.
func collectWrites(h *History) []*write {
	var ws []*write
	for i := range h.Ops {
		op := &h.Ops[i]
		if !op.Kind.IsWrite() {
			continue
		}
		w := &write{idx: i, op: op, nodes: map[string]bool{}, lists: map[string]bool{}}
		switch {
		case !op.Completed():
			w.unknown = true
		case succeeded(op):
		default:
			continue
		}
		addEffects(w, op, !w.unknown)
		ws = append(ws, w)
	}
	// Ephemerals a closing session may own.
	for _, w := range ws {
		if w.op.Kind != CloseSession {
			continue
		}
		for j := range h.Ops {
			op := &h.Ops[j]
			if op.Session == w.op.Session && hasEphemeralCreate(op) {
				addEphemeralEffects(w, op, op.Completed() && succeeded(op))
			}
		}
	}
	// Zxids: Stat zxids are exact; reply zxids unless the history
	// contradicts them.
	trustReply := true
	for _, w := range ws {
		if !w.unknown {
			if sz := statZxid(w.op); sz > 0 && w.op.Zxid > 0 && sz != w.op.Zxid {
				trustReply = false
			}
		}
	}
	for _, w := range ws {
		if w.unknown {
			continue
		}
		if sz := statZxid(w.op); sz > 0 {
			w.zxid, w.exact = sz, true
		} else if trustReply && w.op.Zxid > 0 {
			w.zxid, w.exact = w.op.Zxid, true
		}
	}
	seen := map[int64]*write{}
	for _, w := range ws {
		if !w.exact {
			continue
		}
		if o, dup := seen[w.zxid]; dup {
			o.exact, w.exact = false, false
			continue
		}
		seen[w.zxid] = w
	}
	return ws
}

// addEffects records what op (a write or multi) may change. known says the
// recorded results (names) are valid.
func addEffects(w *write, op *Op, known bool) {
	switch op.Kind {
	case Create:
		if isSequentialMode(op.Mode) && (!known || op.Name == "") {
			w.patterns = append(w.patterns, op.Path)
			w.lists[parentOf(op.Path)] = true
			if known {
				w.unnamed = true
			}
			return
		}
		name := op.Path
		if known && op.Name != "" {
			name = op.Name
		}
		w.nodes[name] = true
		w.lists[parentOf(name)] = true
	case Delete:
		w.nodes[op.Path] = true
		w.lists[parentOf(op.Path)] = true
	case SetData:
		w.nodes[op.Path] = true
	case Multi:
		for i := range op.Ops {
			addEffects(w, &op.Ops[i], known)
		}
	}
}

// addEphemeralEffects adds to a closeSession w the ephemerals op may have
// created.
func addEphemeralEffects(w *write, op *Op, known bool) {
	switch op.Kind {
	case Create:
		if !isEphemeralMode(op.Mode) {
			return
		}
		if isSequentialMode(op.Mode) && (!known || op.Name == "") {
			w.patterns = append(w.patterns, op.Path)
			w.lists[parentOf(op.Path)] = true
			return
		}
		name := op.Path
		if known && op.Name != "" {
			name = op.Name
		}
		w.nodes[name] = true
		w.lists[parentOf(name)] = true
	case Multi:
		for i := range op.Ops {
			addEphemeralEffects(w, &op.Ops[i], known)
		}
	}
}

// rnode is a node of the tree rebuilt for one read.
type rnode struct {
	data         string
	version      int32
	czxid, mzxid int64
	owner        int64
}

// checkReadState rebuilds the part of the tree r observes at r.Zxid and
// compares. ok is true when the read is consistent or the check undecidable.
func checkReadState(r *Op, writes *writeIndex) (reason string, ok bool) {
	var apply []*write
	for _, w := range writes.affecting(r, nil) {
		if w.exact && !w.unnamed {
			if w.zxid <= r.Zxid {
				apply = append(apply, w)
			}
			continue
		}
		if w.op.Call > r.Return {
			continue // issued after the read returned: zxid above r.Zxid
		}
		return "", true // undecidable: unknown outcome, zxid or name
	}
	sort.Slice(apply, func(i, j int) bool { return apply[i].zxid < apply[j].zxid })
	tree := map[string]rnode{}
	for _, p := range specialPaths {
		tree[p] = rnode{}
	}
	for _, w := range apply {
		forceApply(tree, w.op, w.zxid)
	}

	n, present := tree[r.Path]
	switch r.Kind {
	case GetData, Exists:
		got := r.Err == ErrOK && (r.Kind == GetData || r.Exists)
		if got != present {
			return fmt.Sprintf("read at zxid %#x says exists=%v, but the tree at that zxid has exists=%v", r.Zxid, got, present), false
		}
		if !present {
			return "", true
		}
		if r.Kind == GetData && !bytes.Equal(r.RespData, []byte(n.data)) {
			return fmt.Sprintf("read at zxid %#x returned data %q, but the tree at that zxid holds %q", r.Zxid, r.RespData, n.data), false
		}
		if r.StatVersion != n.version {
			return fmt.Sprintf("read at zxid %#x returned version %d, but the tree at that zxid has version %d", r.Zxid, r.StatVersion, n.version), false
		}
		if r.Mzxid > 0 && r.Mzxid != n.mzxid {
			return fmt.Sprintf("read at zxid %#x returned mzxid %#x, but the tree at that zxid has mzxid %#x", r.Zxid, r.Mzxid, n.mzxid), false
		}
		if r.Czxid > 0 && r.Czxid != n.czxid {
			return fmt.Sprintf("read at zxid %#x returned czxid %#x, but the tree at that zxid has czxid %#x", r.Zxid, r.Czxid, n.czxid), false
		}
	case GetChildren:
		got := r.Err == ErrOK
		if got != present {
			return fmt.Sprintf("getChildren at zxid %#x says exists=%v, but the tree at that zxid has exists=%v", r.Zxid, got, present), false
		}
		if !present {
			return "", true
		}
		var want []string
		for p := range tree {
			if p != "/" && parentOf(p) == r.Path {
				want = append(want, baseOf(p))
			}
		}
		sort.Strings(want)
		if have := sortedCopy(r.Children); !equalStrings(have, want) {
			return fmt.Sprintf("getChildren at zxid %#x returned %v, but the tree at that zxid has %v", r.Zxid, have, want), false
		}
	}
	return "", true
}

// forceApply applies a successful write's recorded effect at zxid.
func forceApply(tree map[string]rnode, op *Op, zxid int64) {
	switch op.Kind {
	case Create:
		name := op.Path
		if op.Name != "" {
			name = op.Name
		}
		n := rnode{data: string(op.Data), czxid: zxid, mzxid: zxid}
		if isEphemeralMode(op.Mode) {
			n.owner = op.Session
		}
		tree[name] = n
	case Delete:
		delete(tree, op.Path)
	case SetData:
		n, ok := tree[op.Path]
		if ok {
			n.version = nextVersion(n.version)
		} else {
			n.version = op.StatVersion
		}
		n.data = string(op.Data)
		n.mzxid = zxid
		tree[op.Path] = n
	case Multi:
		for i := range op.Ops {
			sub := op.Ops[i]
			sub.Session = op.Session
			forceApply(tree, &sub, zxid)
		}
	case CloseSession:
		for p, n := range tree {
			if n.owner == op.Session {
				delete(tree, p)
			}
		}
	}
}
