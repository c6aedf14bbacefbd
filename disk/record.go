package disk

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/zabkeeper/zabkeeper/proto"
)

// ErrCorrupt is wrapped by every error that reports data on disk that fails
// its checks (as opposed to an I/O failure).
var ErrCorrupt = errors.New("disk: corrupt data")

// ErrCorruptTail is wrapped, together with ErrCorrupt, by the error OpenLog
// returns when the final record of the log is damaged in a way a crash does
// not cause (a complete record whose checksum fails, an impossible length
// that is not zero fill) and nothing valid follows it. The record may hold
// an acknowledged write, so it is not dropped unless asked:
// LogOptions.TruncateCorruptTail cuts it.
var ErrCorruptTail = errors.New("disk: corrupt final record")

const (
	segmentMagic      = "ZKLG"
	segmentVersion    = 1
	segmentHeaderSize = 8
	// recordHeaderSize is the length and CRC before each record's zxid.
	recordHeaderSize = 8
	zxidSize         = 8
	// MaxRecordSize bounds the length field of a record (zxid plus data):
	// the largest txn any configuration lets a server produce
	// (proto.MaxTxnSize, from the largest jute.maxbuffer accepted), so
	// every record the write side takes reads back, whatever jute.maxbuffer
	// says at the restart. Append refuses bigger records, and a length
	// above it on disk is corruption. A reader never allocates more than
	// the file holds.
	MaxRecordSize = proto.MaxTxnSize + zxidSize
	// tornTailLimit bounds how much of a segment's tail recovery reads to
	// prove that a damaged final record is only a torn write: a whole
	// record of the largest size.
	tornTailLimit = recordHeaderSize + MaxRecordSize
	// tornSearchBudget bounds the bytes checksummed while searching that tail
	// for a valid record; past it recovery refuses rather than guesses.
	tornSearchBudget = 256 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// segmentHeader returns the bytes every segment starts with.
func segmentHeader() []byte {
	b := make([]byte, segmentHeaderSize)
	copy(b, segmentMagic)
	binary.BigEndian.PutUint32(b[4:], segmentVersion)
	return b
}

// recordCRC is the CRC-32C of a record's zxid and data.
func recordCRC(zxid int64, data []byte) uint32 {
	var z [zxidSize]byte
	binary.BigEndian.PutUint64(z[:], uint64(zxid))
	return crc32.Update(crc32.Update(0, castagnoli, z[:]), castagnoli, data)
}

// encodeRecordHeader fills the length, CRC and zxid that precede r.Data.
func encodeRecordHeader(h *[recordHeaderSize + zxidSize]byte, r Record) {
	binary.BigEndian.PutUint32(h[0:], uint32(zxidSize+len(r.Data)))
	binary.BigEndian.PutUint32(h[4:], recordCRC(r.Zxid, r.Data))
	binary.BigEndian.PutUint64(h[8:], uint64(r.Zxid))
}

// recordFault says why the bytes at an offset are not a valid record.
type recordFault int

const (
	faultNone recordFault = iota
	faultShortHeader
	faultBadLength
	faultShortBody
	faultBadCRC
)

func (f recordFault) String() string {
	switch f {
	case faultShortHeader:
		return "short record header"
	case faultBadLength:
		return "impossible record length"
	case faultShortBody:
		return "short record body"
	case faultBadCRC:
		return "record CRC mismatch"
	}
	return "no fault"
}

// recordScanner reads records one after another from a segment.
type recordScanner struct {
	r    *bufio.Reader
	off  int64 // offset of the next record
	size int64 // bytes of the segment to read
	hdr  [recordHeaderSize]byte
}

func newRecordScanner(f io.ReaderAt, off, size int64) *recordScanner {
	return &recordScanner{
		r:    bufio.NewReaderSize(io.NewSectionReader(f, off, size-off), 256<<10),
		off:  off,
		size: size,
	}
}

// next returns the record at s.off and advances past it. At a clean end it
// returns io.EOF. Bytes that are not a valid record give a fault (and leave
// s.off at the bad record); I/O failures give an error.
func (s *recordScanner) next() (Record, recordFault, error) {
	left := s.size - s.off
	if left == 0 {
		return Record{}, faultNone, io.EOF
	}
	if left < recordHeaderSize+zxidSize {
		return Record{}, faultShortHeader, nil
	}
	if _, err := io.ReadFull(s.r, s.hdr[:]); err != nil {
		return Record{}, faultNone, noEOF(err)
	}
	n := int64(binary.BigEndian.Uint32(s.hdr[0:]))
	if n < zxidSize || n > MaxRecordSize {
		return Record{}, faultBadLength, nil
	}
	if left-recordHeaderSize < n {
		return Record{}, faultShortBody, nil
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(s.r, body); err != nil {
		return Record{}, faultNone, noEOF(err)
	}
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(s.hdr[4:]) {
		return Record{}, faultBadCRC, nil
	}
	s.off += recordHeaderSize + n
	return Record{Zxid: int64(binary.BigEndian.Uint64(body)), Data: body[zxidSize:]}, faultNone, nil
}

// noEOF turns an early end of a file whose size was known into an error
// that cannot pass for a clean end.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// checkSegmentHeader verifies a segment's first bytes.
func checkSegmentHeader(name string, f io.ReaderAt, size int64) error {
	if size < segmentHeaderSize {
		return fmt.Errorf("disk: segment %s: short header (%d bytes) at offset 0: %w", name, size, ErrCorrupt)
	}
	b := make([]byte, segmentHeaderSize)
	if _, err := f.ReadAt(b, 0); err != nil {
		return fmt.Errorf("disk: read segment %s header: %w", name, noEOF(err))
	}
	if string(b[:4]) != segmentMagic {
		return fmt.Errorf("disk: segment %s: bad magic %q at offset 0: %w", name, b[:4], ErrCorrupt)
	}
	if v := binary.BigEndian.Uint32(b[4:]); v != segmentVersion {
		return fmt.Errorf("disk: segment %s: unsupported version %d at offset 4: %w", name, v, ErrCorrupt)
	}
	return nil
}

// isTornHeader reports whether a file of size bytes (fewer than a header)
// is a prefix of a segment header, as a crash while creating it leaves.
func isTornHeader(f io.ReaderAt, size int64) (bool, error) {
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil && !(errors.Is(err, io.EOF) && size == 0) {
		return false, noEOF(err)
	}
	h := segmentHeader()
	for i := range b {
		if b[i] != h[i] {
			return false, nil
		}
	}
	return true, nil
}

// readSegment calls fn for every record of a segment that is expected to be
// intact (it was verified when the log was opened), with the record's
// offset. Any fault is an error naming the file and offset.
func readSegment(name string, f io.ReaderAt, size int64, fn func(r Record, off int64) error) error {
	if err := checkSegmentHeader(name, f, size); err != nil {
		return err
	}
	s := newRecordScanner(f, segmentHeaderSize, size)
	prev := int64(-1 << 63)
	for {
		off := s.off
		r, fault, err := s.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("disk: read segment %s at offset %d: %w", name, off, err)
		}
		if fault != faultNone {
			return fmt.Errorf("disk: segment %s: %s at offset %d: %w", name, fault, off, ErrCorrupt)
		}
		if r.Zxid <= prev {
			return fmt.Errorf("disk: segment %s: zxid %#x at offset %d does not follow %#x: %w", name, r.Zxid, off, prev, ErrCorrupt)
		}
		prev = r.Zxid
		if err := fn(r, off); err != nil {
			return err
		}
	}
}

// segmentScan is what recovery learned about one segment.
type segmentScan struct {
	count int   // valid records
	last  int64 // zxid of the last valid record
	end   int64 // offset just past the last valid record
	// torn says that the bytes from end on are a torn final write (or zero
	// fill) to cut.
	torn bool
	// corruptTail says that the bytes from end on are a damaged final
	// record that a crash does not explain (ErrCorruptTail).
	corruptTail bool
	tornFault   recordFault
}

// scanSegment verifies a segment at open time: the header, every record's
// length and CRC, that zxids increase from after prev, and that the first
// record's zxid is first (the file's name). When isLast, a damaged final
// record with nothing valid after it is reported as torn rather than as an
// error; any other damage is an error naming the file and offset.
func scanSegment(name string, f io.ReaderAt, size, first, prev int64, isLast bool) (segmentScan, error) {
	res := segmentScan{end: segmentHeaderSize}
	if err := checkSegmentHeader(name, f, size); err != nil {
		return res, err
	}
	s := newRecordScanner(f, segmentHeaderSize, size)
	for {
		off := s.off
		r, fault, err := s.next()
		if err == io.EOF {
			return res, nil
		}
		if err != nil {
			return res, fmt.Errorf("disk: read segment %s at offset %d: %w", name, off, err)
		}
		if fault != faultNone {
			if !isLast {
				return res, fmt.Errorf("disk: segment %s: %s at offset %d in a segment that is not the last: %w", name, fault, off, ErrCorrupt)
			}
			if fault == faultBadLength {
				// A length of zero with only zeros after it is the end
				// of a zero-filled or preallocated tail (checked first:
				// it streams, where the search below reads the tail).
				zero, err := allZero(f, off, size)
				if err != nil {
					return res, fmt.Errorf("disk: read segment %s at offset %d: %w", name, off, err)
				}
				if zero {
					res.torn, res.tornFault = true, fault
					return res, nil
				}
			}
			at, found, undecided, err := findValidRecord(name, f, off, size, prev)
			if err != nil {
				return res, err
			}
			if found {
				return res, fmt.Errorf("disk: segment %s: %s at offset %d, yet a valid record follows at offset %d: %w", name, fault, off, at, ErrCorrupt)
			}
			res.tornFault = fault
			if undecided {
				// Too much to search to prove it torn: only an operator
				// may cut it.
				res.corruptTail = true
				return res, nil
			}
			// A write cut short leaves a prefix of the record; a complete
			// record that fails its checksum, or an impossible length
			// that is not zero fill, is not what a crash leaves.
			res.torn = fault == faultShortHeader || fault == faultShortBody
			res.corruptTail = !res.torn
			return res, nil
		}
		if res.count == 0 && r.Zxid != first {
			return res, fmt.Errorf("disk: segment %s: first record at offset %d has zxid %#x, the name says %#x: %w", name, off, r.Zxid, first, ErrCorrupt)
		}
		if r.Zxid <= prev {
			return res, fmt.Errorf("disk: segment %s: zxid %#x at offset %d does not follow %#x: %w", name, r.Zxid, off, prev, ErrCorrupt)
		}
		prev = r.Zxid
		res.count++
		res.last = r.Zxid
		res.end = s.off
	}
}

// allZero reports whether bytes [off, size) of f are all zero.
func allZero(f io.ReaderAt, off, size int64) (bool, error) {
	buf := make([]byte, min(size-off, 64<<10))
	for off < size {
		n := min(int64(len(buf)), size-off)
		if _, err := f.ReadAt(buf[:n], off); err != nil {
			return false, noEOF(err)
		}
		for _, b := range buf[:n] {
			if b != 0 {
				return false, nil
			}
		}
		off += n
	}
	return true, nil
}

// maxEpochGap bounds how far the epoch of a record may be ahead of the one
// before it, for findValidRecord: every election that installs a leader
// adds one, and a thousand of them between two writes do not happen. The
// filter keeps the search through a large torn record of random bytes from
// checksumming every random length it holds.
const maxEpochGap = 1 << 10

// findValidRecord looks for a valid record (plausible length, zxid after
// prev and at most maxEpochGap epochs on, matching CRC) starting anywhere
// after the damaged record at off. Finding one proves the damage is not a
// torn write. When the tail is too big to check within the budget, it
// reports undecided rather than guess.
func findValidRecord(name string, f io.ReaderAt, off, size, prev int64) (at int64, found, undecided bool, err error) {
	if size-off > tornTailLimit {
		return 0, false, true, nil
	}
	tail := make([]byte, size-off)
	if _, err := f.ReadAt(tail, off); err != nil && !(errors.Is(err, io.EOF) && len(tail) == 0) {
		return 0, false, false, fmt.Errorf("disk: read segment %s at offset %d: %w", name, off, noEOF(err))
	}
	budget := int64(tornSearchBudget)
	maxEpoch := uint64(prev)>>32 + maxEpochGap
	for p := 1; p+recordHeaderSize+zxidSize <= len(tail); p++ {
		n := int(binary.BigEndian.Uint32(tail[p:]))
		if n < zxidSize || n > MaxRecordSize || p+recordHeaderSize+n > len(tail) {
			continue
		}
		body := tail[p+recordHeaderSize : p+recordHeaderSize+n]
		z := int64(binary.BigEndian.Uint64(body))
		if z <= prev || uint64(z)>>32 > maxEpoch {
			continue
		}
		if budget -= int64(n); budget < 0 {
			return 0, false, true, nil
		}
		if crc32.Checksum(body, castagnoli) == binary.BigEndian.Uint32(tail[p+4:]) {
			return off + int64(p), true, false, nil
		}
	}
	return 0, false, false, nil
}
