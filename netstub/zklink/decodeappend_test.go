package zklink

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// TestDecodeAppendMatchesDecode: DecodeAppend onto a slice that already
// holds messages keeps them and appends exactly what Decode returns, with
// the same link state after every packet (both sides, with and without
// capabilities, including a TIMEOUTNOW).
func TestDecodeAppendMatchesDecode(t *testing.T) {
	seq := func(ps ...quorum.Packet) []byte {
		var b []byte
		for _, p := range ps {
			b = p.Append(b)
		}
		return b
	}
	hello := quorum.Hello{Caps: uint64(zab.AllCaps), Nonce: 7}
	streams := []struct {
		b      []byte
		leader bool
		caps   bool
	}{
		{seq(quorum.NewLeaderInfo(3), quorum.Packet{Type: quorum.Diff, Zxid: 5},
			quorum.Packet{Type: quorum.Proposal, Zxid: 6, Data: []byte("t")}, quorum.NewCommit(6),
			quorum.NewNewLeader(3, testConfig), quorum.NewUpToDate(), quorum.NewPing(6), quorum.NewSync(),
			quorum.NewRevalidateReply(-1, 1, true)), false, false},
		{seq(quorum.NewLearnerInfo(false, 2, quorum.LearnerInfo{Sid: 2, ProtocolVersion: quorum.LearnerProtocol}),
			quorum.NewAckEpoch(5, 2), quorum.NewAck(3<<32), quorum.NewPingReply(&quorum.Packet{}, []quorum.Touch{{Session: 1, Timeout: 2}}),
			quorum.NewRequest(quorum.Forwarded{Session: 1, Op: proto.OpCreate, Body: []byte{1}}), quorum.NewRevalidate(1, 2)), true, false},
		{seq(quorum.NewLeaderInfoHello(3, hello), quorum.Packet{Type: quorum.Diff, Zxid: 5},
			quorum.NewNewLeader(3, testConfig), quorum.NewUpToDate(), quorum.NewTimeoutNow(5, 2, 3)), false, true},
	}
	mk := func(leader, caps bool) *Link {
		l := NewLearnerLink(1, 2)
		if leader {
			l = NewLeaderLink(1, 2, testConfig)
		}
		if caps {
			l.Announce(zab.AllCaps, 1)
		}
		return l
	}
	decoded := 0
	for i, st := range streams {
		a, b := mk(st.leader, st.caps), mk(st.leader, st.caps)
		r := bytes.NewReader(st.b)
		prefix := []zab.Message{{Type: zab.MsgPing, Zxid: 42}}
		for {
			p, err := quorum.ReadPacket(r, quorum.Limits{MaxData: 1 << 16})
			if err != nil {
				break
			}
			want, werr := a.Decode(p)
			got, gerr := b.DecodeAppend(prefix[:1:1], p)
			require.Equal(t, werr, gerr, "stream %d packet %s", i, p.Type)
			if werr != nil {
				break
			}
			require.Equal(t, prefix[0], got[0], "stream %d: the prefix is kept", i)
			require.Equal(t, want, got[1:], "stream %d packet %s", i, p.Type)
			decoded += len(want)
		}
		require.Zero(t, r.Len(), "stream %d decoded to its end", i)
	}
	require.Greater(t, decoded, 15)
}
