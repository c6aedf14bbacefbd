package server

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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
