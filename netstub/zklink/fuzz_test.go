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
	hello := quorum.Hello{Caps: uint64(zab.AllCaps), Nonce: 7}
	f.Add(seq(quorum.NewLeaderInfoHello(3, hello), quorum.Packet{Type: quorum.Diff, Zxid: 5},
		quorum.NewNewLeader(3, testConfig), quorum.NewUpToDate(), quorum.NewTimeoutNow(5, 2, 3)))
	f.Add(seq(quorum.NewLearnerInfoHello(true, 2, quorum.LearnerInfo{Sid: 2, ProtocolVersion: quorum.LearnerProtocol}, hello),
		quorum.NewAckEpoch(5, 2), quorum.NewRequest(quorum.Forwarded{Session: 1, Cxid: -1, Op: opMoveSession, Body: []byte{0, 0, 0, 1}})))
	f.Add(seq(quorum.NewLeaderInfo(3), quorum.Packet{Type: quorum.Diff, Zxid: 5},
		quorum.Packet{Type: quorum.Proposal, Zxid: 6, Data: []byte("t")},
		quorum.NewNewLeader(3, []byte("server.1=h:1:2:participant\nserver.2=[::1]:1:2:observer;h:3\nversion=300000006")),
		quorum.NewUpToDate(), quorum.NewCommitAndActivate(6, 1), quorum.NewInformAndActivate(7, 2, []byte("t"))))
	n := quorum.Notification{State: quorum.Looking, Leader: 2, Version: 2, Config: testConfig}
	b, _ := n.Encode()
	f.Add(b)
	pending := zab.Membership{Version: 9, Voters: []int64{1, 2, 3}}
	ext, _ := EncodeNotificationTo(zab.Message{Type: zab.MsgNotification, Payload: zab.AppendConfigs(nil, zab.Membership{Voters: []int64{1, 2}}, &pending)}, testBook, nil, true)
	f.Add(ext)
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := DecodeNotification(2, 1, b); err == nil {
			if _, err := EncodeNotification(m, testConfig); err != nil {
				t.Fatalf("decoded notification does not encode: %v", err)
			}
			if m.Payload != nil {
				if _, _, err := zab.DecodeConfigs(m.Payload); err != nil {
					t.Fatalf("decoded configurations do not decode: %v", err)
				}
				_, _ = EncodeNotificationTo(m, testBook, testConfig, true) // ids without an address fail; nothing panics
			}
		}
		capsLearner, capsLeader := NewLearnerLink(1, 2), NewLeaderLink(1, 2, testConfig)
		capsLearner.Announce(zab.AllCaps, 1)
		capsLeader.Announce(zab.AllCaps, 1)
		booked := NewLearnerLink(1, 2)
		booked.SetBook(testBook)
		for _, l := range []*Link{NewLearnerLink(1, 2), NewLeaderLink(1, 2, testConfig), capsLearner, capsLeader, booked} {
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
					handshake := m.Type == zab.MsgFollowerInfo || m.Type == zab.MsgLeaderInfo
					if m.Caps&^l.own != 0 || (handshake && m.Caps != l.Caps()) || (!handshake && m.Caps != 0) {
						t.Fatalf("caps %s stamped on a link announcing %s (link caps %s)", CapsString(m.Caps), CapsString(l.own), CapsString(l.Caps()))
					}
					if m.Type == zab.MsgNewLeader && len(m.Payload) > 0 {
						if _, err := zab.DecodeMembership(m.Payload); err != nil {
							t.Fatalf("NEWLEADER's configuration does not decode: %v", err)
						}
					}
					if m.Type == zab.MsgTimeoutNow && l.Caps()&zab.CapTransfer == 0 {
						t.Fatalf("TIMEOUTNOW decoded on a link without the transfer capability")
					}
				}
			}
		}
	})
}
