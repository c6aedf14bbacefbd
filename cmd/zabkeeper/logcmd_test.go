package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const zkFixtures = "../../disk/testdata/zk38"

// TestLogDumpZooKeeperLog dumps a log Apache ZooKeeper 3.8 wrote: one line
// per txn, as many as ZooKeeper's TxnLogToolkit shows, and the zero fill
// after them.
func TestLogDumpZooKeeperLog(t *testing.T) {
	file := filepath.Join(zkFixtures, "standalone/version-2/log.a")
	var out, errb bytes.Buffer
	require.Equal(t, 0, run([]string{"log", "dump", file}, &out, &errb), errb.String())
	toolkit, err := os.ReadFile(file + ".toolkit.txt")
	require.NoError(t, err)
	require.Equal(t, strings.Count(string(toolkit), " zxid 0x"), strings.Count(out.String(), " zxid 0x"))
	require.Contains(t, out.String(), "zxid 0xc multi [check /fx version=3; create /fx/m")
	require.Contains(t, out.String(), "closeSession ephemerals=[/fx/e2]")
	require.Contains(t, out.String(), "10 txns, data ends at offset 1023 of 16400: zero fill")

	require.Equal(t, 2, run([]string{"log"}, &out, &errb))
	require.Equal(t, 1, run([]string{"log", "dump", filepath.Join(t.TempDir(), "log.1")}, &out, &errb))
}

// TestDatadirVerify verifies ZooKeeper's data directories, then one with a
// log file missing (a gap no snapshot covers) and one with a corrupt
// record.
func TestDatadirVerify(t *testing.T) {
	var out, errb bytes.Buffer
	require.Equal(t, 0, run([]string{"datadir", "verify", filepath.Join(zkFixtures, "standalone")}, &out, &errb), out.String()+errb.String())
	require.Contains(t, out.String(), "log.21: 6 txns 0x21..0x26")
	out.Reset()
	require.Equal(t, 0, run([]string{"datadir", "verify", "--data-log-dir", filepath.Join(zkFixtures, "datalogdir/logs"),
		filepath.Join(zkFixtures, "datalogdir/data")}, &out, &errb), out.String()+errb.String())

	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, os.DirFS(filepath.Join(zkFixtures, "standalone"))))
	v2 := filepath.Join(dir, "version-2")
	require.NoError(t, os.Remove(filepath.Join(v2, "log.14")))
	for _, s := range []string{"snapshot.1f"} {
		require.NoError(t, os.Remove(filepath.Join(v2, s)))
	}
	out.Reset()
	require.Equal(t, 1, run([]string{"datadir", "verify", dir}, &out, &errb), out.String())
	require.Contains(t, out.String(), "PROBLEM: zxid 0x21 at offset 16 follows 0x13: txns are missing")

	b, err := os.ReadFile(filepath.Join(v2, "log.21"))
	require.NoError(t, err)
	b[16+12+40] ^= 1
	require.NoError(t, os.WriteFile(filepath.Join(v2, "log.21"), b, 0o644))
	out.Reset()
	require.Equal(t, 1, run([]string{"datadir", "verify", dir}, &out, &errb), out.String())
	require.Contains(t, out.String(), "checksum")
}
