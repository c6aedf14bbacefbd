package engine

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto"
)

func TestParseConfigDataRoundTrip(t *testing.T) {
	data := "server.1=127.0.0.1:2889:3889:participant;0.0.0.0:2181\n" +
		"server.2=[::1]:2890:3890:observer;[::1]:2182\n" +
		"server.3=h3:2891:3891:participant\nversion=10000000a"
	members, version, err := ParseConfigData(data)
	require.NoError(t, err)
	require.Equal(t, int64(0x10000000a), version)
	require.Equal(t, []Member{
		{ID: 1, Host: "127.0.0.1", QuorumPort: 2889, ElectionPort: 3889, ClientHost: "0.0.0.0", ClientPort: 2181},
		{ID: 2, Host: "::1", QuorumPort: 2890, ElectionPort: 3890, Observer: true, ClientHost: "::1", ClientPort: 2182},
		{ID: 3, Host: "h3", QuorumPort: 2891, ElectionPort: 3891},
	}, members)
	require.Equal(t, data, ConfigData(members, version))

	// Commas separate lines too (a reconfig's newMembers).
	members, _, err = ParseConfigData("server.1=a:1:2;3,server.2=b:1:2:observer;3")
	require.NoError(t, err)
	require.Len(t, members, 2)

	for name, bad := range map[string]string{
		"no equals":      "server.1",
		"twice":          "server.1=a:1:2\nserver.1=b:1:2",
		"bad port":       "server.1=a:1:x",
		"bad role":       "server.1=a:1:2:leader",
		"id 0":           "server.0=a:1:2",
		"id 256":         "server.256=a:1:2",
		"shared address": "server.1=a:1:2\nserver.2=a:2:3",
		"hierarchical":   "server.1=a:1:2\ngroup.1=1",
		"multi address":  "server.1=a:1:2|b:1:2",
		"bad version":    "server.1=a:1:2\nversion=xyz",
		"blank host":     "server.1=[ ]:1:2",
		"blank client":   "server.1=a:1:2;[ ]:3",
		"host with =":    "server.1=[a=b]:1:2",
	} {
		_, _, err := ParseConfigData(bad)
		require.ErrorIs(t, err, ErrBadConfig, name)
	}
}

func FuzzParseConfigData(f *testing.F) {
	f.Add("server.1=127.0.0.1:2889:3889:participant;0.0.0.0:2181\nversion=1")
	f.Add("server.2=[::1]:1:2:observer;[::1]:3,server.3=h:4:5")
	f.Fuzz(func(t *testing.T, data string) {
		members, version, err := ParseConfigData(data)
		if err != nil {
			return
		}
		// What parses prints and parses back to the same members.
		again, v2, err := ParseConfigData(ConfigData(members, version))
		require.NoError(t, err)
		require.Equal(t, version, v2)
		require.Equal(t, len(members), len(again))
	})
}

// reconfigCluster is a cluster of servers 1..3 with reconfig on,
// standaloneEnabled (ZooKeeper's default) and a super user.
func reconfigCluster(t *testing.T, enabled bool) *cluster {
	return newClusterWith(t, 3, func(cfg *Config) {
		cfg.ReconfigEnabled = enabled
		cfg.StandaloneEnabled = true
		cfg.Tree.SuperDigest = tree.DigestID("super", "admin")
		cfg.Tree.ConfigData = testConfigData(1, 2, 3)
	})
}

func testMember(id int64, observer bool) Member {
	return Member{ID: id, Host: "127.0.0.1", QuorumPort: 2888 + int(id), ElectionPort: 3888 + int(id),
		Observer: observer, ClientHost: "0.0.0.0", ClientPort: 2180 + int(id)}
}

func testConfigData(ids ...int64) string { return testConfigDataAt(0, ids...) }

func testConfigDataAt(version int64, ids ...int64) string {
	var ms []Member
	for _, id := range ids {
		ms = append(ms, testMember(id, false))
	}
	return ConfigData(ms, version)
}

// superConn connects conn to server id and authenticates it as super.
func (c *cluster) superConn(id int64, conn ConnID) {
	c.connect(id, conn)
	o := c.call(id, conn, 1, proto.OpAuth, &proto.AuthPacket{Scheme: "digest", Auth: []byte("super:admin")})
	require.Equal(c.t, proto.ErrOK, o.Header.Err)
}

func incremental(joining, leaving string, from int64) *proto.ReconfigRequest {
	return &proto.ReconfigRequest{JoiningServers: joining, LeavingServers: leaving, NewMembersNull: true, CurConfigID: from}
}

func TestReconfigDisabledAndStandalone(t *testing.T) {
	c := reconfigCluster(t, false)
	l := c.waitLeader()
	c.superConn(l, 7)
	o := c.call(l, 7, 2, proto.OpReconfig, incremental("", "3", -1))
	require.Equal(t, proto.ErrReconfigDisabled, o.Header.Err)

	alone := newClusterWith(t, 1, func(cfg *Config) { cfg.ReconfigEnabled, cfg.ServerID = true, 0 })
	alone.waitLeader()
	alone.connect(1, 7)
	o = alone.call(1, 7, 2, proto.OpReconfig, incremental("", "1", -1))
	require.Equal(t, proto.ErrUnimplemented, o.Header.Err)
}

// Bad input gets ZooKeeper's codes and changes nothing.
func TestReconfigBadInput(t *testing.T) {
	c := reconfigCluster(t, true)
	l := c.waitLeader()
	f := c.ids()[0]
	if f == l {
		f = c.ids()[1]
	}
	c.superConn(f, 7)
	c.connect(f, 8) // no super
	before := c.nodes[l].LastZxid()
	for i, tc := range []struct {
		name string
		req  *proto.ReconfigRequest
		want proto.ErrCode
	}{
		{"version", incremental("", "3", 0x12345), proto.ErrBadVersion},
		{"unknown leaving id", incremental("", "9", -1), proto.ErrBadArguments},
		{"leaving id twice", incremental("", "3,3", -1), proto.ErrBadArguments},
		{"leaving not a number", incremental("", "x", -1), proto.ErrBadArguments},
		{"joiner without client port", incremental("server.4=127.0.0.1:2892:3892", "", -1), proto.ErrBadArguments},
		{"joiner bad line", incremental("server.4=127.0.0.1:2892", "", -1), proto.ErrBadArguments},
		{"joiner twice", incremental("server.4=127.0.0.1:2892:3892;2184,server.4=127.0.0.1:2893:3893;2185", "", -1), proto.ErrBadArguments},
		{"joiner shares an address", incremental("server.4=127.0.0.1:2889:3892;2184", "", -1), proto.ErrBadArguments},
		{"one voter left", incremental("", "2,3", -1), proto.ErrBadArguments},
		{"no quorum of the new voters synced", &proto.ReconfigRequest{CurConfigID: -1,
			NewMembers: "server.1=127.0.0.1:2889:3889;2181,server.4=127.0.0.1:2892:3892;2184,server.5=127.0.0.1:2893:3893;2185"}, proto.ErrNewConfigNoQuorum},
		{"empty new members", &proto.ReconfigRequest{CurConfigID: -1}, proto.ErrBadArguments},
	} {
		o := c.call(f, 7, int32(10+i), proto.OpReconfig, tc.req)
		require.Equal(t, tc.want, o.Header.Err, tc.name)
	}
	o := c.call(f, 8, 2, proto.OpReconfig, incremental("", "3", -1))
	require.Equal(t, proto.ErrNoAuth, o.Header.Err, "only a super user may write /zookeeper/config")
	// The configuration is the initial one under the first leader's
	// NEWLEADER zxid (ZOOKEEPER-1783), as it was before these calls.
	v := zab.MakeZxid(zab.Epoch(before), 0)
	for _, id := range c.ids() {
		st := c.nodes[id].Status()
		require.Equal(t, v, st.ConfigVersion, "server %d", id)
		require.Zero(t, st.PendingConfig, "server %d", id)
		data, _ := c.nodes[id].Tree().ConfigNode()
		require.Equal(t, testConfigDataAt(v, 1, 2, 3), string(data))
	}
	// Each refused reconfig is an error txn, nothing else.
	require.Equal(t, before+12, c.nodes[l].LastZxid())
}

// An incremental reconfig through a follower: the reply is the new config
// and the node's Stat, the watch on /zookeeper/config fires, every server
// activates it at the same zxid and reports it (Ready.Config); then a
// second one races a first still in flight (ReconfigInProgress), and a
// non-incremental one restores the members.
func TestReconfigRemoveAndRestore(t *testing.T) {
	c := reconfigCluster(t, true)
	var changes []ConfigChange
	c.onConfig = func(id int64, ch ConfigChange) { changes = append(changes, ch) }
	l := c.waitLeader()
	f := c.ids()[0]
	if f == l {
		f = c.ids()[1]
	}
	c.superConn(f, 7)
	c.connect(f, 9)
	o := c.call(f, 9, 1, proto.OpGetData, &proto.GetDataRequest{Path: tree.ConfigPath, Watch: true})
	require.Equal(t, proto.ErrOK, o.Header.Err)

	var gone int64 = 3
	if l == 3 || f == 3 {
		gone = 6 - l - f
	}
	o = c.call(f, 7, 2, proto.OpReconfig, incremental("", itoa(gone), -1))
	require.Equal(t, proto.ErrOK, o.Header.Err)
	resp := o.Body.(*proto.GetDataResponse)
	z := o.Header.Zxid
	var rest []int64
	for _, id := range []int64{1, 2, 3} {
		if id != gone {
			rest = append(rest, id)
		}
	}
	require.Equal(t, testConfigDataAt(z, rest...), string(resp.Data))
	require.Equal(t, z, resp.Stat.Mzxid)
	require.Equal(t, int32(-1), resp.Stat.Version)
	events := 0
	for _, out := range c.take(f, 9) {
		if out.Kind == OutEvent {
			events++
		}
	}
	require.Equal(t, 1, events, "the config watch fired")
	for _, id := range c.ids() {
		require.Equal(t, z, c.nodes[id].Status().ConfigVersion, "server %d: %+v (leader %d, follower %d)", id, c.nodes[id].Status(), l, f)
		data, _ := c.nodes[id].Tree().ConfigNode()
		require.Equal(t, resp.Data, data)
	}
	// Before it, each server reported the first leader's version of the
	// initial configuration (ZOOKEEPER-1783: NEWLEADER's zxid), once.
	var activations []ConfigChange
	initial := map[int64]int{}
	for _, ch := range changes {
		if ch.Version == z {
			activations = append(activations, ch)
			continue
		}
		require.Equal(t, zab.MakeZxid(zab.Epoch(z), 0), ch.Version, "%+v", ch)
		require.Len(t, ch.Members, 3)
		initial[ch.Version]++
	}
	require.LessOrEqual(t, initial[zab.MakeZxid(zab.Epoch(z), 0)], 3)
	require.Len(t, activations, 3, "every server reports the activation once")
	for _, ch := range activations {
		require.Len(t, ch.Members, 2)
	}

	// A reconfig whose quorum cannot ack is in flight; another gets
	// ReconfigInProgress.
	c.superConn(l, 10)
	for _, id := range rest {
		if id != l {
			c.hold(id)
		}
	}
	c.nodes[f].Submit(Request{Conn: 7, Xid: 3, Op: proto.OpReconfig, Body: incremental(fmt.Sprintf("server.%d=127.0.0.1:%d:%d:observer;%d", gone, 2888+gone, 3888+gone, 2180+gone), "", z), Time: c.now})
	c.settle()
	require.NotZero(t, c.nodes[l].Status().PendingConfig)
	// Its error txn, as ZooKeeper's, commits in turn.
	c.nodes[l].Submit(Request{Conn: 10, Xid: 2, Op: proto.OpReconfig, Body: incremental("", "", -1), Time: c.now})
	c.settle()
	for _, id := range rest {
		if id != l {
			c.release(id)
		}
	}
	c.settle()
	lo := c.take(l, 10)
	require.Len(t, lo, 1)
	require.Equal(t, proto.ErrReconfigInProgress, lo[0].Header.Err)
	outs := c.take(f, 7)
	require.NotEmpty(t, outs)
	require.Equal(t, proto.ErrOK, outs[len(outs)-1].Header.Err, "the held reconfig completes")
	z2 := outs[len(outs)-1].Header.Zxid
	for _, id := range c.ids() {
		require.Equal(t, z2, c.nodes[id].Status().ConfigVersion, "server %d", id)
	}

	o = c.call(f, 7, 4, proto.OpReconfig, &proto.ReconfigRequest{CurConfigID: z2, NewMembers: testConfigData(1, 2, 3)})
	require.Equal(t, proto.ErrOK, o.Header.Err)
	for _, id := range c.ids() {
		require.Equal(t, o.Header.Zxid, c.nodes[id].Status().ConfigVersion, "server %d", id)
	}
	st := c.nodes[l].zab.ActiveConfig()
	require.Equal(t, []int64{1, 2, 3}, st.Voters)
}

func itoa(id int64) string { return strconv.FormatInt(id, 10) }
