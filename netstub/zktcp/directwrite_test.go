package zktcp

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/internal/tcppair"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// TestQLinkDirectWriteKeepsOrder: packets sent while the link's writer is
// idle are written by the sender itself; once the peer stops reading and the
// socket's buffer fills, what a write could not place is queued for the
// writer ahead of later packets, and the peer still gets every packet whole
// and in order.
//
// Each send is a batch of batch packets, written back to back in one
// direct write when the writer rests, as SendBatch does with the packets
// of a Ready for one link.
func TestQLinkDirectWriteKeepsOrder(t *testing.T) {
	for _, batch := range []int{1, 5} {
		t.Run(fmt.Sprintf("batch=%d", batch), func(t *testing.T) { testDirectWriteOrder(t, batch) })
	}
}

func testDirectWriteOrder(t *testing.T, batch int) {
	c, peer := tcppair.New(t)

	tr := &Transport{cfg: Config{MaxPacket: quorum.DefaultMaxData}, log: testLogger(t)}
	l := &qLink{t: tr, peer: 2, wake: make(chan struct{}, 1), done: make(chan struct{})}
	writerDone := make(chan error, 1)
	go func() { writerDone <- tr.writeLink(l, c) }()
	defer func() {
		l.close(true)
		require.NoError(t, <-writerDone)
	}()
	idle := func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.idle
	}
	require.Eventually(t, idle, 10*time.Second, time.Millisecond, "the writer rests")

	const n = 4000
	data := func(i int) []byte {
		d := bytes.Repeat([]byte{byte(i)}, 4096)
		return binary.BigEndian.AppendUint32(d, uint32(i))
	}
	// send sends packets from..to-1 as one batch, as sendBatch does: the
	// writer is woken only for queued packets.
	send := func(from, to int) {
		var pkts []quorum.Packet
		for i := from; i < to; i++ {
			pkts = append(pkts, quorum.Packet{Type: quorum.Proposal, Zxid: int64(i), Data: data(i)})
		}
		l.mu.Lock()
		queued := l.pushLocked(pkts, nil)
		l.mu.Unlock()
		if queued {
			signal(l.wake)
		}
	}
	sendAll := func(from, to int) {
		for i := from; i < to; i += batch {
			send(i, min(i+batch, to))
		}
	}
	// Nobody reads: the socket's buffers fill (16 MB of packets is more
	// than loopback buffers hold), so some direct write is cut short.
	sendAll(0, n)
	counts := func() (direct, packets, partial int) {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.direct, l.directPackets, l.partial
	}
	direct, packets, partial := counts()
	require.Positive(t, direct, "packets went out from the sender")
	require.Equal(t, batch*direct, packets, "each direct write carries a whole batch")
	require.Positive(t, partial, "a direct write found the socket's buffer full")

	read := make(chan error, 1)
	go func() {
		br := bufio.NewReader(peer)
		for i := range 2*n + 1 {
			p, err := quorum.ReadPacket(br, quorum.Limits{MaxData: quorum.DefaultMaxData})
			if err != nil {
				read <- err
				return
			}
			if p.Type != quorum.Proposal || p.Zxid != int64(i) || !bytes.Equal(p.Data, data(i)) {
				read <- &packetMismatch{i, p}
				return
			}
		}
		read <- nil
	}()
	// More while the peer reads: the writer drains its queue, rests, and
	// the sender writes again.
	sendAll(n, 2*n)
	require.Eventually(t, idle, 60*time.Second, time.Millisecond, "the writer drains its queue and rests")
	before, beforePackets, _ := counts()
	send(2*n, 2*n+1)
	after, afterPackets, _ := counts()
	require.Equal(t, before+1, after, "with the writer idle again, the sender writes itself")
	require.Equal(t, beforePackets+1, afterPackets)
	select {
	case err := <-read:
		require.NoError(t, err)
	case <-time.After(60 * time.Second):
		t.Fatal("the peer did not get every packet within 60s")
	}
}

type packetMismatch struct {
	want int
	got  quorum.Packet
}

func (e *packetMismatch) Error() string {
	return fmt.Sprintf("packet %d: got %s 0x%x of %d bytes", e.want, e.got.Type, e.got.Zxid, len(e.got.Data))
}
