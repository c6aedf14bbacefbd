package quorum

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/proto"
)

// TestRawRequest: a forwarded REQUEST in raw form is its bytes, decodes
// to what the decoded form carries, and costs no allocation to check
// (ParseRaw, DecodeRequestHead) and one to own (DecodeWholeRaw); the
// learner builds it in one buffer (AppendRequest).
func TestRawRequest(t *testing.T) {
	f := Forwarded{Session: 7, Cxid: 3, Op: proto.OpSetData, Body: []byte{0, 0, 0, 2, '/', 'a', 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff},
		Auth: []proto.Id{{Scheme: "ip", ID: "127.0.0.1"}}}
	b := NewRequest(f).Encode()
	require.Equal(t, b, AppendRequest(nil, f))
	require.Equal(t, len(b), RequestLen(f))
	require.Equal(t, 1.0, testing.AllocsPerRun(100, func() { _ = AppendRequest(make([]byte, 0, RequestLen(f)), f) }))

	p, n, err := ParseRaw(b, Limits{})
	require.NoError(t, err)
	require.Equal(t, len(b), n)
	require.Same(t, &b[0], &p.Raw[0])
	got, err := DecodeRequest(&p)
	require.NoError(t, err)
	require.Equal(t, f, got)
	require.Equal(t, b[len(b)-23:], p.RawAuth()) // count, "ip", "127.0.0.1"
	require.Equal(t, 0.0, testing.AllocsPerRun(100, func() {
		p, _, _ := ParseRaw(b, Limits{})
		_, _ = DecodeRequestHead(&p)
	}))
	require.Equal(t, 1.0, testing.AllocsPerRun(100, func() { _, _, _ = DecodeWholeRaw(b, Limits{}) }))
	w, _, ok := DecodeWholeRaw(b, Limits{})
	require.True(t, ok)
	require.NotSame(t, &b[0], &w.Raw[0])
	require.Equal(t, p, w)

	// Null and empty authinfo and data stay as they were sent.
	for _, q := range []Packet{{Type: Request, Zxid: -1}, {Type: Ack, Zxid: 5, Data: []byte{}, Auth: []proto.Id{}}} {
		r, _, err := ParseRaw(q.Encode(), Limits{})
		require.NoError(t, err)
		require.Equal(t, q.Data, r.Data)
		require.Equal(t, q.Auth, r.AuthInfo())
		require.Equal(t, q.Encode(), r.Encode())
	}
}

// TestParseRawRefuses: what DecodePacket refuses, ParseRaw refuses with the
// same error, limits included.
func TestParseRawRefuses(t *testing.T) {
	long := NewRequest(Forwarded{Session: 1, Body: make([]byte, 100), Auth: []proto.Id{{Scheme: "ip", ID: "127.0.0.1"}}}).Encode()
	lim := Limits{MaxData: 64, MaxAuth: 1, MaxAuthString: 4}
	for name, b := range map[string][]byte{
		"empty":             nil,
		"short header":      {0, 0, 0, 1, 0},
		"data over limit":   long,
		"truncated":         long[:len(long)-3],
		"auth over limit":   NewRequest(Forwarded{Auth: []proto.Id{{}, {}}}).Encode(),
		"auth string long":  NewRequest(Forwarded{Auth: []proto.Id{{Scheme: "digest"}}}).Encode(),
		"negative length":   {0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xfe},
		"negative authinfo": {0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xfe},
	} {
		_, _, want := DecodePacket(b, lim)
		require.Error(t, want, name)
		_, _, err := ParseRaw(b, lim)
		require.EqualError(t, err, want.Error(), name)
		_, _, ok := DecodeWholeRaw(b, lim)
		require.False(t, ok, name)
	}
}
