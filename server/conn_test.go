package server_test

import (
	"encoding/binary"
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
