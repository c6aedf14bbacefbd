package main

import (
	"bytes"
	"encoding/binary"
	"hash/adler32"
	"io"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/disk"
	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/internal/testserver"
	"github.com/zabkeeper/zabkeeper/proto"
)

// TestDatadirVerifyFuzzySnapshotMissingACL: a snapshot whose ACL cache
// lacks the list of a node created after the zxid it is named for (as
// ZooKeeper's fuzzy snapshots can) verifies when the log after it holds
// that create; named for the last txn, with nothing left to replay, it is
// a problem naming the node.
func TestDatadirVerifyFuzzySnapshotMissingACL(t *testing.T) {
	cfg := testserver.Config(t, 0)
	srv := testserver.Start(t, cfg)
	c, _, err := zk.Connect([]string{srv.Addr}, 10*time.Second, zk.WithLogInfo(false))
	require.NoError(t, err)
	guarded := zk.DigestACL(zk.PermRead, "u", "p")
	_, err = c.Create("/a", nil, 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
	_, err = c.Create("/a/b", nil, 0, guarded)
	require.NoError(t, err)
	c.Close()
	srv.Stop()

	wal, err := disk.OpenLog(cfg.DataLogDir, disk.LogOptions{NoSync: true})
	require.NoError(t, err)
	tr := tree.New(tree.Options{ExtendedTypes: true})
	var createA int64
	require.NoError(t, wal.ReadFrom(0, func(r disk.Record) error {
		txn, err := tree.UnmarshalTxn(r.Data)
		if err != nil {
			return err
		}
		if txn.Type == proto.OpCreate && txn.Path == "/a" {
			createA = txn.Zxid
		}
		tr.Apply(txn)
		return nil
	}))
	last := wal.LastZxid()
	require.NoError(t, wal.Close())
	require.NotZero(t, createA)
	var buf bytes.Buffer
	_, err = tr.Snapshot().Write(&buf, nil)
	require.NoError(t, err)
	b := buf.Bytes()
	// Drop ACL 2 ("/a" is 1, "/a/b" 2) from the cache and reseal.
	e := proto.NewEncoder(nil)
	e.WriteLong(2)
	proto.WriteACLs(e, []proto.ACL{{Perms: guarded[0].Perms, Id: proto.Id{Scheme: guarded[0].Scheme, ID: guarded[0].ID}}})
	const countAt = 16 + 4
	i := bytes.Index(b[countAt:], e.Bytes())
	require.Positive(t, i)
	i += countAt
	b = append(bytes.Clone(b[:i]), b[i+len(e.Bytes()):]...)
	binary.BigEndian.PutUint32(b[countAt:], binary.BigEndian.Uint32(b[countAt:])-1)
	const seal = 8 + 4 + 1
	first := len(b) - seal - 20 - seal
	binary.BigEndian.PutUint64(b[first:], uint64(adler32.Checksum(b[:first])))
	binary.BigEndian.PutUint64(b[len(b)-seal:], uint64(adler32.Checksum(b[:len(b)-seal])))
	write := func(zxid int64) {
		_, err := disk.WriteSnapshot(cfg.DataDir, zxid, func(w io.Writer) error {
			_, err := w.Write(b)
			return err
		})
		require.NoError(t, err)
	}

	write(createA)
	code, out := verifyOut(t, cfg.DataDir)
	require.Equal(t, 0, code, out)
	require.Regexp(t, `replay from snapshot\.[0-9a-f]+: \d+ txns applied .* all equal`, out)

	write(last)
	code, out = verifyOut(t, cfg.DataDir)
	require.Equal(t, 1, code, out)
	require.Contains(t, out, `PROBLEM: 0 txns applied; tree: node refers to an ACL the ACL cache lacks: node "/a/b" refers to ACL 2`)
}
