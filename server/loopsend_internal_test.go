package server

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine"
	"github.com/zabkeeper/zabkeeper/internal/nbwrite"
	"github.com/zabkeeper/zabkeeper/internal/tcppair"
)

// TestLoopSend: the loop writes a frame (a watch event, a reply) on an
// idle connection's socket itself after its turn (send, flushLoopSends);
// behind a queued frame it does not (the frame keeps its place); and when
// the peer does not read, what the socket's buffer did not take goes to the
// writer, so the peer still gets every frame whole and in order.
func TestLoopSend(t *testing.T) {
	client, nc := tcppair.New(t)

	s := &Server{log: slog.New(slog.DiscardHandler), done: make(chan struct{}), writeTimeout: 10 * time.Second}
	c := newClientConn(s, 1, nc, 0)
	c.bw = bufio.NewWriterSize(c.rw, 64<<10)
	c.raw = nbwrite.Raw(nc)
	require.NotNil(t, c.raw)

	frame := func(i int) []byte {
		b := binary.BigEndian.AppendUint32(nil, 8188)
		b = binary.BigEndian.AppendUint32(b, uint32(i))
		return append(b, bytes.Repeat([]byte{byte(i)}, 8184)...)
	}
	send := func(f []byte) {
		c.send(f)
		s.flushLoopSends()
	}
	var want bytes.Buffer
	f0 := frame(0)
	send(f0)
	want.Write(f0)
	require.EqualValues(t, 1, s.loopWrites.Load())
	require.Zero(t, s.loopWritesShort.Load())
	got := make([]byte, len(f0))
	_, err := io.ReadFull(client, got)
	require.NoError(t, err)
	require.Equal(t, f0, got)
	want.Reset()

	// Nobody reads: the socket's buffers fill and a write is cut short.
	i := 1
	for ; i < 10000; i++ {
		f := frame(i)
		want.Write(f)
		send(f)
		c.mu.Lock()
		queued := len(c.out)
		c.mu.Unlock()
		if queued > 0 {
			break
		}
	}
	require.Less(t, i, 10000, "the socket's buffer filled")
	require.EqualValues(t, 1, s.loopWritesShort.Load(), "the last loop write was cut short")
	loopWrites := s.loopWrites.Load()
	f := frame(i + 1)
	send(f)
	want.Write(f)
	require.EqualValues(t, loopWrites, s.loopWrites.Load(), "a frame queued before it: the writer writes it, in order")

	go c.writeLoop()
	got = make([]byte, want.Len())
	require.NoError(t, client.SetReadDeadline(time.Now().Add(30*time.Second)))
	_, err = io.ReadFull(client, got)
	require.NoError(t, err)
	require.True(t, bytes.Equal(want.Bytes(), got), "every frame whole and in order")
	close(s.done)
}

// TestLoopSendSharedBatch: a turn's batch large enough to be shared with
// helper goroutines (a fan-out) still writes every connection's frame once,
// whole, and before what the next turns send it (the loop does not wait for
// the helpers), whatever the number of CPUs.
func TestLoopSendSharedBatch(t *testing.T) {
	for _, procs := range []int{1, 2, 4} {
		t.Run(fmt.Sprint("procs=", procs), func(t *testing.T) {
			prev := runtime.GOMAXPROCS(procs)
			defer runtime.GOMAXPROCS(prev)
			s := &Server{log: slog.New(slog.DiscardHandler), done: make(chan struct{}), writeTimeout: 10 * time.Second}
			defer close(s.done)
			const conns, turns = 3*splitFlushChunk + 5, 4
			clients := make([]net.Conn, conns)
			cs := make([]*clientConn, conns)
			for i := range cs {
				client, nc := tcppair.New(t)
				clients[i] = client
				c := newClientConn(s, engine.ConnID(i+1), nc, 0)
				c.bw = bufio.NewWriterSize(c.rw, 64<<10)
				c.raw = nbwrite.Raw(nc)
				require.NotNil(t, c.raw)
				go c.writeLoop()
				cs[i] = c
			}
			frame := func(conn, turn int) []byte {
				b := binary.BigEndian.AppendUint32(nil, 8)
				b = binary.BigEndian.AppendUint32(b, uint32(conn))
				return binary.BigEndian.AppendUint32(b, uint32(turn))
			}
			for turn := range turns {
				for i, c := range cs {
					c.send(frame(i, turn))
					if turn == 1 {
						c.send(frame(i, turn)) // a second frame in one turn is queued behind the first
					}
				}
				s.flushLoopSends()
				require.Empty(t, s.loopSends)
			}
			for i, client := range clients {
				require.NoError(t, client.SetReadDeadline(time.Now().Add(30*time.Second)))
				for turn := range turns {
					for range 1 + btoi(turn == 1) {
						got := make([]byte, 12)
						_, err := io.ReadFull(client, got)
						require.NoError(t, err)
						require.Equal(t, frame(i, turn), got, "connection %d, turn %d", i, turn)
					}
				}
			}
			// Turn 0 found every connection idle: the loop or a helper wrote
			// each frame (a helper may count its last write just after the
			// peer read it). The second frame of turn 1 went through the
			// writer, and so may a later turn's while a claim was held.
			require.Eventually(t, func() bool { return s.loopWrites.Load() >= conns }, 10*time.Second, time.Millisecond)
			require.LessOrEqual(t, s.loopWrites.Load(), int64(conns*turns))
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// BenchmarkLoopSendFanout times the writes after a turn that notified 1,000
// idle connections (one 40-byte event frame each), the peers reading on
// their own goroutines: run with -cpu 1,2 to see the batch shared with a
// helper or not.
func BenchmarkLoopSendFanout(b *testing.B) {
	const conns = 1000
	s := &Server{log: slog.New(slog.DiscardHandler), done: make(chan struct{}), writeTimeout: 10 * time.Second}
	defer close(s.done)
	cs := make([]*clientConn, conns)
	for i := range cs {
		client, nc := tcppair.New(b)
		go func() { _, _ = io.Copy(io.Discard, client) }()
		c := newClientConn(s, engine.ConnID(i+1), nc, 0)
		c.bw = bufio.NewWriterSize(c.rw, 64<<10)
		c.raw = nbwrite.Raw(nc)
		go c.writeLoop()
		cs[i] = c
	}
	frame := make([]byte, 40)
	binary.BigEndian.PutUint32(frame, 36)
	b.ResetTimer()
	for range b.N {
		for _, c := range cs {
			c.send(frame)
		}
		s.flushLoopSends()
	}
	b.StopTimer()
	if short := s.loopWritesShort.Load(); short > 0 {
		b.Logf("%d writes went to the writer", short)
	}
}
