package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/adler32"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/internal/testserver"
)

func verifyOut(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"datadir", "verify"}, args...), &out, &errb)
	return code, out.String() + errb.String()
}

// TestDatadirVerifySnapshotsOfZooKeeper: on the data directories Apache
// ZooKeeper 3.8 wrote, every snapshot loads with its digest (a fuzzy one's
// checked later), and the log replayed on the newest snapshot matches every
// TxnDigest.
func TestDatadirVerifySnapshotsOfZooKeeper(t *testing.T) {
	code, out := verifyOut(t, filepath.Join(zkFixtures, "standalone"))
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "snapshot.1f: snapshot of zxid 0x1f, 20 nodes, 2 sessions, digest matches the tree")
	require.Contains(t, out, "snapshot.8: snapshot of zxid 0x8, 11 nodes, 1 sessions, digest recorded for zxid 0x9")
	require.Contains(t, out, "replay from snapshot.1f: 7 txns applied 0x20..0x26, 6 digests compared, all equal")
	// The TxnDigests before the newest snapshot: replayed from the oldest.
	require.Contains(t, out, "replay from snapshot.0: 31 txns applied, 30 digests compared, up to 0x1f, where the newest snapshot takes over")
	code, out = verifyOut(t, "--data-log-dir", filepath.Join(zkFixtures, "datalogdir/logs"), filepath.Join(zkFixtures, "datalogdir/data"))
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "all equal")
	code, out = verifyOut(t, filepath.Join(zkFixtures, "ensemble/n1"))
	require.Equal(t, 0, code, out)
}

// TestDatadirVerifyOurDataDir: a data directory zabkeeper wrote (snapshots
// taken while writes went on, so the log runs past the newest) verifies.
func TestDatadirVerifyOurDataDir(t *testing.T) {
	cfg := testserver.Config(t, 0)
	cfg.SnapCount = 10
	srv := testserver.Start(t, cfg)
	c, _, err := zk.Connect([]string{srv.Addr}, 10*time.Second, zk.WithLogInfo(false))
	require.NoError(t, err)
	for i := 0; i < 40; i++ {
		_, err := c.Create(fmt.Sprintf("/v%02d", i), []byte("x"), 0, zk.WorldACL(zk.PermAll))
		require.NoError(t, err)
		_, err = c.Set(fmt.Sprintf("/v%02d", i), []byte("y"), -1)
		require.NoError(t, err)
	}
	_, err = c.Multi(&zk.CreateRequest{Path: "/m", Acl: zk.WorldACL(zk.PermAll)}, &zk.DeleteRequest{Path: "/v00", Version: -1})
	require.NoError(t, err)
	c.Close()
	srv.Stop()
	code, out := verifyOut(t, cfg.DataDir)
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "digest matches the tree")
	require.Regexp(t, `replay from snapshot\.[0-9a-f]+: (no txns after it|\d+ txns applied .* all equal)`, out)
}

// TestDatadirVerifyDamage: copies of ZooKeeper's standalone directory with
// a flipped byte in a snapshot, a TxnDigest changed (and the record
// resealed, so only the digest tells), and the log file after the newest
// snapshot's zxid missing: each exits 1 naming the file and the offset.
func TestDatadirVerifyDamage(t *testing.T) {
	damaged := func(t *testing.T, damage func(v2 string)) (int, string) {
		dir := t.TempDir()
		require.NoError(t, os.CopyFS(dir, os.DirFS(filepath.Join(zkFixtures, "standalone"))))
		damage(filepath.Join(dir, "version-2"))
		return verifyOut(t, dir)
	}
	t.Run("snapshot byte", func(t *testing.T) {
		code, out := damaged(t, func(v2 string) {
			p := filepath.Join(v2, "snapshot.13")
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			b[len(b)/2] ^= 0x20
			require.NoError(t, os.WriteFile(p, b, 0o644))
		})
		require.Equal(t, 1, code, out)
		require.Regexp(t, `snapshot\.13: PROBLEM: .*offset \d+`, out)
	})
	t.Run("TxnDigest", func(t *testing.T) {
		code, out := damaged(t, func(v2 string) {
			// log.21's second record (0x22, a delete; 0x21 is an error txn,
			// which carries no digest) at offset 65: checksum, length, the
			// txn ending in its TxnDigest, 'B'.
			resealDigest(t, filepath.Join(v2, "log.21"), 65)
		})
		require.Equal(t, 1, code, out)
		require.Contains(t, out, "PROBLEM: log.21 offset 65: txn 0x22 carries TxnDigest")
		require.NotContains(t, out, "checksum")
	})
	t.Run("TxnDigest before the newest snapshot", func(t *testing.T) {
		code, out := damaged(t, func(v2 string) {
			resealDigest(t, filepath.Join(v2, "log.a"), 16) // 0xa, a setData
		})
		require.Equal(t, 1, code, out)
		require.Contains(t, out, "PROBLEM: log.a offset 16: txn 0xa carries TxnDigest")
	})
	t.Run("no snapshot: replayed from the empty tree", func(t *testing.T) {
		code, out := damaged(t, func(v2 string) {
			for _, f := range []string{"snapshot.1f", "snapshot.13", "snapshot.12", "snapshot.8", "snapshot.0"} {
				require.NoError(t, os.Remove(filepath.Join(v2, f)))
			}
		})
		require.Equal(t, 0, code, out)
		require.Contains(t, out, "replay from the empty tree: 38 txns applied 0x1..0x26, 36 digests compared, all equal")
	})
	t.Run("log after the snapshot missing", func(t *testing.T) {
		code, out := damaged(t, func(v2 string) {
			require.NoError(t, os.Remove(filepath.Join(v2, "log.14")))
		})
		require.Equal(t, 1, code, out)
		require.Contains(t, out, "PROBLEM: log.21 offset 16: the log goes on from snapshot.1f with zxid 0x21: txns 0x20..0x20 are in neither")
	})
	t.Run("digest of a fuzzy snapshot never reached", func(t *testing.T) {
		code, out := damaged(t, func(v2 string) {
			for _, f := range []string{"snapshot.1f", "snapshot.13", "snapshot.12", "log.a", "log.14", "log.21"} {
				require.NoError(t, os.Remove(filepath.Join(v2, f)))
			}
			// log.1 holds 0x1..0x9: cut it after 0x8, before the digest's 0x9.
			b, err := os.ReadFile(filepath.Join(v2, "log.1"))
			require.NoError(t, err)
			off := 16
			for i := 0; i < 8; i++ {
				off += 12 + int(binary.BigEndian.Uint32(b[off+8:off+12])) + 1
			}
			require.NoError(t, os.WriteFile(filepath.Join(v2, "log.1"), b[:off], 0o644))
		})
		require.Equal(t, 1, code, out)
		require.Contains(t, out, "PROBLEM: 0 txns applied; the log ends before zxid 0x9, whose digest snapshot.8 recorded")
	})
}

// resealDigest adds one to the TxnDigest of the log record at off (its
// last 8 bytes of txn: checksum, length, txn, 'B') and reseals it, so only
// the digest tells.
func resealDigest(t *testing.T, path string, off int) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	n := int(binary.BigEndian.Uint32(b[off+8 : off+12]))
	data := b[off+12 : off+12+n]
	d := data[n-8:]
	binary.BigEndian.PutUint64(d, binary.BigEndian.Uint64(d)+1)
	binary.BigEndian.PutUint64(b[off:off+8], uint64(adler32.Checksum(data)))
	require.NoError(t, os.WriteFile(path, b, 0o644))
}
