package proto

import (
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// zeroOf returns a new zero record of rec's type.
func zeroOf(rec Record) Record {
	return reflect.New(reflect.TypeOf(rec).Elem()).Interface().(Record)
}

// unhex decodes hex written field by field: spaces and newlines are
// skipped and "#" starts a comment to the end of the line.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	var sb strings.Builder
	for _, line := range strings.Split(s, "\n") {
		line, _, _ = strings.Cut(line, "#")
		sb.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(sb.String())
	require.NoError(t, err)
	return b
}

func TestRoundTripEveryRecord(t *testing.T) {
	for _, s := range sampleRecords() {
		t.Run(s.name, func(t *testing.T) {
			b := Marshal(s.rec)
			got := zeroOf(s.rec)
			require.NoError(t, Unmarshal(b, got))
			require.Equal(t, s.rec, got)
			require.Equal(t, b, Marshal(got))

			// Trailing garbage is ignored, as in Java.
			got = zeroOf(s.rec)
			require.NoError(t, Unmarshal(append(append([]byte{}, b...), 0xde, 0xad), got))
			if _, ok := s.rec.(*ConnectRequest); !ok {
				if _, ok := s.rec.(*ConnectResponse); !ok {
					require.Equal(t, s.rec, got)
				}
			}

			if s.op != 0 {
				req, err := DecodeRequest(s.op, b)
				require.NoError(t, err)
				require.Equal(t, s.rec, req)
			}
			if s.resp != 0 {
				resp, err := DecodeResponse(s.resp, b)
				require.NoError(t, err)
				require.Equal(t, s.rec, resp)
			}
		})
	}
}

func TestTruncatedInputsFail(t *testing.T) {
	for _, s := range sampleRecords() {
		t.Run(s.name, func(t *testing.T) {
			b := Marshal(s.rec)
			_, optionalTail := s.rec.(*ConnectRequest)
			if _, ok := s.rec.(*ConnectResponse); ok {
				optionalTail = true
			}
			for i := 0; i < len(b); i++ {
				got := zeroOf(s.rec)
				err := Unmarshal(b[:i], got)
				if optionalTail && i == len(b)-1 && reflect.ValueOf(s.rec).Elem().FieldByName("HasReadOnly").Bool() {
					require.NoError(t, err, "prefix %d: readOnly byte is optional", i)
					continue
				}
				require.Error(t, err, "prefix %d of %d", i, len(b))
				require.ErrorIs(t, err, ErrMarshallingError)
				if s.op != 0 {
					_, err := DecodeRequest(s.op, b[:i])
					require.ErrorIs(t, err, ErrMarshallingError, "prefix %d", i)
				}
			}
		})
	}
}

func TestGoldenConnectRequest(t *testing.T) {
	// go-zk's 44-byte frame: no readOnly byte.
	b44 := unhex(t, `
		00000000  # protocolVersion
		0000000000000000  # lastZxidSeen
		00007530  # timeOut 30000
		0000000000000000  # sessionId
		00000010 00000000000000000000000000000000  # passwd[16]`)
	require.Len(t, b44, 44)
	want := &ConnectRequest{TimeOut: 30000, Passwd: make([]byte, 16)}
	var got ConnectRequest
	require.NoError(t, Unmarshal(b44, &got))
	require.Equal(t, want, &got)
	require.False(t, got.HasReadOnly)
	require.Equal(t, b44, Marshal(want))

	// Java's 45-byte frame with readOnly = true.
	b45 := append(append([]byte{}, b44...), 0x01)
	require.NoError(t, Unmarshal(b45, &got))
	require.True(t, got.HasReadOnly)
	require.True(t, got.ReadOnly)
	require.Equal(t, b45, Marshal(&got))

	// The reply mirrors the request's shape.
	resp := ConnectResponse{TimeOut: 30000, SessionID: 1, Passwd: make([]byte, 16)}
	require.Len(t, Marshal(&resp), 36)
	resp.HasReadOnly = true
	require.Len(t, Marshal(&resp), 37)
}

func TestGoldenStat(t *testing.T) {
	b := unhex(t, `
		0000000100000001  # czxid
		0000000100000002  # mzxid
		0000018bcfe56800  # ctime
		0000018bcfe5687b  # mtime
		00000003  # version
		00000004  # cversion
		00000005  # aversion
		0100000000001234  # ephemeralOwner
		0000000b  # dataLength
		00000002  # numChildren
		0000000100000003  # pzxid`)
	require.Len(t, b, StatSize)
	require.Equal(t, b, Marshal(&sampleStat))
	var s Stat
	require.NoError(t, Unmarshal(b, &s))
	require.Equal(t, sampleStat, s)
}

func TestGoldenMulti(t *testing.T) {
	b := unhex(t, `
		00000001 00 ffffffff  # header create
		00000002 2f61  # path "/a"
		00000001 78  # data "x"
		00000001  # one ACL
		0000001f 00000005 776f726c64 00000006 616e796f6e65  # ALL world:anyone
		00000000  # flags
		00000002 00 ffffffff  # header delete
		00000002 2f62  # path "/b"
		ffffffff  # version -1
		ffffffff 01 ffffffff  # done`)
	want := &MultiRequest{Ops: []MultiOp{
		{Type: OpCreate, Req: &CreateRequest{Path: "/a", Data: []byte("x"), ACL: OpenACLUnsafe}},
		{Type: OpDelete, Req: &DeleteRequest{Path: "/b", Version: -1}},
	}}
	require.Equal(t, b, Marshal(want))
	got, err := DecodeRequest(OpMulti, b)
	require.NoError(t, err)
	require.Equal(t, want, got)

	_, err = DecodeRequest(OpMultiRead, b)
	require.ErrorIs(t, err, ErrMarshallingError, "multiRead must refuse write ops")

	resp := unhex(t, `
		00000001 00 00000000 00000002 2f61  # create result
		00000002 00 00000000  # delete result
		ffffffff 01 ffffffff`)
	var mr MultiResponse
	require.NoError(t, Unmarshal(resp, &mr))
	require.Equal(t, []MultiResult{{Type: OpCreate, Resp: &CreateResponse{Path: "/a"}}, {Type: OpDelete}}, mr.Results)
	require.Equal(t, resp, Marshal(&mr))
}

func TestGoldenNotification(t *testing.T) {
	got := EncodeNotification(5, WatcherEvent{Type: EventNodeCreated, State: StateSyncConnected, Path: "/a"})
	require.Equal(t, unhex(t, `
		0000001e  # length 30
		ffffffff  # xid -1
		0000000000000005  # zxid
		00000000  # err
		00000001 00000003 00000002 2f61`), got)

	var ev WatcherEvent
	hdr, err := DecodeReply(got[4:], &ev)
	require.NoError(t, err)
	require.Equal(t, ReplyHeader{Xid: -1, Zxid: 5}, hdr)
	require.Equal(t, "/a", ev.Path)
}

func TestNullsReadAsEmpty(t *testing.T) {
	// Id with both strings null (kazoo's auth:"").
	var id Id
	require.NoError(t, Unmarshal(unhex(t, "ffffffff ffffffff"), &id))
	require.Equal(t, Id{}, id)

	// Null children vector.
	var gc GetChildrenResponse
	require.NoError(t, Unmarshal(unhex(t, "ffffffff"), &gc))
	require.Empty(t, gc.Children)

	// Null data, null ACL vector in a create.
	var cr CreateRequest
	require.NoError(t, Unmarshal(unhex(t, "00000002 2f61 ffffffff ffffffff 00000000"), &cr))
	require.Equal(t, CreateRequest{Path: "/a"}, cr)

	// Empty things are written as empty, never null (go-zk cannot read -1).
	require.Equal(t, unhex(t, "00000000 00000000"), Marshal(&Id{}))
	require.Equal(t, unhex(t, "00000000"), Marshal(&GetChildrenResponse{}))
	require.Equal(t, unhex(t, "00000000"), Marshal(&WhoAmIResponse{}))
	// Null data stays null: every client accepts a null buffer.
	require.Equal(t, unhex(t, "ffffffff"), Marshal(&GetSASLRequest{}))
}

func TestHugeLengthsRefusedWithoutAllocating(t *testing.T) {
	for name, b := range map[string]string{
		"string":     "7fffffff 00",
		"negative":   "fffffffe",
		"vector":     "7fffffff 00000000",
		"aclVector":  "00000002 2f61 ffffffff 10000000 00000000",
		"whoAmI":     "40000000 00000000 00000000",
		"bufferNull": "00000001 2f",
	} {
		t.Run(name, func(t *testing.T) {
			var rec Record
			switch name {
			case "vector":
				rec = &GetChildrenResponse{}
			case "aclVector", "bufferNull":
				rec = &CreateRequest{}
			case "whoAmI":
				rec = &WhoAmIResponse{}
			default:
				rec = &SyncRequest{}
			}
			err := Unmarshal(unhex(t, b), rec)
			require.ErrorIs(t, err, ErrMarshallingError)
		})
	}
}

func TestDecodeRequestErrors(t *testing.T) {
	for _, op := range []OpCode{0, 10, OpCreateSession, OpError, 23, 99, 108, 1 << 30} {
		_, err := DecodeRequest(op, nil)
		require.ErrorIs(t, err, ErrUnimplemented, "op %v", op)
	}
	for _, op := range []OpCode{OpPing, OpCloseSession, OpWhoAmI} {
		rec, err := DecodeRequest(op, nil)
		require.NoError(t, err)
		require.Equal(t, &EmptyRecord{}, rec)
	}

	_, err := DecodeRequest(OpGetData, unhex(t, "00000002 2f61"))
	require.ErrorIs(t, err, ErrMarshallingError)
	require.ErrorIs(t, err, ErrShortBuffer)

	hdr, _, err := DecodeRequestFrame(unhex(t, "00000009 0000006c"))
	require.ErrorIs(t, err, ErrUnimplemented)
	require.Equal(t, RequestHeader{Xid: 9, Type: 108}, hdr)
	hdr, rec, err := DecodeRequestFrame(unhex(t, "00000009 0000006b"+"00000009 00000009"))
	_ = hdr
	require.NoError(t, err)
	require.Equal(t, &EmptyRecord{}, rec)
}

func TestMultiRequestKinds(t *testing.T) {
	read := Marshal(&MultiRequest{Ops: []MultiOp{{Type: OpGetData, Req: &GetDataRequest{Path: "/a"}}}})
	write := Marshal(&MultiRequest{Ops: []MultiOp{{Type: OpDelete, Req: &DeleteRequest{Path: "/a"}}}})
	mixed := Marshal(&MultiRequest{Ops: []MultiOp{
		{Type: OpDelete, Req: &DeleteRequest{Path: "/a"}},
		{Type: OpGetData, Req: &GetDataRequest{Path: "/a"}},
	}})
	bad := Marshal(&MultiRequest{Ops: []MultiOp{{Type: OpExists, Req: &ExistsRequest{Path: "/a"}}}})

	_, err := DecodeRequest(OpMulti, read)
	require.ErrorIs(t, err, ErrMarshallingError)
	_, err = DecodeRequest(OpMultiRead, write)
	require.ErrorIs(t, err, ErrMarshallingError)
	for _, op := range []OpCode{OpMulti, OpMultiRead} {
		_, err = DecodeRequest(op, mixed)
		require.ErrorIs(t, err, ErrMarshallingError)
		_, err = DecodeRequest(op, bad)
		require.ErrorIs(t, err, ErrMarshallingError)
	}
	var m MultiRequest
	require.ErrorIs(t, Unmarshal(mixed, &m), ErrMarshallingError)
	require.Nil(t, m.Ops)
	require.NoError(t, Unmarshal(read, &m))
	require.Len(t, m.Ops, 1)

	// An empty multi is legal; a nil Req is written as the zero record.
	require.Equal(t, unhex(t, "ffffffff 01 ffffffff"), Marshal(&MultiRequest{}))
	rt, err := DecodeRequest(OpMulti, Marshal(&MultiRequest{Ops: []MultiOp{{Type: OpCheck}}}))
	require.NoError(t, err)
	require.Equal(t, &MultiRequest{Ops: []MultiOp{{Type: OpCheck, Req: &CheckVersionRequest{}}}}, rt)

	// Bad result types in a response.
	var mr MultiResponse
	err = Unmarshal(unhex(t, "00000003 00 00000000 ffffffff 01 ffffffff"), &mr)
	require.ErrorIs(t, err, ErrMarshallingError)
	// A failed op with no Resp gets ErrorResponse{Err}.
	require.Equal(t, unhex(t, "ffffffff 00 ffffff9b ffffff9b ffffffff 01 ffffffff"),
		Marshal(&MultiResponse{Results: []MultiResult{{Type: OpError, Err: ErrNoNode}}}))
}

func TestReplyHelpers(t *testing.T) {
	frame := EncodeReply(ReplyHeader{Xid: 3, Zxid: 8}, &GetDataResponse{Data: []byte("v"), Stat: sampleStat})
	require.Len(t, frame, 4+16+4+1+StatSize)
	var gd GetDataResponse
	hdr, err := DecodeReply(frame[4:], &gd)
	require.NoError(t, err)
	require.Equal(t, ReplyHeader{Xid: 3, Zxid: 8}, hdr)
	require.Equal(t, []byte("v"), gd.Data)

	// Error replies are header only; the body is not read.
	frame = EncodeReply(ReplyHeader{Xid: 4, Zxid: 8, Err: ErrNoNode}, nil)
	require.Len(t, frame, 20)
	hdr, err = DecodeReply(frame[4:], &gd)
	require.NoError(t, err)
	require.Equal(t, ErrNoNode, hdr.Err)
	require.True(t, errors.Is(hdr.Err, ErrNoNode))

	req := EncodeRequest(RequestHeader{Xid: 1, Type: OpSync}, &SyncRequest{Path: "/x"})
	h, rec, err := DecodeRequestFrame(req[4:])
	require.NoError(t, err)
	require.Equal(t, RequestHeader{Xid: 1, Type: OpSync}, h)
	require.Equal(t, &SyncRequest{Path: "/x"}, rec)

	ping := EncodeRequest(RequestHeader{Xid: XidPing, Type: OpPing}, nil)
	require.Equal(t, unhex(t, "00000008 fffffffe 0000000b"), ping)

	_, err = DecodeResponse(OpNotification, nil)
	require.ErrorIs(t, err, ErrUnimplemented)
	rec, err = DecodeResponse(OpDelete, nil)
	require.NoError(t, err)
	require.Nil(t, rec)
}
