package engine

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/engine/zab"
)

// Snapshot captures the state at the newest applied txn: the session table
// and a consistent view of the tree. It returns that txn's zxid and a
// function that writes the snapshot as Apache ZooKeeper's version-2 snapshot
// stream (see tree.Snapshot.Write); the function may run on another
// goroutine while the Node goes on applying txns.
func (n *Node) Snapshot() (int64, func(io.Writer) error) {
	zxid, sessions, view := n.view()
	return zxid, func(w io.Writer) error {
		if _, err := view.Write(w, sessions); err != nil {
			return fmt.Errorf("engine: write snapshot: %w", err)
		}
		return nil
	}
}

// view captures the applied state: its zxid, the sessions in id order and
// an immutable view of the tree.
func (n *Node) view() (int64, []tree.SnapshotSession, *tree.Snapshot) {
	sessions := make([]tree.SnapshotSession, 0, len(n.sessions))
	for _, id := range slices.Sorted(maps.Keys(n.sessions)) {
		s := n.sessions[id]
		sessions = append(sessions, tree.SnapshotSession{ID: s.id, Timeout: s.timeout})
	}
	return n.lastApplied, sessions, n.tree.Snapshot()
}

// Snapshot hands zab the applied state for a SNAP sync: the body a
// ZooKeeper leader writes after the SNAP packet (tree.Snapshot.WriteBody),
// as a view that is serialized only while it is sent.
func (a *application) Snapshot() (int64, zab.SnapshotData) {
	zxid, sessions, view := (*Node)(a).view()
	return zxid, viewSnapshot(func(w io.Writer) error {
		if _, err := view.WriteBody(w, sessions); err != nil {
			return fmt.Errorf("engine: write SNAP body: %w", err)
		}
		return nil
	})
}

// readIncoming reads and checks the SNAP body a SNAP carries.
func (n *Node) readIncoming(m zab.Message) (*LoadedSnapshot, error) {
	if m.Snapshot == nil {
		return nil, errors.New("no snapshot in the message")
	}
	r, err := m.Snapshot.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	ls, err := tree.ReadSnapshotBody(r, n.cfg.Tree, m.Zxid)
	if err != nil {
		return nil, fmt.Errorf("engine: read SNAP body 0x%x: %w", m.Zxid, err)
	}
	return fromTree(m.Zxid, ls), nil
}

// installSnapshot replaces the state with the leader's (a SNAP sync). Step
// read and checked it before zab saw the message. It returns what the
// caller persists: the adopted state in our snapshot file format (the SNAP
// body is not one), with the digest computed from the loaded tree.
func (n *Node) installSnapshot(si *zab.SnapshotInstall) *zab.SnapshotInstall {
	st := n.incoming
	if st == nil || st.zxid != si.Zxid {
		panic(fmt.Sprintf("engine: zab installs snapshot 0x%x that Step did not read", si.Zxid))
	}
	n.incoming = nil
	n.adopt(st)
	zxid, write := n.Snapshot()
	return &zab.SnapshotInstall{Zxid: zxid, Data: viewSnapshot(write)}
}

// LoadSnapshot replaces the Node's state with a snapshot written by
// Snapshot (or by Apache ZooKeeper). zxid is the snapshot's zxid as named by
// its file.
func (n *Node) LoadSnapshot(zxid int64, r io.Reader) error {
	st, err := readSnapshot(n.cfg.Tree, zxid, r)
	if err != nil {
		return err
	}
	n.adopt(st)
	return nil
}

// ReadSnapshot reads and checks a snapshot stream, for Durable.Loaded:
// recovery streams it from its file instead of holding its bytes. cfg is
// the configuration the Node will be restored with.
func ReadSnapshot(cfg Config, zxid int64, r io.Reader) (*LoadedSnapshot, error) {
	return readSnapshot(cfg.Tree, zxid, r)
}

// LoadedSnapshot is a snapshot read and checked, ready to replace a Node's
// state.
type LoadedSnapshot struct {
	zxid     int64
	tree     *tree.Tree
	sessions []*session
	// digest is the snapshot's digest when it is for a zxid past the
	// snapshot's own (a fuzzy snapshot ZooKeeper wrote), to be checked
	// when the replay reaches it; pending says there is one.
	digest  tree.SnapshotDigest
	pending bool
	// mismatch is set when the digest for the snapshot's own zxid differs
	// from its tree's; adopting it reports that in a Ready.
	mismatch *DigestMismatch
}

// Zxid returns the zxid of the snapshot's state.
func (l *LoadedSnapshot) Zxid() int64 { return l.zxid }

// PendingDigest returns the digest a fuzzy snapshot recorded for a zxid
// past its name's, which the tree must match once the log replayed up to
// that zxid; ok is false when there is none (the snapshot's digest, if
// any, was checked on reading).
func (l *LoadedSnapshot) PendingDigest() (d tree.SnapshotDigest, ok bool) {
	return l.digest, l.pending
}

// readSnapshot reads and checks a snapshot file's stream.
func readSnapshot(opts tree.Options, zxid int64, r io.Reader) (*LoadedSnapshot, error) {
	ls, err := tree.ReadSnapshot(r, opts, zxid)
	if err != nil {
		return nil, fmt.Errorf("engine: read snapshot 0x%x: %w", zxid, err)
	}
	return fromTree(zxid, ls), nil
}

// fromTree makes a loaded tree snapshot the engine's. Sessions get the
// password ZooKeeper derives from their id.
func fromTree(zxid int64, ls *tree.LoadedSnapshot) *LoadedSnapshot {
	st := &LoadedSnapshot{zxid: zxid, tree: ls.Tree, digest: ls.Digest, pending: ls.PendingDigest}
	if ls.DigestMismatch {
		st.mismatch = &DigestMismatch{Zxid: zxid, Expected: ls.Digest.Digest, Actual: ls.Tree.Digest()}
	}
	for _, s := range ls.Sessions {
		st.sessions = append(st.sessions, &session{id: s.ID, timeout: s.Timeout, passwd: SessionPassword(s.ID)})
	}
	return st
}

// adopt replaces the Node's state with a loaded snapshot. Sessions start
// their timeout afresh, as after a restart.
func (n *Node) adopt(st *LoadedSnapshot) {
	sessions := make(map[int64]*session, len(st.sessions))
	for _, s := range st.sessions {
		n.touch(s)
		sessions[s.id] = s
	}
	n.tree, n.sessions = st.tree, sessions
	n.snapDigest = nil
	if st.mismatch != nil {
		n.tail(false).DigestMismatch = st.mismatch
	}
	if st.pending {
		d := st.digest
		n.snapDigest = &d
	}
	n.lastApplied, n.lastProposed = st.zxid, st.zxid
}

// viewSnapshot is the Node's state at a zxid as zab.SnapshotData: a write
// function that serializes an immutable view each time it runs (the SNAP
// body for a sync, our file format for the state a learner adopted), so
// sending or persisting never needs the state as bytes.
type viewSnapshot func(io.Writer) error

func (v viewSnapshot) WriteTo(w io.Writer) (int64, error) {
	cw := &countingWriter{w: w}
	err := v(cw)
	return cw.n, err
}

// Open serializes the view into memory: only in-memory transports, which
// hand the leader's value to the learner as is, read it this way.
func (v viewSnapshot) Open() (io.ReadCloser, error) {
	var b bytes.Buffer
	if err := v(&b); err != nil {
		return nil, err
	}
	return io.NopCloser(&b), nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	k, err := c.w.Write(p)
	c.n += int64(k)
	return k, err
}
