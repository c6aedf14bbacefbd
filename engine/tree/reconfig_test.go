package tree

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/proto"
)

// A reconfig txn is ZooKeeper's type 16 SetDataTxn on /zookeeper/config,
// version -1; only a super user may write it; applying it sets the node
// (dataVersion -1, mzxid = its zxid), fires the node's data watches and
// answers with the data and Stat.
func TestReconfigTxn(t *testing.T) {
	super := DigestID("super", "admin")
	h := newHarness(t, Options{SuperDigest: super, ConfigData: "server.1=h:1:2:participant\nversion=0"})
	root := Caller{SessionID: 3, Auth: []proto.Id{{Scheme: "digest", ID: super}}}
	user := Caller{SessionID: 4, Auth: []proto.Id{{Scheme: "digest", ID: DigestID("u", "p")}}}
	cfg := []byte("server.1=h:1:2:participant\nserver.2=h:3:4:participant\nversion=200000005")

	h.zxid++
	refused := h.tr.PrepareReconfig(Txn{Zxid: h.zxid, SessionID: 4, Time: h.now}, user, cfg)
	require.Equal(t, proto.OpError, refused.Type)
	require.Equal(t, proto.ErrNoAuth, refused.Err)
	h.tr.Apply(refused)

	_, code := h.tr.Read(anyone, 9, proto.OpGetData, &proto.GetDataRequest{Path: ConfigPath, Watch: true})
	require.Equal(t, proto.ErrOK, code)
	h.zxid++
	txn := h.tr.PrepareReconfig(Txn{Zxid: h.zxid, SessionID: 3, Cxid: 7, Time: h.now}, root, cfg)
	require.Equal(t, proto.OpReconfig, txn.Type)
	b := txn.Marshal()
	require.Equal(t, int32(16), int32(b[txnHeaderSize-1]), "TxnHeader type 16")
	back, err := UnmarshalTxn(b)
	require.NoError(t, err)
	require.Equal(t, txn, back)
	require.Equal(t, int32(-1), back.Version)

	res := h.tr.Apply(back)
	require.Equal(t, proto.ErrOK, res.Err)
	resp, ok := res.Resp.(*proto.GetDataResponse)
	require.True(t, ok)
	require.Equal(t, cfg, resp.Data)
	require.Equal(t, int32(-1), resp.Stat.Version)
	require.Equal(t, h.zxid, resp.Stat.Mzxid)
	require.Len(t, res.Events, 1)
	require.Equal(t, proto.EventNodeDataChanged, res.Events[0].Event.Type)
	data, version := h.tr.ConfigNode()
	require.Equal(t, cfg, data)
	require.Equal(t, h.zxid, version)
}

// With reconfig on, a snapshot whose /zookeeper/config is newer than this
// server's configuration keeps it; otherwise the server's own wins
// (ZOOKEEPER-2819).
func TestSnapshotKeepsNewerConfigOnlyWithReconfig(t *testing.T) {
	newer := "server.1=h:1:2:participant\nserver.2=h:3:4:participant\nversion=100000002"
	src := New(Options{ConfigData: "server.1=h:1:2:participant\nversion=0", ReconfigEnabled: true})
	src.Apply(&Txn{Zxid: 0x100000002, Type: proto.OpReconfig, Path: ConfigPath, Data: []byte(newer), Version: -1})
	for _, enabled := range []bool{false, true} {
		dst := New(Options{ConfigData: "server.1=h:1:2:participant\nversion=0", ReconfigEnabled: enabled})
		dst.opts.ConfigData = "server.1=h:1:2:participant\nversion=0"
		dst.putNode(configPath, src.node(configPath))
		dst.initConfigNode()
		data, _ := dst.ConfigNode()
		if enabled {
			require.Equal(t, newer, string(data))
		} else {
			require.Equal(t, "server.1=h:1:2:participant\nversion=0", string(data))
		}
	}
}
