package server_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/proto"
	"github.com/zabkeeper/zabkeeper/server"
)

// TestProtoAddAuthIP: "addauth ip <anything>" is accepted as ZooKeeper's
// IPAuthenticationProvider accepts it (the client's own address becomes its
// ip identity, the auth data is ignored); the connection stays open.
func TestProtoAddAuthIP(t *testing.T) {
	addr, _ := startServer(t, nil)
	c := newSession(t, addr, 10000)
	h := c.call(proto.OpAuth, &proto.AuthPacket{Scheme: "ip", Auth: []byte("10.1.2.3")}, nil)
	require.Equal(t, proto.ErrOK, h.Err, "addauth ip")
	require.Equal(t, proto.ErrOK, c.ping().Err, "connection still serves after addauth ip")
	var w proto.WhoAmIResponse
	require.Equal(t, proto.ErrOK, c.call(proto.OpWhoAmI, nil, &w).Err)
	require.Equal(t, []proto.ClientInfo{{AuthScheme: "ip", User: "127.0.0.1"}}, w.ClientInfo,
		"the client's address is its ip identity, whatever the auth data said")
	acl := []proto.ACL{{Perms: proto.PermAll, Id: proto.Id{Scheme: "ip", ID: "127.0.0.1"}}}
	require.Equal(t, proto.ErrOK, c.call(proto.OpCreate, &proto.CreateRequest{Path: "/ipnode", Data: []byte("x"), ACL: acl}, &proto.CreateResponse{}).Err)
	var gd proto.GetDataResponse
	require.Equal(t, proto.ErrOK, c.call(proto.OpGetData, &proto.GetDataRequest{Path: "/ipnode"}, &gd).Err)
	require.Equal(t, []byte("x"), gd.Data)
}

// TestProtoSystemNodesEmptyData: "/", "/zookeeper", "/zookeeper/quota" and
// "/zookeeper/config" answer getData with zero-length data, not null, and
// the Stat Apache ZooKeeper 3.8 standalone answers (checked against it).
func TestProtoSystemNodesEmptyData(t *testing.T) {
	addr, _ := startServer(t, nil)
	c := newSession(t, addr, 10000)
	for _, tc := range []struct {
		path string
		stat proto.Stat
	}{
		{"/", proto.Stat{Cversion: -1, NumChildren: 1}},
		{"/zookeeper", proto.Stat{Cversion: -2, NumChildren: 2}},
		{"/zookeeper/quota", proto.Stat{}},
		{"/zookeeper/config", proto.Stat{Aversion: -1}},
	} {
		xid := c.send(proto.OpGetData, &proto.GetDataRequest{Path: tc.path})
		body, err := c.readFrame(waitTimeout)
		require.NoError(t, err)
		var hdr proto.ReplyHeader
		require.NoError(t, proto.Unmarshal(body, &hdr))
		require.Equal(t, xid, hdr.Xid)
		require.Equal(t, proto.ErrOK, hdr.Err, "getData %s", tc.path)
		// The reply body starts with the data's length: 0, where -1 would
		// be null.
		require.Equal(t, int32(0), int32(binary.BigEndian.Uint32(body[16:20])), "getData %s data length", tc.path)
		var resp proto.GetDataResponse
		_, err = proto.DecodeReply(body, &resp)
		require.NoError(t, err)
		require.Equal(t, tc.stat, resp.Stat, "getData %s stat", tc.path)
	}
}

// TestFourLetterTraceMask: gtmk prints the trace mask (ZooKeeper's default
// 306) as a bare decimal number; stmk reads an 8-byte big-endian long after
// the word, sets it and prints it, as ZooKeeper does.
func TestFourLetterTraceMask(t *testing.T) {
	addr, _ := startServer(t, func(c *server.Config) {
		c.FourLetterWords = map[string]bool{"gtmk": true, "stmk": true, "ruok": true}
	})
	require.Equal(t, "306", fourLetter(t, addr, "gtmk"))
	arg := binary.BigEndian.AppendUint64([]byte("stmk"), 1234)
	require.Equal(t, "1234", fourLetter(t, addr, string(arg)))
	require.Equal(t, "1234", fourLetter(t, addr, "gtmk"))
	arg = binary.BigEndian.AppendUint64([]byte("stmk"), uint64(server.DefaultTraceMask))
	require.Equal(t, "306", fourLetter(t, addr, string(arg)))
	// A short argument (the client then ends its side): the connection
	// closes without a reply and the mask stays.
	nc, err := net.DialTimeout("tcp", addr, waitTimeout)
	require.NoError(t, err)
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(waitTimeout))
	_, err = nc.Write([]byte("stmk\n"))
	require.NoError(t, err)
	require.NoError(t, nc.(*net.TCPConn).CloseWrite())
	out, err := io.ReadAll(nc)
	require.NoError(t, err)
	require.Empty(t, out)
	require.Equal(t, "306", fourLetter(t, addr, "gtmk"))

	// Not whitelisted: ZooKeeper's refusal, and the argument is not read.
	addr2, _ := startServer(t, nil)
	require.Equal(t, "gtmk is not executed because it is not in the whitelist.\n", fourLetter(t, addr2, "gtmk"))
	require.Equal(t, "stmk is not executed because it is not in the whitelist.\n", fourLetter(t, addr2, "stmk"))
}

// TestProtoPipelinedAfterHandshake is what the Java client's Netty socket
// does: it writes its queued requests right behind the ConnectRequest,
// without waiting for the ConnectResponse. Everything comes in ONE write; the
// server answers the handshake, then each request in order, with the watch
// events before the replies that reveal them.
func TestProtoPipelinedAfterHandshake(t *testing.T) {
	addr, _ := startServer(t, nil)
	c := dialRaw(t, addr)
	open := proto.OpenACLUnsafe
	reqs := []struct {
		op  proto.OpCode
		rec proto.Record
	}{
		{proto.OpCreate, &proto.CreateRequest{Path: "/p", Data: []byte("v1"), ACL: open}},
		{proto.OpGetData, &proto.GetDataRequest{Path: "/p", Watch: true}},
		{proto.OpExists, &proto.ExistsRequest{Path: "/q", Watch: true}},
		{proto.OpSetData, &proto.SetDataRequest{Path: "/p", Data: []byte("v2"), Version: -1}},
		{proto.OpCreate, &proto.CreateRequest{Path: "/q", ACL: open}},
		{proto.OpGetChildren, &proto.GetChildrenRequest{Path: "/"}},
	}
	burst := proto.AppendRecords(nil, &proto.ConnectRequest{TimeOut: 10000, Passwd: make([]byte, 16)})
	for i, r := range reqs {
		burst = append(burst, proto.EncodeRequest(proto.RequestHeader{Xid: int32(i + 1), Type: r.op}, r.rec)...)
	}
	c.write(burst)

	body, err := c.readFrame(waitTimeout)
	require.NoError(t, err, "ConnectResponse")
	var cr proto.ConnectResponse
	require.NoError(t, proto.Unmarshal(body, &cr))
	require.NotZero(t, cr.SessionID)
	require.Equal(t, int32(10000), cr.TimeOut)

	var created proto.CreateResponse
	require.Equal(t, proto.ErrOK, c.recvReply(1, &created).Err)
	require.Equal(t, "/p", created.Path)
	var gd proto.GetDataResponse
	require.Equal(t, proto.ErrOK, c.recvReply(2, &gd).Err)
	require.Equal(t, []byte("v1"), gd.Data)
	require.Equal(t, proto.ErrNoNode, c.recvReply(3, nil).Err)
	var sd proto.SetDataResponse
	require.Equal(t, proto.ErrOK, c.recvReply(4, &sd).Err)
	require.Equal(t, int32(1), sd.Stat.Version)
	require.Equal(t, []proto.WatcherEvent{{Type: proto.EventNodeDataChanged, State: proto.StateSyncConnected, Path: "/p"}},
		c.takeEvents(), "the data watch fires before the setData reply")
	require.Equal(t, proto.ErrOK, c.recvReply(5, &created).Err)
	require.Equal(t, []proto.WatcherEvent{{Type: proto.EventNodeCreated, State: proto.StateSyncConnected, Path: "/q"}},
		c.takeEvents(), "the exists watch fires before the create reply")
	var kids proto.GetChildrenResponse
	require.Equal(t, proto.ErrOK, c.recvReply(6, &kids).Err)
	require.ElementsMatch(t, []string{"p", "q", "zookeeper"}, kids.Children)
	require.Equal(t, proto.ErrOK, c.ping().Err)
}

// TestProtoPipelinedReconnect: a reconnect with the session's id writes
// requests behind its ConnectRequest too (the Java client sends SetWatches
// there); they are served once the session is re-established on the new
// connection. A refused reconnect (wrong password) gets ZooKeeper's expired
// ConnectResponse, then the connection closes and the requests behind it are
// never served.
func TestProtoPipelinedReconnect(t *testing.T) {
	addr, _ := startServer(t, nil)
	first := newSession(t, addr, 10000)
	require.Equal(t, proto.ErrOK, first.call(proto.OpCreate, &proto.CreateRequest{Path: "/r", Data: []byte("x"), ACL: proto.OpenACLUnsafe}, &proto.CreateResponse{}).Err)
	first.close()

	again := dialRaw(t, addr)
	burst := proto.AppendRecords(nil, &proto.ConnectRequest{TimeOut: 10000, SessionID: first.sessionID, Passwd: first.passwd})
	burst = append(burst, proto.EncodeRequest(proto.RequestHeader{Xid: 7, Type: proto.OpGetData}, &proto.GetDataRequest{Path: "/r", Watch: true})...)
	burst = append(burst, proto.EncodeRequest(proto.RequestHeader{Xid: 8, Type: proto.OpSetData}, &proto.SetDataRequest{Path: "/r", Data: []byte("y"), Version: -1})...)
	again.write(burst)
	body, err := again.readFrame(waitTimeout)
	require.NoError(t, err)
	var cr proto.ConnectResponse
	require.NoError(t, proto.Unmarshal(body, &cr))
	require.Equal(t, first.sessionID, cr.SessionID, "the session is resumed")
	var gd proto.GetDataResponse
	require.Equal(t, proto.ErrOK, again.recvReply(7, &gd).Err)
	require.Equal(t, []byte("x"), gd.Data)
	require.Equal(t, proto.ErrOK, again.recvReply(8, &proto.SetDataResponse{}).Err)
	require.Len(t, again.takeEvents(), 1, "the watch set by the pipelined getData fired")

	bad := dialRaw(t, addr)
	wrong := append([]byte(nil), first.passwd...)
	wrong[0] ^= 0xff
	burst = proto.AppendRecords(nil, &proto.ConnectRequest{TimeOut: 10000, SessionID: first.sessionID, Passwd: wrong})
	burst = append(burst, proto.EncodeRequest(proto.RequestHeader{Xid: 9, Type: proto.OpDelete}, &proto.DeleteRequest{Path: "/r", Version: -1})...)
	bad.write(burst)
	frames := bad.expectClosed()
	require.Len(t, frames, 1, "only the ConnectResponse, then the close")
	require.NoError(t, proto.Unmarshal(frames[0], &cr))
	require.Zero(t, cr.SessionID, "ZooKeeper's answer for an expired session")
	require.Zero(t, cr.TimeOut)
	require.Equal(t, proto.ErrOK, again.call(proto.OpExists, &proto.ExistsRequest{Path: "/r"}, &proto.ExistsResponse{}).Err,
		"the delete behind the refused handshake was never served")
}

// TestProtoPipelinedFlood: a client that writes far more than the server's
// read buffer behind its ConnectRequest is served in full and in order. As
// in ZooKeeper (which stops reading a connection until its session is set
// up), nothing past the ConnectRequest is read before the handshake
// completes, so such a burst waits in the socket instead of in memory.
func TestProtoPipelinedFlood(t *testing.T) {
	addr, _ := startServer(t, nil)
	c := dialRaw(t, addr)
	const n = 3000
	data := make([]byte, 2000) // ~6 MB in all
	burst := proto.AppendRecords(nil, &proto.ConnectRequest{TimeOut: 10000, Passwd: make([]byte, 16)})
	for i := range n {
		burst = append(burst, proto.EncodeRequest(proto.RequestHeader{Xid: int32(i + 1), Type: proto.OpCreate},
			&proto.CreateRequest{Path: "/f-", Data: data, ACL: proto.OpenACLUnsafe, Flags: proto.ModePersistentSequential})...)
	}
	written := make(chan error, 1)
	go func() {
		_ = c.nc.SetWriteDeadline(time.Now().Add(waitTimeout))
		_, err := c.nc.Write(burst)
		written <- err
	}()
	body, err := c.readFrame(waitTimeout)
	require.NoError(t, err, "ConnectResponse")
	var cr proto.ConnectResponse
	require.NoError(t, proto.Unmarshal(body, &cr))
	require.NotZero(t, cr.SessionID)
	for i := range n {
		var resp proto.CreateResponse
		require.Equal(t, proto.ErrOK, c.recvReply(int32(i+1), &resp).Err)
		require.Equal(t, seqName("/f-", i), resp.Path)
	}
	require.NoError(t, <-written)
}

// TestProtoFramesInPieces: however the client's bytes are cut (a frame in
// many small writes, several frames and a part of the next in one write, a
// frame larger than the reader's first buffer), every request is served in
// order; the same with the connection poller (poller_linux.go) and with
// every connection read by its own goroutine.
func TestProtoFramesInPieces(t *testing.T) {
	for _, poller := range []bool{true, false} {
		t.Run(fmt.Sprintf("poller=%v", poller), func(t *testing.T) {
			addr, _ := startServer(t, func(c *server.Config) { c.NoConnectionPoller = !poller })
			c := newSession(t, addr, 10000)
			big := bytes.Repeat([]byte("0123456789abcdef"), 4<<10) // 64 KiB, over the 4 KiB first buffer
			var stream []byte
			stream = append(stream, proto.EncodeRequest(proto.RequestHeader{Xid: 1, Type: proto.OpCreate},
				&proto.CreateRequest{Path: "/pieces", Data: big, ACL: proto.OpenACLUnsafe})...)
			for i := int32(2); i < 40; i++ {
				if i%2 == 0 {
					stream = append(stream, proto.EncodeRequest(proto.RequestHeader{Xid: i, Type: proto.OpGetData},
						&proto.GetDataRequest{Path: "/pieces"})...)
				} else {
					stream = append(stream, proto.EncodeRequest(proto.RequestHeader{Xid: i, Type: proto.OpSetData},
						&proto.SetDataRequest{Path: "/pieces", Data: []byte{byte(i)}, Version: -1})...)
				}
			}
			// Cut into pieces of 1 to 1,000 bytes, each its own write.
			go func() {
				for off, n := 0, 1; off < len(stream); n = n*7%1000 + 1 {
					end := min(off+n, len(stream))
					if _, err := c.nc.Write(stream[off:end]); err != nil {
						return
					}
					off = end
				}
			}()
			var created proto.CreateResponse
			require.Equal(t, proto.ErrOK, c.recvReply(1, &created).Err)
			require.Equal(t, "/pieces", created.Path)
			for i := int32(2); i < 40; i++ {
				if i%2 == 0 {
					var gd proto.GetDataResponse
					require.Equal(t, proto.ErrOK, c.recvReply(i, &gd).Err)
					if i == 2 {
						require.Equal(t, big, gd.Data)
					} else {
						require.Equal(t, []byte{byte(i - 1)}, gd.Data, "a read sees the session's own write before it")
					}
				} else {
					var sd proto.SetDataResponse
					require.Equal(t, proto.ErrOK, c.recvReply(i, &sd).Err)
					require.EqualValues(t, (i-1)/2, sd.Stat.Version)
				}
			}
			require.Equal(t, proto.ErrOK, c.ping().Err)
		})
	}
}
