// Package fuzzysnap builds, for tests, a snapshot file shaped like one of
// ZooKeeper's fuzzy snapshots: named for an early txn, it holds the nodes
// created after it, and its ACL cache lacks the list of one of them (the
// cache was serialized before that node's create added the list).
package fuzzysnap

import (
	"bytes"
	"encoding/binary"
	"hash/adler32"
	"testing"

	"github.com/go-zookeeper/zk"

	"github.com/zabkeeper/zabkeeper/disk"
	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/proto"
)

// FromLog replays every txn of the data log in logDir into a tree and
// returns that tree's snapshot file with ACL cache entry aclID (holding
// acl) removed and the file resealed, the zxid of the create of
// createPath (the fuzzy snapshot's name) and the log's last zxid. The
// tree must have no sessions (the cache's count sits right after the
// header and an empty session table).
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
	b := buf.Bytes()

	e := proto.NewEncoder(nil)
	e.WriteLong(aclID)
	list := make([]proto.ACL, len(acl))
	for i, a := range acl {
		list[i] = proto.ACL{Perms: a.Perms, Id: proto.Id{Scheme: a.Scheme, ID: a.ID}}
	}
	proto.WriteACLs(e, list)
	const countAt = 16 + 4 // the file header, then no sessions
	i := bytes.Index(b[countAt:], e.Bytes())
	if i < 0 {
		t.Fatalf("fuzzysnap: ACL cache entry %d not found", aclID)
	}
	i += countAt
	b = append(bytes.Clone(b[:i]), b[i+len(e.Bytes()):]...)
	binary.BigEndian.PutUint32(b[countAt:], binary.BigEndian.Uint32(b[countAt:])-1)
	// Reseal: the checksum after the body, then the one after the digest.
	const seal = 8 + 4 + 1
	first := len(b) - seal - 20 - seal
	binary.BigEndian.PutUint64(b[first:], uint64(adler32.Checksum(b[:first])))
	binary.BigEndian.PutUint64(b[len(b)-seal:], uint64(adler32.Checksum(b[:len(b)-seal])))
	return b, createZxid, lastZxid
}
