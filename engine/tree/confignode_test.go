package tree

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/proto"
)

// getConfig reads /zookeeper/config as a client does.
func getConfig(t *testing.T, tr *Tree) *proto.GetDataResponse {
	t.Helper()
	resp, code := tr.Read(Caller{}, 0, proto.OpGetData, &proto.GetDataRequest{Path: configPath})
	require.Equal(t, proto.ErrOK, code)
	return resp.(*proto.GetDataResponse)
}

// TestConfigNodeAsZooKeeper: an ensemble's /zookeeper/config holds the
// configuration with ZooKeeper 3.8's Stat (mzxid = the version,
// dataVersion -1, aclVersion -1, the rest zero: what zkCli's get -s shows
// on a real ensemble but for mtime, its wall clock), and a standalone
// server's stays empty with a zero Stat.
func TestConfigNodeAsZooKeeper(t *testing.T) {
	const data = "server.1=127.0.0.1:2888:3888:participant\nversion=100000000"
	tr := New(Options{ConfigData: data, ConfigVersion: 0x100000000})
	got := getConfig(t, tr)
	require.Equal(t, data, string(got.Data))
	require.Equal(t, proto.Stat{Mzxid: 0x100000000, Version: -1, Aversion: -1, DataLength: int32(len(data))}, got.Stat)

	alone := getConfig(t, New(Options{}))
	require.Equal(t, []byte{}, alone.Data)
	require.Equal(t, proto.Stat{Aversion: -1}, alone.Stat)

	// The digest skips /zookeeper/, as ZooKeeper's DigestCalculator does:
	// servers whose configurations differ (a mixed ensemble during a swap)
	// still agree on it.
	require.Equal(t, New(Options{}).Digest(), tr.Digest())
}

// TestConfigNodeAfterSnapshot: a snapshot (a leader's SNAP, or one written
// with another configuration) never brings its /zookeeper/config along: the
// loading server puts its own back, as ZooKeeper does after loading and
// after every sync (ZOOKEEPER-2819). A snapshot without the node (from
// before ZooKeeper 3.5) gets it.
func TestConfigNodeAfterSnapshot(t *testing.T) {
	leader := New(Options{ConfigData: "server.1=a:1:2:participant\nversion=0"})
	var buf bytes.Buffer
	_, err := leader.Snapshot().Write(&buf, nil)
	require.NoError(t, err)

	const mine = "server.1=b:1:2:participant\nversion=5"
	ls, err := ReadSnapshot(bytes.NewReader(buf.Bytes()), Options{ConfigData: mine, ConfigVersion: 5}, 0)
	require.NoError(t, err)
	got := getConfig(t, ls.Tree)
	require.Equal(t, mine, string(got.Data))
	require.Equal(t, int64(5), got.Stat.Mzxid)
	require.Equal(t, int32(-1), got.Stat.Version)
	require.Equal(t, leader.Digest(), ls.Tree.Digest())

	// Standalone: the snapshot's node is kept as it is (ZooKeeper's
	// standalone server never sets it).
	ls, err = ReadSnapshot(bytes.NewReader(buf.Bytes()), Options{}, 0)
	require.NoError(t, err)
	require.Equal(t, "server.1=a:1:2:participant\nversion=0", string(getConfig(t, ls.Tree).Data))

	old := New(Options{})
	old.removeNode(configPath)
	buf.Reset()
	_, err = old.Snapshot().Write(&buf, nil)
	require.NoError(t, err)
	ls, err = ReadSnapshot(bytes.NewReader(buf.Bytes()), Options{ConfigData: mine, ConfigVersion: 5}, 0)
	require.NoError(t, err)
	got = getConfig(t, ls.Tree)
	require.Equal(t, mine, string(got.Data))
	require.Equal(t, proto.Stat{Mzxid: 5, Version: -1, Aversion: -1, DataLength: int32(len(mine))}, got.Stat)
	resp, code := ls.Tree.Read(Caller{}, 0, proto.OpGetChildren, &proto.GetChildrenRequest{Path: procPath})
	require.Equal(t, proto.ErrOK, code)
	require.ElementsMatch(t, []string{"quota", "config"}, resp.(*proto.GetChildrenResponse).Children)
}
