package server_test

// Raw wire-protocol tests: the handshake, hostile and malformed input, the
// opcodes go-zk does not expose, and the four-letter words.

import (
	"bytes"
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/proto"
	"github.com/zabkeeper/zabkeeper/server"
)

func TestProtoHandshake(t *testing.T) {
	addr, _ := startServer(t, nil)
	for _, tc := range []struct {
		name        string
		readOnly    bool
		askTimeout  int32
		wantTimeout int32
		wantLen     int // frame body length; +4 for the length prefix
	}{
		// protocolVersion 4 + timeOut 4 + sessionId 8 + passwd 4+16 (+ readOnly 1).
		{"go-zk style, no readOnly byte", false, 5000, 5000, 36},
		{"java style, readOnly byte", true, 5000, 5000, 37},
		{"timeout clamped up to min", true, 10, 200, 37},
		{"timeout clamped down to max", false, 1 << 30, 30000, 36},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, addr)
			resp, n := c.handshake(proto.ConnectRequest{TimeOut: tc.askTimeout, Passwd: make([]byte, 16), HasReadOnly: tc.readOnly})
			require.Equal(t, tc.wantLen, n, "ConnectResponse mirrors the readOnly byte")
			require.Equal(t, tc.readOnly, resp.HasReadOnly)
			require.False(t, resp.ReadOnly)
			require.EqualValues(t, 0, resp.ProtocolVersion)
			require.Equal(t, tc.wantTimeout, resp.TimeOut)
			require.NotZero(t, resp.SessionID)
			require.Len(t, resp.Passwd, 16)
			require.NotEqual(t, make([]byte, 16), resp.Passwd)
			// The session works.
			h := c.ping()
			require.Equal(t, proto.ErrOK, h.Err)
		})
	}
}

func TestProtoReconnectPassword(t *testing.T) {
	addr, _ := startServer(t, nil)
	a := newSession(t, addr, 5000)

	// Right password: same session, and the old connection is closed.
	b := dialRaw(t, addr)
	resp, _ := b.handshake(proto.ConnectRequest{TimeOut: 5000, SessionID: a.sessionID, Passwd: a.passwd, LastZxidSeen: 0})
	require.Equal(t, a.sessionID, resp.SessionID)
	require.EqualValues(t, 5000, resp.TimeOut)
	require.Equal(t, a.passwd, resp.Passwd)
	a.expectClosed()
	require.Equal(t, proto.ErrOK, b.ping().Err)

	// Wrong password: timeOut 0, sessionId 0, a zero password, then close.
	for _, ro := range []bool{false, true} {
		bad := append([]byte(nil), a.passwd...)
		bad[0] ^= 0xff
		c := dialRaw(t, addr)
		resp, _ = c.handshake(proto.ConnectRequest{TimeOut: 5000, SessionID: a.sessionID, Passwd: bad, HasReadOnly: ro})
		require.Zero(t, resp.TimeOut)
		require.Zero(t, resp.SessionID)
		require.Equal(t, make([]byte, 16), resp.Passwd)
		require.Equal(t, ro, resp.HasReadOnly)
		require.Empty(t, c.expectClosed(), "nothing after the refusal")
	}
	// Unknown session id: the same refusal.
	c := dialRaw(t, addr)
	resp, _ = c.handshake(proto.ConnectRequest{TimeOut: 5000, SessionID: a.sessionID + 12345, Passwd: a.passwd})
	require.Zero(t, resp.TimeOut)
	require.Zero(t, resp.SessionID)
	c.expectClosed()

	// The session survived the wrong-password attempts.
	d := dialRaw(t, addr)
	resp, _ = d.handshake(proto.ConnectRequest{TimeOut: 5000, SessionID: a.sessionID, Passwd: a.passwd})
	require.Equal(t, a.sessionID, resp.SessionID)
	require.Equal(t, proto.ErrOK, d.ping().Err)
}

func TestProtoLastZxidAhead(t *testing.T) {
	addr, _ := startServer(t, nil)
	c := dialRaw(t, addr)
	c.write(proto.AppendRecords(nil, &proto.ConnectRequest{LastZxidSeen: 1 << 40, TimeOut: 5000, Passwd: make([]byte, 16)}))
	require.Empty(t, c.expectClosed(), "a client that has seen the future is closed without a reply")
	requireHealthy(t, addr)
}

// TestProtoBadFirstFrame: anything but a ConnectRequest first closes the
// connection; a refusal (timeOut 0, sessionId 0) is the only acceptable reply.
func TestProtoBadFirstFrame(t *testing.T) {
	addr, _ := startServer(t, nil)
	ff := bytes.Repeat([]byte{0xff}, 44)
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"ping before handshake", proto.EncodeRequest(proto.RequestHeader{Xid: proto.XidPing, Type: proto.OpPing}, nil)},
		{"getData before handshake", proto.EncodeRequest(proto.RequestHeader{Xid: 1, Type: proto.OpGetData}, &proto.GetDataRequest{Path: "/"})},
		{"create before handshake", proto.EncodeRequest(proto.RequestHeader{Xid: 1, Type: proto.OpCreate},
			&proto.CreateRequest{Path: "/x", ACL: proto.OpenACLUnsafe})},
		{"all 0xff handshake", proto.AppendFrame(nil, ff)},
		{"short handshake", proto.AppendFrame(nil, []byte{0, 0, 0, 0, 1, 2, 3})},
		{"empty frame", proto.AppendFrame(nil, nil)},
		{"huge length", []byte{0x7f, 0xff, 0xff, 0xff, 1, 2, 3}},
		{"negative length", []byte{0xff, 0xff, 0xff, 0xf0}},
		{"http request", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, addr)
			c.write(tc.data)
			for _, f := range c.expectClosed() {
				var resp proto.ConnectResponse
				require.NoError(t, proto.Unmarshal(f, &resp), "only a ConnectResponse may come back")
				require.Zero(t, resp.SessionID)
				require.Zero(t, resp.TimeOut)
			}
			requireHealthy(t, addr)
		})
	}
	t.Run("truncated handshake then silence", func(t *testing.T) {
		c := dialRaw(t, addr)
		full := proto.AppendRecords(nil, &proto.ConnectRequest{TimeOut: 5000, Passwd: make([]byte, 16)})
		c.write(full[:len(full)-5])
		c.nc.(*net.TCPConn).CloseWrite()
		require.Empty(t, c.expectClosed())
		requireHealthy(t, addr)
	})
}

func TestProtoOversizedFrame(t *testing.T) {
	addr, _ := startServer(t, nil)
	good := connect(t, addr)
	mustCreate(t, good, "/big", nil, 0)

	for _, tc := range []struct {
		name   string
		length uint32
	}{
		{"maxbuffer+1", proto.DefaultMaxBuffer + 1},
		{"huge", 0x7fffffff},
		{"negative", 0xfffffff0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newSession(t, addr, 10000)
			var hdr [4]byte
			binary.BigEndian.PutUint32(hdr[:], tc.length)
			c.write(append(hdr[:], make([]byte, 1024)...))
			// Another client keeps working while the bad one is dropped.
			_, err := good.Set("/big", []byte(tc.name), -1)
			require.NoError(t, err)
			c.expectClosed()
			data, _, err := good.Get("/big")
			require.NoError(t, err)
			require.Equal(t, []byte(tc.name), data)
		})
	}
	t.Run("largest allowed frame is served", func(t *testing.T) {
		// A setData just under the limit (frame = header 8 + path 4+4 + data 4+n + version 4).
		c := newSession(t, addr, 10000)
		n := proto.DefaultMaxBuffer - 8 - 8 - 4 - 4
		var sd proto.SetDataResponse
		h := c.call(proto.OpSetData, &proto.SetDataRequest{Path: "/big", Data: make([]byte, n), Version: -1}, &sd)
		require.Equal(t, proto.ErrOK, h.Err)
		require.EqualValues(t, n, sd.Stat.DataLength)
	})
	requireHealthy(t, addr)
}

func TestProtoTruncatedFrame(t *testing.T) {
	addr, _ := startServer(t, nil)
	frame := proto.EncodeRequest(proto.RequestHeader{Xid: 1, Type: proto.OpCreate},
		&proto.CreateRequest{Path: "/trunc", Data: []byte("data"), ACL: proto.OpenACLUnsafe})

	t.Run("peer closes mid-frame", func(t *testing.T) {
		c := newSession(t, addr, 10000)
		c.write(frame[:len(frame)/2])
		c.nc.(*net.TCPConn).CloseWrite()
		c.expectClosed()
	})
	t.Run("peer stalls mid-frame", func(t *testing.T) {
		// Nothing more arrives: the session timeout (200 ms) must end it.
		c := newSession(t, addr, 200)
		c.write(frame[:len(frame)/2])
		c.expectClosed()
	})
	t.Run("record shorter than its frame says", func(t *testing.T) {
		// As in ZooKeeper: MarshallingError for that request, the session goes on.
		c := newSession(t, addr, 10000)
		body := append([]byte(nil), frame[4:len(frame)-10]...) // cut inside the ACL vector
		binary.BigEndian.PutUint32(body[0:], 7)                // xid 7
		c.write(proto.AppendFrame(nil, body))
		h := c.recvReply(7, nil)
		require.Equal(t, proto.ErrMarshallingError, h.Err)
		require.Equal(t, proto.ErrOK, c.ping().Err, "the session survives a malformed request")
	})
	c := connect(t, addr)
	ok, _, err := c.Exists("/trunc")
	require.NoError(t, err)
	require.False(t, ok, "a truncated create must not be applied")
	requireHealthy(t, addr)
}

// TestProtoMixedMulti: a multi mixing write and read ops is answered with
// MarshallingError (the connection may close afterwards) and not applied.
func TestProtoMixedMulti(t *testing.T) {
	addr, _ := startServer(t, nil)
	for i := 0; i < 5; i++ { // the reply used to race with the close
		c := newSession(t, addr, 10000)
		xid := c.send(proto.OpMulti, &proto.MultiRequest{Ops: []proto.MultiOp{
			{Type: proto.OpCreate, Req: &proto.CreateRequest{Path: "/mixed", ACL: proto.OpenACLUnsafe}},
			{Type: proto.OpGetData, Req: &proto.GetDataRequest{Path: "/"}},
		}})
		body, err := c.readFrame(waitTimeout)
		require.NoError(t, err, "attempt %d: a mixed multi gets a reply", i)
		var h proto.ReplyHeader
		require.NoError(t, proto.Unmarshal(body, &h))
		require.Equal(t, xid, h.Xid)
		require.Equal(t, proto.ErrMarshallingError, h.Err)
	}
	g := connect(t, addr)
	ok, _, err := g.Exists("/mixed")
	require.NoError(t, err)
	require.False(t, ok)
	requireHealthy(t, addr)
}

func TestProtoUnimplemented(t *testing.T) {
	addr, _ := startServer(t, nil)
	for _, tc := range []struct {
		name string
		op   proto.OpCode
		rec  proto.Record
	}{
		{"unknown opcode 999", 999, nil},
		{"opcode 10", 10, nil},
		{"opcode 0", 0, nil},
		{"top-level check", proto.OpCheck, &proto.CheckVersionRequest{Path: "/", Version: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newSession(t, addr, 10000)
			xid := c.send(tc.op, tc.rec)
			frames := c.expectClosed()
			require.Len(t, frames, 1, "one Unimplemented reply, then close")
			var h proto.ReplyHeader
			require.NoError(t, proto.Unmarshal(frames[0], &h))
			require.Equal(t, xid, h.Xid)
			require.Equal(t, proto.ErrUnimplemented, h.Err)
			requireHealthy(t, addr)
		})
	}
	t.Run("deleteContainer from a client is refused", func(t *testing.T) {
		c := newSession(t, addr, 10000)
		require.Equal(t, proto.ErrOK, c.call(proto.OpCreateContainer,
			&proto.CreateRequest{Path: "/ctr", ACL: proto.OpenACLUnsafe, Flags: proto.ModeContainer}, &proto.Create2Response{}).Err)
		xid := c.send(proto.OpDeleteContainer, &proto.DeleteContainerRequest{Path: "/ctr"})
		body, err := c.readFrame(waitTimeout)
		if err == nil {
			var h proto.ReplyHeader
			require.NoError(t, proto.Unmarshal(body, &h))
			require.Equal(t, xid, h.Xid)
			require.NotEqual(t, proto.ErrOK, h.Err)
		}
		g := connect(t, addr)
		ok, _, err := g.Exists("/ctr")
		require.NoError(t, err)
		require.True(t, ok, "a client must not delete a container through deleteContainer")
	})
}

func TestProtoSaslAndReconfig(t *testing.T) {
	addr, _ := startServer(t, nil)
	t.Run("sasl", func(t *testing.T) {
		c := newSession(t, addr, 10000)
		h := c.call(proto.OpSasl, &proto.GetSASLRequest{Token: []byte("token")}, nil)
		require.NotEqual(t, proto.ErrOK, h.Err, "sasl without SASL configured is an error")
	})
	t.Run("reconfig", func(t *testing.T) {
		c := newSession(t, addr, 10000)
		h := c.call(proto.OpReconfig, &proto.ReconfigRequest{JoiningServers: "server.9=127.0.0.1:1:2", CurConfigID: -1}, nil)
		require.NotEqual(t, proto.ErrOK, h.Err, "reconfig on a standalone server is an error")
		// go-zk's view.
		g := connect(t, addr)
		_, err := g.IncrementalReconfig([]string{"server.9=127.0.0.1:1:2"}, nil, -1)
		require.Error(t, err)
	})
	requireHealthy(t, addr)
}

func TestProtoPingAndZxid(t *testing.T) {
	addr, _ := startServer(t, nil)
	c := newSession(t, addr, 10000)
	var cr proto.Create2Response
	h := c.call(proto.OpCreate2, &proto.CreateRequest{Path: "/z", Data: []byte("d"), ACL: proto.OpenACLUnsafe}, &cr)
	require.Equal(t, proto.ErrOK, h.Err)
	require.Equal(t, "/z", cr.Path)
	require.Equal(t, h.Zxid, cr.Stat.Czxid, "a write's reply carries its zxid")

	p := c.ping()
	require.Equal(t, proto.ReplyHeader{Xid: proto.XidPing, Zxid: h.Zxid, Err: proto.ErrOK}, p)

	// Reads report the last processed zxid too.
	var gd proto.GetDataResponse
	rh := c.call(proto.OpGetData, &proto.GetDataRequest{Path: "/z"}, &gd)
	require.Equal(t, h.Zxid, rh.Zxid)
	// zxids are monotonic and a session's writes get increasing ones.
	h2 := c.call(proto.OpSetData, &proto.SetDataRequest{Path: "/z", Data: []byte("e"), Version: -1}, &proto.SetDataResponse{})
	require.Equal(t, h.Zxid+1, h2.Zxid)

	// Pipelined requests are answered in order.
	var xids []int32
	for i := 0; i < 50; i++ {
		if i%2 == 0 {
			xids = append(xids, c.send(proto.OpSetData, &proto.SetDataRequest{Path: "/z", Data: []byte{byte(i)}, Version: -1}))
		} else {
			xids = append(xids, c.send(proto.OpGetData, &proto.GetDataRequest{Path: "/z"}))
		}
	}
	for i, xid := range xids {
		if i%2 == 0 {
			require.Equal(t, proto.ErrOK, c.recvReply(xid, &proto.SetDataResponse{}).Err)
		} else {
			var gd proto.GetDataResponse
			require.Equal(t, proto.ErrOK, c.recvReply(xid, &gd).Err)
			require.Equal(t, []byte{byte(i - 1)}, gd.Data, "a read sees its session's earlier write")
		}
	}
}

func TestProtoCloseSession(t *testing.T) {
	addr, _ := startServer(t, nil)
	c := newSession(t, addr, 10000)
	require.Equal(t, proto.ErrOK, c.call(proto.OpCreate,
		&proto.CreateRequest{Path: "/cs", ACL: proto.OpenACLUnsafe, Flags: proto.ModeEphemeral}, &proto.CreateResponse{}).Err)
	xid := c.send(proto.OpCloseSession, nil)
	frames := c.expectClosed()
	require.Len(t, frames, 1)
	var h proto.ReplyHeader
	require.NoError(t, proto.Unmarshal(frames[0], &h))
	require.Equal(t, xid, h.Xid)
	require.Equal(t, proto.ErrOK, h.Err)
	g := connect(t, addr)
	ok, _, err := g.Exists("/cs")
	require.NoError(t, err)
	require.False(t, ok, "closeSession deletes the ephemerals before replying")
	// The closed session cannot be resumed.
	d := dialRaw(t, addr)
	resp, _ := d.handshake(proto.ConnectRequest{TimeOut: 5000, SessionID: c.sessionID, Passwd: c.passwd})
	require.Zero(t, resp.SessionID)
	require.Zero(t, resp.TimeOut)
}

func TestProtoBadPaths(t *testing.T) {
	addr, _ := startServer(t, nil)
	g := connect(t, addr)
	mustCreate(t, g, "/a", nil, 0)
	mustCreate(t, g, "/a/b", nil, 0)
	c := newSession(t, addr, 10000)

	create := func(path string, flags int32) proto.ErrCode {
		return c.call(proto.OpCreate, &proto.CreateRequest{Path: path, ACL: proto.OpenACLUnsafe, Flags: flags}, &proto.CreateResponse{}).Err
	}
	setData := func(path string) proto.ErrCode {
		return c.call(proto.OpSetData, &proto.SetDataRequest{Path: path, Version: -1}, &proto.SetDataResponse{}).Err
	}
	bad := []string{"", "a", "a/b", "/a/", "/a//b", "/a/./b", "/a/../b", "/a/.", "/a/..", "/a\x00b", "/a/b\x00", "//"}
	for _, p := range bad {
		t.Run("setData "+strings.ReplaceAll(p, "\x00", `\0`), func(t *testing.T) {
			require.Equal(t, proto.ErrBadArguments, setData(p))
		})
		t.Run("create "+strings.ReplaceAll(p, "\x00", `\0`), func(t *testing.T) {
			got := create(p, 0)
			// ZooKeeper checks the parent exists before validating the whole
			// path, so a path whose "parent" cannot exist may answer NoNode.
			require.Contains(t, []proto.ErrCode{proto.ErrBadArguments, proto.ErrNoNode}, got)
		})
	}
	// These fail path validation with an existing parent: BadArguments, exactly.
	for _, p := range []string{"", "a", "/a/", "/a/.", "/a/..", "/a\x00b", "/a/b/.", "/."} {
		require.Equal(t, proto.ErrBadArguments, create(p, 0), "create %q", p)
	}
	for _, p := range []string{"", "a", "/a\x00b"} {
		require.Equal(t, proto.ErrBadArguments, c.call(proto.OpDelete, &proto.DeleteRequest{Path: p, Version: -1}, nil).Err, "delete %q", p)
	}
	// A trailing slash is legal for sequential creates.
	var cr proto.CreateResponse
	require.Equal(t, proto.ErrOK, c.call(proto.OpCreate, &proto.CreateRequest{Path: "/a/", ACL: proto.OpenACLUnsafe, Flags: proto.ModePersistentSequential}, &cr).Err)
	require.Equal(t, "/a/0000000001", cr.Path)
	// Bad flags and TTL mismatches.
	for _, flags := range []int32{7, 8, -1, 100} {
		require.Equal(t, proto.ErrBadArguments, create("/a/flags", flags), "flags %d", flags)
	}
	require.Equal(t, proto.ErrBadArguments, create("/a/ttlmode", proto.ModePersistentWithTTL), "TTL mode through plain create")
	require.Equal(t, proto.ErrBadArguments, c.call(proto.OpCreateTTL,
		&proto.CreateTTLRequest{Path: "/a/ttl", ACL: proto.OpenACLUnsafe, Flags: proto.ModePersistent, TTL: 1000}, nil).Err,
		"createTTL with a non-TTL mode")
	require.Equal(t, proto.ErrBadArguments, c.call(proto.OpCreateTTL,
		&proto.CreateTTLRequest{Path: "/a/ttl", ACL: proto.OpenACLUnsafe, Flags: proto.ModePersistentWithTTL, TTL: -5}, nil).Err,
		"negative TTL")
	var c2 proto.Create2Response
	require.Equal(t, proto.ErrOK, c.call(proto.OpCreateTTL,
		&proto.CreateTTLRequest{Path: "/a/ttl", ACL: proto.OpenACLUnsafe, Flags: proto.ModePersistentWithTTL, TTL: 0xFF_FFFF_FFFF}, &c2).Err,
		"the largest TTL")
	require.Zero(t, c2.Stat.EphemeralOwner, "TTL nodes show ephemeralOwner 0")
	// Only the three nodes created above exist under /a.
	kids, _, err := g.Children("/a")
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"b", "0000000001", "ttl"}, kids)
	requireHealthy(t, addr)
}

func TestProtoWhoAmI(t *testing.T) {
	addr, _ := startServer(t, nil)
	c := newSession(t, addr, 10000)
	var w proto.WhoAmIResponse
	require.Equal(t, proto.ErrOK, c.call(proto.OpWhoAmI, nil, &w).Err)
	require.Contains(t, w.ClientInfo, proto.ClientInfo{AuthScheme: "ip", User: "127.0.0.1"})

	h := c.call(proto.OpAuth, &proto.AuthPacket{Scheme: "digest", Auth: []byte("user:password")}, nil)
	require.Equal(t, proto.ErrOK, h.Err)
	require.Equal(t, proto.ErrOK, c.call(proto.OpWhoAmI, nil, &w).Err)
	require.Contains(t, w.ClientInfo, proto.ClientInfo{AuthScheme: "digest", User: "user"})
	require.Contains(t, w.ClientInfo, proto.ClientInfo{AuthScheme: "ip", User: "127.0.0.1"})

	// An unknown auth scheme: AuthFailed, then close.
	xid := c.send(proto.OpAuth, &proto.AuthPacket{Scheme: "nosuchscheme", Auth: []byte("x")})
	frames := c.expectClosed()
	require.NotEmpty(t, frames)
	var rh proto.ReplyHeader
	require.NoError(t, proto.Unmarshal(frames[0], &rh))
	require.Equal(t, proto.ErrAuthFailed, rh.Err)
	_ = xid
	requireHealthy(t, addr)
}

func TestProtoGetEphemeralsAndAllChildrenNumber(t *testing.T) {
	addr, _ := startServer(t, nil)
	g := connect(t, addr)
	mustCreate(t, g, "/eph", nil, 0)
	mustCreate(t, g, "/other-eph", nil, zk.FlagEphemeral) // another session's
	c := newSession(t, addr, 10000)
	for _, p := range []string{"/e1", "/eph/x", "/eph/y"} {
		require.Equal(t, proto.ErrOK, c.call(proto.OpCreate,
			&proto.CreateRequest{Path: p, ACL: proto.OpenACLUnsafe, Flags: proto.ModeEphemeral}, &proto.CreateResponse{}).Err)
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"/", []string{"/e1", "/eph/x", "/eph/y"}},
		{"/eph", []string{"/eph/x", "/eph/y"}},
		{"/nothing", []string{}},
	} {
		var r proto.GetEphemeralsResponse
		require.Equal(t, proto.ErrOK, c.call(proto.OpGetEphemerals, &proto.GetEphemeralsRequest{PrefixPath: tc.prefix}, &r).Err)
		require.ElementsMatch(t, tc.want, r.Ephemerals, "prefix %q", tc.prefix)
	}

	mustCreate(t, g, "/cnt", nil, 0)
	mustCreate(t, g, "/cnt/a", nil, 0)
	mustCreate(t, g, "/cnt/a/b", nil, 0)
	mustCreate(t, g, "/cnt/a/b/c", nil, 0)
	mustCreate(t, g, "/cnt/d", nil, 0)
	for _, tc := range []struct {
		path string
		want int32
	}{{"/cnt", 4}, {"/cnt/a", 2}, {"/cnt/d", 0}} {
		var r proto.GetAllChildrenNumberResponse
		require.Equal(t, proto.ErrOK, c.call(proto.OpGetAllChildrenNumber, &proto.GetAllChildrenNumberRequest{Path: tc.path}, &r).Err)
		require.Equal(t, tc.want, r.TotalNumber, tc.path)
	}
	require.Equal(t, proto.ErrNoNode, c.call(proto.OpGetAllChildrenNumber, &proto.GetAllChildrenNumberRequest{Path: "/nope"}, nil).Err)
}

func TestProtoAddWatchReply(t *testing.T) {
	addr, _ := startServer(t, nil)
	c := newSession(t, addr, 10000)
	xid := c.send(proto.OpAddWatch, &proto.AddWatchRequest{Path: "/aw", Mode: proto.AddWatchPersistent})
	body, err := c.readFrame(waitTimeout)
	require.NoError(t, err)
	require.Len(t, body, 16+4, "addWatch replies with a 4-byte ErrorResponse body")
	var h proto.ReplyHeader
	require.NoError(t, proto.Unmarshal(body, &h))
	require.Equal(t, xid, h.Xid)
	require.Equal(t, proto.ErrOK, h.Err)
	require.Equal(t, []byte{0, 0, 0, 0}, body[16:])
}

func TestProtoCheckAndRemoveWatches(t *testing.T) {
	addr, _ := startServer(t, nil)
	g := connect(t, addr)
	mustCreate(t, g, "/cw", nil, 0)
	c := newSession(t, addr, 10000)
	check := func(path string, typ int32) proto.ErrCode {
		return c.call(proto.OpCheckWatches, &proto.CheckWatchesRequest{Path: path, Type: typ}, nil).Err
	}
	remove := func(path string, typ int32) proto.ErrCode {
		return c.call(proto.OpRemoveWatches, &proto.RemoveWatchesRequest{Path: path, Type: typ}, nil).Err
	}
	for _, typ := range []int32{proto.WatcherChildren, proto.WatcherData, proto.WatcherAny} {
		require.Equal(t, proto.ErrNoWatcher, check("/cw", typ), "no watch: check type %d", typ)
		require.Equal(t, proto.ErrNoWatcher, remove("/cw", typ), "no watch: remove type %d", typ)
	}
	require.Equal(t, proto.ErrOK, c.call(proto.OpGetData, &proto.GetDataRequest{Path: "/cw", Watch: true}, &proto.GetDataResponse{}).Err)
	require.Equal(t, proto.ErrOK, check("/cw", proto.WatcherData))
	require.Equal(t, proto.ErrOK, check("/cw", proto.WatcherAny))
	require.Equal(t, proto.ErrNoWatcher, check("/cw", proto.WatcherChildren))
	require.Equal(t, proto.ErrOK, c.call(proto.OpGetChildren, &proto.GetChildrenRequest{Path: "/cw", Watch: true}, &proto.GetChildrenResponse{}).Err)
	require.Equal(t, proto.ErrOK, check("/cw", proto.WatcherChildren))
	require.Equal(t, proto.ErrOK, remove("/cw", proto.WatcherData))
	require.Equal(t, proto.ErrNoWatcher, check("/cw", proto.WatcherData))
	require.Equal(t, proto.ErrOK, check("/cw", proto.WatcherChildren))
	require.Equal(t, proto.ErrOK, remove("/cw", proto.WatcherAny))
	require.Equal(t, proto.ErrNoWatcher, check("/cw", proto.WatcherAny))

	// Removed watches do not fire (ZooKeeper sends no event to the server side
	// for a removal: the client generates DataWatchRemoved itself).
	_, err := g.Set("/cw", []byte("x"), -1)
	require.NoError(t, err)
	mustCreate(t, g, "/cw/k", nil, 0)
	require.Equal(t, proto.ErrOK, c.ping().Err)
	require.Empty(t, c.takeEvents())

	// Another session's watch is not ours.
	_, _, _, err = g.GetW("/cw")
	require.NoError(t, err)
	require.Equal(t, proto.ErrNoWatcher, check("/cw", proto.WatcherData))
}

func TestProtoSetWatches(t *testing.T) {
	addr, _ := startServer(t, nil)
	g := connect(t, addr)
	mustCreate(t, g, "/sw", []byte("0"), 0)
	mustCreate(t, g, "/sw/c", nil, 0)
	probe := newSession(t, addr, 10000)
	now := probe.ping().Zxid
	require.Positive(t, now)

	t.Run("up to date: re-registered, fire later", func(t *testing.T) {
		c := newSession(t, addr, 10000)
		h := c.call(proto.OpSetWatches2, &proto.SetWatches2{
			RelativeZxid:               now,
			DataWatches:                []string{"/sw"},
			ExistWatches:               []string{"/sw-new"},
			ChildWatches:               []string{"/sw"},
			PersistentWatches:          []string{"/sw/c"},
			PersistentRecursiveWatches: []string{"/deep"},
			// go-zk never sends null vectors; neither do we.
		}, nil)
		require.Equal(t, proto.ErrOK, h.Err)
		require.Empty(t, c.takeEvents(), "nothing changed since relativeZxid")
		_, err := g.Set("/sw", []byte("1"), -1)
		require.NoError(t, err)
		mustCreate(t, g, "/sw-new", nil, 0)
		mustCreate(t, g, "/sw/d", nil, 0)
		_, err = g.Set("/sw/c", []byte("p"), -1)
		require.NoError(t, err)
		_, err = g.Set("/sw/c", []byte("p2"), -1)
		require.NoError(t, err)
		mustCreate(t, g, "/deep", nil, 0)
		mustCreate(t, g, "/deep/x", nil, 0)
		require.Equal(t, []proto.WatcherEvent{
			ev(proto.EventNodeDataChanged, "/sw"),
			ev(proto.EventNodeCreated, "/sw-new"),
			ev(proto.EventNodeChildrenChanged, "/sw"),
			ev(proto.EventNodeDataChanged, "/sw/c"),
			ev(proto.EventNodeDataChanged, "/sw/c"),
			ev(proto.EventNodeCreated, "/deep"),
			ev(proto.EventNodeCreated, "/deep/x"),
		}, drainEvents(t, c, 7))
	})

	t.Run("stale: fire at once, before the reply", func(t *testing.T) {
		c := newSession(t, addr, 10000)
		h := c.call(proto.OpSetWatches2, &proto.SetWatches2{
			RelativeZxid:               1,
			DataWatches:                []string{"/sw", "/gone"},
			ExistWatches:               []string{"/sw/c"},
			ChildWatches:               []string{"/sw", "/gone2"},
			PersistentWatches:          []string{},
			PersistentRecursiveWatches: []string{},
		}, nil)
		require.Equal(t, proto.ErrOK, h.Err)
		require.ElementsMatch(t, []proto.WatcherEvent{
			ev(proto.EventNodeDataChanged, "/sw"),
			ev(proto.EventNodeDeleted, "/gone"),
			ev(proto.EventNodeCreated, "/sw/c"),
			ev(proto.EventNodeChildrenChanged, "/sw"),
			ev(proto.EventNodeDeleted, "/gone2"),
		}, c.takeEvents())
		// They were one-shot: nothing more fires.
		_, err := g.Set("/sw", []byte("again"), -1)
		require.NoError(t, err)
		require.Equal(t, proto.ErrOK, c.ping().Err)
		require.Empty(t, c.takeEvents())
	})

	t.Run("setWatches v1", func(t *testing.T) {
		c := newSession(t, addr, 10000)
		cur := c.ping().Zxid
		h := c.call(proto.OpSetWatches, &proto.SetWatches{
			RelativeZxid: cur,
			DataWatches:  []string{"/sw"},
			ExistWatches: []string{"/v1-new"},
			ChildWatches: []string{},
		}, nil)
		require.Equal(t, proto.ErrOK, h.Err)
		require.Empty(t, c.takeEvents())
		mustCreate(t, g, "/v1-new", nil, 0)
		_, err := g.Set("/sw", []byte("v1"), -1)
		require.NoError(t, err)
		require.Equal(t, []proto.WatcherEvent{
			ev(proto.EventNodeCreated, "/v1-new"),
			ev(proto.EventNodeDataChanged, "/sw"),
		}, drainEvents(t, c, 2))
	})
}

func TestProtoMulti(t *testing.T) {
	addr, _ := startServer(t, nil)
	c := newSession(t, addr, 10000)
	require.Equal(t, proto.ErrOK, c.call(proto.OpCreate, &proto.CreateRequest{Path: "/mr", Data: []byte("d"), ACL: proto.OpenACLUnsafe}, &proto.CreateResponse{}).Err)

	t.Run("result types", func(t *testing.T) {
		var r proto.MultiResponse
		h := c.call(proto.OpMulti, &proto.MultiRequest{Ops: []proto.MultiOp{
			{Type: proto.OpCreate, Req: &proto.CreateRequest{Path: "/mr/k", ACL: proto.OpenACLUnsafe}},
			{Type: proto.OpCreate2, Req: &proto.CreateRequest{Path: "/mr/k2", ACL: proto.OpenACLUnsafe}},
			{Type: proto.OpSetData, Req: &proto.SetDataRequest{Path: "/mr", Data: []byte("e"), Version: 0}},
			{Type: proto.OpCheck, Req: &proto.CheckVersionRequest{Path: "/mr", Version: 1}},
			{Type: proto.OpDelete, Req: &proto.DeleteRequest{Path: "/mr/k2", Version: 0}},
		}}, &r)
		require.Equal(t, proto.ErrOK, h.Err)
		require.Len(t, r.Results, 5)
		types := []proto.OpCode{}
		for _, res := range r.Results {
			types = append(types, res.Type)
			require.Equal(t, proto.ErrOK, res.Err)
		}
		require.Equal(t, []proto.OpCode{proto.OpCreate, proto.OpCreate2, proto.OpSetData, proto.OpCheck, proto.OpDelete}, types,
			"create stays type 1 (kazoo), create2 is 15")
		require.Equal(t, "/mr/k", r.Results[0].Resp.(*proto.CreateResponse).Path)
		c2 := r.Results[1].Resp.(*proto.Create2Response)
		require.Equal(t, "/mr/k2", c2.Path)
		require.Equal(t, h.Zxid, c2.Stat.Czxid, "one zxid for the whole multi")
		require.Equal(t, h.Zxid, r.Results[2].Resp.(*proto.SetDataResponse).Stat.Mzxid)
	})

	t.Run("failure", func(t *testing.T) {
		var r proto.MultiResponse
		h := c.call(proto.OpMulti, &proto.MultiRequest{Ops: []proto.MultiOp{
			{Type: proto.OpCreate, Req: &proto.CreateRequest{Path: "/mr/x", ACL: proto.OpenACLUnsafe}},
			{Type: proto.OpDelete, Req: &proto.DeleteRequest{Path: "/mr", Version: -1}}, // NotEmpty
			{Type: proto.OpSetData, Req: &proto.SetDataRequest{Path: "/mr", Version: -1}},
		}}, &r)
		require.Equal(t, proto.ErrOK, h.Err, "a failed multi still has ReplyHeader.err 0")
		require.Len(t, r.Results, 3)
		for i, want := range []proto.ErrCode{proto.ErrOK, proto.ErrNotEmpty, proto.ErrRuntimeInconsistency} {
			require.Equal(t, proto.OpError, r.Results[i].Type, "op %d", i)
			require.Equal(t, want, r.Results[i].Resp.(*proto.ErrorResponse).Err, "op %d", i)
		}
		require.Equal(t, proto.ErrNoNode, c.call(proto.OpExists, &proto.ExistsRequest{Path: "/mr/x"}, nil).Err)
	})

	t.Run("empty multi", func(t *testing.T) {
		var r proto.MultiResponse
		h := c.call(proto.OpMulti, &proto.MultiRequest{}, &r)
		require.Equal(t, proto.ErrOK, h.Err)
		require.Empty(t, r.Results)
	})

	t.Run("multiRead", func(t *testing.T) {
		var r proto.MultiResponse
		h := c.call(proto.OpMultiRead, &proto.MultiRequest{Ops: []proto.MultiOp{
			{Type: proto.OpGetData, Req: &proto.GetDataRequest{Path: "/mr"}},
			{Type: proto.OpGetChildren, Req: &proto.GetChildrenRequest{Path: "/mr"}},
			{Type: proto.OpGetData, Req: &proto.GetDataRequest{Path: "/nope"}},
			{Type: proto.OpGetChildren, Req: &proto.GetChildrenRequest{Path: "/mr", Watch: true}},
		}}, &r)
		require.Equal(t, proto.ErrOK, h.Err)
		require.Len(t, r.Results, 4)
		require.Equal(t, proto.OpGetData, r.Results[0].Type)
		require.Equal(t, []byte("e"), r.Results[0].Resp.(*proto.GetDataResponse).Data)
		require.Equal(t, proto.OpGetChildren, r.Results[1].Type)
		require.Equal(t, []string{"k"}, r.Results[1].Resp.(*proto.GetChildrenResponse).Children)
		require.Equal(t, proto.OpError, r.Results[2].Type, "multiRead ops fail independently")
		require.Equal(t, proto.ErrNoNode, r.Results[2].Resp.(*proto.ErrorResponse).Err)
		require.Equal(t, proto.OpGetChildren, r.Results[3].Type)
		// The watch flag is honoured.
		require.Equal(t, proto.ErrOK, c.call(proto.OpCreate, &proto.CreateRequest{Path: "/mr/w", ACL: proto.OpenACLUnsafe}, &proto.CreateResponse{}).Err)
		require.Equal(t, []proto.WatcherEvent{ev(proto.EventNodeChildrenChanged, "/mr")}, c.takeEvents())
	})
}

func TestProtoFourLetterWords(t *testing.T) {
	addr, _ := startServer(t, func(cfg *server.Config) {
		cfg.FourLetterWords = map[string]bool{"ruok": true, "srvr": true}
	})
	require.Equal(t, "imok", fourLetter(t, addr, "ruok"))
	srvr := fourLetter(t, addr, "srvr")
	require.Contains(t, srvr, "Zookeeper version: ")
	require.Contains(t, srvr, "Mode: standalone\n")
	// ZooKeeper 3.8 says 5 for a tree that holds only /, /zookeeper,
	// /zookeeper/quota and /zookeeper/config: it counts the root twice.
	require.Contains(t, srvr, "Node count: 5\n")
	require.Equal(t, "mntr is not executed because it is not in the whitelist.\n", fourLetter(t, addr, "mntr"))
	require.Equal(t, "stat is not executed because it is not in the whitelist.\n", fourLetter(t, addr, "stat"))

	// go-zk's helpers parse them.
	require.Equal(t, []bool{true}, zk.FLWRuok([]string{addr}, 5*time.Second))
	stats, ok := zk.FLWSrvr([]string{addr}, 5*time.Second)
	require.True(t, ok, "go-zk parses srvr: %+v", stats)
	require.Len(t, stats, 1)
	require.NoError(t, stats[0].Error)
	require.Equal(t, zk.ModeStandalone, stats[0].Mode)
	requireHealthy(t, addr)
}

func TestProtoFourLetterDefaultWhitelist(t *testing.T) {
	addr, _ := startServer(t, func(cfg *server.Config) { cfg.FourLetterWords = map[string]bool{"srvr": true} })
	require.Equal(t, "ruok is not executed because it is not in the whitelist.\n", fourLetter(t, addr, "ruok"))
	require.Contains(t, fourLetter(t, addr, "srvr"), "Mode: standalone")
}
