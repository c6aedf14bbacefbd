package engine

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/proto"
)

// TestSessionPasswordMatchesZooKeeper checks SessionPassword against values
// printed by Java's new Random(id ^ 0xB3415C00L).nextBytes(new byte[16]),
// which is ZooKeeperServer.generatePasswd.
func TestSessionPasswordMatchesZooKeeper(t *testing.T) {
	for _, c := range []struct {
		id   uint64
		want string
	}{
		{0, "f22acd4a97e69d6d20a49bb638eadb38"},
		{0x1, "054cc74a37327db215e702e20c73f005"},
		{0x1000000abcdef, "f72266553fc5708d7402a3dbe30f0a08"},
		{0x100000000000001, "054cc74a37327db215e702e20c73f005"}, // Random keeps 48 seed bits
		{0x7fffffffffffffff, "20f62cb5648dc2d771471c8a2486a9ee"},
		{0xffffffffffffffff, "20f62cb5648dc2d771471c8a2486a9ee"},
		{0x0a7d3b4c5e000001, "059a86f2376805e715e585680c99ea23"},
	} {
		if got := hex.EncodeToString(SessionPassword(int64(c.id))); got != c.want {
			t.Errorf("SessionPassword(%#x) = %s, ZooKeeper's is %s", c.id, got, c.want)
		}
	}
}

// TestSessionFromSnapshotReconnectsWithDerivedPassword: a session restored
// from a snapshot (ZooKeeper's keep no password) accepts its client back
// with the password ZooKeeper gave it, and refuses any other.
func TestSessionFromSnapshotReconnectsWithDerivedPassword(t *testing.T) {
	const sid = int64(0x100006713960000) // a session id Apache ZooKeeper made
	tr := tree.New(tree.Options{})
	var buf bytes.Buffer
	_, err := tr.Snapshot().Write(&buf, []tree.SnapshotSession{{ID: sid, Timeout: 2000}})
	require.NoError(t, err)
	n, err := Restore(testConfig(), Durable{Snapshot: buf.Bytes()})
	require.NoError(t, err)
	h := &harness{t: t, now: 1_700_000_000_000, n: n}
	h.collect()
	require.Equal(t, 1, n.SessionCount())

	try := func(c ConnID, passwd []byte) *proto.ConnectResponse {
		h.n.Connect(ConnectRequest{Conn: c, Req: &proto.ConnectRequest{TimeOut: 2000, SessionID: sid, Passwd: passwd}, ClientIP: "127.0.0.1", Time: h.now})
		h.persistAll()
		for _, o := range h.take(c) {
			if o.Kind == OutConnect {
				return o.Connect
			}
		}
		t.Fatal("no handshake reply")
		return nil
	}
	bad := try(1, SessionPassword(sid+1))
	require.Zero(t, bad.SessionID, "another password is refused")
	good := try(2, SessionPassword(sid))
	require.Equal(t, sid, good.SessionID)
	require.Positive(t, good.TimeOut)
	require.Equal(t, SessionPassword(sid), good.Passwd)
}
