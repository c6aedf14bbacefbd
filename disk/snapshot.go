package disk

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/adler32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/golang/snappy"
)

// Snapshots are Apache ZooKeeper's snapshot files: version-2/snapshot.<zxid
// in hex>, optionally compressed as ZooKeeper's
// zookeeper.snapshot.compression.method does (".gz": gzip; ".snappy":
// snappy-java's SnappyOutputStream framing), the compression chosen by the
// file's extension when reading whatever the setting. The uncompressed
// stream (written by the engine) is ZooKeeper's: a file header, sessions,
// the ACL cache, the nodes, an Adler-32 seal, and an optional digest with a
// second seal. disk checks that structure and the seals without decoding
// the tree (see scanSnapshot).
const (
	snapPrefix     = "snapshot."
	snapMagic      = 0x5A4B534E // "ZKSN"
	snapVersion    = 2
	snapBufferSize = 256 << 10
)

// Compression methods, as ZooKeeper names them in
// zookeeper.snapshot.compression.method and in file extensions.
const (
	CompressNone   = ""
	CompressGzip   = "gz"
	CompressSnappy = "snappy"
)

// CompressionMethod maps a zookeeper.snapshot.compression.method value to
// the method ZooKeeper uses for it: "gz" and "snappy" (any case), anything
// else none.
func CompressionMethod(v string) string {
	switch strings.ToLower(v) {
	case CompressGzip:
		return CompressGzip
	case CompressSnappy:
		return CompressSnappy
	}
	return CompressNone
}

// SnapshotInfo names a snapshot file.
type SnapshotInfo struct {
	// Path is the file's path.
	Path string
	// Zxid is the zxid in the file's name: every transaction up to it is
	// in the snapshot (a snapshot ZooKeeper wrote may hold later ones too:
	// it is fuzzy, and replaying the log after Zxid settles it).
	Zxid int64
	// Compression is the method the file's extension names.
	Compression string
}

// parseSnapName parses a snapshot file name as ZooKeeper does
// (Util.getZxidFromName, SnapStream.getStreamMode): "snapshot.", hex, and
// the last dot-separated part naming the compression ("gz", "snappy", any
// case; anything else, ".tmp" say, is uncompressed). ok is false for names
// ZooKeeper does not take for snapshots.
func parseSnapName(name string) (zxid int64, method string, ok bool) {
	parts := strings.Split(name, ".")
	if len(parts) < 2 || parts[0]+"." != snapPrefix || parts[1] == "" {
		return 0, "", false
	}
	for _, c := range parts[1] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return 0, "", false
		}
	}
	z, err := strconv.ParseInt(parts[1], 16, 64)
	if err != nil {
		return 0, "", false
	}
	if len(parts) > 2 {
		method = CompressionMethod(parts[len(parts)-1])
	}
	return z, method, true
}

// SnapshotName returns the base name ZooKeeper gives the snapshot of zxid
// compressed with method.
func SnapshotName(zxid int64, method string) string {
	name := snapPrefix + strconv.FormatInt(zxid, 16)
	if m := CompressionMethod(method); m != CompressNone {
		name += "." + m
	}
	return name
}

// WriteSnapshot writes the snapshot for zxid to dir/version-2/snapshot.<zxid
// hex> atomically and durably, on the OS file system. See WriteSnapshotFS.
func WriteSnapshot(dir string, zxid int64, write func(w io.Writer) error) (path string, err error) {
	return WriteSnapshotFS(nil, dir, zxid, write)
}

// WriteSnapshotFS writes the uncompressed snapshot for zxid on fsys (nil
// means OSFS). See WriteSnapshotCompressedFS.
func WriteSnapshotFS(fsys FS, dir string, zxid int64, write func(w io.Writer) error) (path string, err error) {
	return WriteSnapshotCompressedFS(fsys, dir, zxid, CompressNone, write)
}

// WriteSnapshotCompressedFS writes the snapshot for zxid on fsys (nil means
// OSFS) as dir/version-2/SnapshotName(zxid, method): write streams the
// whole snapshot (ZooKeeper's stream, file header and seals included) into
// a temporary file through the compressor, the file is fsynced, renamed
// into place and the directory fsynced, so a crash leaves either no
// snapshot or a whole one. It returns the snapshot's path. On error the
// temporary file is removed and no snapshot appears. A real file on Linux
// is written with O_DIRECT where its file system takes it
// (snapshotFileWriter): the same bytes, without the page cache.
func WriteSnapshotCompressedFS(fsys FS, dir string, zxid int64, method string, write func(w io.Writer) error) (path string, err error) {
	fsys = orOS(fsys)
	if zxid < 0 {
		return "", fmt.Errorf("disk: write snapshot: negative zxid %#x", zxid)
	}
	vdir := filepath.Join(dir, versionDir)
	if err := fsys.MkdirAll(vdir, 0o755); err != nil {
		return "", fmt.Errorf("disk: create snapshot dir %s: %w", vdir, err)
	}
	method = CompressionMethod(method)
	path = filepath.Join(vdir, SnapshotName(zxid, method))
	tmp := path + ".tmp"
	f, err := fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return "", fmt.Errorf("disk: create snapshot %s: %w", tmp, err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = fsys.Remove(tmp)
		}
	}()
	fw, release := snapshotFileWriter(f)
	defer release()
	// An uncompressed stream goes straight into fw, which buffers; a
	// compressor is fed through a buffer of its own.
	var cw io.WriteCloser = nopWriteCloser{fw}
	var body io.Writer = fw
	switch method {
	case CompressGzip:
		cw = gzip.NewWriter(fw)
	case CompressSnappy:
		cw = newXerialSnappyWriter(fw)
	}
	var bw *bufio.Writer
	if method != CompressNone {
		bw = getSnapWriter(cw)
		defer putSnapWriter(bw)
		body = bw
	}
	if err := write(yieldingWriter{body}); err != nil {
		return "", fmt.Errorf("disk: write snapshot %s body: %w", tmp, err)
	}
	if bw != nil {
		if err := bw.Flush(); err != nil {
			return "", fmt.Errorf("disk: write snapshot %s: %w", tmp, err)
		}
	}
	if err := cw.Close(); err != nil {
		return "", fmt.Errorf("disk: write snapshot %s: %w", tmp, err)
	}
	if err := fw.Flush(); err != nil {
		return "", fmt.Errorf("disk: write snapshot %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("disk: sync snapshot %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		_ = fsys.Remove(tmp)
		return "", fmt.Errorf("disk: close snapshot %s: %w", tmp, err)
	}
	f = nopCloseFile{f}
	if err := fsys.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("disk: rename snapshot %s: %w", tmp, err)
	}
	if err := fsys.SyncDir(vdir); err != nil {
		return "", fmt.Errorf("disk: sync snapshot dir %s: %w", vdir, err)
	}
	return path, nil
}

// snapWriters recycles the snapshot writers' 256 KiB buffers: the simulator
// writes many small snapshots, and allocating two such buffers per snapshot
// was a large share of its allocation. Same size, so the same writes reach
// the file.
var snapWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, snapBufferSize) }}

func getSnapWriter(w io.Writer) *bufio.Writer {
	b := snapWriters.Get().(*bufio.Writer)
	b.Reset(w)
	return b
}

func putSnapWriter(b *bufio.Writer) {
	b.Reset(nil) // drop the file; Reset keeps the buffer
	snapWriters.Put(b)
}

// snapFileWriter is the buffered writer a snapshot file is written
// through (snapshotFileWriter).
type snapFileWriter interface {
	io.Writer
	// Flush writes what is buffered to the file.
	Flush() error
}

// bufferedSnapshotWriter is the snapshot file writer of a file not written
// with O_DIRECT: a pooled bufio.Writer over w, and the function that gives
// it back.
func bufferedSnapshotWriter(w io.Writer) (snapFileWriter, func()) {
	b := getSnapWriter(w)
	return b, func() { putSnapWriter(b) }
}

// yieldingWriter is the writer a snapshot is serialized into: it asks
// the serializer (tree.Yielder) to let other goroutines run now and then.
// A server usually runs with one P (cmd/zabkeeper/procs.go), and the event
// loop would otherwise wait for the runtime to preempt the snapshot's
// goroutine, every 10 ms, while a large tree is written.
type yieldingWriter struct{ io.Writer }

// Yield lets the goroutines waiting for this P run.
func (yieldingWriter) Yield() { runtime.Gosched() }

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// nopCloseFile stops the cleanup in WriteSnapshotCompressedFS closing a
// file twice.
type nopCloseFile struct{ File }

func (nopCloseFile) Close() error { return nil }

// ListSnapshots returns the snapshots in dir/version-2, newest first, from
// their names alone (nothing is verified). A missing directory holds none.
func ListSnapshots(dir string) ([]SnapshotInfo, error) { return ListSnapshotsFS(nil, dir) }

// ListSnapshotsFS is ListSnapshots on fsys (nil means OSFS). As ZooKeeper's
// loader it counts every file whose name parses as a snapshot's, including
// compressed ones and ".tmp" leftovers of an interrupted write (which fail
// verification unless whole).
func ListSnapshotsFS(fsys FS, dir string) ([]SnapshotInfo, error) {
	vdir := filepath.Join(dir, versionDir)
	names, err := orOS(fsys).ReadDir(vdir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("disk: list snapshots in %s: %w", vdir, err)
	}
	var out []SnapshotInfo
	for _, n := range names {
		if z, m, ok := parseSnapName(n); ok {
			out = append(out, SnapshotInfo{Path: filepath.Join(vdir, n), Zxid: z, Compression: m})
		}
	}
	slices.SortFunc(out, func(a, b SnapshotInfo) int {
		if a.Zxid != b.Zxid {
			if a.Zxid > b.Zxid {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Path, b.Path)
	})
	return out, nil
}

// OpenSnapshot verifies the snapshot at path and returns the zxid its name
// gives and a reader of its uncompressed stream. See OpenSnapshotFS.
func OpenSnapshot(path string) (zxid int64, body io.ReadCloser, err error) {
	return OpenSnapshotFS(nil, path)
}

// OpenSnapshotFS verifies the snapshot at path on fsys (nil means OSFS) —
// it decompresses it and checks the file header, the structure, both
// Adler-32 seals and that nothing but ZooKeeper 3.9's trailer follows — and
// returns the zxid its name gives and a reader of the uncompressed stream
// from its first byte (the file header), which the caller closes. A
// snapshot that fails verification gives an error wrapping ErrCorrupt that
// names the file and the offset in the uncompressed stream.
func OpenSnapshotFS(fsys FS, path string) (zxid int64, body io.ReadCloser, err error) {
	fsys = orOS(fsys)
	zxid, method, ok := parseSnapName(filepath.Base(path))
	if !ok {
		return 0, nil, fmt.Errorf("disk: snapshot %s: the name is not snapshot.<hex zxid>: %w", path, ErrCorrupt)
	}
	r, err := openSnapshotStream(fsys, path, method)
	if err != nil {
		return 0, nil, err
	}
	err = scanSnapshot(r)
	_ = r.Close()
	if err != nil {
		return 0, nil, fmt.Errorf("disk: snapshot %s: %w", path, err)
	}
	r, err = openSnapshotStream(fsys, path, method)
	if err != nil {
		return 0, nil, err
	}
	return zxid, r, nil
}

// snapStream is a snapshot's uncompressed stream over its file.
type snapStream struct {
	io.Reader
	f File
}

func (s *snapStream) Close() error { return s.f.Close() }

// openSnapshotStream opens path and its decompressor.
func openSnapshotStream(fsys FS, path, method string) (io.ReadCloser, error) {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("disk: open snapshot %s: %w", path, err)
	}
	size, err := fileSize(f)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("disk: stat snapshot %s: %w", path, err)
	}
	br := bufio.NewReaderSize(io.NewSectionReader(f, 0, size), readBufferSize(size, snapBufferSize))
	var r io.Reader = br
	switch method {
	case CompressGzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("disk: snapshot %s: gzip header: %v: %w", path, err, ErrCorrupt)
		}
		r = bufio.NewReaderSize(corruptOnError{zr}, snapBufferSize)
	case CompressSnappy:
		r = bufio.NewReaderSize(corruptOnError{newXerialSnappyReader(br)}, snapBufferSize)
	}
	return &snapStream{Reader: r, f: f}, nil
}

// corruptOnError marks a decompressor's errors (other than EOF) as
// corruption.
type corruptOnError struct{ r io.Reader }

func (c corruptOnError) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF && !errors.Is(err, ErrCorrupt) {
		err = fmt.Errorf("decompress: %v: %w", err, ErrCorrupt)
	}
	return n, err
}

// snapScanner reads a snapshot stream, keeping the Adler-32 of and the
// offset past every byte consumed.
type snapScanner struct {
	r   io.Reader
	sum hash.Hash32
	off int64
	buf [8]byte
}

func (s *snapScanner) Write(p []byte) (int, error) {
	s.sum.Write(p)
	s.off += int64(len(p))
	return len(p), nil
}

func (s *snapScanner) corrupt(format string, args ...any) error {
	return fmt.Errorf("at offset %d: %s: %w", s.off, fmt.Sprintf(format, args...), ErrCorrupt)
}

func (s *snapScanner) read(p []byte, what string) error {
	n, err := io.ReadFull(s.r, p)
	_, _ = s.Write(p[:n])
	switch {
	case err == nil:
		return nil
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return s.corrupt("truncated in %s", what)
	case errors.Is(err, ErrCorrupt):
		return fmt.Errorf("at offset %d: %w", s.off, err)
	}
	return fmt.Errorf("read %s at offset %d: %w", what, s.off, err)
}

func (s *snapScanner) int32(what string) (int32, error) {
	err := s.read(s.buf[:4], what)
	return int32(binary.BigEndian.Uint32(s.buf[:4])), err
}

func (s *snapScanner) int64(what string) (int64, error) {
	err := s.read(s.buf[:8], what)
	return int64(binary.BigEndian.Uint64(s.buf[:8])), err
}

// skipBuffer reads past a jute buffer or ustring and reports whether it was
// the one-byte string "/".
func (s *snapScanner) skipBuffer(what string) (slash bool, err error) {
	n, err := s.int32(what)
	if err != nil {
		return false, err
	}
	if n < -1 {
		return false, s.corrupt("%s of length %d", what, n)
	}
	if n == 1 {
		if err := s.read(s.buf[:1], what); err != nil {
			return false, err
		}
		return s.buf[0] == '/', nil
	}
	if n > 0 {
		k, err := io.CopyN(s, s.r, int64(n))
		if err != nil {
			if errors.Is(err, io.EOF) {
				return false, s.corrupt("truncated in %s", what)
			}
			if errors.Is(err, ErrCorrupt) {
				return false, fmt.Errorf("at offset %d: %w", s.off, err)
			}
			return false, fmt.Errorf("read %s at offset %d: %w", what, s.off-k, err)
		}
	}
	return false, nil
}

func (s *snapScanner) seal(which string) error {
	want := int64(s.sum.Sum32())
	got, err := s.int64(which + " checksum")
	if err != nil {
		return err
	}
	if got != want {
		return s.corrupt("%s checksum %#x, the bytes before it sum to %#x", which, got, want)
	}
	slash, err := s.skipBuffer(which + " end")
	if err != nil {
		return err
	}
	if !slash {
		return s.corrupt("%s does not end with \"/\"", which)
	}
	return nil
}

// scanSnapshot verifies a snapshot stream without building the tree: the
// file header, the sessions, the ACL cache, node records up to the "/"
// terminator, the seal, and the optional digest with its seal. As
// ZooKeeper 3.8 it ignores what follows the digest seal (3.9's
// lastProcessedZxid and seal).
func scanSnapshot(r io.Reader) error {
	s := &snapScanner{r: r, sum: adler32.New()}
	magic, err := s.int32("file header")
	if err != nil {
		return err
	}
	if magic != snapMagic {
		return fmt.Errorf("at offset 0: magic %#08x is not ZKSN: not a ZooKeeper snapshot: %w", uint32(magic), ErrCorrupt)
	}
	v, err := s.int32("file header")
	if err != nil {
		return err
	}
	if v != snapVersion {
		return fmt.Errorf("at offset 4: snapshot format version %d, only %d is known: %w", v, snapVersion, ErrCorrupt)
	}
	if _, err := s.int64("file header"); err != nil {
		return err
	}
	count, err := s.int32("session count")
	if err != nil {
		return err
	}
	for i := int32(0); i < count; i++ {
		if err := s.read(s.buf[:8], "session"); err != nil {
			return err
		}
		if err := s.read(s.buf[:4], "session"); err != nil {
			return err
		}
	}
	acls, err := s.int32("ACL cache size")
	if err != nil {
		return err
	}
	for i := int32(0); i < acls; i++ {
		if _, err := s.int64("ACL id"); err != nil {
			return err
		}
		n, err := s.int32("ACL list")
		if err != nil {
			return err
		}
		if n < 0 {
			return s.corrupt("null ACL list")
		}
		for j := int32(0); j < n; j++ {
			if _, err := s.int32("ACL perms"); err != nil {
				return err
			}
			if _, err := s.skipBuffer("ACL scheme"); err != nil {
				return err
			}
			if _, err := s.skipBuffer("ACL id"); err != nil {
				return err
			}
		}
	}
	var stat [8 + 60]byte // ACL id and StatPersisted
	for {
		end, err := s.skipBuffer("node path")
		if err != nil {
			return err
		}
		if end {
			break
		}
		if _, err := s.skipBuffer("node data"); err != nil {
			return err
		}
		if err := s.read(stat[:], "node stat"); err != nil {
			return err
		}
	}
	if err := s.seal("snapshot"); err != nil {
		return err
	}
	// The digest is optional (ZooKeeper with digests off, or before 3.6):
	// the stream may end right after the seal.
	n, err := io.ReadFull(s.r, s.buf[:1])
	if n == 0 && err == io.EOF {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read digest at offset %d: %w", s.off, err)
	}
	_, _ = s.Write(s.buf[:1])
	var rest [7 + 4]byte // the zxid's other bytes, the digest version
	if err := s.read(rest[:], "digest"); err != nil {
		return err
	}
	if v := int32(binary.BigEndian.Uint32(rest[7:])); v < 2 {
		if _, err := s.skipBuffer("digest"); err != nil { // a hex string
			return err
		}
	} else if _, err := s.int64("digest"); err != nil {
		return err
	}
	return s.seal("digest")
}

// isValidSnapshot is ZooKeeper's cheap check of a snapshot file
// (SnapStream.isValidSnapshot), which decides which files purge keeps: an
// uncompressed file of at least 10 bytes ending in the string "/"; a gzip
// file starting with gzip's magic; a snappy file starting with
// snappy-java's.
func isValidSnapshot(fsys FS, path, method string) (bool, error) {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return false, fmt.Errorf("disk: open snapshot %s: %w", path, err)
	}
	defer f.Close()
	switch method {
	case CompressGzip:
		var b [2]byte
		if _, err := f.ReadAt(b[:], 0); err != nil {
			return false, nil
		}
		return b[0] == 0x1f && b[1] == 0x8b, nil
	case CompressSnappy:
		var b [len(xerialMagic)]byte
		if _, err := f.ReadAt(b[:], 0); err != nil {
			return false, nil
		}
		return string(b[:]) == xerialMagic, nil
	}
	size, err := fileSize(f)
	if err != nil {
		return false, fmt.Errorf("disk: stat snapshot %s: %w", path, err)
	}
	if size < 10 {
		return false, nil
	}
	var b [5]byte
	if _, err := f.ReadAt(b[:], size-5); err != nil {
		return false, fmt.Errorf("disk: read snapshot %s: %w", path, noEOF(err))
	}
	return binary.BigEndian.Uint32(b[:]) == 1 && b[4] == '/', nil
}

// PurgeSnapshots applies ZooKeeper's purge rule to the snapshots in dir. See
// PurgeSnapshotsFS.
func PurgeSnapshots(dir string, retain int, log *slog.Logger) (oldestKept int64, err error) {
	return PurgeSnapshotsFS(nil, dir, retain, log)
}

// PurgeSnapshotsFS deletes snapshots as ZooKeeper's PurgeTxnLog.purge does
// (autopurge.snapRetainCount = retain, at least 3): it takes the newest
// retain snapshots that pass ZooKeeper's cheap validity check, and deletes
// every snapshot file (compressed and ".tmp" ones included) whose name's
// zxid is below the oldest of them. It returns that oldest kept zxid (0
// when no snapshot is valid, and then deletes nothing) so the caller can
// purge the log before it. A snapshot that fails the check is reported to
// log (nil: not reported): the caller's logger, never the process default,
// so a simulator running thousands of disks stays quiet.
func PurgeSnapshotsFS(fsys FS, dir string, retain int, log *slog.Logger) (oldestKept int64, err error) {
	fsys = orOS(fsys)
	retain = max(retain, 3)
	snaps, err := ListSnapshotsFS(fsys, dir)
	if err != nil {
		return 0, err
	}
	valid := 0
	for _, s := range snaps {
		if valid == retain {
			break
		}
		ok, err := isValidSnapshot(fsys, s.Path, s.Compression)
		if err != nil {
			return 0, err
		}
		if !ok {
			if log != nil {
				log.Warn("disk: snapshot fails ZooKeeper's validity check; not counted among those kept", "file", s.Path)
			}
			continue
		}
		valid++
		oldestKept = s.Zxid
	}
	if valid == 0 {
		return 0, nil
	}
	removed := false
	for _, s := range snaps {
		if s.Zxid >= oldestKept {
			continue
		}
		if err := fsys.Remove(s.Path); err != nil {
			return 0, fmt.Errorf("disk: remove snapshot %s: %w", s.Path, err)
		}
		removed = true
	}
	if removed {
		vdir := filepath.Join(dir, versionDir)
		if err := fsys.SyncDir(vdir); err != nil {
			return 0, fmt.Errorf("disk: sync snapshot dir %s: %w", vdir, err)
		}
	}
	return oldestKept, nil
}

// snappy-java's stream framing (SnappyOutputStream, SnappyCodec), which
// ZooKeeper uses for ".snappy" snapshots: a 16-byte header (magic
// 0x82 "SNAPPY" 0, int version 1, int compatible version 1), then chunks of
// int compressed length + a raw snappy block of at most 32 KiB of input. A
// header may recur (concatenated streams); SnappyInputStream skips it.
const (
	xerialMagic      = "\x82SNAPPY\x00"
	xerialHeaderSize = 16
	xerialBlockSize  = 32 << 10
	// xerialMaxChunk bounds a chunk read: snappy-java writes chunks of
	// 32 KiB input; readers of other writers' larger blocks still work up
	// to this size.
	xerialMaxChunk = 64 << 20
)

func xerialHeader() []byte {
	h := make([]byte, 0, xerialHeaderSize)
	h = append(h, xerialMagic...)
	h = binary.BigEndian.AppendUint32(h, 1)
	return binary.BigEndian.AppendUint32(h, 1)
}

type xerialSnappyWriter struct {
	w      io.Writer
	buf    []byte
	out    []byte
	header bool
}

func newXerialSnappyWriter(w io.Writer) *xerialSnappyWriter {
	return &xerialSnappyWriter{w: w, buf: make([]byte, 0, xerialBlockSize)}
}

func (x *xerialSnappyWriter) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		n := min(len(p), xerialBlockSize-len(x.buf))
		x.buf = append(x.buf, p[:n]...)
		p = p[n:]
		if len(x.buf) == xerialBlockSize {
			if err := x.flush(); err != nil {
				return total - len(p), err
			}
		}
	}
	return total, nil
}

func (x *xerialSnappyWriter) flush() error {
	if !x.header {
		x.header = true
		if _, err := x.w.Write(xerialHeader()); err != nil {
			return err
		}
	}
	if len(x.buf) == 0 {
		return nil
	}
	x.out = snappy.Encode(x.out[:cap(x.out)], x.buf)
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(x.out)))
	if _, err := x.w.Write(n[:]); err != nil {
		return err
	}
	_, err := x.w.Write(x.out)
	x.buf = x.buf[:0]
	return err
}

// Close writes what is buffered (and the header, for an empty stream).
func (x *xerialSnappyWriter) Close() error { return x.flush() }

type xerialSnappyReader struct {
	r      io.Reader
	header bool
	chunk  []byte
	out    []byte
	pos    int
}

func newXerialSnappyReader(r io.Reader) *xerialSnappyReader {
	return &xerialSnappyReader{r: r}
}

func (x *xerialSnappyReader) Read(p []byte) (int, error) {
	for x.pos == len(x.out) {
		if err := x.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, x.out[x.pos:])
	x.pos += n
	return n, nil
}

// next decodes the next chunk; io.EOF at a chunk boundary ends the stream.
func (x *xerialSnappyReader) next() error {
	var h [xerialHeaderSize]byte
	if !x.header {
		if _, err := io.ReadFull(x.r, h[:]); err != nil {
			return fmt.Errorf("snappy header: %v: %w", noEOF(err), ErrCorrupt)
		}
		if string(h[:8]) != xerialMagic {
			return fmt.Errorf("snappy header: bad magic %x: %w", h[:8], ErrCorrupt)
		}
		x.header = true
	}
	if _, err := io.ReadFull(x.r, h[:4]); err != nil {
		if err == io.EOF {
			return io.EOF
		}
		return fmt.Errorf("snappy chunk length: %v: %w", noEOF(err), ErrCorrupt)
	}
	if string(h[:4]) == xerialMagic[:4] { // a concatenated stream's header
		if _, err := io.ReadFull(x.r, h[4:]); err != nil {
			return fmt.Errorf("snappy header: %v: %w", noEOF(err), ErrCorrupt)
		}
		if string(h[:8]) != xerialMagic {
			return fmt.Errorf("snappy header: bad magic %x: %w", h[:8], ErrCorrupt)
		}
		x.out, x.pos = x.out[:0], 0
		return nil
	}
	n := int64(binary.BigEndian.Uint32(h[:4]))
	if n > xerialMaxChunk {
		return fmt.Errorf("snappy chunk of %d bytes: %w", n, ErrCorrupt)
	}
	if int64(cap(x.chunk)) < n {
		x.chunk = make([]byte, 0, min(n, 1<<20))
	}
	var err error
	if n <= int64(cap(x.chunk)) {
		x.chunk = x.chunk[:n]
		_, err = io.ReadFull(x.r, x.chunk)
	} else { // grow with the input, not with a corrupt length
		x.chunk, err = io.ReadAll(io.LimitReader(x.r, n))
		if err == nil && int64(len(x.chunk)) != n {
			err = io.ErrUnexpectedEOF
		}
	}
	if err != nil {
		return fmt.Errorf("snappy chunk: %v: %w", noEOF(err), ErrCorrupt)
	}
	dl, err := snappy.DecodedLen(x.chunk)
	if err != nil || dl > xerialMaxChunk {
		return fmt.Errorf("snappy chunk: bad length: %w", ErrCorrupt)
	}
	x.out, err = snappy.Decode(x.out[:cap(x.out)], x.chunk)
	if err != nil {
		return fmt.Errorf("snappy chunk: %v: %w", err, ErrCorrupt)
	}
	x.pos = 0
	return nil
}
