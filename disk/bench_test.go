package disk

import (
	"sync"
	"testing"
)

var benchPayload = make([]byte, 128)

// BenchmarkAppendSync appends one record and syncs it, on real files.
func BenchmarkAppendSync(b *testing.B) {
	l, err := OpenLog(b.TempDir(), LogOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.SetBytes(int64(len(benchPayload)))
	z := int64(0)
	for b.Loop() {
		z++
		if err := l.Append(Record{Zxid: z, Data: txnPayload(z, benchPayload)}); err != nil {
			b.Fatal(err)
		}
		if _, err := l.Sync(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConcurrentSync has many goroutines append one record and sync
// it each, on real files. A Sync whose record an earlier fsync covered
// returns without one, but the Log does not gather waiting callers into one
// fsync: the server batches before it calls Sync (server/walwriter.go,
// BenchmarkWritePath), so this costs more per op than when the Log batched
// too (10-19 µs -> 22-32 µs, 2026-12-03).
func BenchmarkConcurrentSync(b *testing.B) {
	l, err := OpenLog(b.TempDir(), LogOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	var (
		mu sync.Mutex
		z  int64
	)
	b.SetBytes(int64(len(benchPayload)))
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			z++
			err := l.Append(Record{Zxid: z, Data: txnPayload(z, benchPayload)})
			mu.Unlock()
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := l.Sync(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkAppendSyncBatch appends 20 records of 150 bytes (3 KB, a batch
// the server's log writer gathers under load) and syncs them, on real
// files: each batch reaches a new block, so what the fdatasync must write
// besides the data (block allocation, the inode) shows here.
func BenchmarkAppendSyncBatch(b *testing.B) {
	l, err := OpenLog(b.TempDir(), LogOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	payload := make([]byte, 150-TxnHeaderSize)
	recs := make([]Record, 20)
	b.SetBytes(int64(len(recs) * 150))
	z := int64(0)
	for b.Loop() {
		for i := range recs {
			z++
			recs[i] = Record{Zxid: z, Data: txnPayload(z, payload)}
		}
		if err := l.Append(recs...); err != nil {
			b.Fatal(err)
		}
		if _, err := l.Sync(); err != nil {
			b.Fatal(err)
		}
	}
}
