package disk

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/proto"
)

// BenchmarkSnapshotFileLoad is the snapshot half of a restart on real
// files: open a snapshot of 100,000 znodes, verify its checksum and decode
// it into a tree.
func BenchmarkSnapshotFileLoad(b *testing.B) {
	const n = 100_000
	tr := benchSnapTree(b, n)
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

// benchSnapTree returns a tree of n znodes of 100 bytes under 100
// parents.
func benchSnapTree(b *testing.B, n int) *tree.Tree {
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
	return tr
}

// BenchmarkSnapshotFileWrite writes a snapshot of 250,000 znodes (45 MB)
// to a real file, as a server does: serialized, written, fsynced, renamed.
// Its figures are the process's CPU time per snapshot (user and system,
// getrusage) beside the wall time: writing with O_DIRECT trades CPU for
// waiting on the disk. The kernel's writeback threads work outside the
// process; busy-ms/op is every CPU's busy time (/proc/stat) over the
// writes, the whole machine's, so only a quiet machine gives it meaning.
// b.TempDir must be on a disk, not a tmpfs, for the figures to mean that.
func BenchmarkSnapshotFileWrite(b *testing.B) {
	snap := benchSnapTree(b, 250_000).Snapshot()
	dir := b.TempDir()
	write := func() {
		if _, err := WriteSnapshot(dir, snap.Zxid(), func(w io.Writer) error {
			_, err := snap.Write(w, nil)
			return err
		}); err != nil {
			b.Fatal(err)
		}
	}
	write()
	ru0, busy0 := cpuNow(b), machineBusy()
	for b.Loop() {
		write()
	}
	ru1, busy1 := cpuNow(b), machineBusy()
	b.ReportMetric(float64((ru1-ru0).Microseconds())/1e3/float64(b.N), "cpu-ms/op")
	if busy0 >= 0 && busy1 >= 0 {
		b.ReportMetric(float64(busy1-busy0)*10/float64(b.N), "busy-ms/op") // USER_HZ is 100
	}
}

// cpuNow returns the process's user and system CPU time so far.
func cpuNow(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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

// machineBusy returns the jiffies every CPU spent busy (not idle nor
// waiting for I/O) so far, from /proc/stat, or -1.
func machineBusy() int64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return -1
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return -1
	}
	busy := int64(0)
	for i, v := range f[1:9] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return -1
		}
		busy += n
	}
	return busy
}
