package zklink

import (
	"bytes"
	"testing"

	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// FuzzDecode feeds a byte stream as the packets of one connection to both
// sides of a link, and as an election frame: nothing may panic, and every
// message decoded must be for this link's peer and server.
// Run: go test ./netstub/zklink -run '^$' -fuzz FuzzDecode -fuzztime 30s
func FuzzDecode(f *testing.F) {
	seq := func(ps ...quorum.Packet) []byte {
		var b []byte
		for _, p := range ps {
			b = p.Append(b)
		}
		return b
	}
	f.Add(seq(quorum.NewLeaderInfo(3), quorum.Packet{Type: quorum.Diff, Zxid: 5},
		quorum.Packet{Type: quorum.Proposal, Zxid: 6, Data: []byte("t")}, quorum.NewCommit(6),
		quorum.NewNewLeader(3, testConfig), quorum.NewUpToDate(), quorum.NewPing(6), quorum.NewSync(),
		quorum.NewRevalidateReply(-1, 1, true)))
	f.Add(seq(quorum.NewLearnerInfo(false, 2, quorum.LearnerInfo{Sid: 2, ProtocolVersion: quorum.LearnerProtocol}),
		quorum.NewAckEpoch(5, 2), quorum.NewAck(3<<32), quorum.NewPingReply(&quorum.Packet{}, []quorum.Touch{{Session: 1, Timeout: 2}}),
		quorum.NewRequest(quorum.Forwarded{Session: 1, Op: proto.OpCreate, Body: []byte{1}}), quorum.NewRevalidate(1, 2)))
	n := quorum.Notification{State: quorum.Looking, Leader: 2, Version: 2, Config: testConfig}
	b, _ := n.Encode()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := DecodeNotification(2, 1, b); err == nil {
			if _, err := EncodeNotification(m, testConfig); err != nil {
				t.Fatalf("decoded notification does not encode: %v", err)
			}
		}
		for _, l := range []*Link{NewLearnerLink(1, 2), NewLeaderLink(1, 2, testConfig)} {
			r := bytes.NewReader(b)
			for {
				p, err := quorum.ReadPacket(r, quorum.Limits{MaxData: 1 << 16})
				if err != nil {
					break
				}
				ms, err := l.Decode(p)
				if err != nil {
					break
				}
				for _, m := range ms {
					if m.From != 2 || m.To != 1 || m.Type == zab.MsgLinkDown {
						t.Fatalf("decoded %+v", m)
					}
				}
			}
		}
	})
}
