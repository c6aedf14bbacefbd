package proto

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestReadFrame(t *testing.T) {
	var stream []byte
	stream = AppendFrame(stream, []byte("hello"))
	stream = AppendFrame(stream, nil)
	stream = AppendRecords(stream, &SyncRequest{Path: "/a"})
	r := bytes.NewReader(stream)
	buf := make([]byte, 0, 64)

	b, err := ReadFrame(r, buf, 100)
	require.NoError(t, err)
	require.Equal(t, []byte("hello"), b)
	b, err = ReadFrame(r, buf, 100)
	require.NoError(t, err)
	require.Empty(t, b)
	b, err = ReadFrame(r, nil, 100)
	require.NoError(t, err)
	require.Equal(t, Marshal(&SyncRequest{Path: "/a"}), b)
	_, err = ReadFrame(r, buf, 100)
	require.Equal(t, io.EOF, err)

	_, err = ReadFrame(bytes.NewReader([]byte{0, 0}), nil, 100)
	require.Equal(t, io.ErrUnexpectedEOF, err)
	_, err = ReadFrame(bytes.NewReader([]byte{0, 0, 0, 5, 1}), nil, 100)
	require.Equal(t, io.ErrUnexpectedEOF, err)
	_, err = ReadFrame(bytes.NewReader([]byte{0, 0, 0, 5}), nil, 100)
	require.Equal(t, io.ErrUnexpectedEOF, err)
}

func TestReadFrameRejectsBadLengths(t *testing.T) {
	for _, tc := range []struct {
		prefix []byte
		len    int64
	}{
		{[]byte{0x00, 0x10, 0x00, 0x00}, 0x100000}, // jute.maxbuffer + 1
		{[]byte{0x7f, 0xff, 0xff, 0xff}, 0x7fffffff},
		{[]byte{0xff, 0xff, 0xff, 0xff}, -1},
		{[]byte{0x80, 0x00, 0x00, 0x00}, -0x80000000},
		{[]byte("ruok"), 0x72756f6b},
	} {
		_, err := ReadFrame(bytes.NewReader(tc.prefix), nil, DefaultMaxBuffer)
		require.ErrorIs(t, err, ErrFrameTooLarge)
		var fe *FrameTooLargeError
		require.True(t, errors.As(err, &fe))
		require.Equal(t, tc.len, fe.Len)
		require.Equal(t, DefaultMaxBuffer, fe.Max)
		require.Contains(t, fe.Error(), "out of range")
	}
	// Exactly max is fine.
	body := make([]byte, 16)
	b, err := ReadFrame(bytes.NewReader(AppendFrame(nil, body)), nil, 16)
	require.NoError(t, err)
	require.Len(t, b, 16)
}

func TestWriteFrame(t *testing.T) {
	var w bytes.Buffer
	require.NoError(t, WriteFrame(&w, []byte{1, 2}))
	require.Equal(t, []byte{0, 0, 0, 2, 1, 2}, w.Bytes())
}

func TestAppendRecordsPatchesLength(t *testing.T) {
	prefix := []byte("xx")
	out := AppendRecords(prefix, &RequestHeader{Xid: 1, Type: OpPing})
	require.Equal(t, []byte{'x', 'x', 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 11}, out)
}
