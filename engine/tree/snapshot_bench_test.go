package tree

import (
	"bytes"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/zabkeeper/zabkeeper/proto"
)

// benchCreator returns an empty tree and a function that creates a znode
// of 100 bytes in it.
func benchCreator(b *testing.B) (*Tree, func(path string)) {
	tr := New(Options{})
	c := Caller{SessionID: 1}
	zxid := int64(0)
	return tr, func(path string) {
		zxid++
		txn := tr.Prepare(Txn{Zxid: zxid, SessionID: 1}, c, proto.OpCreate,
			&proto.CreateRequest{Path: path, Data: make([]byte, 100), ACL: proto.OpenACLUnsafe})
		if res := tr.Apply(txn); res.Err != proto.ErrOK {
			b.Fatalf("create %s: %v", path, res.Err)
		}
	}
}

// benchTree is a tree of n znodes of 100 bytes under 100 parents, the
// shape a restart loads.
func benchTree(b *testing.B, n int) *Tree {
	b.Helper()
	tr, apply := benchCreator(b)
	for p := range 100 {
		apply(fmt.Sprintf("/p%d", p))
	}
	for i := range n {
		apply(fmt.Sprintf("/p%d/n%d", i%100, i))
	}
	return tr
}

// BenchmarkSnapshotLoad decodes a snapshot of 100,000 znodes into a tree:
// the in-memory half of a restart (disk.BenchmarkSnapshotFileLoad adds the
// file and its checksum).
func BenchmarkSnapshotLoad(b *testing.B) {
	var buf bytes.Buffer
	if _, err := benchTree(b, 100_000).Snapshot().Write(&buf, nil); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := load(buf.Bytes(), Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(100_000*float64(b.N)/b.Elapsed().Seconds(), "znodes/s")
}

// BenchmarkSnapshotWrite serializes a tree of 100,000 znodes.
func BenchmarkSnapshotWrite(b *testing.B) {
	benchSnapshotWrite(b, benchTree(b, 100_000))
}

// benchSnapshotWrite serializes tr's snapshot into memory. The buffer is
// grown to the snapshot's size first: growing it in the loop (b.N is 1 or
// 2 for a large tree) was half of what was measured.
func benchSnapshotWrite(b *testing.B, tr *Tree) {
	var buf bytes.Buffer
	if _, err := tr.Snapshot().Write(&buf, nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	for b.Loop() {
		buf.Reset()
		if _, err := tr.Snapshot().Write(&buf, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/1e3/float64(b.N), "cpu-ms/op")
	b.SetBytes(int64(buf.Len()))
}

// cpuTime returns the process's user and system CPU time so far: on a
// shared machine a benchmark's wall time includes waiting for a CPU.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPrepareApplyMulti is a multi of four setData ops.
func BenchmarkPrepareApplyMulti(b *testing.B) {
	tr := New(Options{})
	c := Caller{SessionID: 1}
	multi := &proto.MultiRequest{}
	for i := range 4 {
		path := fmt.Sprintf("/m%d", i)
		tr.Apply(tr.Prepare(Txn{Zxid: int64(i + 1)}, c, proto.OpCreate, &proto.CreateRequest{Path: path, ACL: proto.OpenACLUnsafe}))
		multi.Ops = append(multi.Ops, proto.MultiOp{Type: proto.OpSetData, Req: &proto.SetDataRequest{Path: path, Data: make([]byte, 100), Version: -1}})
	}
	zxid := int64(4)
	b.ReportAllocs()
	for b.Loop() {
		zxid++
		if res := tr.Apply(tr.Prepare(Txn{Zxid: zxid}, c, proto.OpMulti, multi)); res.Err != proto.ErrOK {
			b.Fatal(res.Err)
		}
	}
}

// BenchmarkSnapshotTake is the part of a snapshot that runs on the event
// loop, before the tree may change again: freezing the store and fixing
// the order the nodes are written in, for 250,000 znodes.
func BenchmarkSnapshotTake(b *testing.B) {
	tr := benchTree(b, 250_000)
	b.ReportAllocs()
	for b.Loop() {
		_ = tr.Snapshot()
	}
}

// BenchmarkSnapshotWriteOneParent serializes 250,000 znodes under one
// parent, named as the load generator's creates are (c<session>-<n>, 64
// sessions): the order pass sorts one long child list.
func BenchmarkSnapshotWriteOneParent(b *testing.B) {
	tr, apply := benchCreator(b)
	apply("/run")
	for i := range 250_000 {
		apply(fmt.Sprintf("/run/c%d-%d", i%64, i/64))
	}
	benchSnapshotWrite(b, tr)
}
