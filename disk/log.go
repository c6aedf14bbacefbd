package disk

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/zabkeeper/zabkeeper/internal/batchio"
)

// Record is one transaction in the log: its zxid and its opaque payload.
type Record struct {
	// Zxid is the transaction id, epoch<<32 | counter. It is strictly
	// greater than the zxid of the record before it in the log.
	Zxid int64
	// Data is the payload: the txn as ZooKeeper logs it, starting with its
	// TxnHeader (TxnHeaderSize bytes, whose zxid field must be Zxid). The
	// disk package looks at nothing else in it.
	Data []byte
}

// LogOptions configure OpenLog. The zero value is ready to use.
type LogOptions struct {
	// SegmentSize is the size in bytes after which the log starts a new
	// segment file (default 64 MiB). A segment can exceed it by one record.
	// (ZooKeeper rolls its log at snapshots instead; either reads both.)
	SegmentSize int64
	// PreallocSize is how much a segment file is grown by, with zeros,
	// whenever a record comes within 4 KiB of its end, as ZooKeeper does
	// (zookeeper.preAllocSize; its default 64 MiB when zero; negative: no
	// preallocation). Growing the file rarely lets an fsync skip the file
	// size. It applies only on file systems whose files can be written at
	// an offset (OSFS); MemFS files grow record by record.
	PreallocSize int64
	// NoSync skips every fsync. For tests only: nothing is durable.
	NoSync bool
	// FS is the file system to use; nil means OSFS.
	FS FS
	// Logger receives recovery warnings; nil means slog.Default().
	Logger *slog.Logger
	// TruncateCorruptTail lets OpenLog cut a corrupt final record
	// (ErrCorruptTail) and anything after it, logging at error level what
	// it drops, instead of refusing to open. It is the explicit repair an
	// operator asks for; a damaged record with valid records after it is
	// refused all the same.
	TruncateCorruptTail bool
}

// DefaultSegmentSize is LogOptions.SegmentSize when it is left zero.
const DefaultSegmentSize = 64 << 20

// DefaultPreallocSize is LogOptions.PreallocSize when it is left zero:
// ZooKeeper's default preAllocSize.
const DefaultPreallocSize = 64 << 20

// preallocMargin is ZooKeeper's: the file grows when a write starts within
// this many bytes of its end (FilePadding.padFile).
const preallocMargin = 4096

// versionDir is the subdirectory ZooKeeper keeps its files in.
const versionDir = "version-2"

const logPrefix = "log."

// ErrClosed is returned by operations on a closed Log.
var ErrClosed = errors.New("disk: log closed")

// segment is one log file.
type segment struct {
	name  string // base name, log.<first hex>
	first int64  // zxid of its first record, from the name
	last  int64  // zxid of its last record
	size  int64  // end of its data: bytes written, including bytes still buffered
	// alloc is the size of the file with its preallocated zeros (only for
	// the segment being written, when it is preallocated).
	alloc int64
	// zeroed is the end of the zeros written ahead of the records (only
	// for the segment being written, when it is preallocated: zeroAhead).
	zeroed int64
}

// Log is the write-ahead transaction log: a directory of segment files.
//
// Append, Sync, ReadFrom, TruncateAfter, PurgeBefore and the accessors are
// safe for concurrent use. The Log does not batch: its caller does (the
// server's log writer, server/walwriter.go, appends whatever the event loop
// handed it since the last fsync and syncs once for all of it), so there is
// one group commit, not two. After a write or fsync fails the Log refuses
// further appends and syncs (what reached the disk is unknown after a failed
// fsync); close it and open it again to recover.
type Log struct {
	dir    string // <dir>/version-2
	fs     FS
	opts   LogOptions
	logger *slog.Logger

	// mu guards the fields below it: the append side.
	mu   sync.Mutex
	segs []segment
	// cur is the last segment, open for appending; nil until the first
	// append after OpenLog or TruncateAfter, which starts a new segment
	// (as ZooKeeper starts a new log file on its first append): the files
	// found at open are never appended to, so a torn tail stays where the
	// crash left it and ZooKeeper's files are not rewritten.
	cur      File
	w        *bufio.Writer // buffers writes to cur
	curAt    io.WriterAt   // cur, when it can be preallocated; else nil
	toClose  []File        // rolled segments, closed by the next holder of syncMu
	dirDirty bool          // a segment was created since the directory was last synced
	lastZxid int64
	failed   error // sticky write or fsync failure
	// fsyncFailed says an fsync failed: the records after the durable
	// zxid must be cut from the files before anyone can read them back.
	fsyncFailed bool
	closed      bool

	// syncMu is held through every fsync and every replacement of files
	// (Sync, TruncateAfter, Close): one at a time. Appends go on, under
	// mu, while an fsync runs.
	syncMu sync.Mutex
	// durable: every record up to this zxid is durable. Written with
	// syncMu held; read by anyone.
	durable atomic.Int64

	// syncer fsyncs through io_uring (syncData), set up on the first
	// fsync of a real file; nil where it cannot be.
	syncerOnce sync.Once
	syncer     *batchio.Syncer
}

// OpenLog opens the log in dir/version-2, creating it if needed, and
// verifies every segment. The format is Apache ZooKeeper's (see
// record.go): a log ZooKeeper 3.5-3.9 wrote opens, and ZooKeeper opens
// ours.
//
// The data of a segment ends, as ZooKeeper reads it, at the end of the
// file, at a zero length followed by zeros (preallocation), or at a record
// a crash cut short (a torn write: the file ends inside it, or zeros
// follow its written prefix). Torn and zero tails are left in place (the
// next append starts a new segment), with a warning for a torn one; a last
// segment with no complete record is removed (ZooKeeper 3.9.3+ deletes an
// empty tail log too). A complete final record that fails its checksum, or
// an impossible length or end byte that is not zero fill, is corruption a
// crash does not cause: OpenLog fails with an error wrapping
// ErrCorruptTail and ErrCorrupt, unless opts.TruncateCorruptTail asks to
// cut it. Any other damage (in the middle of a segment, a damaged tail in
// a segment that is not the last, zxids that do not increase, a first
// record that contradicts the file name) fails OpenLog with an error that
// wraps ErrCorrupt and names the file and byte offset.
func OpenLog(dir string, opts LogOptions) (*Log, error) {
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = DefaultSegmentSize
	}
	if opts.PreallocSize == 0 {
		opts.PreallocSize = DefaultPreallocSize
	}
	l := &Log{dir: filepath.Join(dir, versionDir), fs: orOS(opts.FS), opts: opts, logger: opts.Logger}
	if l.logger == nil {
		l.logger = slog.Default()
	}
	if err := l.fs.MkdirAll(l.dir, 0o755); err != nil {
		return nil, fmt.Errorf("disk: create log dir %s: %w", l.dir, err)
	}
	segs, err := listNamed(l.fs, l.dir, logPrefix)
	if err != nil {
		return nil, fmt.Errorf("disk: list log dir %s: %w", l.dir, err)
	}
	dirChanged := false
	prev := int64(0)
	var empty []named // passed over: no complete record
	for i, s := range segs {
		isLast := i == len(segs)-1
		seg, keep, err := l.recoverSegment(s.name, s.zxid, prev, isLast)
		if err != nil {
			return nil, err
		}
		if !keep {
			dirChanged = dirChanged || isLast
			if !isLast {
				empty = append(empty, s)
			}
			continue
		}
		l.segs = append(l.segs, seg)
		prev = seg.last
	}
	l.lastZxid = prev
	for _, s := range empty {
		// An empty file named for a zxid after the end of the log (crashes
		// while creating files, twice) would collide with a file a later
		// append creates; ZooKeeper overwrites such a file then.
		if s.zxid > l.lastZxid {
			l.logger.Warn("disk: removing log segment with no complete record", "file", l.path(s.name))
			if err := l.removeFile(l.path(s.name)); err != nil {
				return nil, err
			}
			dirChanged = true
		}
	}
	if n := len(l.segs); n > 0 && !opts.NoSync {
		// The previous process may have left unsynced data in the page
		// cache that this one is about to report as durable.
		p := l.path(l.segs[n-1].name)
		f, err := l.fs.OpenFile(p, os.O_RDONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("disk: open segment %s: %w", p, err)
		}
		err = f.Sync()
		_ = f.Close()
		if err != nil {
			return nil, fmt.Errorf("disk: sync segment %s: %w", p, err)
		}
		dirChanged = true
	}
	if dirChanged && !opts.NoSync {
		if err := l.fs.SyncDir(l.dir); err != nil {
			return nil, fmt.Errorf("disk: sync log dir %s: %w", l.dir, err)
		}
	}
	l.durable.Store(l.lastZxid)
	return l, nil
}

// recoverSegment verifies one segment at open time. keep is false for a
// segment with no complete record, which is removed when it is the last
// (its name is the zxid the next append may take) and otherwise passed
// over.
func (l *Log) recoverSegment(name string, first, prev int64, isLast bool) (segment, bool, error) {
	path := l.path(name)
	f, err := l.fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return segment{}, false, fmt.Errorf("disk: open segment %s: %w", path, err)
	}
	defer f.Close()
	size, err := fileSize(f)
	if err != nil {
		return segment{}, false, fmt.Errorf("disk: stat segment %s: %w", path, err)
	}
	if first <= prev {
		return segment{}, false, fmt.Errorf("disk: segment %s: named for zxid %#x but the previous segment ends at %#x, at offset 0: %w", path, first, prev, ErrCorrupt)
	}
	if size < logHeaderSize {
		torn, err := isTornHeader(f, size)
		if err != nil {
			return segment{}, false, fmt.Errorf("disk: read segment %s: %w", path, err)
		}
		if torn {
			return segment{}, false, l.dropEmpty(path, size, isLast, "a torn header")
		}
	}
	sc, err := scanSegment(path, f, size, first, prev, nil)
	if err != nil {
		return segment{}, false, err
	}
	if sc.repeats > 0 {
		l.logger.Warn("disk: segment repeats txns it already holds (ZooKeeper's learner logs a DIFF's txns twice); each is read once",
			"file", path, "repeats", sc.repeats)
	}
	switch sc.tail {
	case tailCorrupt:
		claimed := claimedZxid(f, sc.end, size)
		if !isLast {
			return segment{}, false, fmt.Errorf("disk: segment %s: %s at offset %d in a segment that is not the last (zxid %s): "+
				"corruption with newer segments after it; restore the file from a replica or backup: %w",
				path, sc.fault, sc.end, claimed, ErrCorrupt)
		}
		if !l.opts.TruncateCorruptTail {
			return segment{}, false, fmt.Errorf("disk: segment %s: %s at offset %d in the final record (%d bytes to the end of the file, zxid %s): "+
				"not a torn write (a crash only cuts a record short or leaves zeros), so corruption, and the record may hold "+
				"an acknowledged txn; restore the file from a replica or backup, or cut the record and what follows it explicitly: %w: %w",
				path, sc.fault, sc.end, size-sc.end, claimed, ErrCorruptTail, ErrCorrupt)
		}
		l.logger.Error("disk: dropping a corrupt final record of the log, as asked (TruncateCorruptTail)",
			"file", path, "offset", sc.end, "fault", sc.fault.String(), "bytes", size-sc.end,
			"zxid", claimed, "lastKeptZxid", fmt.Sprintf("%#x", sc.last))
		if err := l.truncateFile(path, sc.end); err != nil {
			return segment{}, false, err
		}
	case tailTorn:
		if isLast {
			l.logger.Warn("disk: the final record of the log is torn (a crash cut its write short); the log ends before it",
				"file", path, "offset", sc.end, "fault", sc.fault.String(), "lastZxid", fmt.Sprintf("%#x", sc.last))
		}
	}
	if sc.count == 0 {
		return segment{}, false, l.dropEmpty(path, size, isLast, "no complete record")
	}
	return segment{name: name, first: first, last: sc.last, size: sc.end}, true, nil
}

// dropEmpty removes a last segment with no complete record, or passes over
// an older one (as ZooKeeper does: such a file ends its data at once).
func (l *Log) dropEmpty(path string, size int64, isLast bool, why string) error {
	if !isLast {
		l.logger.Debug("disk: passing over a log segment with "+why, "file", path, "size", size)
		return nil
	}
	l.logger.Warn("disk: removing log segment with "+why, "file", path, "size", size)
	return l.removeFile(path)
}

// claimedZxid is the zxid field of the damaged record at off, for the log
// (unverified: the record failed its check), or "unknown" when the record
// is too short to hold one.
func claimedZxid(f io.ReaderAt, off, size int64) string {
	if size-off < recordPrefixSize+TxnHeaderSize {
		return "unknown"
	}
	var z [8]byte
	if _, err := f.ReadAt(z[:], off+recordPrefixSize+txnZxidOffset); err != nil {
		return "unknown"
	}
	return fmt.Sprintf("%#x", binary.BigEndian.Uint64(z[:]))
}

func (l *Log) removeFile(path string) error {
	if err := l.fs.Remove(path); err != nil {
		return fmt.Errorf("disk: remove segment %s: %w", path, err)
	}
	return nil
}

// truncateFile durably cuts the file at path to size bytes.
func (l *Log) truncateFile(path string, size int64) error {
	f, err := l.fs.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("disk: open segment %s: %w", path, err)
	}
	if err := f.Truncate(size); err != nil {
		_ = f.Close()
		return fmt.Errorf("disk: truncate segment %s to %d: %w", path, size, err)
	}
	if !l.opts.NoSync {
		if err := f.Sync(); err != nil {
			_ = f.Close()
			return fmt.Errorf("disk: sync segment %s: %w", path, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("disk: close segment %s: %w", path, err)
	}
	return nil
}

func (l *Log) path(name string) string { return filepath.Join(l.dir, name) }

// LastZxid returns the zxid of the last record appended, or 0 when the log
// is empty.
func (l *Log) LastZxid() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastZxid
}

// FirstZxid returns the zxid of the first record in the log, or 0 when the
// log is empty.
func (l *Log) FirstZxid() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.segs) == 0 {
		return 0
	}
	return l.segs[0].first
}

// DurableZxid returns the highest zxid known to be durable.
func (l *Log) DurableZxid() int64 {
	return l.durable.Load()
}

// Append writes records, whose zxids must increase and exceed LastZxid, to
// the operating system without waiting for them to be durable; call Sync
// for that. Each record's Data must start with a TxnHeader holding its
// Zxid. Either every record is accepted or, when validation fails, none
// is. Append is safe for concurrent use with Sync and ReadFrom.
func (l *Log) Append(recs ...Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usable(); err != nil {
		return err
	}
	prev := l.lastZxid
	for _, r := range recs {
		if r.Zxid <= prev {
			return fmt.Errorf("disk: append zxid %#x after %#x: zxids must increase", r.Zxid, prev)
		}
		if len(r.Data) > MaxRecordSize {
			return fmt.Errorf("disk: append zxid %#x: %d bytes exceed the record limit %d", r.Zxid, len(r.Data), MaxRecordSize)
		}
		if z, ok := TxnZxid(r.Data); !ok || z != r.Zxid {
			return fmt.Errorf("disk: append zxid %#x: the payload (%d bytes) does not start with a TxnHeader of that zxid", r.Zxid, len(r.Data))
		}
		prev = r.Zxid
	}
	var hdr [recordPrefixSize]byte
	eor := [1]byte{eorByte}
	for _, r := range recs {
		n := int64(recordOverhead + len(r.Data))
		if l.cur == nil || (l.segs[len(l.segs)-1].last != 0 && l.segs[len(l.segs)-1].size+n > l.opts.SegmentSize) {
			if err := l.roll(r.Zxid); err != nil {
				l.failed = err
				return err
			}
		}
		s := &l.segs[len(l.segs)-1]
		if err := l.prealloc(s); err != nil {
			l.failed = err
			return err
		}
		encodeRecordPrefix(&hdr, r)
		if _, err := l.w.Write(hdr[:]); err != nil {
			l.failed = fmt.Errorf("disk: write segment %s: %w", s.name, err)
			return l.failed
		}
		if _, err := l.w.Write(r.Data); err != nil {
			l.failed = fmt.Errorf("disk: write segment %s: %w", s.name, err)
			return l.failed
		}
		if _, err := l.w.Write(eor[:]); err != nil {
			l.failed = fmt.Errorf("disk: write segment %s: %w", s.name, err)
			return l.failed
		}
		s.size += n
		s.last = r.Zxid
		l.lastZxid = r.Zxid
	}
	return nil
}

// prealloc grows the segment being written as ZooKeeper's FilePadding
// does, before a record is written at the end of its data: when that end
// comes within preallocMargin of the end of the file, the file grows by
// PreallocSize (or, when records ran past the end, to the multiple of
// PreallocSize past it), by writing one zero byte at the new end (the file
// system leaves a hole that reads as zeros); and it writes zeros ahead of
// the records into that hole (zeroAhead). l.mu is held.
func (l *Log) prealloc(s *segment) error {
	if l.curAt == nil {
		return nil
	}
	if s.size+preallocMargin < s.alloc {
		return l.zeroAhead(s)
	}
	if s.size > s.alloc {
		s.alloc = (s.size + l.opts.PreallocSize) / l.opts.PreallocSize * l.opts.PreallocSize
	} else {
		s.alloc += l.opts.PreallocSize
	}
	if _, err := l.curAt.WriteAt([]byte{0}, s.alloc-1); err != nil {
		return fmt.Errorf("disk: preallocate segment %s to %d bytes: %w", l.path(s.name), s.alloc, err)
	}
	return l.zeroAhead(s)
}

// Zero-filling ahead of the records (zeroAhead).
const (
	// zeroFillChunk is how much is written with zeros at a time.
	zeroFillChunk = 1 << 20
	// zeroFillAhead: the next chunk is written once the records come
	// within this many bytes of the end of the zeros.
	zeroFillAhead = 512 << 10
)

// zeroChunk is zeroFillChunk zeros, only ever read.
var zeroChunk = sync.OnceValue(func() []byte { return make([]byte, zeroFillChunk) })

// zeroAhead writes real zeros, a chunk at a time, ahead of the records of
// the preallocated segment s, and starts their writeback at once. The
// preallocation leaves a hole (ZooKeeper's way), and every record written
// into a hole makes the file system allocate blocks: the fdatasync after it
// then writes the block map and the inode too, two more synchronous I/Os
// before the data's flush (ext4: 190-196 µs per fdatasync of 3 KB batches
// into a hole against 152-155 µs over written zeros here, BENCHMARKS.md
// "zerofill"). Over zeros, records only overwrite allocated blocks. The
// file's contents do not change: zeros read as zeros, a hole or not.
// l.mu is held.
func (l *Log) zeroAhead(s *segment) error {
	if s.zeroed >= s.size+zeroFillAhead {
		return nil
	}
	from := max(s.zeroed, s.size) // buffered records go after: written later, over the zeros
	to := min(from+zeroFillChunk, s.alloc-1)
	if to <= from {
		return nil
	}
	if _, err := l.curAt.WriteAt(zeroChunk()[:to-from], from); err != nil {
		return fmt.Errorf("disk: zero-fill segment %s at %d: %w", l.path(s.name), from, err)
	}
	s.zeroed = to
	startWriteback(l.cur, from, to-from)
	return nil
}

// usable reports why the log cannot be used, if it cannot. l.mu is held.
func (l *Log) usable() error {
	if l.closed {
		return ErrClosed
	}
	if l.failed != nil {
		return fmt.Errorf("disk: log failed earlier: %w", l.failed)
	}
	return nil
}

// roll starts a new segment whose first record is zxid. The finished
// segment is flushed and fsynced first, so a segment that is not the last
// is always whole on disk. l.mu is held.
func (l *Log) roll(zxid int64) error {
	if l.cur != nil {
		name := l.segs[len(l.segs)-1].name
		if err := l.w.Flush(); err != nil {
			return fmt.Errorf("disk: write segment %s: %w", l.path(name), err)
		}
		if !l.opts.NoSync {
			if err := l.syncData(l.cur); err != nil {
				l.fsyncFailed = true // cut by Close, which holds syncMu
				return fmt.Errorf("disk: sync segment %s: %w", l.path(name), err)
			}
		}
		// An fsync in Sync may still be using it: the next holder of syncMu
		// closes it.
		l.toClose = append(l.toClose, l.cur)
		putLogWriter(l.w)
		l.cur, l.w, l.curAt = nil, nil, nil
	}
	name := logPrefix + strconv.FormatInt(zxid, 16)
	// Not O_APPEND: preallocation writes past the end at an offset, and
	// records are written at the file offset, which stays at their end.
	f, err := l.fs.OpenFile(l.path(name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("disk: create segment %s: %w", l.path(name), err)
	}
	w := logWriters.Get().(*bufio.Writer)
	w.Reset(segmentWriter(f))
	l.cur, l.w, l.curAt = f, w, nil
	if at, ok := f.(io.WriterAt); ok && l.opts.PreallocSize > 0 {
		l.curAt = at
	}
	l.dirDirty = true
	if _, err := l.w.Write(logHeader()); err != nil {
		return fmt.Errorf("disk: write segment %s: %w", l.path(name), err)
	}
	l.segs = append(l.segs, segment{name: name, first: zxid, size: logHeaderSize, alloc: logHeaderSize})
	return nil
}

// Sync makes every record appended before the call durable and returns the
// highest zxid now durable (at least LastZxid as of the call, unless the log
// was truncated meanwhile).
//
// One caller at a time fsyncs, covering every record appended so far; a
// caller whose records an earlier fsync already covered returns without
// one. Batching many writers' records into one fsync is the caller's job
// (the server's log writer does it for the whole pipeline).
func (l *Log) Sync() (int64, error) {
	l.mu.Lock()
	if err := l.usable(); err != nil {
		l.mu.Unlock()
		return 0, err
	}
	target := l.lastZxid
	l.mu.Unlock()

	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if d := l.durable.Load(); d >= target {
		return d, nil // an fsync that ran while we waited covered ours
	}
	upTo, err := l.syncOnce()
	if err != nil {
		return 0, err
	}
	if upTo > l.durable.Load() {
		l.durable.Store(upTo)
	}
	return l.durable.Load(), nil
}

// syncOnce flushes and fsyncs everything appended so far and returns the
// last zxid it covers. The caller holds syncMu.
func (l *Log) syncOnce() (int64, error) {
	l.mu.Lock()
	if err := l.usable(); err != nil {
		l.mu.Unlock()
		return 0, err
	}
	if d := l.durable.Load(); l.lastZxid <= d && !l.dirDirty && len(l.toClose) == 0 {
		// Nothing appended since the last fsync (or TruncateAfter).
		l.mu.Unlock()
		return d, nil
	}
	var name string
	if l.cur != nil {
		name = l.segs[len(l.segs)-1].name
		if err := l.w.Flush(); err != nil {
			l.failed = fmt.Errorf("disk: write segment %s: %w", l.path(name), err)
			l.mu.Unlock()
			return 0, l.failed
		}
	}
	cur, toClose, dirDirty, upTo := l.cur, l.toClose, l.dirDirty, l.lastZxid
	l.toClose, l.dirDirty = nil, false
	l.mu.Unlock()

	// Appends go on while the fsync runs; they wait for the next one.
	var err error
	if !l.opts.NoSync {
		if cur != nil {
			if e := l.syncData(cur); e != nil {
				err = fmt.Errorf("disk: sync segment %s: %w", l.path(name), e)
			}
		}
		if err == nil && dirDirty {
			if e := l.fs.SyncDir(l.dir); e != nil {
				err = fmt.Errorf("disk: sync log dir %s: %w", l.dir, e)
			}
		}
	}
	for _, f := range toClose {
		_ = f.Close() // already fsynced by roll
	}
	if err != nil {
		l.mu.Lock()
		l.failed = err
		l.fsyncFailed = true
		l.discardUndurable(l.durable.Load())
		l.mu.Unlock()
		return 0, err
	}
	return upTo, nil
}

// discardUndurable cuts every record after durable, the newest zxid a
// successful fsync covered, from the files, once an fsync failed. After a
// failed fsync the kernel may have dropped the dirty pages or marked them
// clean unwritten, yet the page cache still shows them: a restart would
// read those records back and take them for durable (PostgreSQL's
// "fsyncgate"). Cutting them makes a restart start from what is durable.
// It is best effort and does not fsync (the disk just failed one); the
// Log stays failed. l.mu and syncMu are held.
func (l *Log) discardUndurable(durable int64) {
	if !l.fsyncFailed || l.lastZxid <= durable {
		return
	}
	l.fsyncFailed = false
	l.closeFiles() // what is still buffered is dropped with the rest
	var removed []string
	for len(l.segs) > 0 && l.segs[len(l.segs)-1].first > durable {
		p := l.path(l.segs[len(l.segs)-1].name)
		if err := l.fs.Remove(p); err != nil {
			l.logger.Error("disk: removing a log segment that was never durable", "file", p, "err", err)
		}
		removed = append(removed, p)
		l.segs = l.segs[:len(l.segs)-1]
	}
	cutFile, cutAt := "", int64(-1)
	if n := len(l.segs); n > 0 && l.segs[n-1].last > durable {
		s := &l.segs[n-1]
		p := l.path(s.name)
		at, last, err := l.offsetAfter(p, durable)
		if err == nil {
			err = l.cutFile(p, at)
		}
		if err != nil {
			l.logger.Error("disk: cutting undurable records from a log segment", "file", p, "err", err)
		} else {
			s.size, s.last, cutFile, cutAt = at, last, p, at
		}
	}
	l.lastZxid = durable
	l.logger.Error("disk: fsync failed; cut the log records it did not make durable, so that a restart does not take them from the page cache for durable",
		"durableZxid", fmt.Sprintf("%#x", durable), "removedSegments", removed, "cutFile", cutFile, "cutOffset", cutAt)
}

// offsetAfter returns the offset just past the last record with a zxid <=
// z in the segment at path (as it is on the file system, which may end in
// a partial record), and that record's zxid.
func (l *Log) offsetAfter(path string, z int64) (int64, int64, error) {
	f, err := l.fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return 0, 0, fmt.Errorf("disk: open segment %s: %w", path, err)
	}
	defer f.Close()
	size, err := fileSize(f)
	if err != nil {
		return 0, 0, fmt.Errorf("disk: stat segment %s: %w", path, err)
	}
	if size < logHeaderSize {
		return 0, 0, nil
	}
	sc := newRecordScanner(f, logHeaderSize, size)
	last := int64(0)
	for {
		off := sc.off
		r, fault, err := sc.next()
		if err != nil && err != io.EOF && err != errEnd {
			return 0, 0, fmt.Errorf("disk: read segment %s at offset %d: %w", path, off, err)
		}
		if err != nil || fault != faultNone || r.Zxid > z {
			return off, last, nil
		}
		last = r.Zxid
	}
}

// cutFile truncates the file at path to size without syncing it.
func (l *Log) cutFile(path string, size int64) error {
	f, err := l.fs.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("disk: open segment %s: %w", path, err)
	}
	if err := f.Truncate(size); err != nil {
		_ = f.Close()
		return fmt.Errorf("disk: truncate segment %s to %d: %w", path, size, err)
	}
	return f.Close()
}

// openedSegment is a segment opened for reading.
type openedSegment struct {
	path string
	f    File
	size int64
}

// ReadFrom calls fn, in zxid order, for every record with Zxid > after that
// was appended before the call, reading it back from the files. It may run
// while appends continue. If fn returns an error, ReadFrom stops and returns
// it. A TruncateAfter running at the same time may make it fail.
func (l *Log) ReadFrom(after int64, fn func(Record) error) error {
	return l.readFrom(after, func(r Record, _ string, _ int64) error { return fn(r) })
}

// readFrom is ReadFrom that also tells fn the file and offset of each
// record.
func (l *Log) readFrom(after int64, fn func(r Record, file string, off int64) error) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	if l.cur != nil {
		if err := l.w.Flush(); err != nil {
			l.failed = fmt.Errorf("disk: write segment %s: %w", l.segs[len(l.segs)-1].name, err)
			l.mu.Unlock()
			return l.failed
		}
	}
	var open []openedSegment
	closeAll := func() {
		for _, o := range open {
			_ = o.f.Close()
		}
	}
	for i, s := range l.segs {
		if i+1 < len(l.segs) && l.segs[i+1].first <= after+1 {
			continue // every record of s is <= after
		}
		p := l.path(s.name)
		f, err := l.fs.OpenFile(p, os.O_RDONLY, 0)
		if err != nil {
			l.mu.Unlock()
			closeAll()
			return fmt.Errorf("disk: open segment %s: %w", p, err)
		}
		open = append(open, openedSegment{path: p, f: f, size: s.size})
	}
	l.mu.Unlock()
	defer closeAll()

	for _, o := range open {
		err := readSegment(o.path, o.f, o.size, func(r Record, off int64) error {
			if r.Zxid <= after {
				return nil
			}
			return fn(r, o.path, off)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// TruncateAfter durably removes every record with Zxid > zxid (ZAB's
// TRUNC). Every record that remains is durable when it returns.
func (l *Log) TruncateAfter(zxid int64) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usable(); err != nil {
		return err
	}
	err := l.truncateAfter(zxid)
	if err != nil {
		l.failed = err
		return err
	}
	l.durable.Store(l.lastZxid)
	return nil
}

// truncateAfter does TruncateAfter with syncMu and l.mu held.
func (l *Log) truncateAfter(zxid int64) error {
	if l.cur != nil {
		if err := l.w.Flush(); err != nil {
			return fmt.Errorf("disk: write segment %s: %w", l.segs[len(l.segs)-1].name, err)
		}
	}
	if zxid >= l.lastZxid {
		return l.syncAllLocked()
	}
	l.closeFiles()
	for len(l.segs) > 0 && l.segs[len(l.segs)-1].first > zxid {
		s := l.segs[len(l.segs)-1]
		if err := l.removeFile(l.path(s.name)); err != nil {
			return err
		}
		l.segs = l.segs[:len(l.segs)-1]
	}
	l.lastZxid = 0
	if n := len(l.segs); n > 0 {
		s := &l.segs[n-1]
		p := l.path(s.name)
		f, err := l.fs.OpenFile(p, os.O_RDONLY, 0)
		if err != nil {
			return fmt.Errorf("disk: open segment %s: %w", p, err)
		}
		cut, last := s.size, int64(0)
		errStop := errors.New("stop")
		err = readSegment(p, f, s.size, func(r Record, off int64) error {
			if r.Zxid > zxid {
				cut = off
				return errStop
			}
			last = r.Zxid
			return nil
		})
		_ = f.Close()
		if err != nil && err != errStop {
			return err
		}
		if err := l.truncateFile(p, cut); err != nil {
			return err
		}
		s.size, s.last = cut, last
		l.lastZxid = last
		// The next append starts a new segment, as ZooKeeper's does
		// after a truncation.
	}
	if !l.opts.NoSync {
		if err := l.fs.SyncDir(l.dir); err != nil {
			return fmt.Errorf("disk: sync log dir %s: %w", l.dir, err)
		}
	}
	l.dirDirty = false
	return nil
}

// syncAllLocked fsyncs the current segment and, if needed, the directory.
// syncMu and l.mu are held.
func (l *Log) syncAllLocked() error {
	for _, f := range l.toClose {
		_ = f.Close()
	}
	l.toClose = nil
	if l.opts.NoSync {
		return nil
	}
	if l.cur != nil {
		if err := l.syncData(l.cur); err != nil {
			return fmt.Errorf("disk: sync segment %s: %w", l.path(l.segs[len(l.segs)-1].name), err)
		}
	}
	if l.dirDirty {
		if err := l.fs.SyncDir(l.dir); err != nil {
			return fmt.Errorf("disk: sync log dir %s: %w", l.dir, err)
		}
		l.dirDirty = false
	}
	return nil
}

// closeFiles closes every open segment file. l.mu is held.
func (l *Log) closeFiles() {
	for _, f := range l.toClose {
		_ = f.Close()
	}
	l.toClose = nil
	if l.cur != nil {
		_ = l.cur.Close()
	}
	if l.w != nil {
		putLogWriter(l.w)
	}
	l.cur, l.w, l.curAt = nil, nil, nil
}

// logWriters recycles the segments' 64 KiB write buffers: the simulator
// rolls 8 KiB segments and reopens logs at every restart, and allocating a
// buffer for each was a large share of its allocation. Same size, so the
// same writes reach the files.
var logWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64<<10) }}

// Abandon drops the log without writing, syncing or closing anything, as
// a crash of the machine under it does: what its write buffer holds is
// lost, and the buffer goes back to logWriters (the simulator crashes a
// MemFS under open logs, and each dropped log left its 64 KiB buffer to
// the collector). Later calls return ErrClosed.
func (l *Log) Abandon() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w != nil {
		putLogWriter(l.w)
	}
	l.w = nil
	l.closed = true
}

// putLogWriter returns w to logWriters; what it still buffers is dropped
// (a retired segment's writer was flushed or the log failed).
func putLogWriter(w *bufio.Writer) {
	w.Reset(nil)
	logWriters.Put(w)
}

// PurgeBefore deletes log files as ZooKeeper's PurgeTxnLog does for a
// retained snapshot of zxid (FileTxnLog.getLogFiles): it keeps the newest
// file whose name's zxid is <= zxid (the one that starts before the
// snapshot) and every later one, and deletes the files before it. So a file
// that starts at zxid+1 does not let the one before it go, as in ZooKeeper.
// Everything needed to replay the records after zxid stays; the last
// segment is never deleted.
func (l *Log) PurgeBefore(zxid int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	n := 0
	for n+1 < len(l.segs) && l.segs[n+1].first <= zxid {
		n++
	}
	if n == 0 {
		return nil
	}
	for i := 0; i < n; i++ {
		if err := l.removeFile(l.path(l.segs[0].name)); err != nil {
			return err
		}
		l.segs = l.segs[1:]
	}
	if !l.opts.NoSync {
		if err := l.fs.SyncDir(l.dir); err != nil {
			return fmt.Errorf("disk: sync log dir %s: %w", l.dir, err)
		}
	}
	return nil
}

// Close syncs and closes the log. Later calls return ErrClosed.
func (l *Log) Close() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if l.fsyncFailed {
		// An fsync in roll failed; syncMu is held, no fsync runs.
		l.discardUndurable(l.durable.Load())
	}
	var err error
	if l.failed == nil && l.cur != nil {
		if e := l.w.Flush(); e != nil {
			err = fmt.Errorf("disk: write segment %s: %w", l.segs[len(l.segs)-1].name, e)
		}
	}
	if err == nil && l.failed == nil {
		err = l.syncAllLocked()
	}
	l.closeFiles()
	l.closeSyncer()
	l.closed = true
	return err
}

// named is a file whose name carries a zxid.
type named struct {
	name string
	zxid int64
}

// listNamed returns the files in dir named prefix + lowercase hex zxid,
// sorted by zxid. Other names are ignored; a name with the prefix and a
// suffix that is not canonical hex is ignored too unless it is all hex
// digits, which is an error (it would alias another file).
func listNamed(fsys FS, dir, prefix string) ([]named, error) {
	names, err := fsys.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []named
	for _, n := range names {
		z, ok, err := parseZxidName(n, prefix)
		if err != nil {
			return nil, fmt.Errorf("disk: %s: %w", filepath.Join(dir, n), err)
		}
		if ok {
			out = append(out, named{name: n, zxid: z})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].zxid < out[j].zxid })
	return out, nil
}

// parseZxidName parses prefix + lowercase hex. ok is false for names that
// are not of that form at all (temporary files, say).
func parseZxidName(name, prefix string) (int64, bool, error) {
	hex, found := strings.CutPrefix(name, prefix)
	if !found || hex == "" {
		return 0, false, nil
	}
	for _, c := range hex {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return 0, false, nil
		}
	}
	z, err := strconv.ParseInt(hex, 16, 64)
	if err != nil || strconv.FormatInt(z, 16) != hex {
		return 0, false, fmt.Errorf("file name does not hold a canonical lowercase hex zxid: %w", ErrCorrupt)
	}
	return z, true, nil
}
