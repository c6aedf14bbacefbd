package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/proto"
)

// startTuned runs a standalone server with its unexported timeouts adjusted
// by tune, until the test ends, and returns its address.
func startTuned(t testing.TB, tune func(*Server)) string {
	t.Helper()
	cfg := DefaultConfig()
	cfg.AdminServerAddress, cfg.AdminServerPort = "127.0.0.1", 0 // a free port: tests run side by side
	dir := t.TempDir()
	cfg.DataDir, cfg.DataLogDir = dir, dir
	cfg.ClientPort, cfg.ClientPortAddress = 0, "127.0.0.1"
	cfg.MaxClientCnxns = 0
	s, err := New(cfg, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	require.NoError(t, err)
	if tune != nil {
		tune(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return")
		}
	})
	return s.Addr().String()
}

// testWriter sends server logs to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// dialSession opens a connection and a new session on it.
func dialSession(t testing.TB, addr string) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = nc.Write(proto.AppendRecords(nil, &proto.ConnectRequest{TimeOut: 30000, Passwd: make([]byte, 16)}))
	require.NoError(t, err)
	body, err := proto.ReadFrame(nc, nil, 1<<20)
	require.NoError(t, err)
	var cr proto.ConnectResponse
	require.NoError(t, proto.Unmarshal(body, &cr))
	require.NotZero(t, cr.SessionID)
	return nc
}

// call sends one request and reads its reply header and body.
func call(t *testing.T, nc net.Conn, xid int32, op proto.OpCode, req, resp proto.Record) proto.ReplyHeader {
	t.Helper()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	_, err := nc.Write(proto.EncodeRequest(proto.RequestHeader{Xid: xid, Type: op}, req))
	require.NoError(t, err, "xid %d", xid)
	body, err := proto.ReadFrame(nc, nil, 16<<20)
	require.NoError(t, err, "reply to xid %d", xid)
	var hdr proto.ReplyHeader
	require.NoError(t, proto.Unmarshal(body, &hdr))
	require.Equal(t, xid, hdr.Xid)
	if hdr.Err == proto.ErrOK && resp != nil {
		_, err = proto.DecodeReply(body, resp)
		require.NoError(t, err)
	}
	return hdr
}

// TestQuietConnectionGetsLargeReply: after a quiet spell longer than the
// write timeout, a reply larger than the writer's buffer (a 100 KB getData)
// is written under a fresh deadline. The old writer armed the deadline only
// before Flush, so bufio wrote such a frame straight to the socket under the
// previous, expired deadline and the connection died without a reply.
func TestQuietConnectionGetsLargeReply(t *testing.T) {
	const writeTimeout = time.Second
	addr := startTuned(t, func(s *Server) { s.writeTimeout = writeTimeout })
	nc := dialSession(t, addr)
	big := make([]byte, 100_000)
	for i := range big {
		big[i] = byte(i)
	}
	require.Equal(t, proto.ErrOK, call(t, nc, 1, proto.OpCreate,
		&proto.CreateRequest{Path: "/big", Data: big, ACL: proto.OpenACLUnsafe}, nil).Err)
	// Quiet for longer than the write timeout: the last deadline expires.
	time.Sleep(writeTimeout + writeTimeout/2)
	var gd proto.GetDataResponse
	require.Equal(t, proto.ErrOK, call(t, nc, 2, proto.OpGetData, &proto.GetDataRequest{Path: "/big"}, &gd).Err)
	require.Equal(t, big, gd.Data)
	time.Sleep(writeTimeout + writeTimeout/2)
	require.Equal(t, proto.ErrOK, call(t, nc, 3, proto.OpGetData, &proto.GetDataRequest{Path: "/big"}, &gd).Err)
	require.Equal(t, big, gd.Data)
}

// TestQuietConnectionGetsWatchFlood: after a quiet spell, one 1000-op multi
// fires 1000 events of a persistent recursive watch, more than the writer's
// buffer holds, all queued in one go; every event and the reply arrive.
func TestQuietConnectionGetsWatchFlood(t *testing.T) {
	const writeTimeout = time.Second
	addr := startTuned(t, func(s *Server) { s.writeTimeout = writeTimeout })
	nc := dialSession(t, addr)
	const n = 1000
	path := func(i int) string { return fmt.Sprintf("/w/a-node-with-a-rather-long-name-%04d", i) }
	creates := []proto.MultiOp{{Type: proto.OpCreate, Req: &proto.CreateRequest{Path: "/w", ACL: proto.OpenACLUnsafe}}}
	sets := make([]proto.MultiOp, 0, n)
	for i := range n {
		creates = append(creates, proto.MultiOp{Type: proto.OpCreate, Req: &proto.CreateRequest{Path: path(i), ACL: proto.OpenACLUnsafe}})
		sets = append(sets, proto.MultiOp{Type: proto.OpSetData, Req: &proto.SetDataRequest{Path: path(i), Data: []byte("x"), Version: -1}})
	}
	require.Equal(t, proto.ErrOK, call(t, nc, 1, proto.OpMulti, &proto.MultiRequest{Ops: creates}, nil).Err)
	require.Equal(t, proto.ErrOK, call(t, nc, 2, proto.OpAddWatch,
		&proto.AddWatchRequest{Path: "/w", Mode: proto.AddWatchPersistentRecursive}, nil).Err)
	time.Sleep(writeTimeout + writeTimeout/2)

	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	_, err := nc.Write(proto.EncodeRequest(proto.RequestHeader{Xid: 3, Type: proto.OpMulti}, &proto.MultiRequest{Ops: sets}))
	require.NoError(t, err)
	for i := range n {
		body, err := proto.ReadFrame(nc, nil, 16<<20)
		require.NoError(t, err, "event %d of %d", i, n)
		var hdr proto.ReplyHeader
		require.NoError(t, proto.Unmarshal(body, &hdr))
		require.Equal(t, proto.XidNotification, hdr.Xid, "event %d", i)
		var ev proto.WatcherEvent
		_, err = proto.DecodeReply(body, &ev)
		require.NoError(t, err)
		require.Equal(t, proto.WatcherEvent{Type: proto.EventNodeDataChanged, State: proto.StateSyncConnected, Path: path(i)}, ev)
	}
	body, err := proto.ReadFrame(nc, nil, 16<<20)
	require.NoError(t, err, "the multi's reply")
	var hdr proto.ReplyHeader
	require.NoError(t, proto.Unmarshal(body, &hdr))
	require.Equal(t, int32(3), hdr.Xid)
	require.Equal(t, proto.ErrOK, hdr.Err)
}

// TestSessionlessConnectionClosed: a connection that never sends its
// ConnectRequest (nothing, or only part of it) is closed after the
// sessionless timeout, as ZooKeeper closes it after
// zookeeper.nio.sessionlessCnxnTimeout (10 s), not held for
// maxSessionTimeout.
func TestSessionlessConnectionClosed(t *testing.T) {
	addr := startTuned(t, func(s *Server) { s.sessionlessTimeout = 500 * time.Millisecond })
	for _, sent := range [][]byte{nil, {0, 0}} {
		nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
		require.NoError(t, err)
		defer nc.Close()
		if sent != nil {
			_, err = nc.Write(sent)
			require.NoError(t, err)
		}
		// The server closes well within 5 s; the old one waited for
		// maxSessionTimeout (40 s by default).
		_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := nc.Read(make([]byte, 1))
		require.Zero(t, n)
		var ne net.Error
		require.False(t, errors.As(err, &ne) && ne.Timeout(), "connection with %d bytes sent still open: %v", len(sent), err)
	}
}

// TestFloodBeforeStuckHandshakeClosed: a client floods requests behind a
// ConnectRequest that is never answered (here the event loop does not run,
// as if the handshake waited forever on a leader). The reader reads nothing
// past the ConnectRequest, so the flood waits in the socket, and once the
// session timeout the client asked for has passed, the connection is closed.
func TestFloodBeforeStuckHandshakeClosed(t *testing.T) {
	cfg := DefaultConfig()
	cfg.AdminServerAddress, cfg.AdminServerPort = "127.0.0.1", 0 // a free port: tests run side by side
	dir := t.TempDir()
	cfg.DataDir, cfg.DataLogDir = dir, dir
	cfg.ClientPort, cfg.ClientPortAddress = 0, "127.0.0.1"
	cfg.TickTime, cfg.MinSessionTimeout, cfg.MaxSessionTimeout = 100, 300, 300
	s, err := New(cfg, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	require.NoError(t, err)
	go s.accept(s.ln, modePlain) // and no event loop: no handshake ever completes
	t.Cleanup(func() {
		s.stop()
		_ = s.ln.Close()
		s.connMu.Lock()
		for _, c := range s.conns {
			c.shutdown()
		}
		s.connMu.Unlock()
		s.wg.Wait()
		require.NoError(t, s.wal.Close())
	})

	nc, err := net.DialTimeout("tcp", s.Addr().String(), 10*time.Second)
	require.NoError(t, err)
	defer nc.Close()
	burst := proto.AppendRecords(nil, &proto.ConnectRequest{TimeOut: 30000, Passwd: make([]byte, 16)})
	ping := proto.EncodeRequest(proto.RequestHeader{Xid: proto.XidPing, Type: proto.OpPing}, nil)
	burst = append(burst, bytes.Repeat(ping, (32<<20)/len(ping))...)
	wrote := make(chan error, 1)
	go func() {
		_ = nc.SetWriteDeadline(time.Now().Add(20 * time.Second))
		_, err := nc.Write(burst)
		wrote <- err
	}()
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := nc.Read(make([]byte, 1))
	require.Zero(t, n, "no reply to an unanswered handshake")
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "connection still open: %v", err)
	require.Error(t, <-wrote, "32 MB cannot all have been taken in: the server stopped reading")
	var kinds []eventKind
	waitKinds := time.Now().Add(10 * time.Second)
	for len(kinds) < 2 && time.Now().Before(waitKinds) {
		select {
		case ev := <-s.events:
			kinds = append(kinds, ev.kind)
		case <-time.After(10 * time.Millisecond):
		}
	}
	require.Equal(t, []eventKind{evConnect, evDisconnect}, kinds,
		"not one request of the flood reached the event loop")
	require.Zero(t, len(s.events))
}

// TestLoopWritesKeepOrderPastFullSocket: the event loop writes a reply
// itself with one non-blocking write, after its turn, when nothing was
// queued before it (send); what the socket does not take is queued for the
// writer ahead of later frames.
// A client pipelines a multiRead whose reply is 8 MB, then getData requests
// with a watch (answered by the loop) and without one (answered on the
// connection's goroutine) for 500 KB replies, before reading any: the
// socket fills, the loop's write is partial, and every reply still arrives
// whole and in order.
func TestLoopWritesKeepOrderPastFullSocket(t *testing.T) {
	var srv *Server
	addr := startTuned(t, func(s *Server) { srv = s })
	nc := dialSession(t, addr)
	big := make([]byte, 500_000)
	for i := range big {
		big[i] = byte(i * 7)
	}
	require.Equal(t, proto.ErrOK, call(t, nc, 1, proto.OpCreate,
		&proto.CreateRequest{Path: "/big", Data: big, ACL: proto.OpenACLUnsafe}, nil).Err)
	// First a multiRead of 16 getData (answered by the loop): one 8 MB
	// reply, more than a socket takes at once.
	multi := &proto.MultiRequest{}
	for range 16 {
		multi.Ops = append(multi.Ops, proto.MultiOp{Type: proto.OpGetData, Req: &proto.GetDataRequest{Path: "/big"}})
	}
	reqs := proto.EncodeRequest(proto.RequestHeader{Xid: 9, Type: proto.OpMultiRead}, multi)
	const n = 24
	for i := range n {
		reqs = append(reqs, proto.EncodeRequest(proto.RequestHeader{Xid: int32(10 + i), Type: proto.OpGetData},
			&proto.GetDataRequest{Path: "/big", Watch: i%3 != 2})...)
	}
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	_, err := nc.Write(reqs)
	require.NoError(t, err)
	// Read nothing until a loop write found the socket full.
	deadline := time.Now().Add(20 * time.Second)
	for srv.loopWritesShort.Load() == 0 {
		require.True(t, time.Now().Before(deadline), "no loop write was short (%d loop writes)", srv.loopWrites.Load())
		runtime.Gosched()
	}
	body, err := proto.ReadFrame(nc, nil, 16<<20)
	require.NoError(t, err, "the multiRead's reply")
	var hdr proto.ReplyHeader
	require.NoError(t, proto.Unmarshal(body, &hdr))
	require.Equal(t, int32(9), hdr.Xid)
	require.Equal(t, proto.ErrOK, hdr.Err)
	require.Greater(t, len(body), 16*len(big))
	for i := range n {
		body, err := proto.ReadFrame(nc, nil, 16<<20)
		require.NoError(t, err, "reply %d", i)
		var hdr proto.ReplyHeader
		require.NoError(t, proto.Unmarshal(body, &hdr))
		require.Equal(t, int32(10+i), hdr.Xid, "reply %d in order", i)
		require.Equal(t, proto.ErrOK, hdr.Err)
		var gd proto.GetDataResponse
		_, err = proto.DecodeReply(body, &gd)
		require.NoError(t, err)
		require.Equal(t, big, gd.Data, "reply %d whole", i)
	}
}

// TestFastReadRepliesPastFullSocket: replies a connection's reader answers
// itself (fastread.go) are encoded into a buffer reused for the next reply;
// one cut short by a full socket is queued for the writer goroutine, so
// the next reply must go to a new buffer (with the poller, replies of one
// turn share a frame and its buffer). Thousands of pipelined getData, none
// read until a write was short: every reply arrives whole, in order.
func TestFastReadRepliesPastFullSocket(t *testing.T) {
	for _, poller := range []bool{true, false} {
		t.Run(fmt.Sprintf("poller=%v", poller), func(t *testing.T) {
			var srv *Server
			addr := startTuned(t, func(s *Server) {
				srv = s
				s.cfg.NoConnectionPoller = !poller
			})
			nc := dialSession(t, addr)
			data := make([]byte, 8000) // a reply under reuseFrameMax: its buffer is kept
			for i := range data {
				data[i] = byte(i * 13)
			}
			require.Equal(t, proto.ErrOK, call(t, nc, 1, proto.OpCreate,
				&proto.CreateRequest{Path: "/r", Data: data, ACL: proto.OpenACLUnsafe}, nil).Err)
			const n = 3000 // 24 MB of replies, more than both sockets' buffers
			var reqs []byte
			for i := range n {
				reqs = append(reqs, proto.EncodeRequest(proto.RequestHeader{Xid: int32(10 + i), Type: proto.OpGetData},
					&proto.GetDataRequest{Path: "/r"})...)
			}
			_ = nc.SetDeadline(time.Now().Add(60 * time.Second))
			if poller {
				// Read nothing until a reply's write was cut short. The
				// poller writes a turn's replies to a connection as one
				// frame only while nothing is queued behind it (the
				// rest go to the writer goroutine, whose blocking writes
				// would then fill the socket instead): so send a few
				// requests at a time, each lot once the last is written.
				const lot = 4
				frame := len(reqs) / n
				deadline := time.Now().Add(20 * time.Second)
				sent := 0
				for srv.loopWritesShort.Load() == 0 && sent+lot < n {
					before := srv.loopWrites.Load()
					_, err := nc.Write(reqs[sent*frame : (sent+lot)*frame])
					require.NoError(t, err)
					sent += lot
					for srv.loopWrites.Load() == before && srv.loopWritesShort.Load() == 0 {
						require.True(t, time.Now().Before(deadline), "lot at %d not written (%d writes)", sent, before)
						runtime.Gosched()
					}
				}
				require.NotZero(t, srv.loopWritesShort.Load(), "no write was short (%d writes)", srv.loopWrites.Load())
				reqs = reqs[sent*frame:]
			}
			_, err := nc.Write(reqs)
			require.NoError(t, err)
			for i := range n {
				body, err := proto.ReadFrame(nc, nil, 1<<20)
				require.NoError(t, err, "reply %d", i)
				var gd proto.GetDataResponse
				hdr, err := proto.DecodeReply(body, &gd)
				require.NoError(t, err)
				require.Equal(t, int32(10+i), hdr.Xid, "reply %d in order", i)
				require.Equal(t, proto.ErrOK, hdr.Err)
				require.Equal(t, data, gd.Data, "reply %d whole", i)
			}
		})
	}
}

// FuzzNextFrame: the poller's frame splitter (nextFrame, on bytes as they
// come off a socket) cuts any stream into the same frames, and fails at the
// same frame, as proto.ReadFrame, the reader goroutine's.
func FuzzNextFrame(f *testing.F) {
	stream := proto.EncodeRequest(proto.RequestHeader{Xid: 1, Type: proto.OpGetData}, &proto.GetDataRequest{Path: "/a"})
	stream = append(stream, proto.AppendFrame(nil, nil)...)
	f.Add(stream, uint16(1024))
	f.Add([]byte{0, 0, 0, 9, 1, 2}, uint16(8))
	f.Add([]byte{0xff, 0xff, 0xff, 0xf0}, uint16(100))
	f.Add([]byte{0, 0, 4, 1, 0}, uint16(1024))
	f.Fuzz(func(t *testing.T, data []byte, max uint16) {
		r := bytes.NewReader(data)
		b := data
		for {
			want, rerr := proto.ReadFrame(r, nil, int(max))
			body, n, need, err := nextFrame(b, int(max))
			if rerr != nil {
				var tooLarge *proto.FrameTooLargeError
				if errors.As(rerr, &tooLarge) {
					require.Equal(t, rerr, err)
					return
				}
				// The stream ends inside a frame, or at its end.
				require.NoError(t, err)
				require.Zero(t, n)
				if len(b) >= 4 {
					require.Greater(t, need, len(b), "a partial frame asks for more than it has")
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, 4+len(want), n)
			require.Equal(t, want, body)
			require.Zero(t, need)
			b = b[n:]
		}
	})
}

// BenchmarkGetDataRaw is one session's getData over a raw socket, the
// client allocating nothing, so -benchmem's allocs/op are the server's
// for a read it answers off the loop (decode, ReadNow, reply, write).
func BenchmarkGetDataRaw(b *testing.B) {
	for _, poller := range []bool{true, false} {
		b.Run(fmt.Sprintf("poller=%v", poller), func(b *testing.B) {
			addr := startTuned(b, func(s *Server) { s.cfg.NoConnectionPoller = !poller })
			nc := dialSession(b, addr)
			_, err := nc.Write(proto.EncodeRequest(proto.RequestHeader{Xid: 1, Type: proto.OpCreate},
				&proto.CreateRequest{Path: "/bench", Data: make([]byte, 100), ACL: proto.OpenACLUnsafe}))
			require.NoError(b, err)
			_, err = proto.ReadFrame(nc, nil, 1<<20)
			require.NoError(b, err)
			req := proto.EncodeRequest(proto.RequestHeader{Xid: 2, Type: proto.OpGetData}, &proto.GetDataRequest{Path: "/bench"})
			reply := make([]byte, 4+16+4+100+68)
			_ = nc.SetDeadline(time.Now().Add(time.Minute))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := nc.Write(req); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(nc, reply); err != nil {
					b.Fatal(err)
				}
			}
			require.Equal(b, byte(2), reply[7], "the reply's xid")
		})
	}
}
