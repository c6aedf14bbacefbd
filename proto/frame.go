package proto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrFrameTooLarge is matched (errors.Is) by every *FrameTooLargeError, for
// callers that only need to know the peer broke the size limit.
var ErrFrameTooLarge = errors.New("proto: frame length out of range")

// FrameTooLargeError reports a frame whose length prefix is negative or above
// the limit; ZooKeeper closes the connection in that case, and so should we,
// after logging Len and Max.
type FrameTooLargeError struct {
	Len int64 // the length prefix as sent (negative for a corrupt prefix)
	Max int   // the limit in force
}

// Error describes the offending length.
func (e *FrameTooLargeError) Error() string {
	return fmt.Sprintf("proto: frame length %d out of range [0, %d]", e.Len, e.Max)
}

// Is makes errors.Is(err, ErrFrameTooLarge) true.
func (e *FrameTooLargeError) Is(target error) bool { return target == ErrFrameTooLarge }

// ReadFrame reads one length-prefixed frame from r and returns its body
// (without the length). The body reuses buf's storage when it is large
// enough, so it is only valid until the next call with the same buf. A length
// < 0 or > max yields a *FrameTooLargeError before anything is allocated; a
// valid length is allocated in full up front, so max bounds the memory a peer
// can make us hold per connection. A clean end of stream before the first
// byte is io.EOF; one inside a frame is io.ErrUnexpectedEOF.
func ReadFrame(r io.Reader, buf []byte, max int) ([]byte, error) {
	var hdr []byte
	if cap(buf) >= 4 {
		hdr = buf[:4] // no allocation per frame when the caller reuses buf
	} else {
		hdr = make([]byte, 4)
	}
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, err
	}
	n := int64(int32(binary.BigEndian.Uint32(hdr)))
	if n < 0 || n > int64(max) {
		return nil, &FrameTooLargeError{Len: n, Max: max}
	}
	if buf == nil || int64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// AppendFrame appends body to dst behind its int32 big-endian length prefix.
func AppendFrame(dst, body []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(body)))
	return append(dst, body...)
}

// WriteFrame writes body to w as one frame in a single Write, so frames from
// one goroutine never interleave on the wire.
func WriteFrame(w io.Writer, body []byte) error {
	_, err := w.Write(AppendFrame(make([]byte, 0, 4+len(body)), body))
	return err
}

// AppendRecords appends the records to dst as one frame: it reserves the
// length prefix, encodes the records in order and patches the length, so a
// reply needs a single buffer and no copy.
func AppendRecords(dst []byte, recs ...Record) []byte {
	start := len(dst)
	e := NewEncoder(append(dst, 0, 0, 0, 0))
	for _, rec := range recs {
		if rec != nil {
			rec.Encode(e)
		}
	}
	out := e.Bytes()
	binary.BigEndian.PutUint32(out[start:], uint32(len(out)-start-4))
	return out
}
