package server_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"
)

// bigSessionTimeout is the session timeout of connectBig: go-zk gives up
// on a reply after two thirds of it, and tens of megabytes through the
// race detector on two busy cores can take a while.
const bigSessionTimeout = 120 * time.Second

// connectBig opens a go-zk session whose buffers carry payloads of n bytes.
// The server's maxSessionTimeout must allow bigSessionTimeout.
func connectBig(t *testing.T, addr string, n int) *zk.Conn {
	t.Helper()
	c, _, err := zk.Connect([]string{addr}, bigSessionTimeout, zk.WithLogger(zkLogger{newTestLog(t)}),
		zk.WithMaxBufferSize(n+1<<20), zk.WithMaxConnBufferSize(n+1<<20))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	waitFor(t, "session", func() bool { return c.State() == zk.StateHasSession })
	return c
}

// bigData is n bytes that are not all alike.
func bigData(n int) []byte {
	b := bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n]
	b[n-1] = '!'
	return b
}

// A znode as large as jute.maxbuffer allows survives a snapshot and a
// restart: every reader (snapshot loader, log reader) accepts what the
// write side accepted (issue 8 item 4: a 5 MB node under jute.maxbuffer=8 MiB
// was acknowledged and snapshotted, then the restart failed with "corrupt
// snapshot: node record of 5000112 bytes").
func TestLargeNodeSurvivesSnapshotAndRestart(t *testing.T) {
	cfg := testConfig(t)
	cfg.JuteMaxBuffer = 8 << 20
	cfg.MaxSessionTimeout = int(bigSessionTimeout.Milliseconds())
	cfg.SnapCount = 2 // a snapshot after every txn or so
	const size = 5_000_000
	data := bigData(size)
	addr, stop := startServerCfg(t, cfg)
	c := connectBig(t, addr, size)
	_, err := c.Create("/big", data, 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
	_, err = c.Create("/after", []byte("x"), 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
	waitFor(t, "a snapshot holding the big node", func() bool { return len(snapshotFiles(t, cfg.DataDir)) > 0 })
	c.Close()
	stop()

	addr, _ = startServerCfg(t, cfg)
	c = connectBig(t, addr, size)
	got, st, err := c.Get("/big")
	require.NoError(t, err)
	require.Equal(t, int32(size), st.DataLength)
	require.True(t, bytes.Equal(data, got), "the big node's data after restart")
	_, _, err = c.Get("/after")
	require.NoError(t, err)
}

// A create larger than the txn log's old fixed record limit (64 MiB) under
// jute.maxbuffer=100 MB is stored, survives a restart, and leaves the
// server serving (issue 8 item 5: the server exited "exceed the record limit
// 67108856" and the same client could crash it again after the restart).
func TestCreateBeyondOldRecordLimit(t *testing.T) {
	cfg := testConfig(t)
	cfg.JuteMaxBuffer = 104857600
	cfg.MaxSessionTimeout = int(bigSessionTimeout.Milliseconds())
	const size = 70_000_000
	data := bigData(size)
	addr, stop := startServerCfg(t, cfg)
	c := connectBig(t, addr, size)
	_, err := c.Create("/huge", data, 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
	_, err = c.Create("/after", []byte("x"), 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err, "the server goes on serving")
	c.Close()
	stop()

	addr, _ = startServerCfg(t, cfg)
	c = connectBig(t, addr, size)
	got, _, err := c.Get("/huge")
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got), "the huge node's data after restart")
}

// A request within jute.maxbuffer whose txn would outgrow proto.TxnLimit of
// it — a create with an "auth" ACL, expanded to every id the session added —
// is refused with BadArguments before it is proposed; the server and the
// session go on (issue 8 item 5: what the log and the peer links cannot
// hold is refused at the door, never half-written).
func TestTxnOverLimitRefusedAtTheDoor(t *testing.T) {
	addr, _ := startServer(t, nil) // default jute.maxbuffer: txns up to 3 MiB
	c := connect(t, addr)
	user := strings.Repeat("u", 30_000)
	for i := 0; i < 110; i++ { // 110 ids of 30 KB: a 3.3 MB ACL once expanded
		require.NoError(t, c.AddAuth("digest", []byte(fmt.Sprintf("%s%03d:pw", user, i))))
	}
	_, err := c.Create("/expanded", nil, 0, []zk.ACL{{Perms: zk.PermAll, Scheme: "auth"}})
	require.ErrorIs(t, err, zk.ErrBadArguments)
	ok, _, err := c.Exists("/expanded")
	require.NoError(t, err)
	require.False(t, ok)
	_, err = c.Create("/fine", []byte("x"), 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err, "the session and the server go on")
}
