package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/zabkeeper/zabkeeper/disk"
	"github.com/zabkeeper/zabkeeper/engine/zab"
)

// Storage. Each simulated machine keeps its durable state with the real
// disk package — disk.Log, snapshots, epoch files, disk.Recover — on its
// own disk.MemFS, the in-memory file system that can crash and lose what
// was not synced. So a restart in the simulator runs the recovery code a
// user's restart runs, on whatever a crash left behind.
//
// Time is the simulator's: the log's fsync of a batch is issued when the
// batch is appended, but it only completes, making the bytes durable on the
// MemFS, at an fsync event a latency later (deferFS holds the sync until
// then). A crash in between loses, keeps or tears the unsynced bytes.
// Epoch files, truncations and snapshots are made durable at once: they
// are small and rare, and the server writes them on its event loop before
// it sends anything. Faults go through disk.WithFaults: an fsync that fails
// fails inside disk.Log, which then cuts what it never made durable.
//
// Determinism: the disk package starts no goroutine and reads no clock on
// this path (MemFS reports zero modification times), and disk.Log's group
// commit never waits here: only the simulator's one goroutine calls Sync,
// so nobody else ever holds the sync token. MemFS visits files in path
// order when it crashes, so the seeded tear draws replay.

// Where a simulated server keeps its files (ZooKeeper's dataDir and
// dataLogDir, here one directory).
const (
	dataDir           = "/data"
	acceptedEpochFile = dataDir + "/acceptedEpoch"
	currentEpochFile  = dataDir + "/currentEpoch"
	// segmentSize is small so that logs roll into new segments often, and
	// so that MemFS, which copies a file's contents on every sync, stays
	// cheap.
	segmentSize = 8 << 10
	// snapRetain is how many snapshots a periodic purge keeps (ZooKeeper's
	// minimum autopurge.snapRetainCount).
	snapRetain = 3
	// purgeEvery is how many periodic snapshots pass between two purges
	// (a purge verifies the snapshots it keeps, which costs).
	purgeEvery = 4
)

// storage is one machine's disk, as the real disk package keeps it.
type storage struct {
	// mem is the machine's file system; it outlives crashes.
	mem *disk.MemFS
	// fs is mem as the server's code sees it: fsyncs deferred while
	// deferring is set, faults injected while failSync is set.
	fs disk.FS
	// log is the open txn log, nil while the server is down.
	log *disk.Log
	// hard is the epochs as last made durable.
	hard zab.HardState

	// deferring makes syncs of files and directories wait for the fsync
	// event (recorded in deferred) instead of running at once.
	deferring bool
	deferred  []syncTarget
	// spare are target lists of completed fsyncs, reused for the next.
	spare [][]syncTarget
	// inflight are the fsyncs issued and not completed yet, in order.
	inflight []inflightSync
	// busyUntil is when the fsync in progress ends; fsyncs complete in order.
	busyUntil int64
	// seq counts log appends, for fsync coverage.
	seq uint64
	// failSync makes the next file sync fail (an fsync error).
	failSync bool
	// lying makes deferred syncs do nothing: a disk that acknowledges
	// fsync from a volatile cache.
	lying bool
	// snapshots counts periodic snapshots, to purge every purgeEvery.
	snapshots int
	// syncFiles are read-only handles syncNow opened, by clean path, kept
	// instead of opening the file on every fsync. deferFS forgets one when
	// its name is created, renamed or removed (the only ways a name comes
	// to refer to another file), and a crash, which voids every handle,
	// forgets them all.
	syncFiles map[string]disk.File
}

// syncTarget is a file or directory whose sync was deferred.
type syncTarget struct {
	path string
	dir  bool
}

// inflightSync is one issued fsync: what it syncs, and the append sequence
// number it covers.
type inflightSync struct {
	seq     uint64
	targets []syncTarget
}

func newStorage(lying bool) *storage {
	st := &storage{mem: disk.NewMemFS(), lying: lying}
	st.fs = disk.WithFaults(deferFS{st: st, fs: st.mem}, func(op disk.Op, path string) error {
		if op == disk.OpSync && st.failSync {
			st.failSync = false
			return fmt.Errorf("sim: fsync of %s: %w", path, disk.ErrInjected)
		}
		return nil
	})
	return st
}

// open opens the log and reads the durable state back as a restart does:
// disk.OpenLog (cutting a torn tail, refusing corruption), the epoch
// files, then disk.Recover (the newest valid snapshot and the log after
// it). It also returns the path of the snapshot it loaded ("" for none).
func (st *storage) open(logger *slog.Logger) (Durable, string, error) {
	if err := st.mem.MkdirAll(dataDir, 0o755); err != nil {
		return Durable{}, "", fmt.Errorf("sim: create %s: %w", dataDir, err)
	}
	log, err := disk.OpenLog(dataDir, disk.LogOptions{FS: st.fs, Logger: logger, SegmentSize: segmentSize})
	if err != nil {
		return Durable{}, "", err
	}
	var d Durable
	for _, f := range []struct {
		path string
		v    *int64
	}{{acceptedEpochFile, &d.HardState.AcceptedEpoch}, {currentEpochFile, &d.HardState.CurrentEpoch}} {
		v, _, err := disk.ReadEpochFileFS(st.fs, f.path)
		if err != nil {
			return Durable{}, "", err
		}
		*f.v = v
	}
	snaps, err := disk.ListSnapshotsFS(st.fs, dataDir)
	if err != nil {
		return Durable{}, "", err
	}
	_, err = disk.Recover(dataDir, log, func(zxid int64, body io.Reader) error {
		data, err := io.ReadAll(body)
		d.SnapshotZxid, d.Snapshot = zxid, data
		return err
	}, func(r disk.Record) error {
		d.Log = append(d.Log, zab.Entry{Zxid: r.Zxid, Data: r.Data})
		return nil
	})
	if err != nil {
		return Durable{}, "", err
	}
	loaded := ""
	for _, s := range snaps {
		if d.Snapshot != nil && s.Zxid == d.SnapshotZxid {
			loaded = s.Path
		}
	}
	st.log, st.hard = log, d.HardState
	st.inflight, st.deferred, st.busyUntil = nil, nil, 0
	return d, loaded, nil
}

// saveHardState makes the epochs durable as the server does.
func (st *storage) saveHardState(hs zab.HardState) error {
	if err := disk.WriteEpochFileFS(st.fs, acceptedEpochFile, hs.AcceptedEpoch); err != nil {
		return err
	}
	if err := disk.WriteEpochFileFS(st.fs, currentEpochFile, hs.CurrentEpoch); err != nil {
		return err
	}
	st.hard = hs
	return nil
}

// saveSnapshot durably writes a snapshot: received from the leader
// (dropping a log tail above it first, as the server does) or taken of
// applied state. A periodic one purges old snapshots and the log segments
// only they needed, as autopurge does.
func (st *storage) saveSnapshot(zxid int64, write func(io.Writer) error, purge bool) error {
	if !purge && st.log.LastZxid() > zxid {
		if err := st.log.TruncateAfter(zxid); err != nil {
			return err
		}
	}
	if _, err := disk.WriteSnapshotFS(st.fs, dataDir, zxid, write); err != nil {
		return err
	}
	if !purge {
		return nil
	}
	if st.snapshots++; st.snapshots%purgeEvery != 0 {
		return nil
	}
	oldest, err := disk.PurgeSnapshotsFS(st.fs, dataDir, snapRetain, nil)
	if err != nil {
		return err
	}
	if oldest > 0 {
		return st.log.PurgeBefore(oldest)
	}
	return nil
}

// appendAndIssue appends records and issues their fsync through disk.Log's
// Sync, whose file and directory syncs are deferred to the fsync event. It
// returns the append sequence number the fsync covers.
func (st *storage) appendAndIssue(recs []disk.Record, fail bool) (uint64, error) {
	if err := st.log.Append(recs...); err != nil {
		return 0, err
	}
	st.seq++
	if st.deferred == nil && len(st.spare) > 0 {
		st.deferred = st.spare[len(st.spare)-1]
		st.spare = st.spare[:len(st.spare)-1]
	}
	st.deferring, st.failSync = true, fail
	_, err := st.log.Sync()
	st.deferring, st.failSync = false, false
	targets := st.deferred
	st.deferred = nil
	if err != nil {
		return 0, err
	}
	st.inflight = append(st.inflight, inflightSync{seq: st.seq, targets: targets})
	return st.seq, nil
}

// complete completes the fsyncs issued up to seq: their bytes become
// durable on the MemFS (unless the disk lies).
func (st *storage) complete(seq uint64) error {
	for len(st.inflight) > 0 && st.inflight[0].seq <= seq {
		in := st.inflight[0]
		st.inflight = st.inflight[1:]
		if st.lying {
			continue
		}
		for _, t := range in.targets {
			if err := st.syncNow(t); err != nil {
				return err
			}
		}
		if cap(in.targets) > 0 {
			clear(in.targets)
			st.spare = append(st.spare, in.targets[:0])
		}
	}
	return nil
}

// syncNow carries out a deferred sync. A file removed meanwhile (a
// truncation dropped its segment) has nothing left to sync.
func (st *storage) syncNow(t syncTarget) error {
	if t.dir {
		return st.mem.SyncDir(t.path)
	}
	f := st.syncFiles[t.path]
	if f == nil {
		var err error
		f, err = st.mem.OpenFile(t.path, os.O_RDONLY, 0)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if st.syncFiles == nil {
			st.syncFiles = map[string]disk.File{}
		}
		st.syncFiles[t.path] = f
	}
	return f.Sync()
}

// forget drops the handle syncNow keeps for path: the name may now refer
// to another file, or to none.
func (st *storage) forget(path string) {
	if len(st.syncFiles) > 0 {
		delete(st.syncFiles, disk.CleanPath(path))
	}
}

// crash loses what was not synced: each file's unsynced appended bytes are
// all kept with probability keep; otherwise they are lost, or with
// probability tear a random prefix of them survives (a torn write, cutting
// a record short). It returns the unsynced bytes lost and whether a write
// was torn.
func (st *storage) crash(r *rand.Rand, keep, tear float64) (lost int, torn bool) {
	if st.log != nil {
		st.log.Abandon() // its buffer back to the pool; writes nothing
	}
	st.log = nil
	st.inflight, st.deferred, st.busyUntil = nil, nil, 0
	clear(st.syncFiles)
	st.mem.CrashWith(func(path string, unsynced int) int {
		if r.Float64() < keep {
			return unsynced
		}
		if unsynced > 1 && r.Float64() < tear {
			k := 1 + r.IntN(unsynced-1)
			lost += unsynced - k
			torn = true
			return k
		}
		lost += unsynced
		return 0
	})
	return lost, torn
}

// files lists the log segments and snapshots on the disk, in path order.
func (st *storage) files() []string {
	dir := filepath.Join(dataDir, "version-2")
	names, err := st.mem.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, "log.") || strings.HasPrefix(n, "snapshot.") {
			out = append(out, filepath.Join(dir, n))
		}
	}
	return out
}

// corrupt flips one bit of a log segment or snapshot, durably, as a bad
// sector or a firmware bug would. It returns the file it damaged, or "".
func (st *storage) corrupt(r *rand.Rand) (string, error) {
	files := st.files()
	if len(files) == 0 {
		return "", nil
	}
	path := files[r.IntN(len(files))]
	data, err := st.read(path)
	if err != nil || len(data) == 0 {
		return "", err
	}
	data[r.IntN(len(data))] ^= 1 << r.IntN(8)
	f, err := st.mem.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if err := f.Truncate(0); err != nil {
		return "", err
	}
	if _, err := f.Write(data); err != nil {
		return "", err
	}
	return path, f.Sync()
}

// read returns a file's bytes.
func (st *storage) read(path string) ([]byte, error) {
	f, err := st.mem.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	data := make([]byte, fi.Size())
	if _, err := f.ReadAt(data, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return data, nil
}

// digest hashes every file on the disk, names and bytes, for the replay
// check: the same seed must leave the same disks behind.
func (st *storage) digest() uint64 {
	var h hasher
	var walk func(dir string)
	walk = func(dir string) {
		names, err := st.mem.ReadDir(dir)
		if err != nil {
			return
		}
		for _, n := range names {
			p := filepath.Join(dir, n)
			data, err := st.read(p)
			if err != nil {
				walk(p) // a directory
				continue
			}
			h.str(p)
			h.add(int64(hashData(data)), int64(len(data)))
		}
	}
	walk("/")
	return uint64(h)
}

// deferFS passes everything through to the MemFS, except that while the
// storage is deferring, syncs of files and directories are recorded for
// the fsync event instead of run.
type deferFS struct {
	st *storage
	fs disk.FS
}

func (d deferFS) OpenFile(name string, flag int, perm fs.FileMode) (disk.File, error) {
	if flag&os.O_CREATE != 0 {
		d.st.forget(name)
	}
	f, err := d.fs.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return deferFile{File: f, st: d.st, path: disk.CleanPath(name)}, nil
}

func (d deferFS) Rename(oldpath, newpath string) error {
	d.st.forget(oldpath)
	d.st.forget(newpath)
	return d.fs.Rename(oldpath, newpath)
}

func (d deferFS) Remove(name string) error {
	d.st.forget(name)
	return d.fs.Remove(name)
}

func (d deferFS) ReadDir(name string) ([]string, error) { return d.fs.ReadDir(name) }
func (d deferFS) MkdirAll(path string, perm fs.FileMode) error {
	return d.fs.MkdirAll(path, perm)
}

func (d deferFS) SyncDir(path string) error {
	if d.st.deferring {
		d.st.deferred = append(d.st.deferred, syncTarget{path: disk.CleanPath(path), dir: true})
		return nil
	}
	return d.fs.SyncDir(path)
}

type deferFile struct {
	disk.File
	st   *storage
	path string
}

func (f deferFile) Sync() error {
	if f.st.deferring {
		f.st.deferred = append(f.st.deferred, syncTarget{path: f.path})
		return nil
	}
	return f.File.Sync()
}

// discardLogger drops the disk package's log lines when nobody traces.
var discardLogger = slog.New(slog.DiscardHandler)

// diskLogger returns the logger the disk package of server s writes to:
// its recovery warnings go to the trace.
func (sm *Sim) diskLogger(s *server) *slog.Logger {
	if sm.opts.Trace == nil {
		return discardLogger
	}
	return slog.New(traceHandler{sm: sm, id: s.id})
}

// traceHandler writes slog records to the simulator's trace, without the
// wall clock.
type traceHandler struct {
	sm    *Sim
	id    int64
	attrs []slog.Attr
}

func (h traceHandler) Enabled(context.Context, slog.Level) bool { return h.sm.traceOn(h.id) }

func (h traceHandler) Handle(_ context.Context, r slog.Record) error {
	var b bytes.Buffer
	for _, a := range h.attrs {
		fmt.Fprintf(&b, " %s", a)
	}
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s", a)
		return true
	})
	h.sm.tracef(h.id, "n%d disk %s: %s%s", h.id, r.Level, r.Message, b.String())
	return nil
}

func (h traceHandler) WithAttrs(as []slog.Attr) slog.Handler {
	h.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return h
}

func (h traceHandler) WithGroup(string) slog.Handler { return h }
