package batchio

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/zabkeeper/zabkeeper/internal/tcppair"
)

// modes are the Batchers under test: io_uring where this kernel allows it
// (ZABKEEPER_REQUIRE_IO_URING=1, which CI sets, makes its absence a
// failure), and one system call per operation everywhere.
func modes(t testing.TB) map[string]func() *Batcher {
	m := map[string]func() *Batcher{"plain": NewPlain}
	if err := Available(); err != nil {
		if os.Getenv("ZABKEEPER_REQUIRE_IO_URING") == "1" {
			t.Fatalf("io_uring required but unavailable: %v", err)
		}
		t.Logf("io_uring unavailable, testing the plain mode only: %v", err)
		return m
	}
	m["ring"] = func() *Batcher {
		b := New()
		if !b.Ring() {
			t.Fatal("New did not set up a ring though Available says it can")
		}
		return b
	}
	return m
}

type pair struct {
	local, remote net.Conn
	raw           syscall.RawConn
}

func pairs(t testing.TB, n int) []pair {
	ps := make([]pair, n)
	for i := range ps {
		a, b := tcppair.New(t)
		rc, err := a.(*net.TCPConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		ps[i] = pair{a, b, rc}
	}
	return ps
}

// readExactly reads n bytes from c within a deadline.
func readExactly(t testing.TB, c net.Conn, n int) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return b
}

func TestSendThenRecv(t *testing.T) {
	for name, newB := range modes(t) {
		t.Run(name, func(t *testing.T) {
			b := newB()
			defer b.Close()
			// More pairs than one chunk, so the batch goes in parts.
			ps := pairs(t, chunk+37)
			ops := make([]Op, len(ps))
			for i, p := range ps {
				ops[i] = Op{Conn: p.raw, Buf: []byte(fmt.Sprintf("frame %d of the batch", i))}
			}
			b.Send(ops)
			for i, op := range ops {
				if op.Err != nil || op.N != len(op.Buf) {
					t.Fatalf("send %d: n=%d err=%v, want %d bytes", i, op.N, op.Err, len(op.Buf))
				}
				if got := readExactly(t, ps[i].remote, op.N); !bytes.Equal(got, op.Buf) {
					t.Fatalf("pair %d got %q, want %q", i, got, op.Buf)
				}
			}

			// Receive: every socket of the batch has a reply waiting, except
			// one with nothing and one whose peer has gone.
			want := map[int]string{1: ""}
			for i, p := range ps[2:] {
				want[i+2] = fmt.Sprintf("reply %d", i+2)
				if _, err := p.remote.Write([]byte(want[i+2])); err != nil {
					t.Fatal(err)
				}
			}
			ps[1].remote.Close()
			got := receiveAll(t, b, ps, want)
			for i, w := range want {
				if got[i] != w {
					t.Errorf("pair %d received %q, want %q", i, got[i], w)
				}
			}
			// Nothing was sent to pair 0: a receive finds nothing.
			none := []Op{{Conn: ps[0].raw, Buf: make([]byte, 8)}}
			b.Recv(none)
			if none[0].Err != syscall.EAGAIN || none[0].N != 0 {
				t.Errorf("socket with nothing waiting: n=%d err=%v, want EAGAIN", none[0].N, none[0].Err)
			}
		})
	}
}

// receiveAll receives with b, in batches, until every pair in want has
// received its reply whole ("" for the end of the stream), and returns what
// each received. Loopback TCP usually delivers within the sender's write,
// but may leave it to a softirq: pairs still empty are received again.
func receiveAll(t *testing.T, b *Batcher, ps []pair, want map[int]string) map[int]string {
	t.Helper()
	got := map[int]string{}
	done := map[int]bool{}
	deadline := time.Now().Add(10 * time.Second)
	for len(done) < len(want) {
		var ops []Op
		var idx []int
		for i := range want {
			if !done[i] {
				ops = append(ops, Op{Conn: ps[i].raw, Buf: make([]byte, 64)})
				idx = append(idx, i)
			}
		}
		b.Recv(ops)
		for k, op := range ops {
			i := idx[k]
			switch {
			case op.Err == syscall.EAGAIN:
			case op.Err != nil:
				t.Fatalf("pair %d: receive: %v", i, op.Err)
			case op.N == 0:
				done[i] = true // the end of the stream
			default:
				got[i] += string(op.Buf[:op.N])
				done[i] = len(got[i]) >= len(want[i]) && want[i] != ""
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("received %d of %d replies within 10 s", len(done), len(want))
		}
	}
	return got
}

// A socket closed before the batch is reported closed; the others of the
// batch are sent as usual.
func TestSendOnClosedSocket(t *testing.T) {
	for name, newB := range modes(t) {
		t.Run(name, func(t *testing.T) {
			b := newB()
			defer b.Close()
			ps := pairs(t, 3)
			ps[1].local.Close()
			ops := []Op{{Conn: ps[0].raw, Buf: []byte("a")}, {Conn: ps[1].raw, Buf: []byte("b")}, {Conn: ps[2].raw, Buf: []byte("c")}}
			b.Send(ops)
			if ops[1].Err == nil || ops[1].N != 0 {
				t.Errorf("closed socket: n=%d err=%v, want an error", ops[1].N, ops[1].Err)
			}
			for _, i := range []int{0, 2} {
				if ops[i].Err != nil || ops[i].N != 1 {
					t.Errorf("op %d: n=%d err=%v", i, ops[i].N, ops[i].Err)
				}
				if got := readExactly(t, ps[i].remote, 1); !bytes.Equal(got, ops[i].Buf) {
					t.Errorf("pair %d got %q", i, got)
				}
			}
		})
	}
}

// A send larger than the socket's buffers is taken in part, without
// blocking and without an error; what the socket took arrives whole.
func TestSendPastFullSocket(t *testing.T) {
	for name, newB := range modes(t) {
		t.Run(name, func(t *testing.T) {
			b := newB()
			defer b.Close()
			ps := pairs(t, 2)
			big := bytes.Repeat([]byte("0123456789abcdef"), 1<<20) // 16 MiB
			ops := []Op{{Conn: ps[0].raw, Buf: big}, {Conn: ps[1].raw, Buf: []byte("small")}}
			b.Send(ops)
			if ops[0].Err != nil || ops[0].N == 0 || ops[0].N >= len(big) {
				t.Fatalf("big send: n=%d err=%v, want part of %d bytes", ops[0].N, ops[0].Err, len(big))
			}
			if ops[1].Err != nil || ops[1].N != 5 {
				t.Fatalf("small send: n=%d err=%v", ops[1].N, ops[1].Err)
			}
			// The socket is full: another send takes nothing, no error.
			again := []Op{{Conn: ps[0].raw, Buf: big[ops[0].N:]}}
			b.Send(again)
			if again[0].Err != nil || again[0].N != 0 {
				t.Fatalf("send to a full socket: n=%d err=%v, want nothing taken", again[0].N, again[0].Err)
			}
			if got := readExactly(t, ps[0].remote, ops[0].N); !bytes.Equal(got, big[:ops[0].N]) {
				t.Fatal("the part sent arrived changed")
			}
		})
	}
}

// Any sequence of batches of sends, of any sizes, to any of a few sockets,
// arrives on each socket as exactly the bytes the sends said they took, in
// order.
func TestSendStreamsProperty(t *testing.T) {
	for name, newB := range modes(t) {
		t.Run(name, func(t *testing.T) {
			b := newB()
			defer b.Close()
			ps := pairs(t, 4)
			rapid.Check(t, func(rt *rapid.T) {
				var sent [4][]byte
				rounds := rapid.IntRange(1, 5).Draw(rt, "rounds")
				for range rounds {
					n := rapid.IntRange(1, 12).Draw(rt, "ops")
					ops := make([]Op, n)
					for k := range ops {
						to := rapid.IntRange(0, len(ps)-1).Draw(rt, "to")
						size := rapid.IntRange(0, 3000).Draw(rt, "size")
						buf := make([]byte, size)
						for j := range buf {
							buf[j] = byte(to*31 + len(sent[to]) + j)
						}
						ops[k] = Op{Conn: ps[to].raw, Buf: buf}
					}
					b.Send(ops)
					for _, op := range ops {
						if op.Err != nil {
							rt.Fatalf("send: %v", op.Err)
						}
						to := -1
						for i := range ps {
							if ps[i].raw == op.Conn {
								to = i
							}
						}
						sent[to] = append(sent[to], op.Buf[:op.N]...)
					}
				}
				for i, want := range sent {
					if got := readExactly(t, ps[i].remote, len(want)); !bytes.Equal(got, want) {
						rt.Fatalf("socket %d received %d bytes different from the %d sent", i, len(got), len(want))
					}
				}
			})
		})
	}
}

// A batch allocates nothing: the server sends one per loop turn.
func TestBatchAllocatesNothing(t *testing.T) {
	for name, newB := range modes(t) {
		t.Run(name, func(t *testing.T) {
			b := newB()
			defer b.Close()
			ps := pairs(t, 8)
			ops := make([]Op, len(ps))
			recv := make([]Op, len(ps))
			for i, p := range ps {
				ops[i] = Op{Conn: p.raw, Buf: []byte("x")}
				recv[i] = Op{Conn: p.raw, Buf: make([]byte, 8)}
			}
			b.Send(ops) // sets up the holders
			b.Recv(recv)
			if a := testing.AllocsPerRun(100, func() { b.Send(ops); b.Recv(recv) }); a != 0 {
				t.Errorf("%v allocations per batch, want 0", a)
			}
		})
	}
}

func TestEnvTurnsRingOff(t *testing.T) {
	t.Setenv("ZABKEEPER_IO_URING", "0")
	b := New()
	defer b.Close()
	if b.Ring() {
		t.Fatal("ZABKEEPER_IO_URING=0 left io_uring on")
	}
}

func benchmarkSend(bm *testing.B, b *Batcher, n int) {
	ps := pairs(bm, n)
	ops := make([]Op, n)
	buf := make([]byte, 100)
	for i, p := range ps {
		ops[i] = Op{Conn: p.raw, Buf: buf}
	}
	drain := make([]byte, 64<<10)
	bm.ResetTimer()
	for range bm.N {
		b.Send(ops)
		bm.StopTimer()
		for _, p := range ps {
			_ = p.remote.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := io.ReadFull(p.remote, drain[:100]); err != nil {
				bm.Fatal(err)
			}
		}
		bm.StartTimer()
	}
}

// BenchmarkSend64: 64 sends of 100 bytes to 64 loopback sockets, the
// shape of a server's replies to 64 sessions.
func BenchmarkSend64(bm *testing.B) {
	for name, newB := range modes(bm) {
		bm.Run(name, func(bm *testing.B) {
			b := newB()
			defer b.Close()
			benchmarkSend(bm, b, 64)
		})
	}
}

func TestSyncerDatasync(t *testing.T) {
	s, err := NewSyncer()
	if err != nil {
		if os.Getenv("ZABKEEPER_REQUIRE_IO_URING") == "1" {
			t.Fatalf("io_uring required but unavailable: %v", err)
		}
		t.Skipf("no Syncer here: %v", err)
	}
	f, err := os.CreateTemp(t.TempDir(), "seg")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Several goroutines at once: one flush at a time, each answered.
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			if _, err := f.WriteAt([]byte("data"), int64(i*4)); err != nil {
				errs <- err
				return
			}
			errs <- s.Datasync(f.Fd())
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatalf("Datasync: %v", err)
		}
	}
	// The kernel's answer comes back: a pipe cannot be fsynced, a
	// descriptor that is not open is refused.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	if err := s.Datasync(pr.Fd()); err != syscall.EINVAL {
		t.Errorf("Datasync of a pipe: %v, want EINVAL", err)
	}
	if err := s.Datasync(uintptr(1 << 20)); err != syscall.EBADF {
		t.Errorf("Datasync of no descriptor: %v, want EBADF", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Datasync(f.Fd()); err == nil {
		t.Error("Datasync after Close succeeded")
	}
	t.Setenv("ZABKEEPER_IO_URING", "0")
	if _, err := NewSyncer(); err == nil {
		t.Error("ZABKEEPER_IO_URING=0 left the Syncer on")
	}
}
