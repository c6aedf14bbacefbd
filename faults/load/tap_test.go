package load

import (
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"
)

// The frame parser finds every header however the stream is split, and
// skips the first (connect) frame.
func TestFrameParserSplits(t *testing.T) {
	frame := func(body []byte) []byte {
		return binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	}
	var stream []byte
	connect := make([]byte, 36)
	stream = append(append(stream, frame(connect)...), connect...)
	var want [][]byte
	for i := range 50 {
		body := binary.BigEndian.AppendUint32(nil, uint32(i))      // xid
		body = binary.BigEndian.AppendUint64(body, uint64(1000+i)) // zxid
		body = binary.BigEndian.AppendUint32(body, 0)              // err
		body = append(body, make([]byte, i*7)...)                  // payload
		want = append(want, body[:16])
		stream = append(append(stream, frame(body)...), body...)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		var got [][]byte
		var f frameParser
		f.hdrLen = 16
		rest := stream
		for len(rest) > 0 {
			k := 1 + rng.IntN(min(len(rest), 1+round*5))
			f.feed(rest[:k], func(h []byte) { got = append(got, append([]byte(nil), h...)) })
			rest = rest[k:]
		}
		if len(got) != len(want) {
			t.Fatalf("round %d: %d headers, want %d", round, len(got), len(want))
		}
		for i := range want {
			if string(got[i]) != string(want[i]) {
				t.Fatalf("round %d: header %d = %x, want %x", round, i, got[i], want[i])
			}
		}
	}
}

// The tap keeps the zxid of the reply whose xid matches the last request,
// ignoring pings, notifications and go-zk's own setWatches.
func TestReplyTap(t *testing.T) {
	tap := NewTap()
	req := func(xid, op int32) []byte {
		return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, uint32(xid)), uint32(op))
	}
	reply := func(xid int32, zxid int64) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(xid))
		b = binary.BigEndian.AppendUint64(b, uint64(zxid))
		return binary.BigEndian.AppendUint32(b, 0)
	}
	tap.Begin()
	tap.onRequest(req(7, 4)) // getData
	tap.onRequest(req(8, opSetWatches))
	tap.onRequest(req(-2, 11)) // ping
	tap.onReply(1, reply(-1, 90))
	tap.onReply(1, reply(8, 95))
	if _, _, ok := tap.Reply(); ok {
		t.Fatal("a reply to another request was taken")
	}
	tap.onReply(1, reply(7, 99))
	if z, g, ok := tap.Reply(); !ok || z != 99 || g != 1 {
		t.Fatalf("reply() = %d, %d, %v; want 99, 1, true", z, g, ok)
	}
	tap.Begin()
	if _, _, ok := tap.Reply(); ok {
		t.Fatal("begin did not forget the previous reply")
	}
}

// Each dial is a new generation; Drop closes the current connection.
func TestTapDialAndDrop(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tap := NewTap()
	if g := tap.Generation(); g != 0 {
		t.Fatalf("generation %d before any dial", g)
	}
	first, err := tap.Dial("tcp", ln.Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	second, err := tap.Dial("tcp", ln.Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if g := tap.Generation(); g != 2 {
		t.Fatalf("generation %d after two dials", g)
	}
	tap.Drop()
	if _, err := second.Write([]byte{0, 0, 0, 0}); err == nil {
		t.Fatal("the dropped connection still writes")
	}
	if _, err := first.Write([]byte{0, 0, 0, 0}); err != nil {
		t.Fatalf("an earlier connection was closed too: %v", err)
	}
}

// A held client's writes go nowhere and it cannot dial; Release undoes
// both. Quiet counts from the last bytes the server sent.
func TestTapHold(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	tap := NewTap()
	if _, gen := tap.Quiet(); gen != 0 {
		t.Fatalf("generation %d before any dial", gen)
	}
	client, err := tap.Dial("tcp", ln.Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server := <-accepted
	defer server.Close()

	if _, err := server.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if q, gen := tap.Quiet(); gen != 1 || q > time.Second {
		t.Fatalf("Quiet() = %v, %d right after a read", q, gen)
	}

	tap.Hold(false)
	if n, err := client.Write([]byte("held")); err != nil || n != 4 {
		t.Fatalf("held write = %d, %v; want it to report success", n, err)
	}
	if _, err := tap.Dial("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Fatal("dialed while held")
	}
	tap.Release()
	if _, err := client.Write([]byte("free")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	_ = server.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(server, got); err != nil || string(got) != "free" {
		t.Fatalf("server read %q, %v; want only what was written after the release", got, err)
	}

	tap.Hold(true)
	if _, err := io.ReadFull(server, got[:1]); err == nil {
		t.Fatal("Hold(true) left the connection open")
	}
	tap.Release()
	again, err := tap.Dial("tcp", ln.Addr().String(), time.Second)
	if err != nil {
		t.Fatalf("dial after release: %v", err)
	}
	defer again.Close()
}
