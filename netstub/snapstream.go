package netstub

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/zabkeeper/zabkeeper/engine/zab"
)

// Snapshot streaming: a transport sends the SNAP, then the payloads
// StreamSnapshot cuts (chunks, then the end) its own way (netstub/zktcp:
// SNAPCHUNK packets), and the receiver spools them (SnapshotSpool).
const (
	// tagChunk opens a chunk frame: the tag, then snapshot bytes.
	tagChunk = 0x80
	// tagEnd opens the end frame: the tag, then the snapshot's total
	// length as a u64.
	tagEnd = 0x81
)

// StreamSnapshot cuts snap, serialized as it goes, into the payloads of a
// snapshot stream: chunks of at most 32 KiB (a tag byte, then the bytes),
// then the end (a tag byte, then the total length as a u64). emit writes
// one payload, which it must not keep (the buffer is reused); between, if
// not nil, runs after each chunk, where a transport writes the messages
// that may overtake the snapshot (heartbeats). netstub/zktcp carries each
// payload in a quorum packet (SNAPCHUNK). It returns
// the snapshot's length.
func StreamSnapshot(snap zab.SnapshotData, emit func(payload []byte) error, between func() error) (int64, error) {
	cw := &chunkWriter{emit: emit, between: between, buf: append(make([]byte, 0, 1+snapChunk), tagChunk)}
	if _, err := snap.WriteTo(cw); err != nil {
		return cw.total, err
	}
	if err := cw.flush(); err != nil {
		return cw.total, err
	}
	return cw.total, emit(binary.BigEndian.AppendUint64([]byte{tagEnd}, uint64(cw.total)))
}

// chunkWriter cuts what a snapshot writes into chunk payloads: buf holds
// tagChunk, then up to snapChunk bytes.
type chunkWriter struct {
	emit    func([]byte) error
	between func() error
	buf     []byte
	total   int64
}

func (w *chunkWriter) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		k := min(len(b), 1+snapChunk-len(w.buf))
		w.buf = append(w.buf, b[:k]...)
		b = b[k:]
		if len(w.buf) == 1+snapChunk {
			if err := w.flush(); err != nil {
				return n - len(b), err
			}
		}
	}
	return n, nil
}

// flush emits the buffered bytes as one chunk, then runs between.
func (w *chunkWriter) flush() error {
	if len(w.buf) == 1 {
		return nil
	}
	if err := w.emit(w.buf); err != nil {
		return err
	}
	w.total += int64(len(w.buf) - 1)
	w.buf = w.buf[:1]
	if w.between != nil {
		return w.between()
	}
	return nil
}

// snapshotReceiver spools the snapshot a link is streaming.
type snapshotReceiver struct {
	dir string
	max int64

	hdr   zab.Message
	f     *os.File
	w     *bufio.Writer
	n     int64
	total int64 // from the end frame; -1 until it arrived
}

func (r *snapshotReceiver) active() bool { return r.f != nil }

// begin starts spooling the snapshot of the SNAP header m.
func (r *snapshotReceiver) begin(m zab.Message) error {
	if r.active() {
		return fmt.Errorf("snapshot 0x%x starts inside the stream of snapshot 0x%x", m.Zxid, r.hdr.Zxid)
	}
	f, err := os.CreateTemp(r.dir, fmt.Sprintf("snapshot-from-%d-*.spool", m.From))
	if err != nil {
		return fmt.Errorf("spool snapshot 0x%x: %w", m.Zxid, err)
	}
	r.hdr, r.f, r.n, r.total = m, f, 0, -1
	if r.w == nil {
		r.w = bufio.NewWriterSize(f, 256<<10)
	} else {
		r.w.Reset(f)
	}
	return nil
}

// chunk handles a chunk or end frame's payload (tagChunk or tagEnd).
func (r *snapshotReceiver) chunk(payload []byte) error {
	if !r.active() {
		return fmt.Errorf("snapshot frame (tag %#x) outside a snapshot stream", payload[0])
	}
	switch payload[0] {
	case tagChunk:
		body := payload[1:]
		if r.n+int64(len(body)) > r.max {
			return fmt.Errorf("snapshot 0x%x exceeds MaxSnapshot %d bytes", r.hdr.Zxid, r.max)
		}
		if _, err := r.w.Write(body); err != nil {
			return fmt.Errorf("spool snapshot 0x%x: %w", r.hdr.Zxid, err)
		}
		r.n += int64(len(body))
	case tagEnd:
		if len(payload) != 9 {
			return fmt.Errorf("snapshot end frame of %d bytes", len(payload))
		}
		total := int64(binary.BigEndian.Uint64(payload[1:]))
		if total != r.n {
			return fmt.Errorf("snapshot 0x%x: end frame says %d bytes, %d arrived", r.hdr.Zxid, total, r.n)
		}
		if err := r.w.Flush(); err != nil {
			return fmt.Errorf("spool snapshot 0x%x: %w", r.hdr.Zxid, err)
		}
		if err := r.f.Close(); err != nil {
			return fmt.Errorf("spool snapshot 0x%x: %w", r.hdr.Zxid, err)
		}
		r.total = total
	}
	return nil
}

func (r *snapshotReceiver) done() bool { return r.active() && r.total >= 0 }

// finish returns the complete SNAP, its snapshot spooled.
func (r *snapshotReceiver) finish() zab.Message {
	m := r.hdr
	m.Snapshot = &SpooledSnapshot{path: r.f.Name(), size: r.total}
	r.f, r.hdr = nil, zab.Message{}
	return m
}

// abort drops a snapshot the link broke in the middle of.
func (r *snapshotReceiver) abort() {
	if !r.active() {
		return
	}
	name := r.f.Name()
	_ = r.f.Close()
	_ = os.Remove(name)
	r.f = nil
}

// SnapshotSpool receives the payloads StreamSnapshot cut (chunks, then
// the end) into a file of a spool directory, for a transport that carries
// them its own way (netstub/zktcp). Not safe for concurrent use.
type SnapshotSpool struct{ r snapshotReceiver }

// NewSnapshotSpool returns a spool writing to dir that refuses a
// snapshot of more than max bytes.
func NewSnapshotSpool(dir string, max int64) *SnapshotSpool {
	return &SnapshotSpool{r: snapshotReceiver{dir: dir, max: max}}
}

// Begin starts spooling the snapshot of the SNAP hdr (its From and Zxid
// name the file and the errors).
func (s *SnapshotSpool) Begin(hdr zab.Message) error { return s.r.begin(hdr) }

// Active reports whether a snapshot is being spooled.
func (s *SnapshotSpool) Active() bool { return s.r.active() }

// Chunk takes one payload. After the end payload, done is set and m is
// the SNAP begun with Begin, its Snapshot a *SpooledSnapshot the receiver
// closes once done with it. An error leaves the spool to Abort.
func (s *SnapshotSpool) Chunk(payload []byte) (m zab.Message, done bool, err error) {
	if len(payload) == 0 || (payload[0] != tagChunk && payload[0] != tagEnd) {
		return zab.Message{}, false, fmt.Errorf("snapshot stream payload of %d bytes is neither a chunk nor the end", len(payload))
	}
	if err := s.r.chunk(payload); err != nil {
		return zab.Message{}, false, err
	}
	if !s.r.done() {
		return zab.Message{}, false, nil
	}
	return s.r.finish(), true, nil
}

// Abort removes the file of a snapshot not received whole; a no-op when
// none is active.
func (s *SnapshotSpool) Abort() { s.r.abort() }

// SpooledSnapshot is a snapshot received from a leader, kept in a file
// of the spool directory. The receiver calls Close once it is done with it, which
// removes the file.
type SpooledSnapshot struct {
	path string
	size int64
}

var _ zab.SnapshotData = (*SpooledSnapshot)(nil)

// Size returns the snapshot's length in bytes.
func (s *SpooledSnapshot) Size() int64 { return s.size }

// Open returns a reader of the snapshot.
func (s *SpooledSnapshot) Open() (io.ReadCloser, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return nil, fmt.Errorf("netstub: open spooled snapshot: %w", err)
	}
	return f, nil
}

// WriteTo copies the snapshot to w.
func (s *SpooledSnapshot) WriteTo(w io.Writer) (int64, error) {
	f, err := s.Open()
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n, err := io.Copy(w, f)
	if err != nil {
		return n, fmt.Errorf("netstub: copy spooled snapshot: %w", err)
	}
	if n != s.size {
		return n, fmt.Errorf("netstub: spooled snapshot %s holds %d bytes, %d arrived", s.path, n, s.size)
	}
	return n, nil
}

// Close removes the spool file.
func (s *SpooledSnapshot) Close() error {
	if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("netstub: remove spooled snapshot: %w", err)
	}
	return nil
}

// NewSpooledSnapshot returns the SnapshotData of size bytes held in the
// file at path, which Close removes (other transports spool their
// snapshots the same way).
func NewSpooledSnapshot(path string, size int64) *SpooledSnapshot {
	return &SpooledSnapshot{path: path, size: size}
}
