package batchio

import (
	"bytes"
	"testing"
)

// The ring as a kernel before 6.6 sets it up, with the submission queue's
// index array: the same sends arrive the same.
func TestRingWithSQArray(t *testing.T) {
	if err := Available(); err != nil {
		t.Skipf("io_uring unavailable: %v", err)
	}
	defer func(old []uint32) { setupFlags = old }(setupFlags)
	setupFlags = []uint32{setupSubmitAll}
	b := New()
	defer b.Close()
	if !b.Ring() {
		t.Fatal("no ring with SUBMIT_ALL alone")
	}
	ps := pairs(t, 3)
	for round := range 3 * chunk { // past the ring's size: slots wrap
		ops := make([]Op, len(ps))
		for i, p := range ps {
			ops[i] = Op{Conn: p.raw, Buf: []byte{byte(round), byte(i)}}
		}
		b.Send(ops)
		for i, op := range ops {
			if op.Err != nil || op.N != 2 {
				t.Fatalf("round %d op %d: n=%d err=%v", round, i, op.N, op.Err)
			}
			if got := readExactly(t, ps[i].remote, 2); !bytes.Equal(got, op.Buf) {
				t.Fatalf("round %d pair %d got %v, want %v", round, i, got, op.Buf)
			}
		}
	}
}
