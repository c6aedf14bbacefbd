package tree

import (
	"slices"

	"github.com/zabkeeper/zabkeeper/proto"
)

// Reconfig txns (ZooKeeper's type 16): a SetDataTxn on /zookeeper/config
// whose data is the new configuration's QuorumVerifier string and whose
// version is -1, so a log with one stays one ZooKeeper applies. Applying it
// is a setData of the node with data version -1 and mzxid the txn's zxid,
// which is the configuration's version; its watchers get NodeDataChanged,
// and the reply is a GetDataResponse of the new data and Stat (ZooKeeper's
// FinalRequestProcessor).

// ConfigPath is /zookeeper/config, the node reconfig txns write.
const ConfigPath = configPath

// PrepareReconfig turns a validated reconfig into its txn, checking last,
// as ZooKeeper's PrepRequestProcessor does, WRITE on /zookeeper/config
// (world:anyone READ by default, so only a super user passes). hdr supplies
// Zxid, SessionID, Cxid and Time; config is the new configuration's string.
// An error txn (NoAuth) when the check fails.
func (t *Tree) PrepareReconfig(hdr Txn, caller Caller, config []byte) *Txn {
	txn := &Txn{Zxid: hdr.Zxid, SessionID: hdr.SessionID, Cxid: hdr.Cxid, Time: hdr.Time}
	n, children := t.lookup(configPath)
	if n == nil {
		txn.Type, txn.Err = proto.OpError, proto.ErrNoNode
		return txn
	}
	if code := t.checkACL(caller.Auth, n.acl(), proto.PermWrite); code != proto.ErrOK {
		txn.Type, txn.Err = proto.OpError, code
		return txn
	}
	txn.Type, txn.Path, txn.Data, txn.Version = proto.OpReconfig, configPath, slices.Clone(config), -1
	t.record(hdr.Zxid, configPath, n.withData(txn.Data, -1, hdr.Zxid, hdr.Time), children)
	return txn
}

// applyReconfig applies a reconfig txn and makes its configuration the one
// later snapshot loads keep (initConfigNode).
func (a *applier) applyReconfig(txn *Txn) (proto.Record, proto.OpCode, proto.ErrCode) {
	t := a.t
	n := t.node(configPath)
	if n == nil {
		return nil, proto.OpReconfig, proto.ErrNoNode
	}
	n = n.withData(txn.Data, -1, a.zxid, a.time)
	t.putNode(configPath, n)
	t.opts.ConfigData, t.opts.ConfigVersion = string(txn.Data), a.zxid
	a.events, _ = t.fire(true, configPath, proto.EventNodeDataChanged, a.zxid, n.acl(), nil, a.events)
	return &proto.GetDataResponse{Data: n.data, Stat: t.statOf(configPath, n)}, proto.OpReconfig, proto.ErrOK
}

// ConfigNode returns /zookeeper/config's data and mzxid (the version of
// the configuration it holds).
func (t *Tree) ConfigNode() (data []byte, version int64) {
	n := t.node(configPath)
	if n == nil {
		return nil, 0
	}
	return n.data, n.mzxid
}

// SetConfigNode makes data, under version, /zookeeper/config's content and
// the configuration later snapshot loads keep, as ZooKeeper's
// initConfigInZKDatabase does for a configuration that became active
// without a txn (the first leader's version, ZOOKEEPER-1783): mzxid =
// version, dataVersion -1, no watch fired.
func (t *Tree) SetConfigNode(data string, version int64) {
	t.opts.ConfigData, t.opts.ConfigVersion = data, version
	t.initConfigNode()
}
