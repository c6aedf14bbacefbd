package quorum

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/proto"
)

// Fuzzers for every decoder: none may panic or allocate beyond its limits,
// and whatever decodes must encode to bytes that decode to the same value.
// Run one with: go test ./proto/quorum -run '^$' -fuzz FuzzReadPacket -fuzztime 30s

func FuzzReadInitialMessage(f *testing.F) {
	for _, m := range []InitialMessage{
		{Protocol: ProtocolV1, Sid: 3, Addrs: []string{"127.0.0.1:3888"}},
		{Protocol: ProtocolV2, Sid: 1, Addrs: []string{"a:1", "[::1]:2"}},
	} {
		b, err := m.Encode()
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 9})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ReadInitialMessage(bytes.NewReader(b))
		if err != nil {
			return
		}
		if m.Protocol == 0 {
			return // a pre-3.5 bare sid; we never send that form
		}
		enc, err := m.Encode()
		if err != nil {
			return // e.g. several addresses under V1, which we never send
		}
		m2, err := ReadInitialMessage(bytes.NewReader(enc))
		require.NoError(t, err)
		require.Equal(t, m, m2)
	})
}

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0, 0, 0, 3, 'a', 'b', 'c'})
	f.Add([]byte{0, 8, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ReadFrame(bytes.NewReader(b))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		require.NoError(t, WriteFrame(&buf, p))
		require.Equal(t, b[:4+len(p)], buf.Bytes())
	})
}

func FuzzDecodeNotification(f *testing.F) {
	for _, n := range []Notification{
		{State: Following, Leader: 3, Zxid: 0x100000002, ElectionEpoch: 1, PeerEpoch: 1, Version: 2, Config: []byte("server.1=a:1:2:participant\nversion=0")},
		{State: Looking, Leader: 1, Zxid: 5, ElectionEpoch: 2, PeerEpoch: 0},
		{State: Leading, Leader: 1, Zxid: 5, ElectionEpoch: 2, Short28: true},
	} {
		b, err := n.Encode()
		require.NoError(f, err)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := DecodeNotification(b)
		if err != nil {
			return
		}
		enc, err := n.Encode()
		if err != nil {
			return // a version we read but never send
		}
		n2, err := DecodeNotification(enc)
		require.NoError(t, err)
		require.Equal(t, n, n2)
	})
}

func FuzzReadPacket(f *testing.F) {
	for _, p := range []Packet{
		NewUpToDate(), NewLeaderInfo(3), NewAckEpoch(0x300000001, 2), NewPing(7),
		NewRequest(Forwarded{Session: 1, Cxid: 2, Op: proto.OpCreate, Body: []byte{0, 0, 0, 2, '/', 'a'}, Auth: []proto.Id{{Scheme: "ip", ID: "127.0.0.1"}}}),
		NewRevalidateReply(-1, 5, true), NewInformAndActivate(9, 1, []byte("t")),
		NewLearnerInfo(true, 1, LearnerInfo{Sid: 4, ProtocolVersion: LearnerProtocol}),
	} {
		f.Add(p.Encode())
	}
	// Every packet ZooKeeper 3.8 sent in the captured streams.
	for _, name := range []string{"observer-snap-stream.bin", "follower-snap-stream.bin", "observer-trunc-stream.bin"} {
		stream, err := os.ReadFile(filepath.Join("testdata", "zk38", name))
		require.NoError(f, err)
		r := bytes.NewReader(stream)
		for {
			off := len(stream) - r.Len()
			p, err := ReadPacket(r, Limits{})
			if err == io.EOF {
				break
			}
			require.NoError(f, err)
			f.Add(stream[off : len(stream)-r.Len()])
			if p.Type == Snap {
				_, err := CopySnapshotBody(nil, r, SnapLimits{})
				require.NoError(f, err)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		lim := Limits{MaxData: 1 << 16, MaxAuth: 8, MaxAuthString: 256}
		p, n, err := DecodePacket(b, lim)
		// DecodePacket's direct path and the stream reader agree on
		// every input: the packet, the bytes used, the error.
		r := bytes.NewReader(b)
		q, qerr := ReadPacket(r, lim)
		if qerr == io.EOF {
			require.ErrorIs(t, err, ErrMalformed)
		} else if qerr != nil {
			require.EqualError(t, err, qerr.Error())
		} else {
			require.NoError(t, err)
			require.Equal(t, q, p)
			require.Equal(t, len(b)-r.Len(), n)
		}
		// DecodeWhole decodes what ReadPacket does, or leaves it to it.
		if w, wn, ok := DecodeWhole(b, lim); ok {
			require.NoError(t, qerr)
			require.Equal(t, q, w)
			require.Equal(t, len(b)-r.Len(), wn)
		}
		// The raw form checks what DecodePacket decodes: the same error,
		// else the same bytes taken, which it keeps as they are, and the
		// same fields once decoded.
		raw, rn, rerr := ParseRaw(b, lim)
		if err != nil {
			require.EqualError(t, rerr, err.Error())
		} else {
			require.NoError(t, rerr)
			require.Equal(t, n, rn)
			requireRawOf(t, b[:n], p, raw)
		}
		if w, wn, ok := DecodeWholeRaw(b, lim); ok {
			_, _, ok2 := DecodeWhole(b, lim)
			require.True(t, ok2)
			require.Equal(t, n, wn)
			requireRawOf(t, b[:n], p, w)
		} else {
			_, _, ok2 := DecodeWhole(b, lim)
			require.False(t, ok2)
		}
		if err != nil {
			return
		}
		require.LessOrEqual(t, n, len(b))
		// Every payload decoder must refuse or accept without panicking.
		_, _ = DecodeLearnerInfo(&p)
		_, _, _ = DecodeLeaderInfo(&p)
		_, _, _ = DecodeAckEpoch(&p)
		_, _ = DecodeCommitAndActivate(&p)
		_, _, _ = DecodeInformAndActivate(&p)
		_, _ = DecodeTouches(&p)
		_, _, _ = DecodeRevalidate(&p)
		_, _, _ = DecodeRevalidateReply(&p)
		if f, err := DecodeRequest(&p); err == nil {
			q := NewRequest(f)
			require.Equal(t, p.Data, q.Data)
			require.Equal(t, q.Encode(), AppendRequest(nil, f))
			require.Len(t, q.Encode(), RequestLen(f))
			fr, err := DecodeRequest(&raw)
			require.NoError(t, err)
			require.Equal(t, f, fr)
		} else {
			_, rerr := DecodeRequest(&raw)
			require.EqualError(t, rerr, err.Error())
		}
		require.Len(t, p.Encode(), p.Len())
		p2, _, err := DecodePacket(p.Encode(), Limits{MaxData: 1 << 16, MaxAuth: 8, MaxAuthString: 256})
		require.NoError(t, err)
		require.Equal(t, p, p2)
	})
}

// requireRawOf checks that raw is the raw form of the packet p, encoded as
// b: b as it is, the same fields once decoded.
func requireRawOf(t *testing.T, b []byte, p, raw Packet) {
	t.Helper()
	require.Equal(t, b, raw.Raw)
	require.Equal(t, b, raw.Encode())
	require.Equal(t, len(b), raw.Len())
	require.Equal(t, p.Type, raw.Type)
	require.Equal(t, p.Zxid, raw.Zxid)
	require.Equal(t, p.Data, raw.Data)
	require.Nil(t, raw.Auth)
	require.Equal(t, p.Auth, raw.AuthInfo())
	require.Equal(t, p.String(), raw.String())
	own := raw.Own()
	require.Equal(t, raw, own)
	if len(b) > 0 {
		require.NotSame(t, &raw.Raw[0], &own.Raw[0])
	}
}

func FuzzCopySnapshotBody(f *testing.F) {
	f.Add(snapBody(SnapSignature))
	f.Add(snapBody("x"))
	// The SNAP body ZooKeeper 3.8 sent a follower.
	stream, err := os.ReadFile(filepath.Join("testdata", "zk38", "follower-snap-stream.bin"))
	require.NoError(f, err)
	r := bytes.NewReader(stream)
	for p, err := ReadPacket(r, Limits{}); p.Type != Snap; p, err = ReadPacket(r, Limits{}) {
		require.NoError(f, err)
	}
	body := stream[len(stream)-r.Len():]
	sum, err := CopySnapshotBody(nil, bytes.NewReader(body), SnapLimits{})
	require.NoError(f, err)
	f.Add(body[:sum.Bytes])
	f.Fuzz(func(t *testing.T, b []byte) {
		var out bytes.Buffer
		sum, err := CopySnapshotBody(&out, bytes.NewReader(b), SnapLimits{MaxBytes: 1 << 20, MaxField: 1 << 12, MaxACLs: 64, KeepPaths: true})
		if err != nil {
			return
		}
		require.Equal(t, int64(out.Len()), sum.Bytes)
		require.Equal(t, b[:sum.Bytes], out.Bytes())
		// The same bytes read again give the same summary.
		sum2, err := CopySnapshotBody(io.Discard, bytes.NewReader(out.Bytes()), SnapLimits{KeepPaths: true})
		require.NoError(t, err)
		require.Equal(t, sum, sum2)
	})
}
