package server_test

import (
	"bytes"
	"encoding/binary"
	"hash/adler32"
	"io"
	"testing"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/disk"
	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/proto"
)

// TestRecoversFuzzySnapshotMissingACL: the newest snapshot in the data
// directory is fuzzy as ZooKeeper's can be: named for the create of /a, it
// holds /a/b too, created after it with a new ACL list, which its ACL
// cache lacks. The server starts (it refused to before), the log's create
// of /a/b gives the node its list, and clients read it with its Stat.
func TestRecoversFuzzySnapshotMissingACL(t *testing.T) {
	cfg := testConfig(t)
	addr, stop := startServerCfg(t, cfg)
	c := connect(t, addr)
	guarded := zk.DigestACL(zk.PermRead|zk.PermAdmin, "u", "p")
	_, err := c.Create("/a", []byte("a"), 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
	_, err = c.Create("/a/b", []byte("b"), 0, guarded)
	require.NoError(t, err)
	require.NoError(t, c.AddAuth("digest", []byte("super:admin")))
	_, wantStat, err := c.GetACL("/a/b")
	require.NoError(t, err)
	c.Close()
	stop()

	// The tree after every logged txn, named for the create of /a.
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
	require.NoError(t, wal.Close())
	require.NotZero(t, createA)
	var buf bytes.Buffer
	_, err = tr.Snapshot().Write(&buf, nil)
	require.NoError(t, err)
	b := buf.Bytes()
	// Drop ACL 2 ("/a" is 1, "/a/b" 2) from the cache and reseal.
	var acl []proto.ACL
	for _, a := range guarded {
		acl = append(acl, proto.ACL{Perms: a.Perms, Id: proto.Id{Scheme: a.Scheme, ID: a.ID}})
	}
	e := proto.NewEncoder(nil)
	e.WriteLong(2)
	proto.WriteACLs(e, acl)
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
	ls, err := tree.ReadSnapshot(bytes.NewReader(b), tree.Options{ExtendedTypes: true}, createA)
	require.NoError(t, err)
	require.ErrorIs(t, ls.Tree.CheckACLs(), tree.ErrMissingACL, "the snapshot is the fuzzy one")
	_, err = disk.WriteSnapshot(cfg.DataDir, createA, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
	require.NoError(t, err)
	snaps, err := disk.ListSnapshots(cfg.DataDir)
	require.NoError(t, err)
	require.Equal(t, createA, snaps[0].Zxid, "it is the newest")

	addr, _ = startServerCfg(t, cfg)
	c = connect(t, addr)
	require.NoError(t, c.AddAuth("digest", []byte("super:admin")))
	got, st, err := c.GetACL("/a/b")
	require.NoError(t, err)
	require.Equal(t, guarded, got)
	require.Equal(t, *wantStat, *st)
	data, _, err := c.Get("/a/b")
	require.NoError(t, err)
	require.Equal(t, []byte("b"), data)
}
