package tree

import (
	"runtime"
	"strconv"
	"testing"

	"github.com/zabkeeper/zabkeeper/proto"
)

// BenchmarkTreeMemory reports the live heap per znode of a tree filled with
// 100-byte znodes under one parent, each applied from its marshalled txn as
// a follower applies them (so nothing is shared with the request).
func BenchmarkTreeMemory(b *testing.B) {
	const znodes = 100_000
	for b.Loop() {
		leader := New(Options{})
		c := Caller{SessionID: 1}
		data := make([]byte, 100)
		txns := make([][]byte, 0, znodes+1)
		mk := func(i int, req proto.Record, op proto.OpCode) {
			txn := leader.Prepare(Txn{Zxid: int64(i + 1), SessionID: 1, Time: int64(i)}, c, op, req)
			if res := leader.Apply(txn); res.Err != proto.ErrOK {
				b.Fatal(res.Err)
			}
			txns = append(txns, txn.Marshal())
		}
		mk(0, &proto.CreateRequest{Path: "/fill", ACL: proto.OpenACLUnsafe}, proto.OpCreate)
		for i := range znodes {
			mk(i+1, &proto.CreateRequest{Path: "/fill/znode-" + strconv.Itoa(i), Data: data, ACL: proto.OpenACLUnsafe}, proto.OpCreate)
		}
		leader = nil
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		tr := New(Options{})
		for _, raw := range txns {
			txn, err := UnmarshalTxn(raw)
			if err != nil {
				b.Fatal(err)
			}
			if res := tr.Apply(txn); res.Err != proto.ErrOK {
				b.Fatal(res.Err)
			}
		}
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/znodes, "B/znode")
		runtime.KeepAlive(tr)
		runtime.KeepAlive(txns)
	}
}

// BenchmarkTreeGC reports what one full collection costs with a tree of
// 1,000,000 100-byte znodes (under 100 parents) live: the time of
// runtime.GC() and the heap it leaves. Every collection marks whatever the
// tree makes the collector scan, so this is the tax a lower GOGC multiplies.
func BenchmarkTreeGC(b *testing.B) {
	tr := benchTree(b, 1_000_000)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ResetTimer()
	for b.Loop() {
		runtime.GC()
	}
	b.ReportMetric(float64(ms.HeapAlloc)/1e6, "heapMB")
	b.ReportMetric(float64(ms.HeapObjects), "objects")
	runtime.KeepAlive(tr)
}
