package engine

import (
	"bufio"
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
	br := bufio.NewReader(r)
	var hdr [20]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return fmt.Errorf("engine: read snapshot header: %w", err)
	}
	if string(hdr[:4]) != snapshotMagic {
		return errors.New("engine: snapshot: bad magic")
	}
	if v := binary.BigEndian.Uint32(hdr[4:8]); v != snapshotVersion {
		return fmt.Errorf("engine: snapshot: unknown version %d", v)
	}
	inner := int64(binary.BigEndian.Uint64(hdr[8:16]))
	if inner != zxid {
		return fmt.Errorf("engine: snapshot: holds zxid 0x%x, named 0x%x", inner, zxid)
	}
	count := binary.BigEndian.Uint32(hdr[16:20])
	if count > maxSnapshotSessions {
		return fmt.Errorf("engine: snapshot: %d sessions is beyond the limit", count)
	}
	sessions := map[int64]*session{}
	for i := uint32(0); i < count; i++ {
		var rec [13]byte
		if _, err := io.ReadFull(br, rec[:]); err != nil {
			return fmt.Errorf("engine: read snapshot session %d: %w", i, err)
		}
		s := &session{
			id:      int64(binary.BigEndian.Uint64(rec[0:8])),
			timeout: int32(binary.BigEndian.Uint32(rec[8:12])),
			passwd:  make([]byte, rec[12]),
		}
		if _, err := io.ReadFull(br, s.passwd); err != nil {
			return fmt.Errorf("engine: read snapshot session %d: %w", i, err)
		}
		n.touch(s)
		sessions[s.id] = s
	}
	t, err := tree.Load(br, n.cfg.Tree)
	if err != nil {
		return fmt.Errorf("engine: load snapshot tree: %w", err)
	}
	n.tree, n.sessions = t, sessions
	n.lastApplied, n.lastProposed = zxid, zxid
	return nil
}
