package rawread

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/zabkeeper/zabkeeper/internal/tcppair"
)

func TestReaderStreams(t *testing.T) {
	a, b := tcppair.New(t)
	r := New(b)
	if _, ok := r.(*Reader); !ok {
		t.Fatalf("New of a TCP conn returned %T", r)
	}
	want := bytes.Repeat([]byte("0123456789"), 100_000) // 1 MB: many reads, some waits
	go func() {
		for off := 0; off < len(want); off += 7777 {
			if _, err := a.Write(want[off:min(off+7777, len(want))]); err != nil {
				return
			}
		}
		a.Close()
	}()
	got, err := io.ReadAll(bufio.NewReaderSize(r, 4096))
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, want the %d written", len(got), len(want))
	}
	if n, err := r.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Errorf("after the end: %d, %v; want io.EOF", n, err)
	}
}

func TestReaderDeadlineAndClose(t *testing.T) {
	_, b := tcppair.New(t)
	r := New(b)
	_ = b.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := r.Read(make([]byte, 8))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v, want a timeout", err)
	}
	b.Close()
	if _, err := r.Read(make([]byte, 8)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read of a closed conn: %v, want net.ErrClosed", err)
	}
}

func TestNewOfOtherConns(t *testing.T) {
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	if r := New(p1); r != io.Reader(p1) {
		t.Errorf("New of a pipe returned %T, want the conn itself", r)
	}
}

func TestReadAllocatesNothing(t *testing.T) {
	a, b := tcppair.New(t)
	r := New(b)
	buf := make([]byte, 16)
	msg := []byte("x")
	if a := testing.AllocsPerRun(200, func() {
		if _, err := a.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Read(buf); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("%v allocations per read, want 0", a)
	}
}
