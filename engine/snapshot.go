package engine

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/zabkeeper/zabkeeper/engine/tree"
)

// snapshotMagic opens the engine's part of a snapshot body; the tree's part
// follows the session table.
const snapshotMagic = "ZKES"

const snapshotVersion = 1

// maxSnapshotSessions bounds the session table read from a snapshot so a
// corrupt count cannot make recovery allocate without bound.
const maxSnapshotSessions = 1 << 26

type sessionRecord struct {
	id      int64
	timeout int32
	passwd  []byte
}

// Snapshot captures the state at the newest applied txn: the session table
// and a consistent view of the tree. It returns that txn's zxid and a
// function that writes the snapshot; the function may run on another
// goroutine while the Node goes on applying txns.
func (n *Node) Snapshot() (int64, func(io.Writer) error) {
	zxid := n.lastApplied
	sessions := make([]sessionRecord, 0, len(n.sessions))
	for _, id := range slices.Sorted(maps.Keys(n.sessions)) {
		s := n.sessions[id]
		sessions = append(sessions, sessionRecord{id: s.id, timeout: s.timeout, passwd: slices.Clone(s.passwd)})
	}
	view := n.tree.Snapshot()
	return zxid, func(w io.Writer) error {
		bw := bufio.NewWriter(w)
		hdr := make([]byte, 0, 64)
		hdr = append(hdr, snapshotMagic...)
		hdr = binary.BigEndian.AppendUint32(hdr, snapshotVersion)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(zxid))
		hdr = binary.BigEndian.AppendUint32(hdr, uint32(len(sessions)))
		if _, err := bw.Write(hdr); err != nil {
			return fmt.Errorf("engine: write snapshot header: %w", err)
		}
		for _, s := range sessions {
			rec := binary.BigEndian.AppendUint64(nil, uint64(s.id))
			rec = binary.BigEndian.AppendUint32(rec, uint32(s.timeout))
			rec = append(rec, byte(len(s.passwd)))
			rec = append(rec, s.passwd...)
			if _, err := bw.Write(rec); err != nil {
				return fmt.Errorf("engine: write snapshot sessions: %w", err)
			}
		}
		if _, err := view.WriteTo(bw); err != nil {
			return fmt.Errorf("engine: write snapshot tree: %w", err)
		}
		return bw.Flush()
	}
}

// LoadSnapshot replaces the Node's state with a snapshot written by
// Snapshot. zxid is the snapshot's zxid as named by its file; it must match
// the one inside.
func (n *Node) LoadSnapshot(zxid int64, r io.Reader) error {
	st, err := readSnapshot(n.cfg.Tree, zxid, r)
	if err != nil {
		return err
	}
	n.adopt(st)
	return nil
}

// ReadSnapshot reads and checks a snapshot written by Node.Snapshot, for
// Durable.Loaded: recovery streams it from its file instead of holding its
// bytes. cfg is the configuration the Node will be restored with.
func ReadSnapshot(cfg Config, zxid int64, r io.Reader) (*LoadedSnapshot, error) {
	return readSnapshot(cfg.Tree, zxid, r)
}

// LoadedSnapshot is a snapshot read and checked, ready to replace a Node's
// state.
type LoadedSnapshot struct {
	zxid     int64
	tree     *tree.Tree
	sessions []*session
}

// Zxid returns the zxid of the snapshot's state.
func (l *LoadedSnapshot) Zxid() int64 { return l.zxid }

// readSnapshot reads and checks a snapshot.
func readSnapshot(opts tree.Options, zxid int64, r io.Reader) (*LoadedSnapshot, error) {
	br := bufio.NewReader(r)
	var hdr [20]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return nil, fmt.Errorf("engine: read snapshot header: %w", err)
	}
	if string(hdr[:4]) != snapshotMagic {
		return nil, errors.New("engine: snapshot: bad magic")
	}
	if v := binary.BigEndian.Uint32(hdr[4:8]); v != snapshotVersion {
		return nil, fmt.Errorf("engine: snapshot: unknown version %d", v)
	}
	inner := int64(binary.BigEndian.Uint64(hdr[8:16]))
	if inner != zxid {
		return nil, fmt.Errorf("engine: snapshot: holds zxid 0x%x, named 0x%x", inner, zxid)
	}
	count := binary.BigEndian.Uint32(hdr[16:20])
	if count > maxSnapshotSessions {
		return nil, fmt.Errorf("engine: snapshot: %d sessions is beyond the limit", count)
	}
	st := &LoadedSnapshot{zxid: zxid}
	for i := uint32(0); i < count; i++ {
		var rec [13]byte
		if _, err := io.ReadFull(br, rec[:]); err != nil {
			return nil, fmt.Errorf("engine: read snapshot session %d: %w", i, err)
		}
		s := &session{
			id:      int64(binary.BigEndian.Uint64(rec[0:8])),
			timeout: int32(binary.BigEndian.Uint32(rec[8:12])),
			passwd:  make([]byte, rec[12]),
		}
		if _, err := io.ReadFull(br, s.passwd); err != nil {
			return nil, fmt.Errorf("engine: read snapshot session %d: %w", i, err)
		}
		st.sessions = append(st.sessions, s)
	}
	t, err := tree.Load(br, opts)
	if err != nil {
		return nil, fmt.Errorf("engine: load snapshot tree: %w", err)
	}
	st.tree = t
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
