package zktcp

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/netstub/zklink"
	"github.com/zabkeeper/zabkeeper/proto"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// BenchmarkForwardedRequestHop is a forwarded write's REQUEST between the
// engines of a learner and its leader: the learner's link encodes the
// engine's payload, the packet is written, the leader's read loop reads
// it from its buffer (readPacket) and its link decodes it to the MsgApp
// its engine steps. The engines' own encoding and decoding are not in it.
// Run: go test ./netstub/zktcp -run '^$' -bench ForwardedRequestHop -benchmem
func BenchmarkForwardedRequestHop(b *testing.B) {
	learner, leader := zklink.NewLearnerLink(2, 1), zklink.NewLeaderLink(1, 2, []byte("server.1=a:1:2:participant\nserver.2=b:1:2:participant\nversion=0"))
	hop := func(from, to *zklink.Link, m zab.Message) []zab.Message {
		pkts, err := from.Encode(m)
		if err != nil {
			b.Fatal(err)
		}
		var out []zab.Message
		for _, p := range pkts {
			q, err := quorum.ReadPacket(bytes.NewReader(p.Encode()), quorum.Limits{})
			if err != nil {
				b.Fatal(err)
			}
			ms, err := to.Decode(q)
			if err != nil {
				b.Fatal(err)
			}
			out = append(out, ms...)
		}
		return out
	}
	hop(learner, leader, zab.Message{Type: zab.MsgFollowerInfo, From: 2, To: 1, Epoch: 4})
	hop(leader, learner, zab.Message{Type: zab.MsgLeaderInfo, From: 1, To: 2, Epoch: 5})
	hop(learner, leader, zab.Message{Type: zab.MsgAckEpoch, From: 2, To: 1, Epoch: 4, Zxid: 4 << 32})

	body := proto.Marshal(&proto.SetDataRequest{Path: "/zabkeeper-bench/run-0123456789ab/n-000042", Data: make([]byte, 100), Version: -1})
	f := quorum.Forwarded{Session: 0x1000000001, Cxid: 7, Op: proto.OpSetData, Body: body, Auth: []proto.Id{{Scheme: "ip", ID: "127.0.0.1"}}}
	payloads := make([][]byte, 64) // the engine's, one per request
	for i := range payloads {
		payloads[i] = quorum.NewRequest(f).Encode()
	}
	var (
		pkts []quorum.Packet
		msgs []zab.Message
		wire []byte
		rd   bytes.Reader
	)
	br := bufio.NewReaderSize(&rd, 64<<10)
	lim := quorum.Limits{}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		var err error
		pkts, err = learner.EncodeAppend(pkts[:0], zab.Message{Type: zab.MsgApp, From: 2, To: 1, Epoch: 5, Payload: payloads[i%len(payloads)]})
		if err != nil || len(pkts) != 1 {
			b.Fatal(err, len(pkts))
		}
		wire = pkts[0].Append(wire[:0])
		rd.Reset(wire)
		br.Reset(&rd)
		p, err := readPacket(br, lim)
		if err != nil {
			b.Fatal(err)
		}
		msgs, err = leader.DecodeAppend(msgs[:0], p)
		if err != nil || len(msgs) != 1 || len(msgs[0].Payload) != len(wire) {
			b.Fatal(err, len(msgs))
		}
	}
}
