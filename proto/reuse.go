package proto

import "encoding/binary"

// A server connection decodes a request and encodes a reply per operation;
// with fresh records, decoders and encoders that is several allocations a
// read (BENCHMARKS.md, getpath). RequestDecoder and ReplyEncoder keep that
// state per connection instead.

// RequestDecoder decodes one connection's request frames as
// DecodeRequestFrame does. The reads a server may answer at once (exists,
// getData, getChildren, getChildren2, getACL) are decoded into records it
// owns and overwrites on the next Decode: Keep gives a copy to whoever
// holds such a record longer. Every other request gets a fresh record. One
// goroutine at a time may use it; the zero value is ready.
type RequestDecoder struct {
	d         Decoder
	exists    ExistsRequest
	getData   GetDataRequest
	children  GetChildrenRequest
	children2 GetChildren2Request
	getACL    GetACLRequest
}

// Decode decodes a whole request frame body (RequestHeader then record),
// with DecodeRequestFrame's results and errors.
func (r *RequestDecoder) Decode(body []byte) (RequestHeader, Record, error) {
	var hdr RequestHeader
	r.d = Decoder{buf: body}
	defer func() { r.d = Decoder{} }() // keep no reference to body
	if err := hdr.Decode(&r.d); err != nil {
		return hdr, nil, marshalError(err)
	}
	var rec Record
	switch hdr.Type {
	case OpExists:
		r.exists = ExistsRequest{}
		rec = &r.exists
	case OpGetData:
		r.getData = GetDataRequest{}
		rec = &r.getData
	case OpGetChildren:
		r.children = GetChildrenRequest{}
		rec = &r.children
	case OpGetChildren2:
		r.children2 = GetChildren2Request{}
		rec = &r.children2
	case OpGetACL:
		r.getACL = GetACLRequest{}
		rec = &r.getACL
	default:
		rec, err := DecodeRequest(hdr.Type, body[r.d.Offset():])
		return hdr, rec, err
	}
	if err := rec.Decode(&r.d); err != nil {
		return hdr, nil, marshalError(err)
	}
	return hdr, rec, nil
}

// Keep returns rec, or a copy of it when it is one of r's own records,
// which the next Decode overwrites.
func (r *RequestDecoder) Keep(rec Record) Record {
	switch rec {
	case &r.exists:
		c := r.exists
		return &c
	case &r.getData:
		c := r.getData
		return &c
	case &r.children:
		c := r.children
		return &c
	case &r.children2:
		c := r.children2
		return &c
	case &r.getACL:
		c := r.getACL
		return &c
	}
	return rec
}

// ReplyEncoder appends reply frames as AppendRecords(dst, &hdr, body)
// does, reusing its encoder: nothing is allocated but dst's growth. One
// goroutine at a time may use it; the zero value is ready.
type ReplyEncoder struct {
	e Encoder
}

// Append appends the frame of a reply (length prefix, hdr, body; body
// nil gives a header-only reply) to dst.
func (r *ReplyEncoder) Append(dst []byte, hdr ReplyHeader, body Record) []byte {
	start := len(dst)
	r.e.buf = append(dst, 0, 0, 0, 0)
	hdr.Encode(&r.e)
	if body != nil {
		body.Encode(&r.e)
	}
	out := r.e.buf
	r.e.buf = nil // keep no reference to the frame
	binary.BigEndian.PutUint32(out[start:], uint32(len(out)-start-4))
	return out
}
