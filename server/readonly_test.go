package server_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/proto"
	"github.com/zabkeeper/zabkeeper/server"
)

// roHandshake allows read-only access, as the Java client with canBeReadOnly
// (zkCli -r) sends it.
func roHandshake(sessionID int64, passwd []byte) proto.ConnectRequest {
	if passwd == nil {
		passwd = make([]byte, 16)
	}
	return proto.ConnectRequest{TimeOut: 10000, SessionID: sessionID, Passwd: passwd, HasReadOnly: true, ReadOnly: true}
}

// TestReadOnlyEnsembleMinority: with readonlymode.enabled, the last server
// of a three-server ensemble whose two peers stopped serves read-only
// clients from the state it has: reads answer, writes get NotReadOnly on a
// connection that stays usable, other clients are refused; the four-letter
// words say so; and once the peers are back, the read-only connection is
// closed and read-write service resumes with nothing lost or added.
func TestReadOnlyEnsembleMinority(t *testing.T) {
	ms := startEnsembleWith(t, 3, func(cfg *server.Config) {
		cfg.ReadOnlyMode = true
		cfg.FourLetterWords = map[string]bool{"srvr": true, "ruok": true, "mntr": true, "isro": true}
	})
	lone := ms[0]
	require.Equal(t, "rw", fourLetter(t, lone.addr, "isro"))
	c := connect(t, lone.addr)
	mustCreate(t, c, "/ro", []byte("hello"), 0)
	c.Close()
	global := newSession(t, lone.addr, 10000) // a global session, renewed later
	globalID, globalPasswd := global.sessionID, global.passwd

	ms[1].stop(t)
	ms[2].stop(t)
	global.expectClosed()
	waitFor(t, "the lone server turns read-only", func() bool {
		return fourLetter(t, lone.addr, "isro") == "ro"
	})
	srvr := fourLetter(t, lone.addr, "srvr")
	require.Contains(t, srvr, "\nREAD-ONLY mode; serving only read-only clients\n")
	require.Contains(t, srvr, "\nMode: read-only\n")
	require.Contains(t, fourLetter(t, lone.addr, "mntr"), "zk_server_state\tread-only\n")

	// Clients that do not allow read-only access are closed unanswered:
	// go-zk (no readOnly byte) and a Java-style handshake with readOnly false.
	for _, req := range []proto.ConnectRequest{
		{TimeOut: 10000, Passwd: make([]byte, 16)},
		{TimeOut: 10000, Passwd: make([]byte, 16), HasReadOnly: true},
	} {
		raw := dialRaw(t, lone.addr)
		raw.write(proto.AppendRecords(nil, &req))
		require.Empty(t, raw.expectClosed(), "refused without a reply")
	}
	// A global session is not renewed in read-only mode (ZOOKEEPER-3864).
	raw := dialRaw(t, lone.addr)
	req := roHandshake(globalID, globalPasswd)
	raw.write(proto.AppendRecords(nil, &req))
	require.Empty(t, raw.expectClosed(), "global session renewal refused without a reply")

	// A read-only client gets a local session.
	ro := dialRaw(t, lone.addr)
	resp, n := ro.handshake(roHandshake(0, nil))
	require.Equal(t, 37, n, "the ConnectResponse carries the readOnly byte")
	require.True(t, resp.ReadOnly)
	require.NotZero(t, resp.SessionID)
	require.NotEqual(t, globalID, resp.SessionID)
	require.Positive(t, resp.TimeOut)
	require.Contains(t, fourLetter(t, lone.addr, "mntr"), "zk_local_sessions\t1\n")

	var got proto.GetDataResponse
	h := ro.call(proto.OpGetData, &proto.GetDataRequest{Path: "/ro", Watch: true}, &got)
	require.Equal(t, proto.ErrOK, h.Err)
	require.Equal(t, []byte("hello"), got.Data, "the data written before the partition")
	readZxid := h.Zxid
	require.NotZero(t, readZxid)
	for _, w := range []struct {
		op  proto.OpCode
		rec proto.Record
	}{
		{proto.OpCreate, &proto.CreateRequest{Path: "/new", Data: []byte("x"), ACL: proto.OpenACLUnsafe}},
		{proto.OpSetData, &proto.SetDataRequest{Path: "/ro", Data: []byte("changed"), Version: -1}},
		{proto.OpDelete, &proto.DeleteRequest{Path: "/ro", Version: -1}},
		{proto.OpSync, &proto.SyncRequest{Path: "/ro"}},
		{proto.OpMulti, &proto.MultiRequest{Ops: []proto.MultiOp{{Type: proto.OpCheck, Req: &proto.CheckVersionRequest{Path: "/ro", Version: 0}}}}},
	} {
		h := ro.call(w.op, w.rec, nil)
		require.Equal(t, proto.ErrNotReadOnly, h.Err, "%v", w.op)
		require.Equal(t, readZxid, h.Zxid)
		// The connection stays usable.
		got = proto.GetDataResponse{}
		h = ro.call(proto.OpGetData, &proto.GetDataRequest{Path: "/ro"}, &got)
		require.Equal(t, proto.ErrOK, h.Err, "a read after the refused %v", w.op)
		require.Equal(t, []byte("hello"), got.Data)
	}
	require.Equal(t, proto.ErrOK, ro.ping().Err)
	var kids proto.GetChildrenResponse
	require.Equal(t, proto.ErrOK, ro.call(proto.OpGetChildren, &proto.GetChildrenRequest{Path: "/"}, &kids).Err)
	require.ElementsMatch(t, []string{"ro", "zookeeper"}, kids.Children)

	// Requests pipelined behind a read-only handshake, as the Java client's
	// Netty socket writes them, are served in order once the local session
	// is up, with the answers read-only mode gives.
	piped := dialRaw(t, lone.addr)
	pipedReq := roHandshake(0, nil)
	burst := proto.AppendRecords(nil, &pipedReq)
	burst = append(burst, proto.EncodeRequest(proto.RequestHeader{Xid: 1, Type: proto.OpGetData}, &proto.GetDataRequest{Path: "/ro"})...)
	burst = append(burst, proto.EncodeRequest(proto.RequestHeader{Xid: 2, Type: proto.OpCreate},
		&proto.CreateRequest{Path: "/piped", ACL: proto.OpenACLUnsafe})...)
	burst = append(burst, proto.EncodeRequest(proto.RequestHeader{Xid: 3, Type: proto.OpExists}, &proto.ExistsRequest{Path: "/ro"})...)
	piped.write(burst)
	body, err := piped.readFrame(waitTimeout)
	require.NoError(t, err, "read-only ConnectResponse")
	var pipedResp proto.ConnectResponse
	require.NoError(t, proto.Unmarshal(body, &pipedResp))
	require.True(t, pipedResp.ReadOnly)
	require.NotZero(t, pipedResp.SessionID)
	got = proto.GetDataResponse{}
	require.Equal(t, proto.ErrOK, piped.recvReply(1, &got).Err)
	require.Equal(t, []byte("hello"), got.Data)
	require.Equal(t, proto.ErrNotReadOnly, piped.recvReply(2, nil).Err)
	require.Equal(t, proto.ErrOK, piped.recvReply(3, &proto.ExistsResponse{}).Err)
	piped.close()

	t.Run("zkCli -r", func(t *testing.T) {
		requireZkCli(t)
		text := runZkCli(t, "get /ro\ncreate /fromjava x\nls /\nquit\n", "-server", lone.addr, "-r")
		for _, want := range []string{"state:ConnectedReadOnly", "hello\n", "Not a read-only call: /fromjava", "[ro, zookeeper]"} {
			require.Contains(t, text, want, "zkCli output:\n%s", text)
		}
		require.NotContains(t, text, "Created /fromjava", "zkCli output:\n%s", text)
	})

	// The peers come back: the read-only connection is closed, clients get
	// read-write service again, and the state is what it was.
	for _, m := range ms[1:] {
		m.open(t)
	}
	exchangeAddrs(ms)
	for _, m := range ms[1:] {
		m.serve(t)
	}
	ro.expectClosed()
	waitServing(t, ms)
	require.Equal(t, "rw", fourLetter(t, lone.addr, "isro"))
	require.NotContains(t, fourLetter(t, lone.addr, "srvr"), "READ-ONLY")
	c = connect(t, lone.addr)
	data, _, err := c.Get("/ro")
	require.NoError(t, err)
	require.Equal(t, []byte("hello"), data)
	for _, p := range []string{"/new", "/fromjava"} {
		ok, _, err := c.Exists(p)
		require.NoError(t, err)
		require.False(t, ok, "%s was refused in read-only mode", p)
	}
	mustCreate(t, c, "/after", nil, 0)
	_, err = c.Set("/ro", []byte("rw again"), -1)
	require.NoError(t, err)
	for _, m := range ms {
		require.True(t, strings.Contains(fourLetter(t, m.addr, "srvr"), "Mode: leader") ||
			strings.Contains(fourLetter(t, m.addr, "srvr"), "Mode: follower"), "server %d", m.id)
	}
}
