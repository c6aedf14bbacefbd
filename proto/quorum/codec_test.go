package quorum

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/proto"
)

// unhex decodes a hex string with spaces for readability.
func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	require.NoError(t, err)
	return b
}

func TestInitialMessageGolden(t *testing.T) {
	m := InitialMessage{Protocol: ProtocolV1, Sid: 3, Addrs: []string{"127.0.0.1:3888"}}
	b, err := m.Encode()
	require.NoError(t, err)
	want := unhex(t, "ffffffffffff0000 0000000000000003 0000000e")
	want = append(want, "127.0.0.1:3888"...)
	require.Equal(t, want, b)
	got, err := ReadInitialMessage(bytes.NewReader(b))
	require.NoError(t, err)
	require.Equal(t, m, got)

	v2 := InitialMessage{Protocol: ProtocolV2, Sid: 7, Addrs: []string{"10.0.0.1:3888", "[::1]:3889"}}
	b, err = v2.Encode()
	require.NoError(t, err)
	require.Equal(t, unhex(t, "ffffffffffff0001 0000000000000007 00000018"), b[:20])
	require.Equal(t, "10.0.0.1:3888|[::1]:3889", string(b[20:]))
	got, err = ReadInitialMessage(bytes.NewReader(b))
	require.NoError(t, err)
	require.Equal(t, v2, got)

	// A pre-3.5 peer sends its bare sid.
	got, err = ReadInitialMessage(bytes.NewReader(unhex(t, "0000000000000005")))
	require.NoError(t, err)
	require.Equal(t, InitialMessage{Protocol: 0, Sid: 5}, got)
}

func TestInitialMessageRefused(t *testing.T) {
	head := func(v int64, n int32) []byte {
		e := proto.NewEncoder(nil)
		e.WriteLong(v)
		e.WriteLong(1)
		e.WriteInt(n)
		return e.Bytes()
	}
	cases := []struct {
		name string
		in   []byte
		is   error
		msg  string
	}{
		{"unknown version", head(-3, 4), ErrVersion, "protocol -3"},
		{"zero length", head(ProtocolV1, 0), ErrMalformed, "address length 0"},
		{"negative length", head(ProtocolV1, -1), ErrMalformed, "address length -1"},
		{"oversized", head(ProtocolV1, 2049), ErrTooLarge, "exceeds limit 2048"},
		{"huge", head(ProtocolV1, 1<<30), ErrTooLarge, "exceeds limit 2048"},
		{"no port", append(head(ProtocolV1, 9), "127.0.0.1"...), ErrMalformed, "badly formed"},
		{"bad port", append(head(ProtocolV1, 11), "127.0.0.1:x"...), ErrMalformed, "bad port"},
		{"truncated", append(head(ProtocolV1, 14), "127.0.0.1"...), io.ErrUnexpectedEOF, "unexpected EOF"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadInitialMessage(bytes.NewReader(c.in))
			require.ErrorIs(t, err, c.is)
			require.Contains(t, err.Error(), c.msg)
		})
	}
	_, err := (&InitialMessage{Protocol: ProtocolV1, Sid: 1, Addrs: []string{strings.Repeat("a", 2050) + ":1"}}).Encode()
	require.ErrorIs(t, err, ErrTooLarge)
	_, err = (&InitialMessage{Protocol: ProtocolV1, Sid: 1, Addrs: []string{"a:1", "b:2"}}).Encode()
	require.ErrorIs(t, err, ErrMalformed)
}

func TestSurvives(t *testing.T) {
	require.True(t, Survives(3, 1))
	require.False(t, Survives(1, 3))
	require.False(t, Survives(2, 2))
}

func TestFrames(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, WriteFrame(&buf, []byte("abc")))
	require.Equal(t, unhex(t, "00000003 616263"), buf.Bytes())
	b, err := ReadFrame(&buf)
	require.NoError(t, err)
	require.Equal(t, []byte("abc"), b)

	_, err = ReadFrame(bytes.NewReader(unhex(t, "00080001")))
	require.ErrorIs(t, err, ErrTooLarge)
	require.Contains(t, err.Error(), "election frame length 524289 exceeds limit 524288")
	_, err = ReadFrame(bytes.NewReader(unhex(t, "00000000")))
	require.ErrorIs(t, err, ErrMalformed)
	_, err = ReadFrame(bytes.NewReader(unhex(t, "00000010 0102")))
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.ErrorIs(t, WriteFrame(io.Discard, make([]byte, MaxFrame+1)), ErrTooLarge)
}

func TestNotificationGolden(t *testing.T) {
	cfg := []byte("server.1=127.0.0.1:2888:3888:participant\nversion=0")
	n := Notification{State: Following, Leader: 3, Zxid: 0x100000002, ElectionEpoch: 1, PeerEpoch: 1, Version: 2, Config: cfg}
	b, err := n.Encode()
	require.NoError(t, err)
	want := unhex(t, "00000001 0000000000000003 0000000100000002 0000000000000001 0000000000000001 00000002 00000032")
	require.Equal(t, append(want, cfg...), b)
	require.Len(t, b, 44+len(cfg))
	got, err := DecodeNotification(b)
	require.NoError(t, err)
	require.Equal(t, n, got)

	// The older forms a 3.5+ receiver still reads.
	n40 := Notification{State: Looking, Leader: 2, Zxid: 0x300000001, ElectionEpoch: 4, PeerEpoch: 3}
	b, err = n40.Encode()
	require.NoError(t, err)
	require.Len(t, b, 40)
	got, err = DecodeNotification(b)
	require.NoError(t, err)
	require.Equal(t, n40, got)

	n28 := Notification{State: Leading, Leader: 2, Zxid: 0x300000001, ElectionEpoch: 4, Short28: true}
	b, err = n28.Encode()
	require.NoError(t, err)
	require.Len(t, b, 28)
	got, err = DecodeNotification(b)
	require.NoError(t, err)
	n28.PeerEpoch = 3 // derived from the zxid
	require.Equal(t, n28, got)

	// Version 1 with 44 bytes: no config read, trailing bytes ignored.
	b = append(unhex(t, "00000000 0000000000000001 0000000000000000 0000000000000001 0000000000000000 00000001"), 0, 0, 0, 9)
	got, err = DecodeNotification(b)
	require.NoError(t, err)
	require.Equal(t, int32(1), got.Version)
	require.Nil(t, got.Config)
}

func TestNotificationRefused(t *testing.T) {
	base := unhex(t, "00000000 0000000000000001 0000000000000000 0000000000000001 0000000000000000 00000002")
	cases := []struct {
		name string
		in   []byte
		msg  string
	}{
		{"short", base[:27], "short notification of 27 bytes"},
		{"inside peer epoch", base[:30], "ends inside the peer epoch"},
		{"inside version", base[:38], "ends inside the version"},
		{"inside config length", append(base[:40:40], 0, 0, 0, 1, 0)[:42], "ends inside the config length"},
		{"negative config", append(base[:40:40], 0xff, 0xff, 0xff, 0xff), "config length -1"},
		{"config past end", append(base[:40:40], 0, 0, 0, 9, 'x'), "config length 9 with 1 bytes left"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeNotification(c.in)
			require.ErrorIs(t, err, ErrMalformed)
			require.Contains(t, err.Error(), c.msg)
		})
	}
	_, err := DecodeNotification(make([]byte, MaxFrame+1))
	require.ErrorIs(t, err, ErrTooLarge)
	_, err = (&Notification{Version: 3}).Encode()
	require.ErrorIs(t, err, ErrVersion)
}

func TestPacketGolden(t *testing.T) {
	// The empty packet is 20 bytes: type, zxid, null data, null authinfo.
	up := NewUpToDate()
	require.Equal(t, unhex(t, "0000000c ffffffffffffffff ffffffff ffffffff"), up.Encode())

	li := NewLearnerInfo(true, 2, LearnerInfo{Sid: 4, ProtocolVersion: LearnerProtocol, ConfigVersion: 0})
	require.Equal(t, unhex(t, "00000010 0000000200000000 00000014 0000000000000004 00010000 0000000000000000 ffffffff"), li.Encode())

	req := NewRequest(Forwarded{Session: 0x0100000000000001, Cxid: 7, Op: proto.OpCreate, Body: []byte{1, 2},
		Auth: []proto.Id{{Scheme: "ip", ID: "127.0.0.1"}}})
	require.Equal(t, unhex(t, "00000001 ffffffffffffffff 00000012 0100000000000001 00000007 00000001 0102"+
		" 00000001 00000002 6970 00000009 3132372e302e302e31"), req.Encode())

	for _, p := range []Packet{up, li, req, NewPing(5), NewAck(0x100000001), NewSync()} {
		got, n, err := DecodePacket(p.Encode(), Limits{})
		require.NoError(t, err)
		require.Equal(t, len(p.Encode()), n)
		require.Equal(t, p.Type, got.Type)
		require.Equal(t, p.Zxid, got.Zxid)
		require.Equal(t, p.Data, got.Data)
		require.Equal(t, p.Auth, got.Auth)
	}
}

func TestPayloadRoundTrips(t *testing.T) {
	li := NewLearnerInfo(false, 5, LearnerInfo{Sid: 2, ProtocolVersion: LearnerProtocol, ConfigVersion: 0x100000000})
	require.Equal(t, FollowerInfo, li.Type)
	require.Equal(t, int64(5)<<32, li.Zxid)
	info, err := DecodeLearnerInfo(&li)
	require.NoError(t, err)
	require.Equal(t, LearnerInfo{Sid: 2, ProtocolVersion: LearnerProtocol, ConfigVersion: 0x100000000}, info)
	old := Packet{Type: FollowerInfo, Data: unhex(t, "0000000000000009")}
	info, err = DecodeLearnerInfo(&old)
	require.NoError(t, err)
	require.Equal(t, LearnerInfo{Sid: 9, ConfigVersion: -1}, info)

	ld := NewLeaderInfo(6)
	e, v, err := DecodeLeaderInfo(&ld)
	require.NoError(t, err)
	require.Equal(t, int64(6), e)
	require.Equal(t, LearnerProtocol, v)

	ae := NewAckEpoch(0x500000007, -1)
	z, ce, err := DecodeAckEpoch(&ae)
	require.NoError(t, err)
	require.Equal(t, int64(0x500000007), z)
	require.Equal(t, int32(-1), ce)

	ca := NewCommitAndActivate(0x600000001, 3)
	l, err := DecodeCommitAndActivate(&ca)
	require.NoError(t, err)
	require.Equal(t, int64(3), l)

	ia := NewInformAndActivate(0x600000001, 3, []byte("txn"))
	l, txn, err := DecodeInformAndActivate(&ia)
	require.NoError(t, err)
	require.Equal(t, int64(3), l)
	require.Equal(t, []byte("txn"), txn)

	ping := NewPing(0x600000009)
	touches := []Touch{{Session: 0x0300000000000001, Timeout: 30000}, {Session: 2, Timeout: 4000}}
	reply := NewPingReply(&ping, touches)
	require.Equal(t, ping.Zxid, reply.Zxid)
	require.Len(t, reply.Data, 24)
	got, err := DecodeTouches(&reply)
	require.NoError(t, err)
	require.Equal(t, touches, got)
	got, err = DecodeTouches(&ping)
	require.NoError(t, err)
	require.Empty(t, got)

	rv := NewRevalidate(0x42, 5000)
	require.Equal(t, int64(-1), rv.Zxid)
	s, to, err := DecodeRevalidate(&rv)
	require.NoError(t, err)
	require.Equal(t, int64(0x42), s)
	require.Equal(t, int32(5000), to)
	rr := NewRevalidateReply(-1, 0x42, true)
	require.Equal(t, unhex(t, "0000000000000042 01"), rr.Data)
	s, ok, err := DecodeRevalidateReply(&rr)
	require.NoError(t, err)
	require.Equal(t, int64(0x42), s)
	require.True(t, ok)

	req := NewRequest(Forwarded{Session: 1, Cxid: 2, Op: proto.OpCloseSession})
	f, err := DecodeRequest(&req)
	require.NoError(t, err)
	require.Equal(t, Forwarded{Session: 1, Cxid: 2, Op: proto.OpCloseSession, Body: []byte{}}, f)

	for _, tt := range []PacketType{Diff, Trunc, Snap} {
		p, err := NewSyncStart(tt, 9)
		require.NoError(t, err)
		require.Equal(t, tt, p.Type)
	}
	_, err = NewSyncStart(Commit, 9)
	require.ErrorIs(t, err, ErrMalformed)
	nl := NewNewLeader(6, []byte("version=0"))
	require.Equal(t, int64(6)<<32, nl.Zxid)
	pr, err := NewProposal(Inform, 0x600000001, []byte("txn"))
	require.NoError(t, err)
	require.Equal(t, Inform, pr.Type)
}

func TestPayloadRefused(t *testing.T) {
	short := []struct {
		name string
		p    Packet
		dec  func(*Packet) error
		msg  string
	}{
		{"learnerinfo", Packet{Type: ObserverInfo, Data: []byte{1}}, func(p *Packet) error { _, err := DecodeLearnerInfo(p); return err }, "needs 8, 12 or 20"},
		{"learnerinfo null", Packet{Type: FollowerInfo}, func(p *Packet) error { _, err := DecodeLearnerInfo(p); return err }, "data of 0 bytes"},
		{"leaderinfo", Packet{Type: LeaderInfo, Data: []byte{1}}, func(p *Packet) error { _, _, err := DecodeLeaderInfo(p); return err }, "needs 4"},
		{"ackepoch", Packet{Type: AckEpoch}, func(p *Packet) error { _, _, err := DecodeAckEpoch(p); return err }, "needs 4"},
		{"touches", Packet{Type: Ping, Data: make([]byte, 13)}, func(p *Packet) error { _, err := DecodeTouches(p); return err }, "not a list of 12-byte"},
		{"revalidate", Packet{Type: Revalidate, Data: make([]byte, 11)}, func(p *Packet) error { _, _, err := DecodeRevalidate(p); return err }, "needs 12"},
		{"revalidate reply", Packet{Type: Revalidate, Data: make([]byte, 8)}, func(p *Packet) error { _, _, err := DecodeRevalidateReply(p); return err }, "needs 9"},
		{"request", Packet{Type: Request, Data: make([]byte, 15)}, func(p *Packet) error { _, err := DecodeRequest(p); return err }, "needs 16"},
		{"commitandactivate", Packet{Type: CommitAndActivate, Data: make([]byte, 7)}, func(p *Packet) error { _, err := DecodeCommitAndActivate(p); return err }, "needs 8"},
		{"informandactivate", Packet{Type: InformAndActivate, Data: make([]byte, 7)}, func(p *Packet) error { _, _, err := DecodeInformAndActivate(p); return err }, "needs 8"},
		{"wrong type", Packet{Type: Ack, Data: make([]byte, 20)}, func(p *Packet) error { _, err := DecodeLearnerInfo(p); return err }, "ACK packet where"},
	}
	for _, c := range short {
		t.Run(c.name, func(t *testing.T) {
			err := c.dec(&c.p)
			require.ErrorIs(t, err, ErrMalformed)
			require.Contains(t, err.Error(), c.msg)
		})
	}
}

func TestReadPacketRefused(t *testing.T) {
	cases := []struct {
		name string
		in   string
		lim  Limits
		is   error
		msg  string
	}{
		{"data over the default limit", "00000002 0000000100000001 00200000", Limits{}, ErrTooLarge, "data length 2097152 exceeds limit 2097150"},
		{"data at int max", "00000002 0000000100000001 7fffffff", Limits{}, ErrTooLarge, "exceeds limit"},
		{"data over a custom limit", "00000002 0000000100000001 00000011", Limits{MaxData: 16}, ErrTooLarge, "data length 17 exceeds limit 16"},
		{"negative data length", "00000002 0000000100000001 fffffffe", Limits{}, ErrMalformed, "data length -2"},
		{"too many auth ids", "00000001 ffffffffffffffff ffffffff 00010000", Limits{}, ErrTooLarge, "authinfo count 65536 exceeds limit 64"},
		{"auth string too long", "00000001 ffffffffffffffff ffffffff 00000001 00100000", Limits{}, ErrTooLarge, "authinfo scheme length 1048576 exceeds limit 4096"},
		{"truncated data", "00000002 0000000100000001 00000010 0102", Limits{}, io.ErrUnexpectedEOF, "PROPOSAL"},
		{"truncated header", "000000", Limits{}, io.ErrUnexpectedEOF, "quorum: read packet: unexpected EOF"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadPacket(bytes.NewReader(unhex(t, c.in)), c.lim)
			require.ErrorIs(t, err, c.is)
			require.Contains(t, err.Error(), c.msg)
		})
	}
	_, err := ReadPacket(bytes.NewReader(nil), Limits{})
	require.ErrorIs(t, err, io.EOF)
	require.ErrorIs(t, WritePacket(io.Discard, &Packet{Type: Proposal, Data: make([]byte, DefaultMaxData+1)}), ErrTooLarge)
}

// snapBody builds a SNAP body by hand, as ZKDatabase.serializeSnapshot and
// the signature lay it out.
func snapBody(sig string) []byte {
	e := proto.NewEncoder(nil)
	e.WriteInt(1) // sessions
	e.WriteLong(0x0100000000000001)
	e.WriteInt(30000)
	e.WriteInt(1) // ACL cache
	e.WriteLong(1)
	e.WriteInt(1)
	e.WriteInt(31)
	e.WriteString("world")
	e.WriteString("anyone")
	for _, p := range []string{"", "/zookeeper", "/a"} {
		e.WriteString(p)
		e.WriteBuffer([]byte("d"))
		e.WriteLong(-1)
		for range 4 {
			e.WriteLong(0)
		}
		for range 3 {
			e.WriteInt(0)
		}
		e.WriteLong(0)
		e.WriteLong(0)
	}
	e.WriteString("/")
	e.WriteString(sig)
	return e.Bytes()
}

func TestSnapshotBody(t *testing.T) {
	body := snapBody(SnapSignature)
	stream := append(append([]byte(nil), body...), NewUpToDate().Encode()...)
	r := bufio.NewReader(bytes.NewReader(stream))
	var copied bytes.Buffer
	sum, err := CopySnapshotBody(&copied, r, SnapLimits{KeepPaths: true})
	require.NoError(t, err)
	require.Equal(t, body, copied.Bytes())
	require.Equal(t, int64(len(body)), sum.Bytes)
	require.Equal(t, []Touch{{Session: 0x0100000000000001, Timeout: 30000}}, sum.Sessions)
	require.Equal(t, 1, sum.ACLs)
	require.Equal(t, []string{"", "/zookeeper", "/a"}, sum.Paths)
	require.Equal(t, 3, sum.Nodes)
	// The stream continues right after the body.
	p, err := ReadPacket(r, Limits{})
	require.NoError(t, err)
	require.Equal(t, UpToDate, p.Type)

	_, err = CopySnapshotBody(nil, bytes.NewReader(snapBody("BenWasNotHere")), SnapLimits{})
	require.ErrorIs(t, err, ErrMalformed)
	require.Contains(t, err.Error(), "signature")
	_, err = CopySnapshotBody(nil, bytes.NewReader(body), SnapLimits{MaxBytes: 50})
	require.ErrorIs(t, err, ErrTooLarge)
	require.Contains(t, err.Error(), "SNAP body exceeds limit 50 bytes")
	_, err = CopySnapshotBody(nil, bytes.NewReader(body[:len(body)-3]), SnapLimits{})
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	huge := unhex(t, "7fffffff 0000000000000001")
	_, err = CopySnapshotBody(nil, bytes.NewReader(huge), SnapLimits{})
	require.True(t, errors.Is(err, io.ErrUnexpectedEOF), "a claimed 2^31 sessions ends at the bytes that arrived: %v", err)
}
