package engine

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/zabkeeper/zabkeeper/engine/tree"
)

// Snapshot captures the state at the newest applied txn: the session table
// and a consistent view of the tree. It returns that txn's zxid and a
// function that writes the snapshot as Apache ZooKeeper's version-2 snapshot
// stream (see tree.Snapshot.Write); the function may run on another
// goroutine while the Node goes on applying txns.
func (n *Node) Snapshot() (int64, func(io.Writer) error) {
	zxid := n.lastApplied
	sessions := make([]tree.SnapshotSession, 0, len(n.sessions))
	for _, id := range slices.Sorted(maps.Keys(n.sessions)) {
		s := n.sessions[id]
		sessions = append(sessions, tree.SnapshotSession{ID: s.id, Timeout: s.timeout})
	}
	view := n.tree.Snapshot()
	return zxid, func(w io.Writer) error {
		if _, err := view.Write(w, sessions); err != nil {
			return fmt.Errorf("engine: write snapshot: %w", err)
		}
		return nil
	}
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

// readSnapshot reads and checks a snapshot. Sessions get the password
// ZooKeeper derives from their id.
func readSnapshot(opts tree.Options, zxid int64, r io.Reader) (*LoadedSnapshot, error) {
	ls, err := tree.ReadSnapshot(r, opts, zxid)
	if err != nil {
		return nil, fmt.Errorf("engine: read snapshot 0x%x: %w", zxid, err)
	}
	st := &LoadedSnapshot{zxid: zxid, tree: ls.Tree, digest: ls.Digest, pending: ls.PendingDigest}
	if ls.DigestMismatch {
		st.mismatch = &DigestMismatch{Zxid: zxid, Expected: ls.Digest.Digest, Actual: ls.Tree.Digest()}
	}
	for _, s := range ls.Sessions {
		st.sessions = append(st.sessions, &session{id: s.ID, timeout: s.Timeout, passwd: SessionPassword(s.ID)})
	}
	return st, nil
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

// viewSnapshot is the Node's state at a zxid as zab.SnapshotData for a SNAP
// sync: the write function of Node.Snapshot, which serializes an immutable
// view each time it runs, so sending never needs the state as bytes.
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
