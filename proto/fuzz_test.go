package proto

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

// Fuzz targets for every decoder entry point. Each checks that decoding never
// panics and that whatever decodes re-encodes to bytes that decode to the same
// value (the encoding is canonical: null strings become empty, booleans 0/1,
// so it is never longer than the input it came from). Seeds: the sample
// records, the golden vectors and testdata/fuzz/<Name>/, captured from
// go-zookeeper/zk by corpus_capture_test.go.

func FuzzReadFrame(f *testing.F) {
	for _, s := range sampleRecords() {
		f.Add(AppendRecords(nil, s.rec))
	}
	f.Add([]byte("ruok"))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 9, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		const max = 1 << 12
		body, err := ReadFrame(bytes.NewReader(data), make([]byte, 0, 8), max)
		if err != nil {
			require.Nil(t, body)
			return
		}
		require.LessOrEqual(t, len(body), max)
		frame := AppendFrame(nil, body)
		require.Equal(t, data[:len(frame)], frame)
		again, err := ReadFrame(bytes.NewReader(frame), nil, max)
		require.NoError(t, err)
		require.Equal(t, body, again)
	})
}

// checkRoundTrip asserts that rec, decoded from in, re-encodes within len(in)
// bytes and that decode gives rec back from its own encoding.
func checkRoundTrip(t *testing.T, in []byte, rec Record, decode func([]byte) (Record, error)) {
	t.Helper()
	out := Marshal(rec)
	require.LessOrEqual(t, len(out), len(in), "encoding grew")
	again, err := decode(out)
	require.NoError(t, err, "re-decoding %x", out)
	require.Equal(t, rec, again)
	require.Equal(t, out, Marshal(again), "encoding not canonical")
}

func FuzzConnectRequest(f *testing.F) {
	for _, s := range sampleRecords() {
		if r, ok := s.rec.(*ConnectRequest); ok {
			f.Add(Marshal(r))
		}
	}
	decode := func(b []byte) (Record, error) {
		var r ConnectRequest
		return &r, Unmarshal(b, &r)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := decode(data)
		if err != nil {
			require.ErrorIs(t, err, ErrMarshallingError)
			return
		}
		checkRoundTrip(t, data, rec, decode)
	})
}

func FuzzDecodeRequest(f *testing.F) {
	for _, s := range sampleRecords() {
		if s.op != 0 {
			f.Add(int32(s.op), Marshal(s.rec))
		}
	}
	f.Add(int32(OpMultiRead), Marshal(&MultiRequest{Ops: []MultiOp{{Type: OpDelete}}}))
	f.Add(int32(99), []byte{})
	f.Fuzz(func(t *testing.T, op int32, data []byte) {
		rec, err := DecodeRequest(OpCode(op), data)
		if err != nil {
			require.Nil(t, rec)
			return
		}
		checkRoundTrip(t, data, rec, func(b []byte) (Record, error) { return DecodeRequest(OpCode(op), b) })
	})
}

func FuzzMultiRequest(f *testing.F) {
	for _, s := range sampleRecords() {
		if s.op == OpMulti || s.op == OpMultiRead {
			f.Add(s.op == OpMultiRead, Marshal(s.rec))
		}
	}
	f.Fuzz(func(t *testing.T, read bool, data []byte) {
		decode := func(b []byte) (Record, error) {
			m, err := DecodeMultiRequest(NewDecoder(b), read)
			if m == nil {
				return nil, err
			}
			return m, err
		}
		rec, err := decode(data)
		if err != nil {
			require.Nil(t, rec)
			require.ErrorIs(t, err, ErrMarshallingError)
			return
		}
		checkRoundTrip(t, data, rec, decode)
		// The kind-inferring Record.Decode agrees with the explicit one.
		var m MultiRequest
		require.NoError(t, Unmarshal(data, &m))
		require.Equal(t, rec, &m)
	})
}

func FuzzMultiResponse(f *testing.F) {
	for _, s := range sampleRecords() {
		if _, ok := s.rec.(*MultiResponse); ok {
			f.Add(Marshal(s.rec))
		}
	}
	decode := func(b []byte) (Record, error) {
		var m MultiResponse
		return &m, Unmarshal(b, &m)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := decode(data)
		if err != nil {
			require.Nil(t, rec.(*MultiResponse).Results)
			return
		}
		checkRoundTrip(t, data, rec, decode)
	})
}

func FuzzReplyHeader(f *testing.F) {
	f.Add(EncodeNotification(5, WatcherEvent{Type: EventNodeCreated, State: StateSyncConnected, Path: "/a"})[4:])
	f.Add(EncodeReply(ReplyHeader{Xid: 3, Zxid: 8, Err: ErrNoNode}, nil)[4:])
	f.Add(EncodeReply(ReplyHeader{Xid: XidPing, Zxid: 8}, nil)[4:])
	f.Fuzz(func(t *testing.T, data []byte) {
		var ev WatcherEvent
		hdr, err := DecodeReply(data, &ev)
		if err != nil {
			return
		}
		var body Record
		if hdr.Err == ErrOK {
			body = &ev
		}
		out := EncodeReply(hdr, body)[4:]
		require.LessOrEqual(t, len(out), len(data))
		var ev2 WatcherEvent
		hdr2, err := DecodeReply(out, &ev2)
		require.NoError(t, err)
		require.Equal(t, hdr, hdr2)
		require.Equal(t, ev, ev2)
	})
}

func FuzzDecodeResponse(f *testing.F) {
	for _, s := range sampleRecords() {
		if s.resp != 0 {
			f.Add(int32(s.resp), Marshal(s.rec))
		}
	}
	f.Fuzz(func(t *testing.T, op int32, data []byte) {
		rec, err := DecodeResponse(OpCode(op), data)
		if err != nil || rec == nil {
			return
		}
		checkRoundTrip(t, data, rec, func(b []byte) (Record, error) { return DecodeResponse(OpCode(op), b) })
	})
}
