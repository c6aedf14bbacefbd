package quorum

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// chunk bounds each allocation while a long field is read, so a length
// prefix within the limit but larger than the bytes that follow costs at most
// what actually arrived plus one chunk.
const chunk = 64 << 10

// reader reads big-endian jute primitives from a stream. The first error
// sticks; later reads return zero values.
type reader struct {
	r   io.Reader
	n   int64 // bytes consumed
	err error
	b   [8]byte
	// tee, when set, receives every byte read (snapshot body copy).
	tee io.Writer
	// skipBuf is skip's buffer, allocated on the first skip: one per
	// reader, not one per field skipped.
	skipBuf []byte
}

func (s *reader) fail(err error) {
	if s.err == nil {
		s.err = err
	}
}

func (s *reader) full(b []byte) {
	if s.err != nil {
		return
	}
	n, err := io.ReadFull(s.r, b)
	s.n += int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) && n == 0 && s.n == 0 {
			s.err = io.EOF // clean end before a record started
			return
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		s.err = err
		return
	}
	if s.tee != nil {
		if _, err := s.tee.Write(b); err != nil {
			s.err = fmt.Errorf("quorum: copy: %w", err)
		}
	}
}

func (s *reader) int32() int32 {
	s.full(s.b[:4])
	if s.err != nil {
		return 0
	}
	return int32(binary.BigEndian.Uint32(s.b[:4]))
}

func (s *reader) int64() int64 {
	s.full(s.b[:8])
	if s.err != nil {
		return 0
	}
	return int64(binary.BigEndian.Uint64(s.b[:8]))
}

// bytes reads n bytes, growing the result chunk by chunk.
func (s *reader) bytes(n int) []byte {
	if s.err != nil {
		return nil
	}
	out := make([]byte, 0, min(n, chunk))
	for len(out) < n && s.err == nil {
		k := min(n-len(out), chunk)
		start := len(out)
		out = append(out, make([]byte, k)...)
		s.full(out[start:])
	}
	if s.err != nil {
		return nil
	}
	return out
}

// skip reads and drops n bytes (still teed).
func (s *reader) skip(n int) {
	if s.skipBuf == nil {
		s.skipBuf = make([]byte, 4096)
	}
	buf := s.skipBuf
	for n > 0 && s.err == nil {
		k := min(n, len(buf))
		s.full(buf[:k])
		n -= k
	}
}

// length reads a jute length prefix or vector count: -1 (null) or
// 0..limit. what and kind name it in the error ("data" "length",
// "authinfo" "count"), joined only then: a concatenation per field
// allocated on every packet.
func (s *reader) length(what, kind string, limit int) (int, bool) {
	n := s.int32()
	if s.err != nil {
		return 0, false
	}
	if n == -1 {
		return -1, true
	}
	if n < 0 {
		s.fail(fmt.Errorf("%w: %s %s %d", ErrMalformed, what, kind, n))
		return 0, false
	}
	if int64(n) > int64(limit) {
		s.fail(fmt.Errorf("%w: %s %s %d exceeds limit %d", ErrTooLarge, what, kind, n, limit))
		return 0, false
	}
	return int(n), true
}

// buffer reads a jute buffer; null reads as nil.
func (s *reader) buffer(what string, limit int) []byte {
	n, ok := s.length(what, "length", limit)
	if !ok || n < 0 {
		return nil
	}
	b := s.bytes(n)
	if b == nil && s.err == nil {
		b = []byte{}
	}
	return b
}

// str reads a jute ustring; null reads as "".
func (s *reader) str(what string, limit int) string {
	n, ok := s.length(what, "length", limit)
	if !ok || n < 0 {
		return ""
	}
	return string(s.bytes(n))
}

// count reads a vector count: -1 (null, returned as -1) or 0..limit.
func (s *reader) count(what string, limit int) int {
	n, _ := s.length(what, "count", limit)
	return n
}
