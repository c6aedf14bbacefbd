package netstub

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/zab"
)

// wireSamples has one message of every type that travels on the wire, with
// the fields that type uses (and some it does not) set.
func wireSamples() []zab.Message {
	vote := zab.Vote{Leader: 3, Zxid: zab.MakeZxid(2, 7), PeerEpoch: 2, Round: 9, State: zab.Looking}
	return []zab.Message{
		{Type: zab.MsgNotification, From: 1, To: 2, Vote: vote},
		{Type: zab.MsgNotification, From: 1, To: 2, Vote: zab.Vote{Leader: -1, Zxid: -1, PeerEpoch: -1, Round: -1, State: zab.Observing}},
		{Type: zab.MsgFollowerInfo, From: 4, To: 1, Epoch: 3, Zxid: zab.MakeZxid(3, 1), Observer: true},
		{Type: zab.MsgLeaderInfo, From: 1, To: 4, Epoch: 4},
		{Type: zab.MsgAckEpoch, From: 4, To: 1, Epoch: -1, Zxid: 1<<62 + 5},
		{Type: zab.MsgDiff, From: 1, To: 2, Zxid: zab.MakeZxid(4, 0)},
		{Type: zab.MsgTrunc, From: 1, To: 2, Zxid: zab.MakeZxid(3, 99)},
		{Type: zab.MsgSnap, From: 1, To: 2, Zxid: 77, Snapshot: zab.SnapshotBytes("state at 77")},
		{Type: zab.MsgProposal, From: 1, To: 2, Epoch: 4, Entry: zab.Entry{Zxid: zab.MakeZxid(4, 1), Data: []byte{0, 1, 2, 0xff}}},
		{Type: zab.MsgCommit, From: 1, To: 2, Zxid: zab.MakeZxid(4, 1)},
		{Type: zab.MsgNewLeader, From: 1, To: 2, Zxid: zab.MakeZxid(4, 0)},
		{Type: zab.MsgAck, From: 2, To: 1, Zxid: zab.MakeZxid(4, 1)},
		{Type: zab.MsgUpToDate, From: 1, To: 2},
		{Type: zab.MsgPing, From: 1, To: 2, Zxid: -9223372036854775808},
		{Type: zab.MsgInform, From: 1, To: 5, Entry: zab.Entry{Zxid: 12, Data: []byte("txn")}},
		{Type: zab.MsgApp, From: 2, To: 1, Epoch: 4, Payload: []byte("forwarded request"), Vote: vote},
		{Type: zab.MsgApp, From: 2, To: 1, Entry: zab.Entry{Data: []byte("d")}, Snapshot: zab.SnapshotBytes("s"), Payload: []byte("p"), Observer: true},
		{Type: zab.MsgTimeoutNow, From: 3, To: 2, Epoch: 4, Zxid: zab.MakeZxid(4, 9), Vote: zab.Vote{Leader: 2, Zxid: zab.MakeZxid(4, 9), PeerEpoch: 4}},
	}
}

func TestWireRoundTripsEveryType(t *testing.T) {
	seen := map[zab.MsgType]bool{}
	for _, m := range wireSamples() {
		seen[m.Type] = true
		b := AppendMessage([]byte("prefix"), m)
		require.Equal(t, "prefix", string(b[:6]), "AppendMessage keeps dst")
		require.Len(t, b[6:], EncodedLen(m))
		got, err := DecodeMessage(b[6:], 0)
		require.NoError(t, err, "type %d", m.Type)
		want := m
		if m.Type == zab.MsgFollowerInfo || m.Type == zab.MsgLeaderInfo {
			// Not encoded: the native codec stamps every capability.
			want.Caps = zab.AllCaps
		}
		require.Equal(t, want, got)
	}
	for typ := zab.MsgNotification; typ <= zab.MsgApp; typ++ {
		require.True(t, seen[typ], "type %d has no sample", typ)
	}
	require.True(t, seen[zab.MsgTimeoutNow])
	_, err := DecodeMessage(AppendMessage(nil, zab.Message{Type: zab.MsgLinkDown}), 0)
	require.ErrorIs(t, err, ErrMalformed, "MsgLinkDown is local only")
}

func TestWireDecodeCopiesUnlessAliasing(t *testing.T) {
	m := zab.Message{Type: zab.MsgSnap, Snapshot: zab.SnapshotBytes("abc")}
	b := AppendMessage(nil, m)
	got, err := DecodeMessage(b, 0)
	require.NoError(t, err)
	clear(b)
	require.Equal(t, zab.SnapshotBytes("abc"), got.Snapshot)
}

func TestWireEmptySlicesDecodeNil(t *testing.T) {
	m := zab.Message{Type: zab.MsgApp, Payload: []byte{}, Entry: zab.Entry{Data: []byte{}}}
	got, err := DecodeMessage(AppendMessage(nil, m), 0)
	require.NoError(t, err)
	require.Nil(t, got.Payload)
	require.Nil(t, got.Entry.Data)
}

func TestWireEveryTruncationFails(t *testing.T) {
	for _, m := range wireSamples() {
		b := AppendMessage(nil, m)
		for n := range len(b) {
			_, err := DecodeMessage(b[:n], 0)
			require.ErrorIs(t, err, ErrMalformed, "type %d cut at %d of %d", m.Type, n, len(b))
		}
		_, err := DecodeMessage(append(b, 0), 0)
		require.ErrorIs(t, err, ErrMalformed, "trailing byte accepted")
	}
}

func TestWireRejectsBadHeaders(t *testing.T) {
	good := AppendMessage(nil, zab.Message{Type: zab.MsgPing, From: 1, To: 2})
	tests := []struct {
		name string
		edit func(b []byte)
	}{
		{"version", func(b []byte) { b[0] = WireVersion + 1 }},
		{"type zero", func(b []byte) { b[1] = 0 }},
		{"link down is local only", func(b []byte) { b[1] = byte(zab.MsgLinkDown) }},
		{"unknown type", func(b []byte) { b[1] = 200 }},
		{"unknown flag", func(b []byte) { b[2] = 0x80 }},
		{"vote state", func(b []byte) { b[3+8*8] = byte(zab.Observing) + 1 }},
		{"entry length beyond end", func(b []byte) { b[fixedLen] = 0x7f }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(good)
			tc.edit(b)
			_, err := DecodeMessage(b, 0)
			require.ErrorIs(t, err, ErrMalformed)
		})
	}
}

func TestWireSnapshotLimit(t *testing.T) {
	b := AppendMessage(nil, zab.Message{Type: zab.MsgSnap, Snapshot: make(zab.SnapshotBytes, 100)})
	_, err := DecodeMessage(b, 99)
	require.ErrorIs(t, err, ErrMalformed)
	_, err = DecodeMessage(b, 100)
	require.NoError(t, err)
}

func FuzzDecodeMessage(f *testing.F) {
	for _, m := range wireSamples() {
		f.Add(AppendMessage(nil, m))
	}
	f.Add([]byte{})
	f.Add([]byte{WireVersion, byte(zab.MsgSnap), 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b, 1<<20)
		if err != nil {
			return
		}
		again := AppendMessage(nil, m)
		require.Equal(t, b, again, "a decodable input is canonical")
		m2, err := DecodeMessage(again, 1<<20)
		require.NoError(t, err)
		require.Equal(t, m, m2)
	})
}
