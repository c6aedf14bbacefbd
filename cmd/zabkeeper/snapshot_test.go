package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSnapshotDump prints a snapshot Apache ZooKeeper 3.8 wrote (a fixture
// of the disk package) and refuses a damaged one.
func TestSnapshotDump(t *testing.T) {
	for fixture, name := range map[string]string{
		"plain.snapshot.13":         "snapshot.13",
		"snappy.snapshot.13.snappy": "snapshot.13.snappy",
	} {
		raw, err := os.ReadFile(filepath.Join("..", "..", "disk", "testdata", "zk38", fixture))
		require.NoError(t, err)
		p := filepath.Join(t.TempDir(), name)
		require.NoError(t, os.WriteFile(p, raw, 0o644))
		var out, errOut bytes.Buffer
		require.Equal(t, 0, run([]string{"snapshot", "dump", "-d", p}, &out, &errOut), errOut.String())
		for _, want := range []string{
			"ZNode Details (count=",
			"----\n/a/b/c\n",
			"  acl = digest:u:", // the digest ACL on /acl
			"  data = \"third\"",
			"Session Details (sid, timeout, ephemeralCount):\n0x",
		} {
			require.Contains(t, out.String(), want)
		}
		require.Contains(t, out.String(), "Last zxid: 0x13")
		require.Contains(t, out.String(), "matches the tree")

		if name == "snapshot.13" {
			raw[100] ^= 1
			require.NoError(t, os.WriteFile(p, raw, 0o644))
			out.Reset()
			errOut.Reset()
			require.Equal(t, 1, run([]string{"snapshot", "dump", p}, &out, &errOut))
			require.Contains(t, errOut.String(), p)
			require.Contains(t, errOut.String(), "checksum")
		}
	}
	var out, errOut bytes.Buffer
	require.Equal(t, 2, run([]string{"snapshot"}, &out, &errOut))
}
