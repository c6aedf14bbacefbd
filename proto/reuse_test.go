package proto

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzRequestDecoder checks RequestDecoder against DecodeRequestFrame: the
// same header, record and error class for any bytes, and a record Keep
// copied unchanged by the next Decode (the decoder reuses its records).
func FuzzRequestDecoder(f *testing.F) {
	for _, s := range sampleRecords() {
		if s.op != 0 {
			f.Add(requestBody(RequestHeader{Xid: 7, Type: s.op}, s.rec), []byte{})
		}
	}
	f.Add(requestBody(RequestHeader{Xid: 1, Type: OpGetData}, &GetDataRequest{Path: "/a", Watch: true}),
		requestBody(RequestHeader{Xid: 2, Type: OpGetData}, &GetDataRequest{Path: "/bb"}))
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 4, 0, 0}, []byte{0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, first, second []byte) {
		var rd RequestDecoder
		hdr, rec, err := rd.Decode(first)
		checkSame(t, first, hdr, rec, err)
		if err != nil {
			return
		}
		kept := rd.Keep(rec)
		require.Equal(t, rec, kept)
		want := Marshal(kept)
		hdr2, rec2, err2 := rd.Decode(second)
		checkSame(t, second, hdr2, rec2, err2)
		require.Equal(t, want, Marshal(kept), "a kept record changed with the next Decode")
	})
}

// checkSame asserts that RequestDecoder's results for body are
// DecodeRequestFrame's.
func checkSame(t *testing.T, body []byte, hdr RequestHeader, rec Record, err error) {
	t.Helper()
	wantHdr, wantRec, wantErr := DecodeRequestFrame(body)
	require.Equal(t, wantHdr, hdr)
	require.Equal(t, wantRec, rec)
	if wantErr == nil {
		require.NoError(t, err)
		return
	}
	require.Error(t, err)
	require.Equal(t, wantErr.Error(), err.Error())
}

func TestRequestDecoderReusesReadRecords(t *testing.T) {
	var rd RequestDecoder
	_, a, err := rd.Decode(requestBody(RequestHeader{Xid: 1, Type: OpGetData}, &GetDataRequest{Path: "/a", Watch: true}))
	require.NoError(t, err)
	kept := rd.Keep(a)
	_, b, err := rd.Decode(requestBody(RequestHeader{Xid: 2, Type: OpGetData}, &GetDataRequest{Path: "/b"}))
	require.NoError(t, err)
	require.Same(t, a, b, "getData records are reused")
	require.Equal(t, &GetDataRequest{Path: "/b"}, b, "no field left over from the previous request")
	require.Equal(t, &GetDataRequest{Path: "/a", Watch: true}, kept)
	_, c, err := rd.Decode(requestBody(RequestHeader{Xid: 3, Type: OpSetData}, &SetDataRequest{Path: "/c", Version: -1}))
	require.NoError(t, err)
	require.Same(t, c, rd.Keep(c), "records of other ops are fresh and kept as they are")
}

func TestReplyEncoderMatchesAppendRecords(t *testing.T) {
	var re ReplyEncoder
	hdr := ReplyHeader{Xid: 5, Zxid: 9, Err: ErrOK}
	body := &GetDataResponse{Data: []byte("value"), Stat: Stat{Version: 3, DataLength: 5}}
	prefix := []byte("xy")
	got := re.Append(append([]byte(nil), prefix...), hdr, body)
	require.Equal(t, AppendRecords(append([]byte(nil), prefix...), &hdr, body), got)
	require.Equal(t, uint32(len(got)-len(prefix)-4), binary.BigEndian.Uint32(got[len(prefix):]))
	errHdr := ReplyHeader{Xid: 6, Zxid: 9, Err: ErrNoNode}
	require.Equal(t, EncodeReply(errHdr, nil), re.Append(nil, errHdr, nil))
}

func BenchmarkRequestDecoderGetData(b *testing.B) {
	frame := requestBody(RequestHeader{Xid: 1, Type: OpGetData}, &GetDataRequest{Path: "/zabkeeper-bench/run-c2d14f408271/node"})
	var rd RequestDecoder
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := rd.Decode(frame); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeGetDataRequest(b *testing.B) {
	frame := requestBody(RequestHeader{Xid: 1, Type: OpGetData}, &GetDataRequest{Path: "/zabkeeper-bench/run-c2d14f408271/node"})
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := DecodeRequestFrame(frame); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReplyEncoderGetData(b *testing.B) {
	resp := &GetDataResponse{Data: make([]byte, 100), Stat: Stat{Czxid: 1, Mzxid: 2, Version: 3, DataLength: 100}}
	hdr := ReplyHeader{Xid: 1, Zxid: 2}
	var re ReplyEncoder
	buf := re.Append(nil, hdr, resp)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = re.Append(buf[:0], hdr, resp)
	}
}
