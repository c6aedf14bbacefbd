package netstub

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/zab"
)

func msg(from, to, zxid int64) zab.Message {
	return zab.Message{Type: zab.MsgProposal, From: from, To: to, Zxid: zxid}
}

// drain pops every message and returns them with their delivery times.
func drain(n *Network) (ats []int64, ms []zab.Message) {
	for {
		at, m, ok := n.Next()
		if !ok {
			return
		}
		ats = append(ats, at)
		ms = append(ms, m)
	}
}

func TestNetworkDeliversInTimeOrder(t *testing.T) {
	lat := map[[2]int64]int64{{1, 2}: 5, {1, 3}: 1, {3, 1}: 3}
	n := NewNetwork(func(f, to int64) int64 { return lat[[2]int64{f, to}] })
	require.True(t, n.Send(msg(1, 2, 1), 0))
	require.True(t, n.Send(msg(1, 3, 2), 0))
	require.True(t, n.Send(msg(3, 1, 3), 0))
	ats, ms := drain(n)
	require.Equal(t, []int64{1, 3, 5}, ats)
	require.Equal(t, []int64{2, 3, 1}, []int64{ms[0].Zxid, ms[1].Zxid, ms[2].Zxid})
}

func TestNetworkLinkIsFIFOWhateverTheLatency(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	n := NewNetwork(func(int64, int64) int64 { return r.Int64N(100) })
	for i := range int64(1000) {
		n.Send(msg(1+i%2, 3, i), i/10)
	}
	last := map[int64]int64{1: -1, 2: -1}
	prevAt := int64(-1)
	for {
		at, m, ok := n.Next()
		if !ok {
			break
		}
		require.GreaterOrEqual(t, at, prevAt, "delivery times go forward")
		prevAt = at
		require.Greater(t, m.Zxid, last[m.From], "link %d→3 reordered", m.From)
		last[m.From] = m.Zxid
	}
}

func TestNetworkCutDropsInFlightAndTellsBothEnds(t *testing.T) {
	n := NewNetwork(func(int64, int64) int64 { return 10 })
	n.Send(msg(1, 2, 1), 0)
	n.Send(msg(2, 1, 2), 0)
	n.Cut(1, 2, 5)
	require.False(t, n.Up(1, 2))
	require.True(t, n.Up(2, 1))
	require.False(t, n.Send(msg(1, 2, 3), 6), "a cut link drops sends")
	require.True(t, n.Send(msg(2, 1, 4), 6))
	ats, ms := drain(n)
	require.Len(t, ms, 4)
	require.Equal(t, []int64{5, 5, 10, 16}, ats)
	require.Equal(t, zab.Message{Type: zab.MsgLinkDown, From: 2, To: 1}, ms[0])
	require.Equal(t, zab.Message{Type: zab.MsgLinkDown, From: 1, To: 2}, ms[1])
	require.Equal(t, int64(2), ms[2].Zxid, "the reverse direction still flows")
	require.Equal(t, int64(4), ms[3].Zxid)
	require.Equal(t, 2, n.Dropped)

	n.Cut(1, 2, 20) // already cut: no second notice
	_, ok := n.Peek()
	require.False(t, ok)
	n.Heal(1, 2)
	require.True(t, n.Send(msg(1, 2, 5), 30))
	_, ms = drain(n)
	require.Equal(t, []zab.Message{msg(1, 2, 5)}, ms)
}

func TestNetworkPartition(t *testing.T) {
	n := NewNetwork(nil)
	n.Partition(0, []int64{1, 2}, []int64{3})
	require.True(t, n.Up(1, 2))
	require.True(t, n.Up(2, 1))
	for _, l := range [][2]int64{{1, 3}, {3, 1}, {2, 3}, {3, 2}} {
		require.False(t, n.Up(l[0], l[1]), "%v", l)
	}
	require.Len(t, n.CutLinks(), 4)
	_, ms := drain(n)
	require.Len(t, ms, 8, "two notices per cut direction")
	n.HealAll()
	require.Empty(t, n.CutLinks())
}

func TestNetworkResetDropsAConnectionsMessages(t *testing.T) {
	n := NewNetwork(func(int64, int64) int64 { return 10 })
	n.Send(msg(1, 2, 1), 0)
	n.Send(msg(2, 1, 2), 0)
	n.Send(msg(3, 2, 3), 0)
	n.Reset(1, []int64{1, 2, 3}, 4)
	_, ms := drain(n)
	require.Equal(t, []zab.Message{
		{Type: zab.MsgLinkDown, From: 1, To: 2},
		{Type: zab.MsgLinkDown, From: 1, To: 3},
		msg(3, 2, 3),
	}, ms)
	require.True(t, n.Up(1, 2), "a reset is not a cut")
}

func TestNetworkDeliverUntil(t *testing.T) {
	n := NewNetwork(func(_, to int64) int64 { return to })
	for to := int64(1); to <= 5; to++ {
		n.Send(msg(9, to, to), 0)
	}
	var got []int64
	count := n.DeliverUntil(3, func(at int64, m zab.Message) {
		got = append(got, m.Zxid)
		if m.To == 1 {
			n.Send(msg(1, 2, 100), at) // due at 3: delivered in this call
		}
	})
	require.Equal(t, 4, count)
	require.Equal(t, []int64{1, 2, 3, 100}, got)
	require.Equal(t, 2, n.Len())
}

func TestNetworkIsDeterministic(t *testing.T) {
	run := func() []zab.Message {
		r := rand.New(rand.NewPCG(7, 7))
		n := NewNetwork(func(int64, int64) int64 { return r.Int64N(20) })
		var out []zab.Message
		for now := range int64(500) {
			a, b := 1+r.Int64N(3), 1+r.Int64N(3)
			switch r.IntN(10) {
			case 0:
				n.Cut(a, b, now)
			case 1:
				n.Heal(a, b)
			default:
				n.Send(msg(a, b, now), now)
			}
			n.DeliverUntil(now, func(_ int64, m zab.Message) { out = append(out, m) })
		}
		return out
	}
	require.Equal(t, run(), run())
}

func TestMemTransport(t *testing.T) {
	h := NewMemHub()
	a, b := h.Transport(1), h.Transport(2)
	require.Same(t, a, h.Transport(1))
	for i := range int64(100) {
		a.Send(msg(0, 2, i))
	}
	for i := range int64(100) {
		select {
		case m := <-b.Recv():
			require.Equal(t, msg(1, 2, i), m)
		case <-time.After(5 * time.Second):
			t.Fatal("no message")
		}
	}
	h.Cut(1, 2)
	for _, tr := range []*MemTransport{a, b} {
		select {
		case m := <-tr.Recv():
			require.Equal(t, zab.MsgLinkDown, m.Type)
		case <-time.After(5 * time.Second):
			t.Fatal("no link-down notice")
		}
	}
	a.Send(msg(0, 2, 1))
	require.Equal(t, 1, h.Dropped())
	h.HealAll()
	require.NoError(t, a.Close())
	require.NoError(t, b.Close())
	_, open := <-b.Recv()
	require.False(t, open)
}
