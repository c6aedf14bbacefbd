package disk

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/adler32"
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
// that is not zero fill, an end-of-record byte that is neither 'B' nor
// zero fill) and nothing valid follows it. The record may hold an
// acknowledged write, so it is not dropped unless asked:
// LogOptions.TruncateCorruptTail cuts it.
var ErrCorruptTail = errors.New("disk: corrupt final record")

// The transaction log format is Apache ZooKeeper's (FileTxnLog, version 2):
// a file header FileHeader {int magic "ZKLG"; int version 2; long dbid 0},
// then records
//
//	long  Adler32 of the payload (only)
//	int   payload length
//	      payload: ZooKeeper's txn entry, TxnHeader first
//	byte  'B' (end of record)
//
// all big-endian. A record whose length is zero (ZooKeeper's preallocated
// zero fill reads so) or the end of the file ends the data of a file.
const (
	logMagic      = 0x5A4B4C47 // "ZKLG"
	logVersion    = 2
	logHeaderSize = 16
	// recordPrefixSize is the checksum and length before a payload.
	recordPrefixSize = 12
	// recordOverhead is what a record adds to its payload: prefix and EOR.
	recordOverhead = recordPrefixSize + 1
	eorByte        = 'B'
	// TxnHeaderSize is the size of ZooKeeper's TxnHeader {long clientId;
	// int cxid; long zxid; long time; int type}, which every payload starts
	// with; the zxid is at byte txnZxidOffset.
	TxnHeaderSize = 32
	txnZxidOffset = 12
	// MaxRecordSize bounds the payload of a record: the largest txn any
	// configuration lets a server produce (proto.MaxTxnSize, from the
	// largest jute.maxbuffer accepted) plus room for the TxnDigest and
	// zabkeeper's extension, so every record the write side takes reads
	// back, whatever jute.maxbuffer says at the restart. Append refuses
	// bigger records, and a length above it on disk is corruption. A reader
	// never allocates more than the file holds.
	MaxRecordSize = proto.MaxTxnSize + 1<<16
	// tornTailLimit bounds how much of a segment's tail recovery reads to
	// prove that a damaged final record is only a torn write: a whole
	// record of the largest size.
	tornTailLimit = recordOverhead + MaxRecordSize
	// tornSearchBudget bounds the bytes checksummed while searching that tail
	// for a valid record; past it recovery refuses rather than guess.
	tornSearchBudget = 256 << 20
)

// TxnZxid returns the zxid in the TxnHeader a log payload starts with; ok
// is false when the payload is too short to hold one.
func TxnZxid(payload []byte) (zxid int64, ok bool) {
	if len(payload) < TxnHeaderSize {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(payload[txnZxidOffset:])), true
}

// logHeader returns the FileHeader every segment starts with (dbid 0, as
// ZooKeeper writes it).
func logHeader() []byte {
	b := make([]byte, logHeaderSize)
	binary.BigEndian.PutUint32(b[0:], logMagic)
	binary.BigEndian.PutUint32(b[4:], logVersion)
	return b
}

// encodeRecordPrefix fills the checksum and length that precede r.Data.
func encodeRecordPrefix(h *[recordPrefixSize]byte, r Record) {
	binary.BigEndian.PutUint64(h[0:], uint64(adler32.Checksum(r.Data)))
	binary.BigEndian.PutUint32(h[8:], uint32(len(r.Data)))
}

// recordFault says why the bytes at an offset are not a valid record.
type recordFault int

const (
	faultNone recordFault = iota
	// faultShortHeader: the file ends inside the checksum or length.
	faultShortHeader
	// faultBadLength: a length below a TxnHeader (but not zero), negative
	// or above MaxRecordSize.
	faultBadLength
	// faultShortBody: the file ends inside the payload or before the EOR.
	faultShortBody
	// faultBadEOR: the byte after the payload is not 'B'.
	faultBadEOR
	// faultBadCRC: a complete record whose Adler32 does not match.
	faultBadCRC
	// faultDataAfterEnd: a zero length (the end of a file's data) with
	// bytes other than zero after it.
	faultDataAfterEnd
	// faultWrongLength: the length runs past the record, which is whole
	// before it (its checksum matches the bytes up to an end-of-record
	// byte, and only zeros or the end of the file follow): the length
	// field was damaged, not the write cut short.
	faultWrongLength
)

func (f recordFault) String() string {
	switch f {
	case faultShortHeader:
		return "short record header"
	case faultBadLength:
		return "impossible record length"
	case faultShortBody:
		return "short record body"
	case faultBadEOR:
		return "end-of-record byte is not 'B'"
	case faultBadCRC:
		return "record checksum (Adler32) mismatch"
	case faultDataAfterEnd:
		return "data after a zero-length record (the end marker)"
	case faultWrongLength:
		return "record length damaged (the record is whole before where it says it ends)"
	}
	return "no fault"
}

// errEnd is what recordScanner.next returns at a zero length: the end of
// the file's data, if only zeros follow (the caller checks).
var errEnd = errors.New("zero-length record")

// recordScanner reads records one after another from a segment.
type recordScanner struct {
	r    *bufio.Reader
	off  int64 // offset of the next record
	size int64 // bytes of the segment to read
	hdr  [recordPrefixSize]byte
}

func newRecordScanner(f io.ReaderAt, off, size int64) *recordScanner {
	return &recordScanner{
		r:    bufio.NewReaderSize(io.NewSectionReader(f, off, size-off), readBufferSize(size-off, 256<<10)),
		off:  off,
		size: size,
	}
}

// next returns the record at s.off and advances past it. At the end of
// the file it returns io.EOF; at a zero length, errEnd (s.off stays at the
// record). Bytes that are not a valid record give a fault (and leave s.off
// at the bad record); I/O failures give other errors.
func (s *recordScanner) next() (Record, recordFault, error) {
	left := s.size - s.off
	if left == 0 {
		return Record{}, faultNone, io.EOF
	}
	if left < recordPrefixSize {
		return Record{}, faultShortHeader, nil
	}
	if _, err := io.ReadFull(s.r, s.hdr[:]); err != nil {
		return Record{}, faultNone, noEOF(err)
	}
	n := int64(int32(binary.BigEndian.Uint32(s.hdr[8:])))
	if n == 0 {
		return Record{}, faultNone, errEnd
	}
	if n < TxnHeaderSize || n > MaxRecordSize {
		return Record{}, faultBadLength, nil
	}
	if left-recordPrefixSize < n+1 {
		return Record{}, faultShortBody, nil
	}
	body := make([]byte, n+1)
	if _, err := io.ReadFull(s.r, body); err != nil {
		return Record{}, faultNone, noEOF(err)
	}
	if body[n] != eorByte {
		return Record{}, faultBadEOR, nil
	}
	body = body[:n:n]
	if uint64(adler32.Checksum(body)) != binary.BigEndian.Uint64(s.hdr[0:]) {
		return Record{}, faultBadCRC, nil
	}
	s.off += recordOverhead + n
	z, _ := TxnZxid(body)
	return Record{Zxid: z, Data: body}, faultNone, nil
}

// readBufferSize is the buffer for reading n bytes: n itself when under
// max. A section reader never returns more than n, so a larger buffer reads
// the same ReadAt calls and only costs memory: the simulator's 8 KiB segments
// and small snapshots allocated 256 KiB each at every restart.
func readBufferSize(n int64, max int) int {
	if n < int64(max) {
		if n < 16 {
			return 16 // bufio's minimum
		}
		return int(n)
	}
	return max
}

// noEOF turns an early end of a file whose size was known into an error
// that cannot pass for a clean end.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// checkSegmentHeader verifies a segment's FileHeader: ZooKeeper's magic and
// version 2 (ZooKeeper checks only the magic; every file it writes has
// version 2, so another one is not its log).
func checkSegmentHeader(name string, f io.ReaderAt, size int64) error {
	if size < logHeaderSize {
		return fmt.Errorf("disk: segment %s: short header (%d bytes) at offset 0: %w", name, size, ErrCorrupt)
	}
	b := make([]byte, logHeaderSize)
	if _, err := f.ReadAt(b, 0); err != nil {
		return fmt.Errorf("disk: read segment %s header: %w", name, noEOF(err))
	}
	if m := binary.BigEndian.Uint32(b); m != logMagic {
		return fmt.Errorf("disk: segment %s: invalid magic number %#x (want %#x, \"ZKLG\") at offset 0: not a transaction log: %w", name, m, logMagic, ErrCorrupt)
	}
	if v := binary.BigEndian.Uint32(b[4:]); v != logVersion {
		return fmt.Errorf("disk: segment %s: unsupported version %d at offset 4 (ZooKeeper's format is version %d): %w", name, v, logVersion, ErrCorrupt)
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
	return bytes.HasPrefix(logHeader(), b), nil
}

// readSegment calls fn for every record of a segment up to size, the end
// of its data, which was verified when the log was opened, with the
// record's offset. Any fault is an error naming the file and offset.
func readSegment(name string, f io.ReaderAt, size int64, fn func(r Record, off int64) error) error {
	if size == 0 {
		return nil // a segment with no data (a header torn by a crash)
	}
	if err := checkSegmentHeader(name, f, size); err != nil {
		return err
	}
	s := newRecordScanner(f, logHeaderSize, size)
	prev := int64(-1 << 63)
	for {
		off := s.off
		r, fault, err := s.next()
		if err == io.EOF {
			return nil
		}
		if err == errEnd {
			return fmt.Errorf("disk: segment %s: zero-length record at offset %d before the end of its data: %w", name, off, ErrCorrupt)
		}
		if err != nil {
			return fmt.Errorf("disk: read segment %s at offset %d: %w", name, off, err)
		}
		if fault != faultNone {
			return fmt.Errorf("disk: segment %s: %s at offset %d: %w", name, fault, off, ErrCorrupt)
		}
		if r.Zxid <= prev {
			continue // a repeat (see scanSegment): read once
		}
		prev = r.Zxid
		if err := fn(r, off); err != nil {
			return err
		}
	}
}

// tailKind says what follows the last valid record of a segment.
type tailKind int

const (
	// tailClean: the file ends there.
	tailClean tailKind = iota
	// tailZero: zeros to the end (ZooKeeper's preallocation, or a zero
	// length record, its end marker).
	tailZero
	// tailTorn: a record cut short by a crash, then nothing or zeros.
	tailTorn
	// tailCorrupt: a damaged final record a crash does not explain, with
	// nothing valid after it (ErrCorruptTail).
	tailCorrupt
)

// segmentScan is what recovery learned about one segment.
type segmentScan struct {
	count int // valid records, repeats not counted
	// repeats counts valid records whose zxid is not above the one
	// before: Apache ZooKeeper 3.8's learner logs the txns of a DIFF
	// twice in one file (at NEWLEADER and again after UPTODATE), and its
	// own recovery reads past them (FileTxnSnapLog.fastForwardFromEdits
	// logs "(highestZxid) > (next log)"). They are skipped, each zxid read
	// once, so zabkeeper runs on a dataDir ZooKeeper synced by DIFF.
	repeats int
	last    int64 // zxid of the last valid record
	end     int64 // offset just past the last valid record: the end of the data
	tail    tailKind
	fault   recordFault // for tailTorn and tailCorrupt
}

// scanSegment verifies a segment at open time: the header, every record's
// framing and checksum, that zxids increase from after prev, and that the
// first record's zxid is first (the file's name). The data ends at the end
// of the file, at a zero length followed by zeros (preallocation), or at a
// record a crash cut short (the rest of the file zeros or absent), as
// ZooKeeper's reader takes them. A damaged record with nothing valid after
// it is reported as tailCorrupt, for the caller to refuse or (asked to)
// cut; any other damage is an error naming the file and offset.
//
// fn, if not nil, is called for every valid record with its offset; a
// first below zero skips the check against the name.
func scanSegment(name string, f io.ReaderAt, size, first, prev int64, fn func(Record, int64) error) (segmentScan, error) {
	res := segmentScan{end: logHeaderSize}
	if err := checkSegmentHeader(name, f, size); err != nil {
		return res, err
	}
	s := newRecordScanner(f, logHeaderSize, size)
	for {
		off := s.off
		r, fault, err := s.next()
		if err == io.EOF {
			return res, nil
		}
		if err == errEnd {
			// A zero length is the end if only zeros follow the length
			// field (the checksum before it may be a torn write's).
			zero, err := allZero(f, off+recordPrefixSize, size)
			if err != nil {
				return res, fmt.Errorf("disk: read segment %s at offset %d: %w", name, off, err)
			}
			if zero {
				res.tail = tailZero
				if !isZeroAt(f, off, recordPrefixSize) {
					res.tail, res.fault = tailTorn, faultShortHeader
				}
				return res, nil
			}
			fault = faultDataAfterEnd
		} else if err != nil {
			return res, fmt.Errorf("disk: read segment %s at offset %d: %w", name, off, err)
		}
		if fault != faultNone {
			return res, classifyDamage(name, f, off, size, prev, fault, &res)
		}
		if res.count == 0 && first >= 0 && r.Zxid != first {
			return res, fmt.Errorf("disk: segment %s: first record at offset %d has zxid %#x, the name says %#x: %w", name, off, r.Zxid, first, ErrCorrupt)
		}
		if r.Zxid <= prev && res.count > 0 {
			res.repeats++
			res.end = s.off
			continue
		}
		if r.Zxid <= prev {
			return res, fmt.Errorf("disk: segment %s: zxid %#x at offset %d does not follow %#x: %w", name, r.Zxid, off, prev, ErrCorrupt)
		}
		prev = r.Zxid
		res.count++
		res.last = r.Zxid
		res.end = s.off
		if fn != nil {
			if err := fn(r, off); err != nil {
				return res, err
			}
		}
	}
}

// classifyDamage decides what a fault at off is: a torn final write, a
// corrupt final record (res.tail), or corruption with valid data after it
// (the error). Only what a crash leaves is torn: the file ends inside the
// record, or (a write into preallocated zeros cut short) zeros run from
// where its end byte should be to the end of the file; and in either case
// no valid record follows.
func classifyDamage(name string, f io.ReaderAt, off, size, prev int64, fault recordFault, res *segmentScan) error {
	res.fault = fault
	torn := fault == faultShortHeader || fault == faultShortBody
	if fault == faultBadEOR {
		n := int64(int32(readUint32(f, off+8)))
		eor := off + recordPrefixSize + n
		zero, err := allZero(f, eor, size)
		if err != nil {
			return fmt.Errorf("disk: read segment %s at offset %d: %w", name, eor, err)
		}
		torn = zero
	}
	if torn && fault != faultShortHeader {
		whole, err := wholeBeforeItsLength(f, off, size)
		if err != nil {
			return fmt.Errorf("disk: read segment %s at offset %d: %w", name, off, err)
		}
		if whole {
			// A flipped bit in the length looks like a write cut short
			// (the length runs past the end of the file, or into the
			// preallocation's zeros), but a torn write leaves a record
			// without its end: this one is whole, and it may hold an
			// acknowledged txn.
			torn, res.fault = false, faultWrongLength
		}
	}
	at, found, undecided, err := findValidRecord(name, f, off, size, prev)
	if err != nil {
		return err
	}
	if found {
		return fmt.Errorf("disk: segment %s: %s at offset %d, yet a valid record follows at offset %d: %w", name, fault, off, at, ErrCorrupt)
	}
	res.tail = tailCorrupt
	if torn && !undecided {
		// Too much to search to prove it torn counts as corrupt: only an
		// operator may cut it.
		res.tail = tailTorn
	}
	return nil
}

// wholeBeforeItsLength reports whether the record at off, whose length runs
// past its end, is in fact whole: its last byte other than zero (within the
// largest record) is an end-of-record byte, and the Adler32 of the bytes
// before it is the record's checksum. A write cut short leaves a prefix of
// a record, which matches neither but by a 2^-40 chance.
func wholeBeforeItsLength(f io.ReaderAt, off, size int64) (bool, error) {
	start := off + recordPrefixSize
	end := min(size, start+MaxRecordSize+1)
	if end-start < TxnHeaderSize+1 {
		return false, nil
	}
	b := make([]byte, end-start)
	if _, err := f.ReadAt(b, start); err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	p := len(b) - 1
	for p >= 0 && b[p] == 0 {
		p--
	}
	if p < TxnHeaderSize || b[p] != eorByte {
		return false, nil
	}
	var sum [8]byte
	if _, err := f.ReadAt(sum[:], off); err != nil {
		return false, err
	}
	return uint64(adler32.Checksum(b[:p])) == binary.BigEndian.Uint64(sum[:]), nil
}

// readUint32 reads a big-endian uint32 at off, or 0 if it cannot.
func readUint32(f io.ReaderAt, off int64) uint32 {
	var b [4]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		return 0
	}
	return binary.BigEndian.Uint32(b[:])
}

// isZeroAt reports whether the n bytes at off are zero (false if they
// cannot be read).
func isZeroAt(f io.ReaderAt, off, n int64) bool {
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		return false
	}
	return allZeroBytes(b)
}

func allZeroBytes(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// allZero reports whether bytes [off, size) of f are all zero.
func allZero(f io.ReaderAt, off, size int64) (bool, error) {
	if off >= size {
		return true, nil
	}
	buf := make([]byte, min(size-off, 1<<20))
	for off < size {
		// Holes read as zeros: skip them (a preallocated tail is one).
		next, ok := nextData(f, off)
		if !ok || next >= size {
			return true, nil
		}
		off = next
		n := min(int64(len(buf)), size-off)
		if _, err := f.ReadAt(buf[:n], off); err != nil {
			return false, noEOF(err)
		}
		if !allZeroBytes(buf[:n]) {
			return false, nil
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

// findValidRecord looks for a valid record (plausible length, 'B' after
// it, zxid after prev and at most maxEpochGap epochs on, matching
// checksum) starting anywhere after the damaged record at off. Finding one
// proves the damage is not a torn write. When the tail is too big to check
// within the budget, it reports undecided rather than guess.
func findValidRecord(name string, f io.ReaderAt, off, size, prev int64) (at int64, found, undecided bool, err error) {
	if size-off > tornTailLimit {
		// A big preallocated tail is mostly zeros: look at the part with
		// data only.
		end, err := lastNonZero(f, off, size)
		if err != nil {
			return 0, false, false, fmt.Errorf("disk: read segment %s at offset %d: %w", name, off, err)
		}
		if end-off > tornTailLimit {
			return 0, false, true, nil
		}
		size = end
	}
	tail := make([]byte, size-off)
	if _, err := f.ReadAt(tail, off); err != nil && !(errors.Is(err, io.EOF) && len(tail) == 0) {
		return 0, false, false, fmt.Errorf("disk: read segment %s at offset %d: %w", name, off, noEOF(err))
	}
	budget := int64(tornSearchBudget)
	maxEpoch := uint64(prev)>>32 + maxEpochGap
	for p := 1; p+recordOverhead+TxnHeaderSize <= len(tail); p++ {
		n := int(int32(binary.BigEndian.Uint32(tail[p+8:])))
		if n < TxnHeaderSize || n > MaxRecordSize || p+recordOverhead+n > len(tail) {
			continue
		}
		body := tail[p+recordPrefixSize : p+recordPrefixSize+n]
		if tail[p+recordPrefixSize+n] != eorByte {
			continue
		}
		z, _ := TxnZxid(body)
		if z <= prev || uint64(z)>>32 > maxEpoch {
			continue
		}
		if budget -= int64(n); budget < 0 {
			return 0, false, true, nil
		}
		if uint64(adler32.Checksum(body)) == binary.BigEndian.Uint64(tail[p:]) {
			return off + int64(p), true, false, nil
		}
	}
	return 0, false, false, nil
}

// lastNonZero returns the offset just past the last non-zero byte of
// [off, size), or off when all are zero.
func lastNonZero(f io.ReaderAt, off, size int64) (int64, error) {
	buf := make([]byte, 1<<20)
	end := off
	for p := off; p < size; {
		n := min(int64(len(buf)), size-p)
		if _, err := f.ReadAt(buf[:n], p); err != nil {
			return 0, noEOF(err)
		}
		for i := n - 1; i >= 0; i-- {
			if buf[i] != 0 {
				end = p + i + 1
				break
			}
		}
		p += n
	}
	return end, nil
}

// castagnoli is the CRC-32C table of the snapshot files.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)
