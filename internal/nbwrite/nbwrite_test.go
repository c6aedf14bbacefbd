package nbwrite

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	select {
	case server = <-accepted:
		require.NotNil(t, server)
	case <-time.After(10 * time.Second):
		t.Fatal("no connection accepted")
	}
	t.Cleanup(func() { _ = server.Close() })
	return client, server
}

// A Writer writes whole frames on a socket with room, allocating nothing,
// and stops without blocking when the peer does not read: what it wrote
// arrives in order.
func TestWriterNeverBlocks(t *testing.T) {
	if !Supported {
		t.Skip("no non-blocking writes on this platform")
	}
	a, b := tcpPair(t)
	raw := Raw(a)
	require.NotNil(t, raw)
	var w Writer
	frame := []byte("0123456789abcdef")
	n, err := w.Write(raw, frame)
	require.NoError(t, err)
	require.Equal(t, len(frame), n)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := w.Write(raw, frame); err != nil {
			t.Fatal(err)
		}
	})
	require.Zero(t, allocs, "allocations per Write")
	sent := len(frame) * 102 // the first write, AllocsPerRun's warm-up and its 100 runs

	// The peer reads nothing: a write larger than both socket buffers
	// comes back short instead of waiting.
	big := make([]byte, 64<<20)
	for i := range big {
		big[i] = byte(i)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		n, err = w.Write(raw, big)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Write blocked on a full socket")
	}
	require.NoError(t, err)
	require.Positive(t, n)
	require.Less(t, n, len(big))

	_ = b.SetReadDeadline(time.Now().Add(20 * time.Second))
	got := make([]byte, sent+n)
	_, err = io.ReadFull(b, got)
	require.NoError(t, err)
	for i := 0; i < sent; i += len(frame) {
		require.Equal(t, frame, got[i:i+len(frame)])
	}
	require.Equal(t, big[:n], got[sent:])
}

// A write on a closed socket is an error, not a short write.
func TestWriterClosedSocket(t *testing.T) {
	if !Supported {
		t.Skip("no non-blocking writes on this platform")
	}
	a, _ := tcpPair(t)
	raw := Raw(a)
	require.NoError(t, a.Close())
	var w Writer
	_, err := w.Write(raw, []byte("x"))
	require.Error(t, err)
}
