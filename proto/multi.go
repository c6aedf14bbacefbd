package proto

import "fmt"

// minMultiHeaderSize is the encoded size of a MultiHeader; every op of a
// multi costs at least this much, which bounds the op count by the input.
const minMultiHeaderSize = 4 + 1 + 4

// multiDone is the header that ends a multi request and response.
var multiDone = MultiHeader{Type: OpError, Done: true, Err: -1}

// Encode writes the MultiHeader.
func (h *MultiHeader) Encode(e *Encoder) {
	e.WriteInt(int32(h.Type))
	e.WriteBool(h.Done)
	e.WriteInt(int32(h.Err))
}

// Decode reads the MultiHeader.
func (h *MultiHeader) Decode(d *Decoder) error {
	h.Type = OpCode(d.ReadInt())
	h.Done = d.ReadBool()
	h.Err = ErrCode(d.ReadInt())
	return d.Err()
}

// multiKind says which op set a multi body may hold.
type multiKind int

const (
	multiInfer multiKind = iota // take the set of the first op
	multiWrite                  // multi (14)
	multiRead                   // multiRead (22)
)

func (k multiKind) String() string {
	if k == multiRead {
		return "multiRead"
	}
	return "multi"
}

// NewMultiOpRequest returns a zero request record for an op of a multi
// (write set) or multiRead (read set), or nil when op may not appear in
// either. It tells decoders which record follows a MultiHeader.
func NewMultiOpRequest(op OpCode) Record {
	switch op {
	case OpCreate, OpCreate2, OpCreateContainer:
		return &CreateRequest{}
	case OpCreateTTL:
		return &CreateTTLRequest{}
	case OpDelete:
		return &DeleteRequest{}
	case OpSetData:
		return &SetDataRequest{}
	case OpCheck:
		return &CheckVersionRequest{}
	case OpGetChildren:
		return &GetChildrenRequest{}
	case OpGetData:
		return &GetDataRequest{}
	}
	return nil
}

func opKind(op OpCode) multiKind {
	switch op {
	case OpCreate, OpCreate2, OpCreateContainer, OpCreateTTL, OpDelete, OpSetData, OpCheck:
		return multiWrite
	case OpGetChildren, OpGetData:
		return multiRead
	}
	return multiInfer
}

// Encode writes the ops, each behind a MultiHeader{type, false, -1}, and the
// closing {-1, true, -1}. A nil Req is written as the zero record of its type
// so the output always decodes.
func (r *MultiRequest) Encode(e *Encoder) {
	for _, op := range r.Ops {
		h := MultiHeader{Type: op.Type, Done: false, Err: -1}
		h.Encode(e)
		req := op.Req
		if req == nil {
			req = NewMultiOpRequest(op.Type)
		}
		if req != nil {
			req.Encode(e)
		}
	}
	multiDone.Encode(e)
}

// Decode reads a multi or multiRead body, taking the op set from the first
// op; use DecodeMultiRequest when the opcode is known, so a multi of read ops
// is refused. Mixed or unknown op types fail with ErrMarshallingError, as in
// ZooKeeper.
func (r *MultiRequest) Decode(d *Decoder) error { return r.decode(d, multiInfer) }

// DecodeMultiRequest reads the body of a multi (read false, opcode 14) or
// multiRead (read true, opcode 22). Any failure, including an op outside the
// set, gives an error wrapping ErrMarshallingError.
func DecodeMultiRequest(d *Decoder, read bool) (*MultiRequest, error) {
	kind := multiWrite
	if read {
		kind = multiRead
	}
	r := &MultiRequest{}
	if err := r.decode(d, kind); err != nil {
		return nil, marshalError(err)
	}
	return r, nil
}

func (r *MultiRequest) decode(d *Decoder, kind multiKind) error {
	r.Ops = nil
	for d.Err() == nil {
		var h MultiHeader
		if h.Decode(d) != nil || h.Done {
			break
		}
		k := opKind(h.Type)
		if k == multiInfer {
			d.Fail(fmt.Errorf("%w: op %v not allowed in multi", ErrMarshallingError, h.Type))
			break
		}
		if kind == multiInfer {
			kind = k
		}
		if k != kind {
			d.Fail(fmt.Errorf("%w: op %v not allowed in %v", ErrMarshallingError, h.Type, kind))
			break
		}
		req := NewMultiOpRequest(h.Type)
		if req.Decode(d) != nil {
			break
		}
		r.Ops = append(r.Ops, MultiOp{Type: h.Type, Req: req})
	}
	if d.Err() != nil {
		r.Ops = nil
	}
	return d.Err()
}

// NewMultiResult returns a zero body record for a multi result of type op,
// or nil when the result has no body (delete, check). ok is false for types
// that cannot appear in a multi response.
func NewMultiResult(op OpCode) (body Record, ok bool) {
	switch op {
	case OpError:
		return &ErrorResponse{}, true
	case OpCreate:
		return &CreateResponse{}, true
	case OpCreate2:
		return &Create2Response{}, true
	case OpSetData:
		return &SetDataResponse{}, true
	case OpDelete, OpCheck:
		return nil, true
	case OpGetChildren:
		return &GetChildrenResponse{}, true
	case OpGetData:
		return &GetDataResponse{}, true
	}
	return nil, false
}

// Encode writes each result as MultiHeader{Type, false, Err} plus its body,
// then {-1, true, -1}. A failed op (OpError) with no Resp gets
// ErrorResponse{Err}; other nil bodies are written as the zero record of the
// type, so the output always decodes.
func (r *MultiResponse) Encode(e *Encoder) {
	for _, res := range r.Results {
		h := MultiHeader{Type: res.Type, Done: false, Err: res.Err}
		h.Encode(e)
		body := res.Resp
		if body == nil {
			if res.Type == OpError {
				body = &ErrorResponse{Err: res.Err}
			} else {
				body, _ = NewMultiResult(res.Type)
			}
		}
		if body != nil {
			body.Encode(e)
		}
	}
	multiDone.Encode(e)
}

// Decode reads a multi response, choosing each body from its header type.
// Resp is nil for delete and check results.
func (r *MultiResponse) Decode(d *Decoder) error {
	r.Results = nil
	for d.Err() == nil {
		var h MultiHeader
		if h.Decode(d) != nil || h.Done {
			break
		}
		body, ok := NewMultiResult(h.Type)
		if !ok {
			d.Fail(fmt.Errorf("%w: result type %v not allowed in multi response", ErrMarshallingError, h.Type))
			break
		}
		if body != nil && body.Decode(d) != nil {
			break
		}
		r.Results = append(r.Results, MultiResult{Type: h.Type, Err: h.Err, Resp: body})
	}
	if d.Err() != nil {
		r.Results = nil
	}
	return d.Err()
}
