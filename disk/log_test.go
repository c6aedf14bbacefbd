package disk

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestAppendSyncReopen(t *testing.T) {
	dir := t.TempDir()
	l, err := OpenLog(dir, LogOptions{})
	require.NoError(t, err)
	require.Zero(t, l.LastZxid())
	require.Zero(t, l.FirstZxid())
	d, err := l.Sync()
	require.NoError(t, err)
	require.Zero(t, d)

	want := recs(1, 100)
	for i := 0; i < len(want); i += 10 {
		require.NoError(t, l.Append(want[i:i+10]...))
	}
	d, err = l.Sync()
	require.NoError(t, err)
	require.Equal(t, int64(100), d)
	require.Equal(t, int64(100), l.DurableZxid())
	requireRecords(t, want, readAll(t, l, 0))
	require.NoError(t, l.Close())
	require.ErrorIs(t, l.Append(rec(101)), ErrClosed)

	l, err = OpenLog(dir, LogOptions{})
	require.NoError(t, err)
	defer l.Close()
	require.Equal(t, int64(1), l.FirstZxid())
	require.Equal(t, int64(100), l.LastZxid())
	requireRecords(t, want, readAll(t, l, 0))
	require.NoError(t, l.Append(rec(101)))
	requireRecords(t, append(want, rec(101)), readAll(t, l, 0))
}

func TestAppendRejects(t *testing.T) {
	l, err := OpenLog(t.TempDir(), LogOptions{NoSync: true})
	require.NoError(t, err)
	defer l.Close()
	require.Error(t, l.Append(Record{Zxid: 0}))
	require.NoError(t, l.Append(rec(5)))
	require.Error(t, l.Append(rec(5)))
	require.Error(t, l.Append(rec(7), rec(6)))
	require.Error(t, l.Append(Record{Zxid: 9, Data: make([]byte, MaxRecordSize+1)}))
	require.Error(t, l.Append(Record{Zxid: 9, Data: []byte("no TxnHeader")}))
	require.Error(t, l.Append(Record{Zxid: 9, Data: rec(10).Data}), "the header's zxid must be the record's")
	// A rejected batch leaves nothing behind.
	require.Equal(t, int64(5), l.LastZxid())
	require.NoError(t, l.Append(rec(6)))
}

func TestSegmentRolling(t *testing.T) {
	dir := t.TempDir()
	l, err := OpenLog(dir, LogOptions{SegmentSize: 300, PreallocSize: -1})
	require.NoError(t, err)
	e2 := int64(2) << 32
	want := append(recs(1, 40), recs(e2+1, e2+40)...)
	for _, r := range want {
		require.NoError(t, l.Append(r))
	}
	_, err = l.Sync()
	require.NoError(t, err)
	require.NoError(t, l.Close())

	names, err := OSFS{}.ReadDir(filepath.Join(dir, versionDir))
	require.NoError(t, err)
	require.Greater(t, len(names), 5, "expected several segments")
	for _, n := range names {
		require.True(t, strings.HasPrefix(n, "log."), n)
		first, ok, err := parseZxidName(n, logPrefix)
		require.NoError(t, err)
		require.True(t, ok)
		b, err := os.ReadFile(filepath.Join(dir, versionDir, n))
		require.NoError(t, err)
		require.LessOrEqual(t, len(b), 300+len(rec(first).Data)+recordOverhead)
		require.Equal(t, first, int64(binary.BigEndian.Uint64(b[logHeaderSize+recordPrefixSize+txnZxidOffset:])), "first zxid of %s", n)
	}

	l, err = OpenLog(dir, LogOptions{SegmentSize: 300})
	require.NoError(t, err)
	defer l.Close()
	requireRecords(t, want, readAll(t, l, 0))
	for _, after := range []int64{0, 1, 7, 17, 39, 40, 41, e2, e2 + 1, e2 + 20, e2 + 39, e2 + 40, e2 + 100} {
		var exp []Record
		for _, r := range want {
			if r.Zxid > after {
				exp = append(exp, r)
			}
		}
		requireRecords(t, exp, readAll(t, l, after))
	}
}

func TestReadFromStops(t *testing.T) {
	l, err := OpenLog(t.TempDir(), LogOptions{NoSync: true})
	require.NoError(t, err)
	defer l.Close()
	require.NoError(t, l.Append(recs(1, 10)...))
	stop := fmt.Errorf("stop")
	n := 0
	err = l.ReadFrom(0, func(Record) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, 3, n)
}

// TestConcurrentSync runs many appenders that each Sync and checks that
// every Sync covers its own record and that a Sync whose record an earlier
// fsync covered does not fsync again. (Batching writers into one fsync is
// the server's log writer's job: server/walwriter_test.go.)
func TestConcurrentSync(t *testing.T) {
	var fsyncs atomic.Int64
	fsys := WithFaults(OSFS{}, func(op Op, path string) error {
		if op == OpSync && strings.Contains(filepath.Base(path), "log.") {
			fsyncs.Add(1)
			time.Sleep(time.Millisecond) // a slow disk makes sharing certain
		}
		return nil
	})
	l, err := OpenLog(t.TempDir(), LogOptions{FS: fsys, SegmentSize: 16 << 10})
	require.NoError(t, err)
	defer l.Close()

	const workers, each = 32, 20
	var (
		mu   sync.Mutex
		next int64
		wg   sync.WaitGroup
	)
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				mu.Lock()
				next++
				z := next
				err := l.Append(rec(z))
				mu.Unlock()
				if err != nil {
					errs <- err
					return
				}
				d, err := l.Sync()
				if err != nil {
					errs <- err
					return
				}
				if d < z {
					errs <- fmt.Errorf("sync returned %d, below own record %d", d, z)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	syncs := int64(workers * each)
	t.Logf("%d Sync calls, %d fsyncs of segment files", syncs, fsyncs.Load())
	require.LessOrEqual(t, fsyncs.Load(), syncs, "at most one fsync per Sync")
	before := fsyncs.Load()
	d, err := l.Sync()
	require.NoError(t, err)
	require.Equal(t, syncs, d)
	require.Equal(t, before, fsyncs.Load(), "a Sync with nothing new to cover does not fsync")
	requireRecords(t, recs(1, syncs), readAll(t, l, 0))
}

// writeLog makes a log in a new directory and returns the directory and the
// path of its last segment.
func writeLog(t *testing.T, opts LogOptions, rs []Record) (string, string) {
	t.Helper()
	dir := t.TempDir()
	if opts.PreallocSize == 0 {
		opts.PreallocSize = -1 // the tests edit the files' bytes
	}
	l, err := OpenLog(dir, opts)
	require.NoError(t, err)
	require.NoError(t, l.Append(rs...))
	require.NoError(t, l.Close())
	names, err := OSFS{}.ReadDir(filepath.Join(dir, versionDir))
	require.NoError(t, err)
	var last string
	var lastZ int64 = -1
	for _, n := range names {
		if z, ok, _ := parseZxidName(n, logPrefix); ok && z > lastZ {
			last, lastZ = n, z
		}
	}
	return dir, filepath.Join(dir, versionDir, last)
}

// offsets returns the offset of every record in a segment's bytes, up to
// a zero length.
func offsets(b []byte) []int64 {
	var offs []int64
	for off := int64(logHeaderSize); off+recordPrefixSize <= int64(len(b)); {
		n := int64(binary.BigEndian.Uint32(b[off+8:]))
		if n == 0 {
			break
		}
		offs = append(offs, off)
		off += recordOverhead + n
	}
	return offs
}

// removeNewSegments deletes the segments of dir that are not in keep.
func removeNewSegments(t *testing.T, dir string, keep []string) {
	t.Helper()
	names, err := OSFS{}.ReadDir(filepath.Join(dir, versionDir))
	require.NoError(t, err)
	for _, n := range names {
		if !slices.Contains(keep, n) {
			require.NoError(t, os.Remove(filepath.Join(dir, versionDir, n)))
		}
	}
}

func TestTornLastRecord(t *testing.T) {
	for _, multi := range []bool{false, true} {
		t.Run(fmt.Sprintf("multiSegment=%v", multi), func(t *testing.T) {
			opts := LogOptions{NoSync: true}
			want := recs(1, 6)
			if multi {
				opts.SegmentSize = 100 // the last record gets a segment of its own
			}
			dir, last := writeLog(t, opts, want)
			orig, err := os.ReadFile(last)
			require.NoError(t, err)
			offs := offsets(orig)
			start := offs[len(offs)-1]
			names, err := OSFS{}.ReadDir(filepath.Join(dir, versionDir))
			require.NoError(t, err)
			cuts := 0
			for cut := start; cut < int64(len(orig)); cut++ {
				// The record appended again goes to a new segment, which
				// the next cut must not find.
				removeNewSegments(t, dir, names)
				require.NoError(t, os.WriteFile(last, orig[:cut], 0o644))
				var w warnings
				o := opts
				o.Logger = w.logger()
				l, err := OpenLog(dir, o)
				require.NoError(t, err, "cut at %d", cut)
				requireRecords(t, want[:5], readAll(t, l, 0))
				require.Equal(t, want[4].Zxid, l.LastZxid())
				if cut > start {
					require.NotEmpty(t, w.msgs, "a torn tail must be logged")
				}
				// The log keeps working: append the record again. The
				// torn tail stays where it is, in a segment that is no
				// longer the last, and reads as the end of that one.
				require.NoError(t, l.Append(want[5]))
				require.NoError(t, l.Close())
				l, err = OpenLog(dir, opts)
				require.NoError(t, err)
				requireRecords(t, want, readAll(t, l, 0))
				require.NoError(t, l.Close())
				cuts++
			}
			require.Equal(t, int(int64(len(orig))-start), cuts)

			// A torn header of a new segment is removed too.
			if multi {
				for cut := 0; cut < logHeaderSize; cut++ {
					require.NoError(t, os.WriteFile(last, orig[:cut], 0o644))
					o := opts
					o.Logger = quiet()
					l, err := OpenLog(dir, o)
					require.NoError(t, err)
					requireRecords(t, want[:5], readAll(t, l, 0))
					require.NoError(t, l.Close())
					_, err = os.Stat(last)
					require.True(t, os.IsNotExist(err))
				}
			}
		})
	}
}

func TestCorruptionIsAnError(t *testing.T) {
	want := recs(1, 9)
	cases := []struct {
		name   string
		opts   LogOptions
		record int // which record of the last (or only) segment
		at     func(off int64, b []byte) int64
		seg    int // segment to damage, counting from the last (0) back
	}{
		{name: "data byte of middle record", record: 4, at: func(off int64, _ []byte) int64 { return off + 50 }},
		{name: "crc of middle record", record: 4, at: func(off int64, _ []byte) int64 { return off + 5 }},
		{name: "length of middle record", record: 4, at: func(off int64, _ []byte) int64 { return off + 10 }},
		{name: "zxid of middle record", record: 4, at: func(off int64, _ []byte) int64 { return off + 27 }},
		{name: "end byte of middle record", record: 4, at: func(off int64, b []byte) int64 {
			return off + recordPrefixSize + int64(binary.BigEndian.Uint32(b[off+8:]))
		}},
		{name: "length of first record", record: 0, at: func(off int64, _ []byte) int64 { return off + 11 }},
		{name: "magic", record: 0, at: func(int64, []byte) int64 { return 1 }},
		{name: "version", record: 0, at: func(int64, []byte) int64 { return 7 }},
		{name: "last record of a non-last segment", opts: LogOptions{SegmentSize: 200}, seg: 1, record: -1,
			at: func(off int64, _ []byte) int64 { return off + 17 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.NoSync = true
			dir, _ := writeLog(t, tc.opts, want)
			names, err := OSFS{}.ReadDir(filepath.Join(dir, versionDir))
			require.NoError(t, err)
			ns, err := listNamed(OSFS{}, filepath.Join(dir, versionDir), logPrefix)
			require.NoError(t, err)
			require.NotEmpty(t, names)
			path := filepath.Join(dir, versionDir, ns[len(ns)-1-tc.seg].name)
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			offs := offsets(b)
			r := tc.record
			if r < 0 {
				r += len(offs)
			}
			require.Greater(t, len(offs), r)
			pos := tc.at(offs[r], b)
			b[pos] ^= 0x10
			require.NoError(t, os.WriteFile(path, b, 0o644))

			_, err = OpenLog(dir, LogOptions{NoSync: true, Logger: quiet()})
			require.Error(t, err)
			require.ErrorIs(t, err, ErrCorrupt)
			require.Contains(t, err.Error(), path)
			wantOff := offs[r]
			if pos < logHeaderSize {
				wantOff = 0
				if pos >= 4 {
					wantOff = 4
				}
			}
			require.Contains(t, err.Error(), fmt.Sprintf("offset %d", wantOff))
		})
	}
}

func TestSegmentNameMismatch(t *testing.T) {
	dir, last := writeLog(t, LogOptions{NoSync: true, SegmentSize: 200}, recs(1, 12))
	z, _, _ := parseZxidName(filepath.Base(last), logPrefix)
	require.NoError(t, os.Rename(last, filepath.Join(filepath.Dir(last), "log."+fmt.Sprintf("%x", z-1))))
	_, err := OpenLog(dir, LogOptions{NoSync: true})
	require.ErrorIs(t, err, ErrCorrupt)
	require.Contains(t, err.Error(), "offset")
}

func TestTruncateAfter(t *testing.T) {
	dir := t.TempDir()
	opts := LogOptions{SegmentSize: 250}
	l, err := OpenLog(dir, opts)
	require.NoError(t, err)
	want := recs(1, 60)
	require.NoError(t, l.Append(want...))
	_, err = l.Sync()
	require.NoError(t, err)

	for _, z := range []int64{60, 45, 44, 30, 29} {
		require.NoError(t, l.TruncateAfter(z))
		require.Equal(t, z, l.LastZxid())
		require.Equal(t, z, l.DurableZxid())
		requireRecords(t, want[:z], readAll(t, l, 0))
	}
	// Appending after truncation can diverge from what was there.
	div := Record{Zxid: 31, Data: txnPayload(31, []byte("divergent"))}
	require.NoError(t, l.Append(div))
	d, err := l.Sync()
	require.NoError(t, err)
	require.Equal(t, int64(31), d)
	require.NoError(t, l.Close())

	l, err = OpenLog(dir, opts)
	require.NoError(t, err)
	requireRecords(t, append(want[:29:29], div), readAll(t, l, 0))

	require.NoError(t, l.TruncateAfter(0))
	require.Zero(t, l.LastZxid())
	require.Zero(t, l.FirstZxid())
	require.Empty(t, readAll(t, l, 0))
	require.NoError(t, l.Append(rec(7)))
	require.NoError(t, l.Close())
	l, err = OpenLog(dir, opts)
	require.NoError(t, err)
	defer l.Close()
	requireRecords(t, []Record{rec(7)}, readAll(t, l, 0))
}

func TestPurgeBefore(t *testing.T) {
	dir := t.TempDir()
	l, err := OpenLog(dir, LogOptions{SegmentSize: 250, NoSync: true})
	require.NoError(t, err)
	defer l.Close()
	want := recs(1, 60)
	require.NoError(t, l.Append(want...))
	count := func() int {
		ns, err := listNamed(OSFS{}, filepath.Join(dir, versionDir), logPrefix)
		require.NoError(t, err)
		return len(ns)
	}
	before := count()
	for _, z := range []int64{0, 10, 11, 33, 59, 60, 1000} {
		require.NoError(t, l.PurgeBefore(z))
		require.LessOrEqual(t, l.FirstZxid(), z+1)
		requireRecords(t, want[min(z, 60):], readAll(t, l, z))
	}
	require.Less(t, count(), before)
	require.Equal(t, 1, count(), "the last segment stays")
	require.NoError(t, l.Append(rec(61)))
	requireRecords(t, []Record{rec(61)}, readAll(t, l, 60))
}

func TestSyncFailureIsSticky(t *testing.T) {
	mem := NewMemFS()
	var hook atomic.Pointer[Hook]
	none := Hook(func(Op, string) error { return nil })
	hook.Store(&none)
	fsys := WithFaults(mem, func(op Op, p string) error { return (*hook.Load())(op, p) })
	l, err := OpenLog("/db", LogOptions{FS: fsys})
	require.NoError(t, err)
	require.NoError(t, l.Append(rec(1)))
	_, err = l.Sync()
	require.NoError(t, err)
	require.NoError(t, l.Append(rec(2)))
	fail := FailNext(OpSync)
	hook.Store(&fail)
	_, err = l.Sync()
	require.ErrorIs(t, err, ErrInjected)
	require.Error(t, l.Append(rec(3)))
	_, err = l.Sync()
	require.Error(t, err)
	_ = l.Close()

	mem.Crash()
	l, err = OpenLog("/db", LogOptions{FS: mem})
	require.NoError(t, err)
	defer l.Close()
	requireRecords(t, recs(1, 1), readAll(t, l, 0))
}

func TestReadWhileAppending(t *testing.T) {
	l, err := OpenLog(t.TempDir(), LogOptions{SegmentSize: 1 << 10})
	require.NoError(t, err)
	defer l.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for z := int64(1); z <= 500; z++ {
			if err := l.Append(rec(z)); err != nil {
				panic(err)
			}
			if z%10 == 0 {
				if _, err := l.Sync(); err != nil {
					panic(err)
				}
			}
		}
	}()
	for {
		select {
		case <-done:
			requireRecords(t, recs(1, 500), readAll(t, l, 0))
			return
		default:
		}
		got := readAll(t, l, 0)
		requireRecords(t, recs(1, int64(len(got))), got)
		require.NoError(t, l.PurgeBefore(0))
	}
}

// After a failed fsync the page cache still holds the records it did not
// make durable, and a restart would read them back as if they were
// (PostgreSQL's "fsyncgate"). The Log cuts them from the file when the
// fsync fails, so a reopen without a crash finds exactly the records that
// were durable, and every later Append and Sync fails.
func TestSyncFailureDiscardsUndurable(t *testing.T) {
	for _, segSize := range []int64{0, 150} { // 150: a new segment per record or two
		t.Run(fmt.Sprintf("segmentSize=%d", segSize), func(t *testing.T) {
			mem := NewMemFS()
			var failing atomic.Bool
			fsys := WithFaults(mem, func(op Op, _ string) error {
				if failing.Load() && (op == OpSync || op == OpSyncDir) {
					return ErrInjected
				}
				return nil
			})
			l, err := OpenLog("/db", LogOptions{FS: fsys, SegmentSize: segSize, Logger: quiet()})
			require.NoError(t, err)
			require.NoError(t, l.Append(recs(1, 5)...))
			d, err := l.Sync()
			require.NoError(t, err)
			require.Equal(t, int64(5), d)
			require.NoError(t, l.Append(recs(6, 8)...))
			failing.Store(true)
			_, err = l.Sync()
			require.ErrorIs(t, err, ErrInjected)
			require.Equal(t, int64(5), l.DurableZxid())
			require.Error(t, l.Append(rec(9)), "sticky")
			_, err = l.Sync()
			require.Error(t, err, "sticky")
			_ = l.Close()

			// The same machine, no crash: the page cache is what a restart reads.
			l, err = OpenLog("/db", LogOptions{FS: mem, Logger: quiet()})
			require.NoError(t, err)
			requireRecords(t, recs(1, 5), readAll(t, l, 0))
			require.NoError(t, l.Append(rec(6)))
			_, err = l.Sync()
			require.NoError(t, err)
			require.NoError(t, l.Close())
			mem.Crash()
			l, err = OpenLog("/db", LogOptions{FS: mem, Logger: quiet()})
			require.NoError(t, err)
			requireRecords(t, recs(1, 6), readAll(t, l, 0))
			require.NoError(t, l.Close())
		})
	}
}

// An fsync that fails while Append rolls to a new segment is handled the
// same way, by Close (which alone may cut files then).
func TestRollSyncFailureDiscardsUndurable(t *testing.T) {
	mem := NewMemFS()
	var failing atomic.Bool
	fsys := WithFaults(mem, func(op Op, _ string) error {
		if failing.Load() && op == OpSync {
			return ErrInjected
		}
		return nil
	})
	l, err := OpenLog("/db", LogOptions{FS: fsys, SegmentSize: 150, Logger: quiet()})
	require.NoError(t, err)
	require.NoError(t, l.Append(recs(1, 5)...))
	_, err = l.Sync()
	require.NoError(t, err)
	failing.Store(true)
	err = l.Append(recs(6, 20)...)
	require.ErrorIs(t, err, ErrInjected, "a roll fsynced the full segment and failed")
	require.Error(t, l.Append(rec(21)))
	_ = l.Close()
	l, err = OpenLog("/db", LogOptions{FS: mem, Logger: quiet()})
	require.NoError(t, err)
	requireRecords(t, recs(1, 5), readAll(t, l, 0))
	require.NoError(t, l.Close())
}
