package disk

import (
	"fmt"
	"io"
	"testing"

	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/proto"
)

// BenchmarkSnapshotFileLoad is the snapshot half of a restart on real
// files: open a snapshot of 100,000 znodes, verify its checksum and decode
// it into a tree.
func BenchmarkSnapshotFileLoad(b *testing.B) {
	const n = 100_000
	tr := tree.New(tree.Options{})
	c := tree.Caller{SessionID: 1}
	zxid := int64(0)
	create := func(path string) {
		zxid++
		txn := tr.Prepare(tree.Txn{Zxid: zxid, SessionID: 1}, c, proto.OpCreate,
			&proto.CreateRequest{Path: path, Data: make([]byte, 100), ACL: proto.OpenACLUnsafe})
		if res := tr.Apply(txn); res.Err != proto.ErrOK {
			b.Fatalf("create %s: %v", path, res.Err)
		}
	}
	for p := range 100 {
		create(fmt.Sprintf("/p%d", p))
	}
	for i := range n {
		create(fmt.Sprintf("/p%d/n%d", i%100, i))
	}
	snap := tr.Snapshot()
	path, err := WriteSnapshot(b.TempDir(), snap.Zxid(), func(w io.Writer) error {
		_, err := snap.Write(w, nil)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	load := func() *tree.Tree {
		_, body, err := OpenSnapshot(path)
		if err != nil {
			b.Fatal(err)
		}
		defer body.Close()
		loaded, err := tree.ReadSnapshot(body, tree.Options{}, snap.Zxid())
		if err != nil {
			b.Fatal(err)
		}
		return loaded.Tree
	}
	if load().Snapshot().Digest() != snap.Digest() {
		b.Fatal("loaded tree differs from the one written")
	}
	b.ReportAllocs()
	for b.Loop() {
		load()
	}
	b.ReportMetric(n*float64(b.N)/b.Elapsed().Seconds(), "znodes/s")
}

// BenchmarkAppendBatch appends 100 records per fsync: the log's cost per
// record when group commit fills a batch.
func BenchmarkAppendBatch(b *testing.B) {
	l, err := OpenLog(b.TempDir(), LogOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.SetBytes(100 * int64(len(benchPayload)))
	z := int64(0)
	for b.Loop() {
		for range 100 {
			z++
			if err := l.Append(Record{Zxid: z, Data: txnPayload(z, benchPayload)}); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := l.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(100*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
