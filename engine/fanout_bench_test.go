package engine

import (
	"testing"

	"github.com/zabkeeper/zabkeeper/proto"
)

// BenchmarkWatchFanout and BenchmarkWatchFanoutTrigger share their setup:
// 1,000 sessions with a data watch on /w.
//
// BenchmarkWatchFanout is one setData with 1,000 sessions watching the
// znode, up to the outputs the server delivers (1,000 notifications and
// the reply), and the 1,000 getData that set the watches again. One op is
// one such round; compare allocs/op.
func BenchmarkWatchFanout(b *testing.B) { benchWatchFanout(b, false) }

// BenchmarkWatchFanoutTrigger times only the setData, its commit and the
// 1,000 notifications it triggers (the part of a fan-out before the
// server's writes), not the getData that set the watches again.
func BenchmarkWatchFanoutTrigger(b *testing.B) { benchWatchFanout(b, true) }

func benchWatchFanout(b *testing.B, triggerOnly bool) {
	const watchers = 1000
	n, err := Restore(testConfig(), Durable{})
	if err != nil {
		b.Fatal(err)
	}
	var last int64
	drain := func() (events int) {
		for n.HasReady() {
			rd := n.Ready()
			if k := len(rd.Entries); k > 0 {
				last = rd.Entries[k-1].Zxid
			}
			for _, o := range rd.Outputs {
				if o.Kind == OutEvent {
					events++
				}
			}
			n.Advance()
		}
		return events
	}
	persist := func() int {
		e := drain()
		n.Persisted(last)
		return e + drain()
	}
	now := int64(1_700_000_000_000)
	for c := ConnID(1); c <= watchers+1; c++ {
		n.Connect(ConnectRequest{Conn: c, Req: &proto.ConnectRequest{TimeOut: 2000, Passwd: make([]byte, 16)}, ClientIP: "127.0.0.1", Time: now})
		persist()
	}
	n.Submit(Request{Conn: watchers + 1, Xid: 1, Op: proto.OpCreate, Time: now,
		Body: &proto.CreateRequest{Path: "/w", Data: make([]byte, 100), ACL: proto.OpenACLUnsafe}})
	persist()
	arm := func() {
		for c := ConnID(1); c <= watchers; c++ {
			n.Submit(Request{Conn: c, Xid: 2, Op: proto.OpGetData, Time: now, Body: &proto.GetDataRequest{Path: "/w", Watch: true}})
		}
		drain()
	}
	arm()
	value := make([]byte, 100)
	b.ReportAllocs()
	for b.Loop() {
		n.Submit(Request{Conn: watchers + 1, Xid: 3, Op: proto.OpSetData, Time: now,
			Body: &proto.SetDataRequest{Path: "/w", Data: value, Version: -1}})
		if ev := persist(); ev != watchers {
			b.Fatalf("%d notifications, want %d", ev, watchers)
		}
		if triggerOnly {
			b.StopTimer()
		}
		arm()
		if triggerOnly {
			b.StartTimer()
		}
	}
}
