// Package fuzzysnap builds, for tests, a snapshot file shaped like one of
// ZooKeeper's fuzzy snapshots: named for an early txn, it holds the nodes
// created after it, and its ACL cache lacks the list of one of them (the
// cache was serialized before that node's create added the list).
package fuzzysnap

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/adler32"
	"testing"

	"github.com/go-zookeeper/zk"

	"github.com/zabkeeper/zabkeeper/disk"
	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/proto"
)

// FromLog replays every txn of the data log in logDir into a tree and
// returns that tree's snapshot file with ACL cache entry aclID (holding
// acl) removed and the file resealed (DropACL), the zxid of the create of
// createPath (the fuzzy snapshot's name) and the log's last zxid.
func FromLog(t testing.TB, logDir, createPath string, aclID int64, acl []zk.ACL) (file []byte, createZxid, lastZxid int64) {
	t.Helper()
	wal, err := disk.OpenLog(logDir, disk.LogOptions{NoSync: true})
	if err != nil {
		t.Fatalf("fuzzysnap: open log: %v", err)
	}
	tr := tree.New(tree.Options{ExtendedTypes: true})
	err = wal.ReadFrom(0, func(r disk.Record) error {
		txn, err := tree.UnmarshalTxn(r.Data)
		if err != nil {
			return err
		}
		if txn.Type == proto.OpCreate && txn.Path == createPath {
			createZxid = txn.Zxid
		}
		tr.Apply(txn)
		return nil
	})
	lastZxid = wal.LastZxid()
	if cerr := wal.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("fuzzysnap: replay log: %v", err)
	}
	if createZxid == 0 {
		t.Fatalf("fuzzysnap: no create of %s in the log", createPath)
	}
	var buf bytes.Buffer
	if _, err := tr.Snapshot().Write(&buf, nil); err != nil {
		t.Fatalf("fuzzysnap: write snapshot: %v", err)
	}
	list := make([]proto.ACL, len(acl))
	for i, a := range acl {
		list[i] = proto.ACL{Perms: a.Perms, Id: proto.Id{Scheme: a.Scheme, ID: a.ID}}
	}
	b, err := DropACL(buf.Bytes(), aclID, list)
	if err != nil {
		t.Fatalf("fuzzysnap: %v", err)
	}
	return b, createZxid, lastZxid
}

// DropACL returns a copy of snapshot file b with ACL cache entry aclID
// (holding acl) removed from its body (DropACLFromBody) and both checksums
// resealed, as if ZooKeeper had serialized the cache before the txn that
// added the list. The file is a 16-byte header, the body, a checksum seal,
// the 20-byte digest and another seal.
func DropACL(b []byte, aclID int64, acl []proto.ACL) ([]byte, error) {
	const header, seal = 16, 8 + 4 + 1 // a seal: the checksum, then "/" as a jute string
	first := len(b) - seal - 20 - seal
	if first < header {
		return nil, fmt.Errorf("snapshot file of %d bytes is too short", len(b))
	}
	body, err := DropACLFromBody(b[header:first], aclID, acl)
	if err != nil {
		return nil, err
	}
	out := append(append(bytes.Clone(b[:header]), body...), b[first:]...)
	first = len(out) - seal - 20 - seal
	binary.BigEndian.PutUint64(out[first:], uint64(adler32.Checksum(out[:first])))
	binary.BigEndian.PutUint64(out[len(out)-seal:], uint64(adler32.Checksum(out[:len(out)-seal])))
	return out, nil
}

// DropACLFromBody returns a copy of snapshot body data (the session table,
// then the ACL cache, then the nodes: what a SNAP carries) with ACL cache
// entry aclID, holding acl, removed and the cache's count lowered.
func DropACLFromBody(data []byte, aclID int64, acl []proto.ACL) ([]byte, error) {
	if len(data) < 4 {
		return nil, fmt.Errorf("snapshot body of %d bytes has no session table", len(data))
	}
	countAt := 4 + 12*int(binary.BigEndian.Uint32(data)) // a count, then 12 bytes a session
	if countAt+4 > len(data) {
		return nil, fmt.Errorf("snapshot body of %d bytes ends before its ACL cache", len(data))
	}
	e := proto.NewEncoder(nil)
	e.WriteLong(aclID)
	proto.WriteACLs(e, acl)
	entry := e.Bytes()
	i := bytes.Index(data[countAt+4:], entry)
	if i < 0 {
		return nil, fmt.Errorf("ACL cache entry %d not found", aclID)
	}
	i += countAt + 4
	out := append(bytes.Clone(data[:i]), data[i+len(entry):]...)
	binary.BigEndian.PutUint32(out[countAt:], binary.BigEndian.Uint32(out[countAt:])-1)
	return out, nil
}
