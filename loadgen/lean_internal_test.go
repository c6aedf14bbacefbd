package loadgen

import (
	"context"
	"encoding/binary"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/internal/testserver"
	"github.com/zabkeeper/zabkeeper/proto"
)

// A lean session gets the server's error codes as proto.ErrCode (the run
// counts them and goes on) and its replies are checked.
func TestLeanConnErrorsAndReplies(t *testing.T) {
	addr := testserver.StartLogged(t, testserver.Config(t, 0), slog.New(slog.DiscardHandler)).Addr

	c, err := dialLean(context.Background(), addr, 10*time.Second, nil)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.create("/lean", []byte("abc")))
	err = c.create("/lean", []byte("abc"))
	require.ErrorIs(t, err, proto.ErrNodeExists)
	require.True(t, isServerError(err))
	require.NoError(t, c.get("/lean", 3))
	require.ErrorContains(t, c.get("/lean", 4), "3 bytes of data")
	require.NoError(t, c.set("/lean", []byte("abcd")))
	require.NoError(t, c.get("/lean", 4))
	err = c.set("/missing", nil)
	require.ErrorIs(t, err, proto.ErrNoNode)
	require.Positive(t, c.zxid, "replies carry the zxid")
}

// FuzzLeanReply feeds arbitrary reply frames to the lean client's requests:
// it returns an error or accepts the reply, and never panics.
func FuzzLeanReply(f *testing.F) {
	ok := func(xid int32, body []byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(16+len(body)))
		b = binary.BigEndian.AppendUint32(b, uint32(xid))
		b = binary.BigEndian.AppendUint64(b, 7)
		b = binary.BigEndian.AppendUint32(b, 0)
		return append(b, body...)
	}
	f.Add(uint8(0), ok(1, []byte{0, 0, 0, 2, '/', 'a'}))
	f.Add(uint8(1), ok(1, make([]byte, statSize)))
	f.Add(uint8(2), ok(1, append([]byte{0, 0, 0, 1, 'x'}, make([]byte, statSize)...)))
	f.Add(uint8(2), ok(2, nil))
	f.Add(uint8(1), []byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, op uint8, reply []byte) {
		client, srv := net.Pipe()
		defer client.Close()
		go func() {
			defer srv.Close()
			buf := make([]byte, 4096)
			_, _ = srv.Read(buf) // the request
			_, _ = srv.Write(reply)
		}()
		c := &leanConn{nc: client, br: newReader(client), out: make([]byte, 0, 64)}
		_ = client.SetDeadline(time.Now().Add(5 * time.Second))
		var err error
		switch op % 3 {
		case 0:
			err = c.create("/a", nil)
		case 1:
			err = c.set("/a", nil)
		case 2:
			err = c.get("/a", 1)
		}
		if err == nil {
			require.GreaterOrEqual(t, len(reply), 20)
		}
	})
}

// notification is a watch event frame as a server sends it.
func notification(typ int32, path string, code proto.ErrCode) []byte {
	ev := proto.WatcherEvent{Type: typ, State: 3, Path: path}
	return proto.AppendRecords(nil, &proto.ReplyHeader{Xid: proto.XidNotification, Zxid: 9, Err: code}, &ev)
}

// A lean session with a watch: getW sets it, a notification read while a
// reply is awaited is kept, and nextEvent returns the events in order.
func TestLeanConnWatch(t *testing.T) {
	addr := testserver.StartLogged(t, testserver.Config(t, 0), slog.New(slog.DiscardHandler)).Addr

	c, err := dialLean(context.Background(), addr, 10*time.Second, nil)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.create("/w", []byte("abc")))
	require.NoError(t, c.getW("/w", 3))
	// The session's own set: its notification may come before the reply
	// (ZooKeeper's order), and is kept for nextEvent.
	require.NoError(t, c.set("/w", []byte("abcd")))
	ev, err := c.nextEvent()
	require.NoError(t, err)
	require.Equal(t, proto.WatcherEvent{Type: 3, State: 3, Path: "/w"}, ev) // NodeDataChanged, SyncConnected
	require.Empty(t, c.events)

	other, err := dialLean(context.Background(), addr, 10*time.Second, nil)
	require.NoError(t, err)
	defer other.Close()
	require.NoError(t, c.getW("/w", 4))
	require.NoError(t, other.set("/w", []byte("ab")))
	ev, err = c.nextEvent()
	require.NoError(t, err)
	require.Equal(t, "/w", ev.Path)
	require.EqualValues(t, 3, ev.Type)
}

// FuzzLeanEvent feeds arbitrary frames to a lean session waiting for a
// notification, and to one waiting for a reply behind notifications: it
// returns an error or an event, and never panics.
func FuzzLeanEvent(f *testing.F) {
	f.Add(false, notification(3, "/fan", proto.ErrOK))
	f.Add(false, notification(3, "/fan", proto.ErrNoNode))
	f.Add(false, append(notification(3, "/fan", proto.ErrOK), 0))
	f.Add(true, append(notification(3, "/fan", proto.ErrOK),
		proto.AppendRecords(nil, &proto.ReplyHeader{Xid: 1, Zxid: 9}, &proto.SetDataResponse{})...))
	f.Add(true, notification(3, "/fan", proto.ErrOK)[:20])
	f.Fuzz(func(t *testing.T, reply bool, stream []byte) {
		client, srv := net.Pipe()
		defer client.Close()
		go func() {
			defer srv.Close()
			if reply {
				buf := make([]byte, 4096)
				_, _ = srv.Read(buf) // the request
			}
			_, _ = srv.Write(stream)
		}()
		c := &leanConn{nc: client, br: newReader(client), out: make([]byte, 0, 64)}
		_ = client.SetDeadline(time.Now().Add(5 * time.Second))
		if reply {
			if err := c.set("/a", nil); err == nil {
				require.GreaterOrEqual(t, len(stream), 4+16+statSize)
			}
			return
		}
		ev, err := c.nextEvent()
		if err == nil {
			require.GreaterOrEqual(t, len(stream), 4+16+12+len(ev.Path))
		}
	})
}
