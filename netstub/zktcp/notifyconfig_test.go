package zktcp

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/netstub/zklink"
)

// notifyBook knows servers 1 to 3.
func notifyBook(id int64) (zklink.Member, bool) {
	if id < 1 || id > 3 {
		return zklink.Member{}, false
	}
	return zklink.Member{ID: id, Host: "127.0.0.1", QuorumPort: 2000 + int(id), ElectionPort: 3000 + int(id), ClientAddr: "127.0.0.1:4000"}, true
}

// A notification carries the configuration the engine put in it, not the
// one the server started with: a server that missed a reconfig while it
// was down learns it from the others' answers (zab's learnConfig) and can
// count their votes. The faults harness's reconfig mode found a follower,
// cut off from its removed leader before the COMMITANDACTIVATE, looking
// for good: the others' notifications still carried their startup
// configuration, in which the survivors were no quorum.
func TestZKTCPNotificationCarriesTheEnginesConfig(t *testing.T) {
	static := zklink.ConfigString([]zklink.Member{
		{ID: 1, Host: "127.0.0.1", QuorumPort: 2001, ElectionPort: 3001},
		{ID: 2, Host: "127.0.0.1", QuorumPort: 2002, ElectionPort: 3002},
	}, 0)
	ts := clusterWith(t, 2, func(c *Config) { c.Config, c.Book = static, notifyBook })
	active := zab.Membership{Version: 0x500000007, Voters: []int64{1, 2}, Observers: []int64{3}}
	v := zab.Vote{Leader: 2, Zxid: 0x500000009, PeerEpoch: 5, Round: 3, State: zab.Following}
	ts[0].Send(zab.Message{Type: zab.MsgNotification, To: 2, Vote: v, Payload: zab.AppendConfigs(nil, active, nil)})
	m := recv(t, ts[1], zab.MsgNotification)
	for m.Vote != v {
		m = recv(t, ts[1], zab.MsgNotification)
	}
	got, pending, err := zab.DecodeConfigs(m.Payload)
	require.NoError(t, err)
	require.Nil(t, pending, "ZooKeeper's record has no pending configuration")
	require.Equal(t, active, got)

	// A configuration the book cannot print: the startup one, rather
	// than no notification at all.
	unknown := zab.Membership{Version: 0x600000001, Voters: []int64{1, 2, 9}}
	v.Round++
	ts[0].Send(zab.Message{Type: zab.MsgNotification, To: 2, Vote: v, Payload: zab.AppendConfigs(nil, unknown, nil)})
	m = recv(t, ts[1], zab.MsgNotification)
	for m.Vote != v {
		m = recv(t, ts[1], zab.MsgNotification)
	}
	got, _, err = zab.DecodeConfigs(m.Payload)
	require.NoError(t, err)
	require.Equal(t, int64(0), got.Version)
	require.Equal(t, []int64{1, 2}, got.Voters)
}
