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
func TestQLinkDirectWriteKeepsOrder(t *testing.T) {
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
	send := func(i int) {
		p := quorum.Packet{Type: quorum.Proposal, Zxid: int64(i), Data: data(i)}
		// As send does: the writer is woken only for a queued packet.
		l.mu.Lock()
		direct := l.trySendLocked([]quorum.Packet{p}) == 1
		if !direct {
			l.out = append(l.out, qItem{p: p})
		}
		l.mu.Unlock()
		if !direct {
			signal(l.wake)
		}
	}
	// Nobody reads: the socket's buffers fill (16 MB of packets is more
	// than loopback buffers hold), so some direct write is cut short.
	for i := range n {
		send(i)
	}
	counts := func() (direct, partial int) {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.direct, l.partial
	}
	direct, partial := counts()
	require.Positive(t, direct, "packets went out from the sender")
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
	for i := n; i < 2*n; i++ {
		send(i)
	}
	require.Eventually(t, idle, 60*time.Second, time.Millisecond, "the writer drains its queue and rests")
	before, _ := counts()
	send(2 * n)
	after, _ := counts()
	require.Equal(t, before+1, after, "with the writer idle again, the sender writes itself")
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
