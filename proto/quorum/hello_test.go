package quorum

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHelloAfterLearnerInfoAndLeaderInfo(t *testing.T) {
	h := Hello{Version: HelloVersion, Caps: 0x7, Nonce: -0x0123456789abcdef}
	li := LearnerInfo{Sid: 3, ProtocolVersion: LearnerProtocol, ConfigVersion: 0}
	for _, observer := range []bool{false, true} {
		p := NewLearnerInfoHello(observer, 5, li, h)
		require.Len(t, p.Data, 20+HelloLen)
		got, err := DecodeLearnerInfo(&p)
		require.NoError(t, err)
		require.Equal(t, li, got, "ZooKeeper's fields read as before")
		gh, ok := PacketHello(&p)
		require.True(t, ok)
		require.Equal(t, h, gh)
		// Through the wire and back.
		q, n, err := DecodePacket(p.Encode(), Limits{})
		require.NoError(t, err)
		require.Equal(t, len(p.Encode()), n)
		gh, ok = PacketHello(&q)
		require.True(t, ok)
		require.Equal(t, h, gh)
	}
	p := NewLeaderInfoHello(9, h)
	e, v, err := DecodeLeaderInfo(&p)
	require.NoError(t, err)
	require.Equal(t, int64(9), e)
	require.Equal(t, LearnerProtocol, v, "the protocol version stays 0x10000")
	gh, ok := PacketHello(&p)
	require.True(t, ok)
	require.Equal(t, h, gh)
	// Version 0 in the struct is written as HelloVersion.
	gh, ok = DecodeHello(Hello{Caps: 1}.Append(nil))
	require.True(t, ok)
	require.Equal(t, Hello{Version: HelloVersion, Caps: 1}, gh)
}

// TestNoHello: ZooKeeper's own packets, and bytes that are not a
// well-formed hello, are "no hello", never an error.
func TestNoHello(t *testing.T) {
	li := NewLearnerInfo(false, 1, LearnerInfo{Sid: 2, ProtocolVersion: LearnerProtocol})
	ld := NewLeaderInfo(1)
	good := Hello{Caps: 7, Nonce: 1}.Append(nil)
	wrongMagic := append([]byte(nil), good...)
	binary.BigEndian.PutUint32(wrongMagic, 0x7a6b7831) // the txn extension's "zkx1"
	version0 := append([]byte(nil), good...)
	binary.BigEndian.PutUint32(version0[4:], 0)
	negative := append([]byte(nil), good...)
	binary.BigEndian.PutUint32(negative[4:], 0xffffffff)
	cases := map[string]Packet{
		"FOLLOWERINFO of ZooKeeper": li,
		"LEADERINFO of ZooKeeper":   ld,
		"short LearnerInfo":         {Type: FollowerInfo, Data: li.Data[:12]},
		"one byte after":            {Type: FollowerInfo, Data: append(append([]byte(nil), li.Data...), 0x7a)},
		"short hello":               {Type: LeaderInfo, Data: append(append([]byte(nil), ld.Data...), good[:HelloLen-1]...)},
		"wrong magic":               {Type: LeaderInfo, Data: append(append([]byte(nil), ld.Data...), wrongMagic...)},
		"version 0":                 {Type: ObserverInfo, Data: append(append([]byte(nil), li.Data...), version0...)},
		"negative version":          {Type: ObserverInfo, Data: append(append([]byte(nil), li.Data...), negative...)},
		"hello on another packet":   {Type: AckEpoch, Data: append(binary.BigEndian.AppendUint32(nil, 0), good...)},
		"null data":                 {Type: LeaderInfo},
	}
	for name, p := range cases {
		h, ok := PacketHello(&p)
		require.False(t, ok, name)
		require.Zero(t, h, name)
	}
}

// TestHelloLaterVersion: a later hello version keeps the first fields and
// may append more; this code reads the fields it knows.
func TestHelloLaterVersion(t *testing.T) {
	b := Hello{Version: 2, Caps: 0xff, Nonce: 42}.Append(nil)
	b = append(b, "more fields"...)
	h, ok := DecodeHello(b)
	require.True(t, ok)
	require.Equal(t, Hello{Version: 2, Caps: 0xff, Nonce: 42}, h)
}

func TestTimeoutNowPacket(t *testing.T) {
	p := NewTimeoutNow(0x500000007, 3, 5)
	require.Equal(t, "TIMEOUTNOW", p.Type.String())
	require.Equal(t, "SNAPCHUNK", SnapChunk.String())
	require.False(t, p.Type.Known(), "not a ZooKeeper type")
	require.True(t, p.Type.Zabkeeper())
	q, _, err := DecodePacket(p.Encode(), Limits{})
	require.NoError(t, err)
	z, s, e, err := DecodeTimeoutNow(&q)
	require.NoError(t, err)
	require.Equal(t, []int64{0x500000007, 3, 5}, []int64{z, s, e})
	for _, bad := range []Packet{
		{Type: TimeoutNow, Data: p.Data[:15]},
		{Type: TimeoutNow, Data: append(append([]byte(nil), p.Data...), 0)},
		{Type: TimeoutNow},
		{Type: Ping, Data: p.Data},
	} {
		_, _, _, err := DecodeTimeoutNow(&bad)
		require.ErrorIs(t, err, ErrMalformed, "%s", bad)
	}
}

// FuzzDecodeHello: DecodeHello never panics, and what it accepts encodes
// (as its version-1 fields) to bytes that decode to the same hello.
// Run: go test ./proto/quorum -run '^$' -fuzz FuzzDecodeHello -fuzztime 30s
func FuzzDecodeHello(f *testing.F) {
	f.Add(Hello{Caps: 7, Nonce: 0x0123456789abcdef}.Append(nil))
	f.Add(Hello{Version: 3, Caps: 1 << 63, Nonce: -1}.Append(nil))
	f.Add(append(Hello{Caps: 2}.Append(nil), 1, 2, 3))
	f.Add([]byte{0x7a, 0x6b, 0x68, 0x31, 0, 0, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, ok := DecodeHello(b)
		if !ok {
			require.Zero(t, h)
			return
		}
		require.GreaterOrEqual(t, h.Version, int32(1))
		enc := h.Append(nil)
		require.Equal(t, b[:HelloLen], enc)
		h2, ok := DecodeHello(enc)
		require.True(t, ok)
		require.Equal(t, h, h2)
		// In a handshake packet, after ZooKeeper's fields.
		p := NewLeaderInfo(1)
		p.Data = append(p.Data, b...)
		h3, ok := PacketHello(&p)
		require.True(t, ok)
		require.Equal(t, h, h3)
	})
}

// FuzzDecodeTimeoutNow: whatever decodes encodes to the same packet.
func FuzzDecodeTimeoutNow(f *testing.F) {
	f.Add(NewTimeoutNow(7, 3, 1).Encode())
	f.Add(NewPing(1).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		p, _, err := DecodePacket(b, Limits{MaxData: 1 << 10})
		if err != nil || p.Type != TimeoutNow {
			return
		}
		z, s, e, err := DecodeTimeoutNow(&p)
		if err != nil {
			return
		}
		q := NewTimeoutNow(z, s, e)
		require.Equal(t, p.Data, q.Data)
		require.Equal(t, p.Zxid, q.Zxid)
	})
}
