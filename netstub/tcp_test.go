package netstub

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/zab"
)

const waitFor = 20 * time.Second // generous: the race detector on 2 busy cores

// noLeaks fails the test if goroutines started during it outlive it. Call
// it first, so that its cleanup runs after every other.
func noLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Fatalf("%d goroutines leaked:\n%s", runtime.NumGoroutine()-before, buf[:runtime.Stack(buf, true)])
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// logSink collects log output so tests can look for a line.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if testing.Verbose() {
		_, _ = os.Stderr.Write(p)
	}
	return s.buf.Write(p)
}

func (s *logSink) has(sub string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Contains(s.buf.String(), sub)
}

func (s *logSink) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(s, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// cluster starts one transport per id on 127.0.0.1:0 and tells each the
// others' addresses. extra peers (id -> addr) are added to every config.
func cluster(t *testing.T, sink *logSink, extra map[int64]string, ids ...int64) map[int64]*TCP {
	trs := map[int64]*TCP{}
	for _, id := range ids {
		tr, err := NewTCP(TCPConfig{ID: id, ListenAddr: "127.0.0.1:0", Logger: sink.logger()})
		require.NoError(t, err)
		t.Cleanup(func() { _ = tr.Close() })
		trs[id] = tr
	}
	for _, id := range ids {
		peers := map[int64]string{}
		for other, tr := range trs {
			if other != id {
				peers[other] = tr.Addr().String()
			}
		}
		for other, addr := range extra {
			peers[other] = addr
		}
		trs[id].SetPeers(peers)
	}
	for _, id := range ids {
		for other := range trs {
			if other != id {
				waitConnected(t, trs[id], other)
				waitAdmitted(t, trs[other], id)
			}
		}
	}
	// A dial made before its target knew the dialer was refused, and its
	// MsgLinkDown was delivered before the redial that got admitted: drop
	// it, so that tests start from quiet links.
	for _, tr := range trs {
		for len(tr.Recv()) > 0 {
			m := <-tr.Recv()
			require.Equal(t, zab.MsgLinkDown, m.Type, "only startup link downs are pending")
		}
	}
	return trs
}

// waitAdmitted waits until tr accepted an inbound connection from peer.
func waitAdmitted(t *testing.T, tr *TCP, peer int64) {
	t.Helper()
	require.Eventually(t, func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return tr.inbound[peer] != nil
	}, waitFor, 5*time.Millisecond, "%d never admitted %d", tr.id, peer)
}

func waitConnected(t *testing.T, tr *TCP, peer int64) {
	t.Helper()
	tr.mu.Lock()
	p := tr.peers[peer]
	tr.mu.Unlock()
	require.NotNil(t, p)
	require.Eventually(t, p.connected, waitFor, 5*time.Millisecond, "%d never connected to %d", tr.id, peer)
}

// await reads tr's Recv until want(m), calling poke every 20 ms meanwhile
// (nil: never). It returns the messages read before the match.
func await(t *testing.T, tr *TCP, poke func(), want func(zab.Message) bool) []zab.Message {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(waitFor)
	var skipped []zab.Message
	if poke != nil {
		poke()
	}
	for {
		select {
		case m, ok := <-tr.Recv():
			require.True(t, ok, "Recv closed")
			if want(m) {
				return skipped
			}
			skipped = append(skipped, m)
		case <-tick.C:
			if poke != nil {
				poke()
			}
		case <-deadline:
			t.Fatalf("transport %d: awaited message never came; got %d others", tr.id, len(skipped))
		}
	}
}

func isType(typ zab.MsgType, from int64) func(zab.Message) bool {
	return func(m zab.Message) bool { return m.Type == typ && m.From == from }
}

func TestTCPPerPairFIFO(t *testing.T) {
	noLeaks(t)
	const n = 10000
	sink := &logSink{}
	ids := []int64{1, 2, 3}
	trs := cluster(t, sink, nil, ids...)

	var wg sync.WaitGroup
	got := map[int64][]zab.Message{}
	var mu sync.Mutex
	for _, id := range ids {
		wg.Go(func() { // sender: interleaves its two peers
			for i := range int64(n) {
				for _, to := range ids {
					if to != id {
						trs[id].Send(zab.Message{Type: zab.MsgProposal, To: to, Zxid: i, Entry: zab.Entry{Zxid: i, Data: []byte{byte(i)}}})
					}
				}
			}
		})
		wg.Go(func() { // receiver
			var ms []zab.Message
			deadline := time.After(waitFor)
			for len(ms) < 2*n {
				select {
				case m := <-trs[id].Recv():
					ms = append(ms, m)
				case <-deadline:
					t.Errorf("transport %d got %d of %d", id, len(ms), 2*n)
					return
				}
			}
			mu.Lock()
			got[id] = ms
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, id := range ids {
		next := map[int64]int64{}
		for _, m := range got[id] {
			require.Equal(t, zab.MsgProposal, m.Type, "at %d: %+v", id, m)
			require.Equal(t, id, m.To)
			require.Equal(t, next[m.From], m.Zxid, "link %d→%d out of order", m.From, id)
			require.Equal(t, []byte{byte(m.Zxid)}, m.Entry.Data)
			next[m.From]++
		}
	}
}

func TestTCPQueueOrder(t *testing.T) {
	p := &tcpPeer{wake: make(chan struct{}, 1)}
	for _, typ := range []zab.MsgType{zab.MsgProposal, zab.MsgSnap, zab.MsgNotification, zab.MsgCommit, zab.MsgPing} {
		p.enqueue(zab.Message{Type: typ})
	}
	var order []zab.MsgType
	for m, ok := p.next(); ok; m, ok = p.next() {
		order = append(order, m.Type)
	}
	require.Equal(t, []zab.MsgType{zab.MsgNotification, zab.MsgPing, zab.MsgProposal, zab.MsgSnap, zab.MsgCommit}, order,
		"only election notifications and pings may overtake; the sync stream keeps its order")
}

func TestTCPQueueWhileDownKeepsNewest(t *testing.T) {
	p := &tcpPeer{wake: make(chan struct{}, 1)}
	for i := range int64(downQueueLimit + 10) {
		p.enqueue(zab.Message{Type: zab.MsgCommit, Zxid: i})
	}
	m, ok := p.next()
	require.True(t, ok)
	require.Equal(t, int64(10), m.Zxid, "the oldest were dropped")
	require.Equal(t, downQueueLimit-1, len(p.stream))
	require.Equal(t, downQueueLimit-1, p.detach())
	_, ok = p.next()
	require.False(t, ok, "detach drops the queue")
}

func testRestart(t *testing.T, sameAddr bool) {
	noLeaks(t)
	trs := cluster(t, &logSink{}, nil, 1, 2, 3)
	addr3 := trs[3].Addr().String()
	require.NoError(t, trs[3].Close())
	for _, id := range []int64{1, 2} {
		await(t, trs[id], nil, func(m zab.Message) bool {
			return m.Type == zab.MsgLinkDown && m.From == 3 && m.To == id
		})
	}

	listen := "127.0.0.1:0"
	if sameAddr {
		listen = addr3
	}
	tr3, err := NewTCP(TCPConfig{ID: 3, ListenAddr: listen, Peers: map[int64]string{
		1: trs[1].Addr().String(), 2: trs[2].Addr().String(),
	}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr3.Close() })
	if !sameAddr {
		for _, id := range []int64{1, 2} {
			trs[id].SetPeers(map[int64]string{3: tr3.Addr().String(), 3 - id: trs[3-id].Addr().String()})
		}
	}
	for _, id := range []int64{1, 2} {
		// Messages sent before the link is back may be dropped: keep poking.
		await(t, tr3, func() { trs[id].Send(zab.Message{Type: zab.MsgPing, To: 3, Zxid: 100 + id}) },
			isType(zab.MsgPing, id))
		await(t, trs[id], func() { tr3.Send(zab.Message{Type: zab.MsgPing, To: id}) }, isType(zab.MsgPing, 3))
	}
	// The pair that never broke still works.
	trs[1].Send(zab.Message{Type: zab.MsgCommit, To: 2, Zxid: 9})
	await(t, trs[2], nil, isType(zab.MsgCommit, 1))
}

func TestTCPReconnectAfterRestartOnSameAddr(t *testing.T) { testRestart(t, true) }

func TestTCPReconnectAfterRestartOnNewAddr(t *testing.T) { testRestart(t, false) }

// handshakeBytes is what a dialer claiming id from sends to reach to.
func handshakeBytes(from, to int64) []byte {
	return appendHandshake(nil, from, to, testNonce)
}

// requireClosedByPeer dials addr, writes b and expects the far end to
// close the connection.
func requireClosedByPeer(t *testing.T, addr string, b []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	_, _ = c.Write(b) // the far end may already have closed
	_ = c.(*net.TCPConn).CloseWrite()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(waitFor)))
	_, err = io.Copy(io.Discard, c)
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "connection was not closed")
}

func TestTCPRefusesStrangers(t *testing.T) {
	noLeaks(t)
	sink := &logSink{}
	trs := cluster(t, sink, nil, 1, 2)
	addr := trs[1].Addr().String()
	tests := []struct {
		name, log string
		bytes     []byte
	}{
		{"unknown id", "unknown peer id 99", handshakeBytes(99, 1)},
		{"same id as the server", "own id 1", handshakeBytes(1, 1)},
		{"dialed the wrong server", "dialed id 7", handshakeBytes(2, 7)},
		{"garbage", "bad magic", []byte("GET / HTTP/1.1\r\nHost: zabkeeper\r\n\r\n")},
		{"old version", "handshake version", append(handshakeBytes(2, 1)[:4:4], 9, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1)},
		{"short then hang up", "reading handshake", []byte("ZB")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			requireClosedByPeer(t, addr, tc.bytes)
			require.Eventually(t, func() bool { return sink.has(tc.log) }, waitFor, 5*time.Millisecond)
		})
	}
	trs[2].Send(zab.Message{Type: zab.MsgPing, To: 1, Zxid: 1})
	skipped := await(t, trs[1], nil, isType(zab.MsgPing, 2))
	require.Empty(t, skipped, "strangers caused no MsgLinkDown for the real peer")
}

func TestTCPBadFramesCloseTheConnection(t *testing.T) {
	const fake = 3 // configured on 1, played by the test
	good := appendFrame(nil, zab.Message{Type: zab.MsgPing, Zxid: 1})
	badCRC := bytes.Clone(good)
	badCRC[len(badCRC)-1] ^= 1
	tooBig := binary.BigEndian.AppendUint32(nil, 1<<30)
	tooBig = binary.BigEndian.AppendUint32(tooBig, 0)
	junk := []byte("not a message")
	undecodable := binary.BigEndian.AppendUint32(nil, uint32(len(junk)))
	undecodable = binary.BigEndian.AppendUint32(undecodable, crc32Castagnoli(junk))
	undecodable = append(undecodable, junk...)
	tests := []struct {
		name, log string
		frame     []byte
	}{
		{"bad crc", "crc mismatch", badCRC},
		{"oversized", "exceeds MaxFrame", tooBig},
		{"undecodable", "malformed message", undecodable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			noLeaks(t)
			sink := &logSink{}
			// Peer 3 is configured but nobody listens there: 1 keeps
			// redialing it in the background, which must not matter.
			trs := cluster(t, sink, map[int64]string{fake: "127.0.0.1:1"}, 1, 2)
			c, err := net.Dial("tcp", trs[1].Addr().String())
			require.NoError(t, err)
			defer c.Close()
			_, err = c.Write(append(handshakeBytes(fake, 1), good...))
			require.NoError(t, err)
			await(t, trs[1], nil, isType(zab.MsgPing, fake))

			_, err = c.Write(tc.frame)
			require.NoError(t, err)
			skipped := await(t, trs[1], nil, isType(zab.MsgLinkDown, fake))
			require.Empty(t, skipped, "nothing from the bad frame was delivered")
			require.True(t, sink.has(tc.log), "log lacks %q", tc.log)
			require.NoError(t, c.SetReadDeadline(time.Now().Add(waitFor)))
			_, err = io.Copy(io.Discard, c)
			var ne net.Error
			require.False(t, errors.As(err, &ne) && ne.Timeout(), "connection was not closed")

			trs[2].Send(zab.Message{Type: zab.MsgPing, To: 1})
			await(t, trs[1], nil, isType(zab.MsgPing, 2))
		})
	}
}

func crc32Castagnoli(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

func TestTCPMessageOverMaxFrameBreaksTheLink(t *testing.T) {
	noLeaks(t)
	a, err := NewTCP(TCPConfig{ID: 1, ListenAddr: "127.0.0.1:0", MaxFrame: 1024})
	require.NoError(t, err)
	defer a.Close()
	b, err := NewTCP(TCPConfig{ID: 2, ListenAddr: "127.0.0.1:0", Peers: map[int64]string{1: a.Addr().String()}})
	require.NoError(t, err)
	defer b.Close()
	a.SetPeers(map[int64]string{2: b.Addr().String()})
	waitConnected(t, a, 2)

	a.Send(zab.Message{Type: zab.MsgCommit, To: 2, Zxid: 1})
	a.Send(zab.Message{Type: zab.MsgProposal, To: 2, Entry: zab.Entry{Zxid: 2, Data: make([]byte, 2048)}})
	a.Send(zab.Message{Type: zab.MsgCommit, To: 2, Zxid: 3})
	await(t, a, nil, isType(zab.MsgLinkDown, 2))
	skipped := await(t, b, nil, isType(zab.MsgLinkDown, 1))
	require.Equal(t, []zab.Message{{Type: zab.MsgCommit, From: 1, To: 2, Zxid: 1}}, skipped,
		"the stream stops at the oversized message; no gap without MsgLinkDown")
	await(t, b, func() { a.Send(zab.Message{Type: zab.MsgPing, To: 2, Zxid: 4}) }, isType(zab.MsgPing, 1))
}

func TestTCPSendDropsWhatItCannotRoute(t *testing.T) {
	noLeaks(t)
	trs := cluster(t, &logSink{}, nil, 1, 2)
	trs[1].Send(zab.Message{Type: zab.MsgPing, To: 42})
	trs[1].Send(zab.Message{Type: zab.MsgPing, To: 1})
	trs[1].Send(zab.Message{Type: zab.MsgLinkDown, To: 2})
	trs[1].Send(zab.Message{Type: zab.MsgCommit, To: 2, Zxid: 7})
	skipped := await(t, trs[2], nil, isType(zab.MsgCommit, 1))
	require.Empty(t, skipped)
}

func TestTCPCloseIsPromptEvenWhenBlocked(t *testing.T) {
	noLeaks(t)
	trs := cluster(t, &logSink{}, nil, 1, 2, 3)
	// Nobody reads 1's Recv: its readers block on the full channel, and
	// the writers towards it have plenty queued.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, from := range []int64{2, 3} {
		wg.Go(func() {
			for ctx.Err() == nil {
				trs[from].Send(zab.Message{Type: zab.MsgProposal, To: 1, Entry: zab.Entry{Data: make([]byte, 100)}})
			}
		})
	}
	require.Eventually(t, func() bool { return len(trs[1].Recv()) == recvBuffer }, waitFor, 5*time.Millisecond)
	for _, id := range []int64{1, 2, 3} {
		start := time.Now()
		require.NoError(t, trs[id].Close())
		require.Less(t, time.Since(start), 2*time.Second, "Close of %d was slow", id)
		require.NoError(t, trs[id].Close(), "Close is idempotent")
	}
	cancel()
	wg.Wait()
	trs[1].Send(zab.Message{Type: zab.MsgPing, To: 2}) // dropped, no panic
	n := 0
	for range trs[1].Recv() {
		n++
	}
	require.LessOrEqual(t, n, recvBuffer, "Recv is closed and holds what was buffered")
}
