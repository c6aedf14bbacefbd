package proto

import (
	"errors"
	"fmt"
)

// marshalError makes any decoding failure match ErrMarshallingError, the
// code ZooKeeper uses for a request it cannot parse, while keeping the cause
// (ErrShortBuffer, ErrBadLength …) reachable through errors.Is.
func marshalError(err error) error {
	if err == nil || errors.Is(err, ErrMarshallingError) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrMarshallingError, err)
}

// Marshal returns the jute encoding of rec, without a frame.
func Marshal(rec Record) []byte {
	e := NewEncoder(nil)
	rec.Encode(e)
	return e.Bytes()
}

// Unmarshal decodes rec from body. Trailing bytes are ignored, as Java does;
// a truncated or malformed body gives an error wrapping ErrMarshallingError.
func Unmarshal(body []byte, rec Record) error {
	return marshalError(rec.Decode(NewDecoder(body)))
}

// NewRequest returns the zero request record for a client opcode: an
// *EmptyRecord for ping, closeSession and whoAmI, a *MultiRequest for multi
// and multiRead. Opcodes a client never sends get an error wrapping
// ErrUnimplemented. check (13) and deleteContainer (20) are decodable here
// but not valid top-level client requests: the server must refuse them.
func NewRequest(op OpCode) (Record, error) {
	switch op {
	case OpCreate, OpCreate2, OpCreateContainer:
		return &CreateRequest{}, nil
	case OpCreateTTL:
		return &CreateTTLRequest{}, nil
	case OpDelete:
		return &DeleteRequest{}, nil
	case OpExists:
		return &ExistsRequest{}, nil
	case OpGetData:
		return &GetDataRequest{}, nil
	case OpSetData:
		return &SetDataRequest{}, nil
	case OpGetACL:
		return &GetACLRequest{}, nil
	case OpSetACL:
		return &SetACLRequest{}, nil
	case OpGetChildren:
		return &GetChildrenRequest{}, nil
	case OpSync:
		return &SyncRequest{}, nil
	case OpPing, OpCloseSession, OpWhoAmI:
		return &EmptyRecord{}, nil
	case OpGetChildren2:
		return &GetChildren2Request{}, nil
	case OpCheck:
		return &CheckVersionRequest{}, nil
	case OpMulti, OpMultiRead:
		return &MultiRequest{}, nil
	case OpReconfig:
		return &ReconfigRequest{}, nil
	case OpCheckWatches:
		return &CheckWatchesRequest{}, nil
	case OpRemoveWatches:
		return &RemoveWatchesRequest{}, nil
	case OpDeleteContainer:
		return &DeleteContainerRequest{}, nil
	case OpAuth:
		return &AuthPacket{}, nil
	case OpSetWatches:
		return &SetWatches{}, nil
	case OpSasl:
		return &GetSASLRequest{}, nil
	case OpGetEphemerals:
		return &GetEphemeralsRequest{}, nil
	case OpGetAllChildrenNumber:
		return &GetAllChildrenNumberRequest{}, nil
	case OpSetWatches2:
		return &SetWatches2{}, nil
	case OpAddWatch:
		return &AddWatchRequest{}, nil
	}
	return nil, fmt.Errorf("%w: opcode %v", ErrUnimplemented, op)
}

// DecodeRequest decodes the body of a request of type op (the bytes after
// the RequestHeader). multi accepts only write ops and multiRead only read
// ops. Unknown opcodes give an error wrapping ErrUnimplemented; truncated or
// malformed bodies one wrapping ErrMarshallingError. Trailing bytes are
// ignored, as Java does.
func DecodeRequest(op OpCode, body []byte) (Record, error) {
	rec, err := NewRequest(op)
	if err != nil {
		return nil, err
	}
	d := NewDecoder(body)
	if op == OpMulti || op == OpMultiRead {
		m, err := DecodeMultiRequest(d, op == OpMultiRead)
		if err != nil {
			return nil, marshalError(err)
		}
		return m, nil
	}
	if err := rec.Decode(d); err != nil {
		return nil, marshalError(err)
	}
	return rec, nil
}

// DecodeRequestFrame decodes a whole request frame body (RequestHeader then
// record). The header is returned even when the record fails, so the server
// can answer with the right xid before closing.
func DecodeRequestFrame(body []byte) (RequestHeader, Record, error) {
	var hdr RequestHeader
	d := NewDecoder(body)
	if err := hdr.Decode(d); err != nil {
		return hdr, nil, marshalError(err)
	}
	rec, err := DecodeRequest(hdr.Type, body[d.Offset():])
	return hdr, rec, err
}

// EncodeRequest returns a complete request frame (length prefix,
// RequestHeader, record); req may be nil for ops with no body. It is the
// client half of the protocol, for tests and tools.
func EncodeRequest(hdr RequestHeader, req Record) []byte {
	return AppendRecords(nil, &hdr, req)
}

// EncodeReply returns a complete reply frame (length prefix, ReplyHeader,
// body); body nil gives a header-only reply, as for errors.
func EncodeReply(hdr ReplyHeader, body Record) []byte {
	return AppendRecords(nil, &hdr, body)
}

// EncodeNotification returns a complete watch notification frame: a
// ReplyHeader with xid -1 and err 0, then the event.
func EncodeNotification(zxid int64, ev WatcherEvent) []byte {
	return EncodeReply(ReplyHeader{Xid: XidNotification, Zxid: zxid, Err: ErrOK}, &ev)
}

// NewResponse returns the zero success-reply body for op, or nil when the
// reply is header-only (delete, ping, auth …). ok is false for opcodes with
// no reply at all.
func NewResponse(op OpCode) (body Record, ok bool) {
	switch op {
	case OpCreate:
		return &CreateResponse{}, true
	case OpCreate2, OpCreateContainer, OpCreateTTL:
		return &Create2Response{}, true
	case OpExists:
		return &ExistsResponse{}, true
	case OpGetData, OpReconfig:
		return &GetDataResponse{}, true
	case OpSetData:
		return &SetDataResponse{}, true
	case OpGetACL:
		return &GetACLResponse{}, true
	case OpSetACL:
		return &SetACLResponse{}, true
	case OpGetChildren:
		return &GetChildrenResponse{}, true
	case OpSync:
		return &SyncResponse{}, true
	case OpGetChildren2:
		return &GetChildren2Response{}, true
	case OpMulti, OpMultiRead:
		return &MultiResponse{}, true
	case OpSasl:
		return &SetSASLResponse{}, true
	case OpGetEphemerals:
		return &GetEphemeralsResponse{}, true
	case OpGetAllChildrenNumber:
		return &GetAllChildrenNumberResponse{}, true
	case OpAddWatch:
		return &ErrorResponse{}, true
	case OpWhoAmI:
		return &WhoAmIResponse{}, true
	case OpDelete, OpPing, OpCheck, OpCheckWatches, OpRemoveWatches, OpDeleteContainer,
		OpAuth, OpSetWatches, OpSetWatches2, OpCloseSession:
		return nil, true
	}
	return nil, false
}

// DecodeResponse decodes the success-reply body (after the ReplyHeader) of a
// request of type op; nil, nil for header-only replies. Unknown opcodes give
// an error wrapping ErrUnimplemented.
func DecodeResponse(op OpCode, body []byte) (Record, error) {
	rec, ok := NewResponse(op)
	if !ok {
		return nil, fmt.Errorf("%w: opcode %v", ErrUnimplemented, op)
	}
	if rec == nil {
		return nil, nil
	}
	if err := Unmarshal(body, rec); err != nil {
		return nil, err
	}
	return rec, nil
}

// DecodeReply decodes a reply frame body: the ReplyHeader and, when the
// header carries no error and resp is not nil, the body into resp. A
// notification (xid -1) decodes its WatcherEvent into resp the same way.
func DecodeReply(body []byte, resp Record) (ReplyHeader, error) {
	var hdr ReplyHeader
	d := NewDecoder(body)
	if err := hdr.Decode(d); err != nil {
		return hdr, marshalError(err)
	}
	if hdr.Err != ErrOK || resp == nil {
		return hdr, nil
	}
	return hdr, marshalError(resp.Decode(d))
}
