package zktcp

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/proto"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// readPacket reads a stream as quorum.ReadPacket does, packet by packet,
// whatever the reads bring at a time: the same packets, the same error
// at the same place.
func FuzzReadPacketBuffered(f *testing.F) {
	var stream []byte
	for _, p := range []quorum.Packet{
		quorum.NewCommit(0x100000001), quorum.NewAck(0x100000002), quorum.NewPing(7), quorum.NewUpToDate(),
		{Type: quorum.Proposal, Zxid: 0x100000003, Data: bytes.Repeat([]byte{'x'}, 150)},
		{Type: quorum.Request, Data: []byte{1, 2, 3}, Auth: []proto.Id{{Scheme: "ip", ID: "127.0.0.1"}}},
	} {
		stream = append(stream, p.Encode()...)
		f.Add(stream, uint8(0))
		f.Add(stream, uint8(1))
	}
	f.Add(stream[:len(stream)-3], uint8(2))
	f.Fuzz(func(t *testing.T, b []byte, mode uint8) {
		lim := quorum.Limits{MaxData: 1 << 12, MaxAuth: 4, MaxAuthString: 64}
		want := bytes.NewReader(b)
		var r io.Reader = bytes.NewReader(b)
		switch mode % 3 {
		case 1:
			r = iotest.OneByteReader(r)
		case 2:
			r = iotest.HalfReader(r)
		}
		br := bufio.NewReaderSize(r, 16) // bufio's least: packets span fills
		for range 1000 {
			wp, werr := quorum.ReadPacket(want, lim)
			gp, gerr := readPacket(br, lim)
			if werr != nil {
				require.Error(t, gerr)
				require.Equal(t, werr.Error(), gerr.Error())
				return
			}
			require.NoError(t, gerr)
			require.Equal(t, wp, gp)
		}
	})
}

// A link's read deadline is set when the timeout changes or the one set
// would leave less than the timeout, not on every packet, and never
// earlier than the timeout after a read.
func TestReadDeadlineExtends(t *testing.T) {
	c := &deadlineConn{}
	var d readDeadline
	d.extend(c, 10*time.Second)
	require.Equal(t, 1, c.sets)
	first := c.at
	require.GreaterOrEqual(t, time.Until(first), 10*time.Second-time.Second)
	for range 100 {
		d.extend(c, 10*time.Second)
	}
	require.Equal(t, 1, c.sets, "within the slack: not set again")
	d.extend(c, 4*time.Second) // synced: syncLimit instead of initLimit
	require.Equal(t, 2, c.sets)
	require.Less(t, c.at, first)
	d.at = time.Now().Add(3 * time.Second) // as if time had passed
	d.extend(c, 4*time.Second)
	require.Equal(t, 3, c.sets, "less than the timeout left: set")
	require.GreaterOrEqual(t, time.Until(c.at), 4*time.Second-time.Second)
}

type deadlineConn struct {
	net.Conn
	sets int
	at   time.Time
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error {
	c.sets++
	c.at = t
	return nil
}
