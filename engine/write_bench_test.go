package engine

import (
	"strconv"
	"testing"

	"github.com/zabkeeper/zabkeeper/proto"
)

// benchWrites drives a standalone Node as the server does under a write
// load of 64 sessions: each op is one request submitted, its Ready handled
// (entries "appended"), Persisted, and the reply delivered. allocs/op and
// B/op are the engine's share of a standalone write.
func benchWrites(b *testing.B, req func(i int) Request) {
	const sessions = 64
	n, err := Restore(testConfig(), Durable{})
	if err != nil {
		b.Fatal(err)
	}
	var last int64
	replies := 0
	drain := func() {
		for n.HasReady() {
			rd := n.Ready()
			if k := len(rd.Entries); k > 0 {
				last = rd.Entries[k-1].Zxid
			}
			for i := range rd.Outputs {
				if rd.Outputs[i].Kind == OutReply {
					replies++
				}
			}
			n.Advance()
			n.ReuseOutputs(rd.Outputs) // as the server does
		}
	}
	now := int64(1_700_000_000_000)
	for c := ConnID(1); c <= sessions; c++ {
		n.Connect(ConnectRequest{Conn: c, Req: &proto.ConnectRequest{TimeOut: 2000, Passwd: make([]byte, 16)}, ClientIP: "127.0.0.1", Time: now})
		drain()
		n.Persisted(last)
		drain()
	}
	for c := ConnID(1); c <= sessions; c++ {
		n.Submit(Request{Conn: c, Xid: 1, Op: proto.OpCreate, Time: now,
			Body: &proto.CreateRequest{Path: "/s" + strconv.Itoa(int(c)), Data: make([]byte, 100), ACL: proto.OpenACLUnsafe}})
	}
	drain()
	n.Persisted(last)
	drain()
	b.ReportAllocs()
	replies = 0
	i := 0
	for b.Loop() {
		r := req(i)
		r.Conn = ConnID(i%sessions + 1)
		r.Xid = int32(i + 2)
		r.Time = now
		n.Submit(r)
		drain()
		n.Persisted(last)
		drain()
		i++
	}
	if replies != i {
		b.Fatalf("%d replies for %d requests", replies, i)
	}
}

// BenchmarkStandaloneSet is one setData of 100 bytes through a standalone
// Node, from Submit to the reply.
func BenchmarkStandaloneSet(b *testing.B) {
	value := make([]byte, 100)
	reqs := make([]*proto.SetDataRequest, 64)
	for i := range reqs {
		reqs[i] = &proto.SetDataRequest{Path: "/s" + strconv.Itoa(i+1), Data: value, Version: -1}
	}
	benchWrites(b, func(i int) Request { return Request{Op: proto.OpSetData, Body: reqs[i%64]} })
}

// BenchmarkStandaloneCreate is one create of a 100-byte znode through a
// standalone Node, from Submit to the reply.
func BenchmarkStandaloneCreate(b *testing.B) {
	value := make([]byte, 100)
	benchWrites(b, func(i int) Request {
		return Request{Op: proto.OpCreate, Body: &proto.CreateRequest{Path: "/c" + strconv.Itoa(i), Data: value, ACL: proto.OpenACLUnsafe}}
	})
}
