package linearizability

import (
	"bytes"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// This file is the sequential specification of the ZooKeeper data tree, written
// from the protocol fact sheet (§5 Stat, §6 sequential names, §7 multi, §9
// errors) and deliberately sharing nothing with engine/tree: the model exists
// to catch the tree's bugs, not to repeat them.

// znode is one node of the model tree.
type znode struct {
	data    string
	version int32
	cseq    int32 // internal cversion: number of child creations, names sequential children
	owner   int64 // ephemeral owner session, 0 for persistent nodes
}

// State is an immutable snapshot of the model tree plus the set of closed
// sessions. Porcupine requires pure step functions, so every change produces a
// new State; the zero value is not valid, use initialState.
//
// Porcupine clones, hashes and compares states on every step it tries, so the
// tree is split into nodeBuckets maps by a hash of the path, shared between
// states copy-on-write: a step copies the one bucket it changes, not the
// tree, and Equal skips the buckets two states share. The hash is kept
// incrementally (per bucket and in total).
type State struct {
	buckets [nodeBuckets]*bucket
	closed  *sessions // shared copy-on-write too
	hash    uint64    // XOR of the buckets' hashes and the closed sessions'
	owned   uint32    // buckets this State copied (mutable within its txn)
	ownsCl  bool      // closed was copied by this State
}

const nodeBuckets = 32

// sessions is the set of closed sessions (a pointer, so that Equal can tell a
// shared set at once).
type sessions struct{ m map[int64]bool }

// bucket is one share of the tree; never changed once its State is done.
type bucket struct {
	m    map[string]znode
	hash uint64 // XOR of entryHash over m
	eph  int    // ephemeral nodes in m: closing a session skips buckets without any
}

func bucketOf(p string) int { return int(fnvString(fnvOffset64, p) % nodeBuckets) }

// get looks up node p.
func (s *State) get(p string) (znode, bool) {
	n, ok := s.buckets[bucketOf(p)].m[p]
	return n, ok
}

// size is the number of nodes.
func (s *State) size() int {
	n := 0
	for _, b := range s.buckets {
		n += len(b.m)
	}
	return n
}

// paths lists every node's path, in no particular order.
func (s *State) paths() []string {
	out := make([]string, 0, s.size())
	for _, b := range s.buckets {
		for p := range b.m {
			out = append(out, p)
		}
	}
	return out
}

// all returns the tree as one map (tests, rendering).
func (s *State) all() map[string]znode {
	out := make(map[string]znode, s.size())
	for _, b := range s.buckets {
		for p, n := range b.m {
			out[p] = n
		}
	}
	return out
}

// specialPaths exist from the start and can be neither created nor deleted.
var specialPaths = []string{"/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"}

func isSpecialPath(p string) bool {
	for _, s := range specialPaths {
		if p == s {
			return true
		}
	}
	return false
}

// initialState is the tree of an empty server: /, /zookeeper,
// /zookeeper/quota and /zookeeper/config, all with zero Stat (internal
// cversion 0, so the first sequential child of / gets suffix 0000000000).
func initialState() *State {
	s := &State{closed: &sessions{m: map[int64]bool{}}}
	for i := range s.buckets {
		s.buckets[i] = &bucket{m: map[string]znode{}}
	}
	s.owned = ^uint32(0)
	for _, p := range specialPaths {
		s.put(p, znode{})
	}
	s.owned = 0
	return s
}

// clone shares everything with s; put, del and closeSession copy what they
// change.
func (s *State) clone() *State {
	return &State{buckets: s.buckets, closed: s.closed, hash: s.hash}
}

// mutBucket returns bucket i, copied first unless this State already owns it.
func (s *State) mutBucket(i int) *bucket {
	if s.owned&(1<<i) == 0 {
		old := s.buckets[i]
		c := &bucket{m: make(map[string]znode, len(old.m)+1), hash: old.hash, eph: old.eph}
		for k, v := range old.m {
			c.m[k] = v
		}
		s.buckets[i] = c
		s.owned |= 1 << i
	}
	return s.buckets[i]
}

// put sets node p, updating the hashes incrementally (XOR out the old entry,
// in the new one).
func (s *State) put(p string, n znode) {
	i := bucketOf(p)
	old, ok := s.buckets[i].m[p]
	if ok && old == n {
		return
	}
	b := s.mutBucket(i)
	var x uint64
	if ok {
		x = entryHash(p, old)
	}
	x ^= entryHash(p, n)
	if ok && old.owner != 0 {
		b.eph--
	}
	if n.owner != 0 {
		b.eph++
	}
	b.m[p] = n
	b.hash ^= x
	s.hash ^= x
}

// del removes node p, updating the hashes incrementally.
func (s *State) del(p string) {
	i := bucketOf(p)
	old, ok := s.buckets[i].m[p]
	if !ok {
		return
	}
	b := s.mutBucket(i)
	x := entryHash(p, old)
	if old.owner != 0 {
		b.eph--
	}
	delete(b.m, p)
	b.hash ^= x
	s.hash ^= x
}

// closeSession marks id closed, updating the hash incrementally.
func (s *State) closeSession(id int64) {
	if s.closed.m[id] {
		return
	}
	if !s.ownsCl {
		c := &sessions{m: make(map[int64]bool, len(s.closed.m)+1)}
		for k := range s.closed.m {
			c.m[k] = true
		}
		s.closed, s.ownsCl = c, true
	}
	s.closed.m[id] = true
	s.hash ^= closedHash(id)
}

const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

func fnvString(h uint64, b string) uint64 {
	for i := 0; i < len(b); i++ {
		h ^= uint64(b[i])
		h *= fnvPrime64
	}
	return h
}

func fnvBytes(h uint64, b []byte) uint64 {
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime64
	}
	return h
}

// fnvInt hashes v's decimal form.
func fnvInt(h uint64, v int64) uint64 {
	var buf [24]byte
	return fnvBytes(h, strconv.AppendInt(buf[:0], v, 10))
}

// entryHash is FNV-1a over "path\x00data\x00version\x00cseq\x00owner"
// (decimal numbers), computed in place without fmt or allocation: Porcupine
// hashes states on every step it tries.
func entryHash(path string, n znode) uint64 {
	h := fnvString(fnvOffset64, path)
	h = fnvString(h, "\x00")
	h = fnvString(h, n.data)
	h = fnvString(h, "\x00")
	h = fnvInt(h, int64(n.version))
	h = fnvString(h, "\x00")
	h = fnvInt(h, int64(n.cseq))
	h = fnvString(h, "\x00")
	return fnvInt(h, n.owner)
}

// closedHash is FNV-1a over "closed\x00id" (decimal).
func closedHash(id int64) uint64 {
	return fnvInt(fnvString(fnvOffset64, "closed\x00"), id)
}

// fullHash recomputes the order-independent hash of the state from scratch
// (tests: put, del and closeSession keep s.hash up to date). It also checks
// each bucket's hash and ephemeral count, returning 0 if one is off.
func (s *State) fullHash() uint64 {
	var x uint64
	for _, b := range s.buckets {
		var y uint64
		eph := 0
		for k, v := range b.m {
			y ^= entryHash(k, v)
			if v.owner != 0 {
				eph++
			}
		}
		if y != b.hash || eph != b.eph {
			return 0
		}
		x ^= y
	}
	for id := range s.closed.m {
		x ^= closedHash(id)
	}
	return x
}

// Equal reports whether two states hold the same tree and closed sessions.
// The hashes reject almost every unequal pair; shared buckets are equal;
// the fields decide the rest. A bucket (or session set) found equal that way
// is then shared by both, so that the next comparison of the two, or of
// their successors, sees one pointer: Porcupine compares the states of
// different orders of the same operations again and again. Only done States
// (owning nothing) are compared: those of a finished txn and initialState.
func (s *State) Equal(o *State) bool {
	if s == o {
		return true
	}
	if s.hash != o.hash || len(s.closed.m) != len(o.closed.m) {
		return false
	}
	for i, b := range s.buckets {
		c := o.buckets[i]
		if b == c {
			continue
		}
		if b.hash != c.hash || len(b.m) != len(c.m) {
			return false
		}
		for k, v := range b.m {
			if w, ok := c.m[k]; !ok || w != v {
				return false
			}
		}
		if s.owned|o.owned == 0 {
			o.buckets[i] = b
		}
	}
	if s.closed != o.closed {
		for k := range s.closed.m {
			if !o.closed.m[k] {
				return false
			}
		}
		if !s.ownsCl && !o.ownsCl {
			o.closed = s.closed
		}
	}
	return true
}

// String renders the user-visible part of the tree (the /zookeeper subtree
// is omitted), sorted by path.
func (s *State) String() string {
	nodes := s.all()
	paths := make([]string, 0, len(nodes))
	for p := range nodes {
		if p == "/" || p == "/zookeeper" || strings.HasPrefix(p, "/zookeeper/") {
			continue
		}
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var b strings.Builder
	b.WriteString("{")
	for i, p := range paths {
		if i > 0 {
			b.WriteString(", ")
		}
		n := nodes[p]
		fmt.Fprintf(&b, "%s=%q v%d", p, n.data, n.version)
		if n.owner != 0 {
			fmt.Fprintf(&b, " eph(s%#x)", n.owner)
		}
	}
	b.WriteString("}")
	if len(s.closed.m) > 0 {
		ids := make([]int64, 0, len(s.closed.m))
		for id := range s.closed.m {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		b.WriteString(" closed:")
		for _, id := range ids {
			fmt.Fprintf(&b, " s%#x", id)
		}
	}
	return b.String()
}

// parentOf returns the parent path ("/" for top-level nodes, "" for "/").
func parentOf(p string) string {
	i := strings.LastIndexByte(p, '/')
	switch {
	case p == "/" || i < 0:
		return ""
	case i == 0:
		return "/"
	}
	return p[:i]
}

func baseOf(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }

// validPath applies ZooKeeper's path rules: absolute, no empty, "." or ".."
// components, no trailing slash (except "/"), no NUL or disallowed characters.
func validPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	if p == "/" {
		return true
	}
	if strings.HasSuffix(p, "/") {
		return false
	}
	// Component by component without strings.Split: Porcupine validates a
	// path on every step it tries.
	for rest := p[1:]; ; {
		i := strings.IndexByte(rest, '/')
		c := rest
		if i >= 0 {
			c = rest[:i]
		}
		if c == "" || c == "." || c == ".." {
			return false
		}
		if i < 0 {
			break
		}
		rest = rest[i+1:]
	}
	for _, r := range p {
		switch {
		case r == 0,
			r > 0 && r < 0x20,
			r >= 0x7f && r <= 0x9f,
			r >= 0xd800 && r <= 0xf8ff,
			r >= 0xfff0 && r <= 0xffff:
			return false
		}
	}
	return true
}

// nextVersion increments a version, skipping -1 on wrap-around.
func nextVersion(v int32) int32 {
	if v == math.MaxInt32 {
		v = math.MinInt32
	} else {
		v++
	}
	if v == -1 {
		v = 0
	}
	return v
}

// sequentialName is prefix + the parent's internal cversion as %010d.
func sequentialName(prefix string, cseq int32) string {
	if cseq < 0 {
		return fmt.Sprintf("%s%010d", prefix, cseq)
	}
	// fmt's "%010d" without fmt: the model names every sequential create.
	var b [10]byte
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte('0' + cseq%10)
		cseq /= 10
	}
	return prefix + string(b[:])
}

// children lists the base names of p's children, sorted.
func (s *State) children(p string) []string {
	var out []string
	for _, b := range s.buckets {
		for k := range b.m {
			if k != "/" && parentOf(k) == p {
				out = append(out, baseOf(k))
			}
		}
	}
	sort.Strings(out)
	return out
}

func (s *State) hasChildren(p string) bool {
	for _, b := range s.buckets {
		for k := range b.m {
			if k != "/" && parentOf(k) == p {
				return true
			}
		}
	}
	return false
}

// result is what the model says an operation returns.
// versioned checks what setData and check share, in ZooKeeper's order: a
// valid path, an existing node, the expected version (-1 = any).
func (s *State) versioned(op *Op) (znode, int32) {
	if !validPath(op.Path) {
		return znode{}, ErrBadArguments
	}
	n, ok := s.get(op.Path)
	if !ok {
		return znode{}, ErrNoNode
	}
	if op.Version != -1 && op.Version != n.version {
		return znode{}, ErrBadVersion
	}
	return n, ErrOK
}

type result struct {
	err      int32
	name     string // create
	version  int32  // setData result, getData/exists Stat.version
	data     string // getData
	exists   bool   // exists, getData
	children []string
	sub      []result // multi
}

// txn applies writes copy-on-write: the base state is cloned on first change.
type txn struct {
	base, cur *State
}

func (t *txn) view() *State {
	if t.cur != nil {
		return t.cur
	}
	return t.base
}

func (t *txn) mut() *State {
	if t.cur == nil {
		t.cur = t.base.clone()
	}
	return t.cur
}

// result returns the state after the transaction.
func (t *txn) result() *State {
	if t.cur == nil {
		return t.base
	}
	// Done: the State owns nothing any more, so buckets Equal found equal
	// may be shared with another State (a later change would copy).
	t.cur.owned, t.cur.ownsCl = 0, false
	return t.cur
}

// step applies one write (not a multi) by session within t and returns the
// model's reply. Failed writes leave t unchanged.
func (t *txn) step(session int64, op *Op) result {
	s := t.view()
	if op.Kind != CloseSession && s.closed.m[session] {
		return result{err: ErrSessionExpired}
	}
	switch op.Kind {
	case Create:
		if op.Mode < ModePersistent || op.Mode > ModeEphemeralSequential {
			return result{err: ErrBadArguments}
		}
		if op.Path == "" || op.Path[0] != '/' || strings.IndexByte(op.Path, 0) >= 0 || isSpecialPath(op.Path) {
			return result{err: ErrBadArguments}
		}
		parent := parentOf(op.Path)
		pn, ok := s.get(parent)
		if !ok {
			return result{err: ErrNoNode}
		}
		name := op.Path
		if isSequentialMode(op.Mode) {
			name = sequentialName(op.Path, pn.cseq)
		}
		if !validPath(name) {
			return result{err: ErrBadArguments}
		}
		if _, exists := s.get(name); exists {
			return result{err: ErrNodeExists}
		}
		if pn.owner != 0 {
			return result{err: ErrNoChildrenForEphemeral}
		}
		m := t.mut()
		n := znode{data: string(op.Data)}
		if isEphemeralMode(op.Mode) {
			n.owner = session
		}
		m.put(name, n)
		pn.cseq++
		m.put(parent, pn)
		return result{name: name}
	case Delete:
		if !validPath(op.Path) || isSpecialPath(op.Path) {
			return result{err: ErrBadArguments}
		}
		if _, ok := s.get(parentOf(op.Path)); !ok {
			return result{err: ErrNoNode}
		}
		n, ok := s.get(op.Path)
		if !ok {
			return result{err: ErrNoNode}
		}
		if op.Version != -1 && op.Version != n.version {
			return result{err: ErrBadVersion}
		}
		if s.hasChildren(op.Path) {
			return result{err: ErrNotEmpty}
		}
		t.mut().del(op.Path)
		return result{}
	case SetData:
		n, code := s.versioned(op)
		if code != ErrOK {
			return result{err: code}
		}
		n.data = string(op.Data)
		n.version = nextVersion(n.version)
		t.mut().put(op.Path, n)
		return result{version: n.version}
	case Check:
		_, code := s.versioned(op)
		return result{err: code}
	case CloseSession:
		if s.closed.m[session] {
			return result{}
		}
		m := t.mut()
		m.closeSession(session)
		var owned []string
		for _, b := range m.buckets {
			if b.eph == 0 {
				continue
			}
			for p, n := range b.m {
				if n.owner == session {
					owned = append(owned, p)
				}
			}
		}
		for _, p := range owned {
			m.del(p)
		}
		return result{}
	}
	return result{err: ErrBadArguments}
}

// applyWrite runs a write (including a multi) against st and returns the
// model's reply and the next state (st itself when nothing changed).
func applyWrite(st *State, session int64, op *Op) (result, *State) {
	if op.Kind != Multi {
		t := &txn{base: st}
		r := t.step(session, op)
		return r, t.result()
	}
	if st.closed.m[session] {
		return result{err: ErrSessionExpired}, st
	}
	t := &txn{base: st}
	res := result{sub: make([]result, len(op.Ops))}
	for i := range op.Ops {
		r := t.step(session, &op.Ops[i])
		if r.err != ErrOK {
			// Atomic: earlier ops report 0, the failing one its code,
			// later ones RuntimeInconsistency; nothing is applied.
			for j := range res.sub {
				switch {
				case j < i:
					res.sub[j] = result{}
				case j > i:
					res.sub[j] = result{err: ErrRuntimeInconsistency}
				}
			}
			res.sub[i] = r
			return res, st
		}
		res.sub[i] = r
	}
	return res, t.result()
}

// observe answers a read against st.
func observe(st *State, op *Op) result {
	if !validPath(op.Path) {
		return result{err: ErrBadArguments}
	}
	n, ok := st.get(op.Path)
	if !ok {
		return result{err: ErrNoNode}
	}
	switch op.Kind {
	case GetChildren:
		return result{exists: true, children: st.children(op.Path)}
	default:
		return result{exists: true, data: n.data, version: n.version}
	}
}

// explains reports whether the recorded outcome of op (whose outcome class is
// checked) agrees with the model's reply r.
func explains(op *Op, r result) bool {
	switch op.Kind {
	case Exists:
		present := op.Err == ErrOK && op.Exists
		if present != (r.err == ErrOK) {
			return false
		}
		if op.Err == ErrBadArguments || r.err == ErrBadArguments {
			return op.Err == r.err
		}
		return !present || op.StatVersion == r.version
	case GetData:
		if op.Err != r.err {
			return false
		}
		return op.Err != ErrOK || (bytes.Equal(op.RespData, []byte(r.data)) && op.StatVersion == r.version)
	case GetChildren:
		if op.Err != r.err {
			return false
		}
		return op.Err != ErrOK || equalStrings(sortedCopy(op.Children), r.children)
	case Sync, CloseSession:
		return true
	case Multi:
		if op.Err != r.err || len(op.Ops) != len(r.sub) {
			return false
		}
		for i := range op.Ops {
			if !explains(&op.Ops[i], r.sub[i]) {
				return false
			}
		}
		return true
	}
	if op.Err != r.err {
		return false
	}
	if op.Err != ErrOK {
		return true
	}
	switch op.Kind {
	case Create:
		return op.Name == "" || op.Name == r.name
	case SetData:
		return op.StatVersion == r.version
	}
	return true
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
