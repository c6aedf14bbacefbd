package main_test

import (
	"context"
	be "encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"
)

// lastLogSegment returns the path of the newest txn log segment under dir.
func lastLogSegment(t *testing.T, dir string) string {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, "data", "version-2", "log.*"))
	require.NoError(t, err)
	require.NotEmpty(t, segs)
	sort.Slice(segs, func(i, j int) bool {
		a, b := filepath.Base(segs[i]), filepath.Base(segs[j])
		return len(a) < len(b) || len(a) == len(b) && a < b
	})
	return segs[len(segs)-1]
}

// lastRecordOffset walks a segment in ZooKeeper's format (16-byte header,
// then records of a long Adler32, an int length, the txn and 'B', then the
// zero fill of preallocation) to its final record.
func lastRecordOffset(t *testing.T, b []byte) int {
	t.Helper()
	off, last := 16, -1
	for off+12 <= len(b) {
		n := int(be.BigEndian.Uint32(b[off+8:]))
		if n == 0 {
			break // the zero fill
		}
		require.Equal(t, byte('B'), b[off+12+n], "end of the record at %d", off)
		last = off
		off += 13 + n
	}
	require.GreaterOrEqual(t, last, 16)
	return last
}

// exitCodeWithin is exitCode for a process that must end by itself within
// d; it is killed and the test fails if it does not.
func exitCodeWithin(t *testing.T, d time.Duration, bin string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	require.NoError(t, ctx.Err(), "%s did not exit within %v:\n%s", bin, d, out)
	if err == nil {
		return 0, string(out)
	}
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee), "run %s: %v", bin, err)
	return ee.ExitCode(), string(out)
}

// A complete final record with a flipped payload byte is corruption: the
// restarted server refuses to start (rather than truncate it as torn and
// lose an acknowledged znode) and says how to recover; run once with
// --truncate-corrupt-tail it drops exactly that record, logging it, and
// serves everything before it (issue 8 item 6).
func TestCorruptFinalRecordRefusesStart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	setup := newDataSetup(t)
	srv := start(t, setup)
	c := connectZK(t, setup.addr)
	_, err := c.Create("/kept", []byte("v"), 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
	_, err = c.Create("/last", []byte("payload-of-the-last-record"), 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err, "acknowledged")
	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGKILL))
	srv.waitExit(t, 10*time.Second)
	c.Close()

	seg := lastLogSegment(t, setup.dir)
	b, err := os.ReadFile(seg)
	require.NoError(t, err)
	off := lastRecordOffset(t, b)
	at := strings.Index(string(b[off:]), "payload-of-the-last-record")
	require.Positive(t, at, "the create of /last is the final record")
	b[off+at+3] ^= 0x20 // a payload byte
	require.NoError(t, os.WriteFile(seg, b, 0o644))

	code, out := exitCodeWithin(t, crashWait, binary(t), "server", "--config", setup.cfgPath)
	require.Equal(t, 1, code, "refuses to start:\n%s", out)
	require.Contains(t, out, "corrupt final record")
	require.Contains(t, out, "--truncate-corrupt-tail", "says how to recover")
	after, err := os.ReadFile(seg)
	require.NoError(t, err)
	require.Equal(t, b, after, "nothing was cut")

	var logOut syncBuffer
	startBinary(t, setup, binary(t), &logOut, "--truncate-corrupt-tail")
	require.Contains(t, logOut.String(), "dropping a corrupt final record")
	c2 := connectZK(t, setup.addr)
	data, _, err := c2.Get("/kept")
	require.NoError(t, err)
	require.Equal(t, "v", string(data))
	ok, _, err := c2.Exists("/last")
	require.NoError(t, err)
	require.False(t, ok, "the dropped record's create is gone, as the repair said")
	_, err = c2.Create("/after-repair", nil, 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
	require.True(t, strings.Contains(logOut.String(), "level=ERROR"), "the drop is logged at error level")
}
