package disk

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
)

const (
	snapMagic       = "ZKSN"
	snapVersion     = 1
	snapHeaderSize  = 16 // magic, version, zxid
	snapTrailerSize = 12 // body length, CRC
	snapPrefix      = "snapshot."
)

// SnapshotInfo names a snapshot file.
type SnapshotInfo struct {
	// Path is the file's path.
	Path string
	// Zxid is the zxid in the file's name: the last transaction the
	// snapshot reflects.
	Zxid int64
}

// WriteSnapshot writes the snapshot for zxid to dir/version-2/snapshot.<zxid
// hex> atomically and durably, on the OS file system. See WriteSnapshotFS.
func WriteSnapshot(dir string, zxid int64, write func(w io.Writer) error) (path string, err error) {
	return WriteSnapshotFS(nil, dir, zxid, write)
}

// WriteSnapshotFS writes the snapshot for zxid on fsys (nil means OSFS):
// write streams the body into a temporary file after a header, a trailer
// with the body length and a CRC-32C follows, the file is fsynced, renamed
// into place and the directory fsynced. It returns the snapshot's path. On
// error the temporary file is removed and no snapshot appears.
func WriteSnapshotFS(fsys FS, dir string, zxid int64, write func(w io.Writer) error) (path string, err error) {
	fsys = orOS(fsys)
	if zxid < 0 {
		return "", fmt.Errorf("disk: write snapshot: negative zxid %#x", zxid)
	}
	vdir := filepath.Join(dir, versionDir)
	if err := fsys.MkdirAll(vdir, 0o755); err != nil {
		return "", fmt.Errorf("disk: create snapshot dir %s: %w", vdir, err)
	}
	path = filepath.Join(vdir, snapPrefix+strconv.FormatInt(zxid, 16))
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
	bw := bufio.NewWriterSize(f, 256<<10)
	cw := &crcWriter{w: bw, h: crc32.New(castagnoli)}
	hdr := make([]byte, snapHeaderSize)
	copy(hdr, snapMagic)
	binary.BigEndian.PutUint32(hdr[4:], snapVersion)
	binary.BigEndian.PutUint64(hdr[8:], uint64(zxid))
	if _, err := cw.Write(hdr); err != nil {
		return "", fmt.Errorf("disk: write snapshot %s: %w", tmp, err)
	}
	cw.n = 0
	if err := write(cw); err != nil {
		return "", fmt.Errorf("disk: write snapshot %s body: %w", tmp, err)
	}
	var tr [snapTrailerSize]byte
	binary.BigEndian.PutUint64(tr[0:], uint64(cw.n))
	if _, err := cw.Write(tr[:8]); err != nil {
		return "", fmt.Errorf("disk: write snapshot %s: %w", tmp, err)
	}
	binary.BigEndian.PutUint32(tr[8:], cw.h.Sum32())
	if _, err := bw.Write(tr[8:]); err != nil {
		return "", fmt.Errorf("disk: write snapshot %s: %w", tmp, err)
	}
	if err := bw.Flush(); err != nil {
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

// nopCloseFile stops the cleanup in WriteSnapshotFS closing a file twice.
type nopCloseFile struct{ File }

func (nopCloseFile) Close() error { return nil }

// crcWriter checksums and counts what passes through it.
type crcWriter struct {
	w io.Writer
	h hash.Hash32
	n int64
}

func (c *crcWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	return n, err
}

// ListSnapshots returns the snapshots in dir/version-2, newest first, from
// their names alone (nothing is verified). A missing directory holds none.
func ListSnapshots(dir string) ([]SnapshotInfo, error) { return ListSnapshotsFS(nil, dir) }

// ListSnapshotsFS is ListSnapshots on fsys (nil means OSFS).
func ListSnapshotsFS(fsys FS, dir string) ([]SnapshotInfo, error) {
	vdir := filepath.Join(dir, versionDir)
	ns, err := listNamed(orOS(fsys), vdir, snapPrefix)
	if err != nil {
		return nil, fmt.Errorf("disk: list snapshots in %s: %w", vdir, err)
	}
	out := make([]SnapshotInfo, len(ns))
	for i, n := range ns {
		out[len(ns)-1-i] = SnapshotInfo{Path: filepath.Join(vdir, n.name), Zxid: n.zxid}
	}
	return out, nil
}

// OpenSnapshot verifies the snapshot at path — header, length and CRC over
// the whole file, and that the zxid inside matches the name — and returns its
// zxid and a reader of its body. The caller closes body. A snapshot that
// fails verification gives an error wrapping ErrCorrupt and naming the file.
func OpenSnapshot(path string) (zxid int64, body io.ReadCloser, err error) {
	return OpenSnapshotFS(nil, path)
}

// OpenSnapshotFS is OpenSnapshot on fsys (nil means OSFS).
func OpenSnapshotFS(fsys FS, path string) (zxid int64, body io.ReadCloser, err error) {
	f, err := orOS(fsys).OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return 0, nil, fmt.Errorf("disk: open snapshot %s: %w", path, err)
	}
	size, err := fileSize(f)
	if err != nil {
		_ = f.Close()
		return 0, nil, fmt.Errorf("disk: stat snapshot %s: %w", path, err)
	}
	zxid, err = verifySnapshot(path, f, size)
	if err != nil {
		_ = f.Close()
		return 0, nil, err
	}
	bodyLen := size - snapHeaderSize - snapTrailerSize
	return zxid, &snapBody{Reader: bufio.NewReaderSize(io.NewSectionReader(f, snapHeaderSize, bodyLen), 256<<10), f: f}, nil
}

// verifySnapshot checks a whole snapshot file of size bytes.
func verifySnapshot(path string, f io.ReaderAt, size int64) (int64, error) {
	if size < snapHeaderSize+snapTrailerSize {
		return 0, fmt.Errorf("disk: snapshot %s: %d bytes, too short for header and trailer: %w", path, size, ErrCorrupt)
	}
	hdr := make([]byte, snapHeaderSize)
	if _, err := f.ReadAt(hdr, 0); err != nil {
		return 0, fmt.Errorf("disk: read snapshot %s: %w", path, noEOF(err))
	}
	zxid, err := parseSnapshotHeader(hdr)
	if err != nil {
		return 0, fmt.Errorf("disk: snapshot %s: %w", path, err)
	}
	if nz, ok, _ := parseZxidName(filepath.Base(path), snapPrefix); ok && nz != zxid {
		return 0, fmt.Errorf("disk: snapshot %s: header says zxid %#x, the name %#x: %w", path, zxid, nz, ErrCorrupt)
	}
	h := crc32.New(castagnoli)
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, size-4)); err != nil {
		return 0, fmt.Errorf("disk: read snapshot %s: %w", path, err)
	}
	tr := make([]byte, snapTrailerSize)
	if _, err := f.ReadAt(tr, size-snapTrailerSize); err != nil {
		return 0, fmt.Errorf("disk: read snapshot %s: %w", path, noEOF(err))
	}
	if n := binary.BigEndian.Uint64(tr); n != uint64(size-snapHeaderSize-snapTrailerSize) {
		return 0, fmt.Errorf("disk: snapshot %s: trailer says %d body bytes, the file holds %d: %w", path, n, size-snapHeaderSize-snapTrailerSize, ErrCorrupt)
	}
	if got, want := h.Sum32(), binary.BigEndian.Uint32(tr[8:]); got != want {
		return 0, fmt.Errorf("disk: snapshot %s: CRC mismatch (computed %#08x, stored %#08x): %w", path, got, want, ErrCorrupt)
	}
	return zxid, nil
}

// parseSnapshotHeader decodes the 16-byte snapshot header.
func parseSnapshotHeader(hdr []byte) (int64, error) {
	if len(hdr) < snapHeaderSize {
		return 0, fmt.Errorf("short header (%d bytes) at offset 0: %w", len(hdr), ErrCorrupt)
	}
	if string(hdr[:4]) != snapMagic {
		return 0, fmt.Errorf("bad magic %q at offset 0: %w", hdr[:4], ErrCorrupt)
	}
	if v := binary.BigEndian.Uint32(hdr[4:]); v != snapVersion {
		return 0, fmt.Errorf("unsupported version %d at offset 4: %w", v, ErrCorrupt)
	}
	zxid := int64(binary.BigEndian.Uint64(hdr[8:]))
	if zxid < 0 {
		return 0, fmt.Errorf("negative zxid %#x at offset 8: %w", zxid, ErrCorrupt)
	}
	return zxid, nil
}

type snapBody struct {
	*bufio.Reader
	f File
}

func (b *snapBody) Close() error { return b.f.Close() }

// PurgeSnapshots keeps the newest retain valid snapshots in dir (retain is
// at least 3) and deletes every snapshot older than the oldest of them. It
// returns that oldest kept snapshot's zxid (0 when there is no valid
// snapshot), so the caller can PurgeBefore the log. Corrupt snapshots newer
// than it are left for inspection.
func PurgeSnapshots(dir string, retain int) (oldestKept int64, err error) {
	return PurgeSnapshotsFS(nil, dir, retain)
}

// PurgeSnapshotsFS is PurgeSnapshots on fsys (nil means OSFS).
func PurgeSnapshotsFS(fsys FS, dir string, retain int) (oldestKept int64, err error) {
	fsys = orOS(fsys)
	retain = max(retain, 3)
	snaps, err := ListSnapshotsFS(fsys, dir)
	if err != nil {
		return 0, err
	}
	valid, i := 0, 0
	for ; i < len(snaps) && valid < retain; i++ {
		z, body, err := OpenSnapshotFS(fsys, snaps[i].Path)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				return 0, err
			}
			slog.Warn("disk: keeping corrupt snapshot out of the retained set", "file", snaps[i].Path, "err", err)
			continue
		}
		_ = body.Close()
		valid++
		oldestKept = z
	}
	if valid < retain {
		return oldestKept, nil
	}
	removed := false
	for _, s := range snaps[i:] {
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
