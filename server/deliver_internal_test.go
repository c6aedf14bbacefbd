package server

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine"
	"github.com/zabkeeper/zabkeeper/proto"
)

// TestSharedEventEncodedOnce: the watchers of one change get one frame,
// byte for byte the event's encoding; another event gets its own.
func TestSharedEventEncodedOnce(t *testing.T) {
	out := func(conn engine.ConnID, zxid int64, path string) *engine.Output {
		return &engine.Output{Conn: conn, Kind: engine.OutEvent,
			Header: proto.ReplyHeader{Xid: proto.XidNotification, Zxid: zxid},
			Body:   &proto.WatcherEvent{Type: 3, State: 3, Path: path}}
	}
	var e sharedEvent
	a := out(1, 7, "/a")
	first := e.frame(a)
	require.Equal(t, proto.AppendRecords(nil, &a.Header, a.Body), first)
	second := e.frame(out(2, 7, "/a"))
	require.Same(t, &first[0], &second[0], "one encoding shared by the watchers")

	b := out(3, 7, "/b")
	other := e.frame(b)
	require.Equal(t, proto.AppendRecords(nil, &b.Header, b.Body), other)
	require.Equal(t, proto.AppendRecords(nil, &a.Header, a.Body), first, "an earlier frame is never changed")
	c := out(4, 8, "/b")
	require.Equal(t, proto.AppendRecords(nil, &c.Header, c.Body), e.frame(c))
}

// BenchmarkEventFrames encodes the notifications of one change for 1,000
// watchers: once per watcher (as deliver did) and shared (as it does).
func BenchmarkEventFrames(b *testing.B) {
	outs := make([]engine.Output, 1000)
	ev := &proto.WatcherEvent{Type: 3, State: 3, Path: "/zabkeeper-bench/run-0123456789/watched"}
	for i := range outs {
		outs[i] = engine.Output{Conn: engine.ConnID(i + 1), Kind: engine.OutEvent,
			Header: proto.ReplyHeader{Xid: proto.XidNotification, Zxid: 42}, Body: ev}
	}
	var sink int
	b.Run("per-watcher", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for i := range outs {
				sink += len(proto.AppendRecords(nil, &outs[i].Header, outs[i].Body))
			}
		}
	})
	b.Run("shared", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var e sharedEvent
			for i := range outs {
				sink += len(e.frame(&outs[i]))
			}
		}
	})
	if sink == 0 {
		b.Fatal("no frames")
	}
}
