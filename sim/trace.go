package sim

import (
	"fmt"
	"io"

	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// hasher folds every event of a run into one 64-bit value, so two runs of a
// seed can be compared cheaply.
type hasher uint64

func (h *hasher) add(vs ...int64) {
	x := uint64(*h)
	for _, v := range vs {
		x ^= uint64(v)
		x *= 0x100000001b3
		x ^= x >> 29
	}
	*h = hasher(x)
}

func (h *hasher) str(s string) {
	x := uint64(*h)
	for i := 0; i < len(s); i++ {
		x ^= uint64(s[i])
		x *= 0x100000001b3
	}
	*h = hasher(x)
}

// describeMsg renders the interesting fields of a message.
func describeMsg(m zab.Message) string {
	switch m.Type {
	case zab.MsgNotification:
		return fmt.Sprintf("NOTIFICATION vote(n%d, 0x%x, e%d) round %d %s", m.Vote.Leader, m.Vote.Zxid, m.Vote.PeerEpoch, m.Vote.Round, m.Vote.State)
	case zab.MsgProposal, zab.MsgInform:
		return fmt.Sprintf("%s 0x%x", m.Type.String(), m.Entry.Zxid)
	case zab.MsgFollowerInfo, zab.MsgLeaderInfo, zab.MsgAckEpoch:
		return fmt.Sprintf("%s e%d 0x%x", m.Type.String(), m.Epoch, m.Zxid)
	case zab.MsgSnap:
		n, _ := m.Snapshot.WriteTo(io.Discard)
		return fmt.Sprintf("SNAP 0x%x (%d bytes)", m.Zxid, n)
	case zab.MsgApp:
		// Peer payloads are quorum packets: name the packet.
		if p, _, err := quorum.DecodePacket(m.Payload, quorum.Limits{}); err == nil {
			return fmt.Sprintf("APP e%d %s (%d bytes)", m.Epoch, p.Type, len(m.Payload))
		}
		return fmt.Sprintf("APP e%d (%d bytes, not a packet)", m.Epoch, len(m.Payload))
	case zab.MsgLinkDown:
		return "LINKDOWN"
	}
	return fmt.Sprintf("%s 0x%x", m.Type.String(), m.Zxid)
}

// fmtTime renders virtual µs as seconds with ms precision.
func fmtTime(us int64) string {
	return fmt.Sprintf("%d.%03ds", us/1e6, (us%1e6)/1e3)
}
