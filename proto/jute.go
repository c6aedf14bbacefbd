package proto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrShortBuffer is returned when a record ends before all of its fields were read.
var ErrShortBuffer = errors.New("proto: record truncated")

// ErrBadLength is returned for a negative (other than -1) or oversized length prefix.
var ErrBadLength = errors.New("proto: bad length prefix")

// Encoder appends jute-encoded values to a byte slice. It never fails; the
// caller frames the result.
type Encoder struct {
	buf []byte
}

// NewEncoder returns an Encoder that appends to buf (which may be nil).
func NewEncoder(buf []byte) *Encoder { return &Encoder{buf: buf} }

// Bytes returns the encoded bytes so far.
func (e *Encoder) Bytes() []byte { return e.buf }

// Len returns the number of bytes encoded so far.
func (e *Encoder) Len() int { return len(e.buf) }

// Reset empties the encoder, keeping its capacity.
func (e *Encoder) Reset() { e.buf = e.buf[:0] }

// WriteInt writes a jute int (4 bytes, big-endian).
func (e *Encoder) WriteInt(v int32) { e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(v)) }

// WriteLong writes a jute long (8 bytes, big-endian).
func (e *Encoder) WriteLong(v int64) { e.buf = binary.BigEndian.AppendUint64(e.buf, uint64(v)) }

// WriteBool writes a jute boolean (one byte, 0 or 1).
func (e *Encoder) WriteBool(v bool) {
	if v {
		e.buf = append(e.buf, 1)
	} else {
		e.buf = append(e.buf, 0)
	}
}

// WriteBuffer writes a jute buffer; a nil slice is written as length -1 (null),
// which every client accepts for buffers.
func (e *Encoder) WriteBuffer(b []byte) {
	if b == nil {
		e.WriteInt(-1)
		return
	}
	e.WriteInt(int32(len(b)))
	e.buf = append(e.buf, b...)
}

// WriteString writes a jute ustring. Strings are never written as null: go-zk
// cannot read a -1 string length.
func (e *Encoder) WriteString(s string) {
	e.WriteInt(int32(len(s)))
	e.buf = append(e.buf, s...)
}

// WriteStrings writes a vector<ustring>; nil is written as an empty vector.
func (e *Encoder) WriteStrings(v []string) {
	e.WriteInt(int32(len(v)))
	for _, s := range v {
		e.WriteString(s)
	}
}

// Decoder reads jute-encoded values from a byte slice. Every read is bounds
// checked: lengths are validated against the bytes remaining before anything
// is allocated, so no input can make it panic or allocate without bound.
type Decoder struct {
	buf []byte
	off int
	err error
}

// NewDecoder returns a Decoder over buf.
func NewDecoder(buf []byte) *Decoder { return &Decoder{buf: buf} }

// Err returns the first error met, if any. Reads after an error return zero values.
func (d *Decoder) Err() error { return d.err }

// Remaining returns the number of unread bytes.
func (d *Decoder) Remaining() int { return len(d.buf) - d.off }

// Offset returns the number of bytes consumed.
func (d *Decoder) Offset() int { return d.off }

// Fail records err as the decoder's error unless one is already recorded.
func (d *Decoder) Fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *Decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.buf)-d.off {
		d.err = ErrShortBuffer
		return nil
	}
	b := d.buf[d.off : d.off+n]
	d.off += n
	return b
}

// ReadInt reads a jute int.
func (d *Decoder) ReadInt() int32 {
	b := d.take(4)
	if b == nil {
		return 0
	}
	return int32(binary.BigEndian.Uint32(b))
}

// ReadLong reads a jute long.
func (d *Decoder) ReadLong() int64 {
	b := d.take(8)
	if b == nil {
		return 0
	}
	return int64(binary.BigEndian.Uint64(b))
}

// ReadBool reads a jute boolean; any non-zero byte is true, as in Java.
func (d *Decoder) ReadBool() bool {
	b := d.take(1)
	if b == nil {
		return false
	}
	return b[0] != 0
}

func (d *Decoder) readLen() (int, bool) {
	n := d.ReadInt()
	if d.err != nil {
		return 0, false
	}
	if n == -1 {
		return -1, true
	}
	if n < 0 || int(n) > d.Remaining() {
		d.Fail(fmt.Errorf("%w: %d with %d bytes left", ErrBadLength, n, d.Remaining()))
		return 0, false
	}
	return int(n), true
}

// ReadBuffer reads a jute buffer; null (-1) reads as nil. The result is a copy.
func (d *Decoder) ReadBuffer() []byte {
	n, ok := d.readLen()
	if !ok || n < 0 {
		return nil
	}
	b := d.take(n)
	out := make([]byte, n)
	copy(out, b)
	return out
}

// ReadString reads a jute ustring; null (-1) reads as "" (kazoo sends empty
// strings as null).
func (d *Decoder) ReadString() string {
	n, ok := d.readLen()
	if !ok || n < 0 {
		return ""
	}
	return string(d.take(n))
}

// readNullableString reads a jute ustring and whether it was null (-1).
func (d *Decoder) readNullableString() (string, bool) {
	n, ok := d.readLen()
	if !ok || n < 0 {
		return "", ok && n < 0
	}
	return string(d.take(n)), false
}

// ReadVectorLen reads a vector length and checks that count elements of at
// least minElem bytes each can fit in what remains. Null (-1) reads as 0.
func (d *Decoder) ReadVectorLen(minElem int) int {
	n := d.ReadInt()
	if d.err != nil {
		return 0
	}
	if n == -1 {
		return 0
	}
	if minElem < 1 {
		minElem = 1
	}
	if n < 0 || int64(n)*int64(minElem) > int64(d.Remaining()) || int64(n) > math.MaxInt32 {
		d.Fail(fmt.Errorf("%w: vector of %d with %d bytes left", ErrBadLength, n, d.Remaining()))
		return 0
	}
	return int(n)
}

// ReadStrings reads a vector<ustring>; null reads as nil.
func (d *Decoder) ReadStrings() []string {
	n := d.ReadVectorLen(4)
	if d.err != nil || n == 0 {
		return nil
	}
	out := make([]string, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		out = append(out, d.ReadString())
	}
	return out
}
