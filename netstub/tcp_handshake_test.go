package netstub

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/zab"
)

// testNonce is the nonce of the dialers the tests play by hand.
const testNonce = 0x7e57_7e57_7e57_7e57

// startTCP starts a transport logging to sink; Close is a cleanup.
func startTCP(t *testing.T, id int64, sink *logSink, peers map[int64]string) *TCP {
	t.Helper()
	tr, err := NewTCP(TCPConfig{ID: id, ListenAddr: "127.0.0.1:0", Peers: peers, Logger: sink.logger()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// lines counts the log lines holding every one of subs.
func (s *logSink) lines(subs ...string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
next:
	for line := range strings.Lines(s.buf.String()) {
		for _, sub := range subs {
			if !strings.Contains(line, sub) {
				continue next
			}
		}
		n++
	}
	return n
}

// refusalOf dials addr, writes b, and returns the refusal the far end
// answers, after checking that it then closed the connection.
func refusalOf(t *testing.T, addr string, b []byte) *refusal {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write(b)
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(waitFor)))
	r, err := readRefusal(c)
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(waitFor)))
	rest, err := io.ReadAll(c)
	require.NoError(t, err, "closed cleanly after the refusal, not reset")
	require.Empty(t, rest)
	return r
}

func TestTCPRefusalTellsTheDialerWhy(t *testing.T) {
	noLeaks(t)
	sink := &logSink{}
	trs := cluster(t, sink, nil, 1, 2)
	addr := trs[1].Addr().String()
	v1 := append(append([]byte(nil), handshakeMagic[:]...), 1)
	v1 = binary.BigEndian.AppendUint64(v1, 2)
	v1 = binary.BigEndian.AppendUint64(v1, 1) // version 1 had no nonce
	tests := []struct {
		name   string
		bytes  []byte
		code   refusalCode
		reason string
	}{
		{"old version", v1, refuseVersion, "handshake version 1, want 2"},
		{"unknown id", handshakeBytes(99, 1), refuseUnknownID, "unknown peer id 99"},
		{"another server with this one's id", handshakeBytes(1, 1), refuseOwnID, "two servers are running with id 1"},
		{"dialed the wrong server", handshakeBytes(2, 7), refuseMisaddressed, "peer 2 dialed id 7, this is 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := refusalOf(t, addr, append(tc.bytes, appendFrame(nil, zab.Message{Type: zab.MsgPing})...))
			require.Equal(t, tc.code, r.code)
			require.Contains(t, r.reason, tc.reason)
			require.True(t, sink.has(tc.reason), "the acceptor logs it too")
		})
	}
	require.Equal(t, 1, sink.lines("level=ERROR", "two servers are running with id 1"))
	require.Equal(t, []int64{1}, trs[1].DuplicateIDs(), "another server claims 1's own id")
	require.Empty(t, trs[2].DuplicateIDs())

	t.Run("not the protocol: no reply", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Write([]byte("GET / HTTP/1.1\r\n"))
		require.NoError(t, err)
		require.NoError(t, c.SetReadDeadline(time.Now().Add(waitFor)))
		got, err := io.ReadAll(c)
		var ne net.Error
		require.False(t, errors.As(err, &ne) && ne.Timeout(), "connection was not closed")
		require.Empty(t, got)
	})

	trs[2].Send(zab.Message{Type: zab.MsgPing, To: 1, Zxid: 1})
	skipped := await(t, trs[1], nil, isType(zab.MsgPing, 2))
	require.Empty(t, skipped, "refused dialers caused no MsgLinkDown for the real peer")
}

func TestTCPRefusedDialerLogsWhyOnce(t *testing.T) {
	noLeaks(t)
	sa, sb := &logSink{}, &logSink{}
	a := startTCP(t, 1, sa, nil)
	b := startTCP(t, 5, sb, map[int64]string{1: a.Addr().String()}) // 1 does not know 5
	require.Eventually(t, func() bool { return sb.lines("outbound link down", "unknown peer id 5") >= 3 },
		waitFor, 5*time.Millisecond, "the dialer keeps retrying and sees why it fails")
	require.Equal(t, 1, sb.lines("level=ERROR", "peer refused our connection", "code=unknown-id", "unknown peer id 5"),
		"logged at Error once, the retries at Debug")
	require.Equal(t, 1, sb.lines("level=ERROR"))
	require.Empty(t, b.DuplicateIDs())
}

func TestTCPSelfDialIsNotADuplicate(t *testing.T) {
	noLeaks(t)
	sink := &logSink{}
	a := startTCP(t, 1, sink, nil)
	a.SetPeers(map[int64]string{3: a.Addr().String()}) // 3's address is 1's
	require.Eventually(t, func() bool {
		return sink.lines("level=ERROR", "peer refused our connection", "code=misaddressed", "dialed itself") == 1
	}, waitFor, 5*time.Millisecond)
	require.Empty(t, a.DuplicateIDs(), "its own nonce tells it that it dialed itself")
	require.False(t, sink.has("two servers"))
}

func TestRefusalRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		reason, want string
	}{
		{"", ""},
		{"unknown peer id 9", "unknown peer id 9"},
		{"bad \xff utf-8", "bad \uFFFD utf-8"},
		{strings.Repeat("é", maxRefusalReason), strings.Repeat("é", maxRefusalReason/2)}, // cut on a rune
		{strings.Repeat("x", maxRefusalReason+1), strings.Repeat("x", maxRefusalReason)},
	} {
		b := appendRefusal([]byte("prefix"), refuseDuplicateID, tc.reason)
		require.Equal(t, "prefix", string(b[:6]))
		r, err := decodeRefusal(b[6:])
		require.NoError(t, err)
		require.Equal(t, refuseDuplicateID, r.code)
		require.Equal(t, tc.want, r.reason)
		for n := range len(b) - 6 {
			_, err := decodeRefusal(b[6 : 6+n])
			require.ErrorIs(t, err, ErrMalformed, "cut at %d", n)
		}
		_, err = decodeRefusal(append(b[6:], 0))
		require.ErrorIs(t, err, ErrMalformed, "trailing byte")
	}
	good := appendRefusal(nil, refuseVersion, "why")
	for name, edit := range map[string]func([]byte){
		"magic":       func(b []byte) { b[3] = 'X' },
		"code 0":      func(b []byte) { b[4] = 0 },
		"too long":    func(b []byte) { binary.BigEndian.PutUint16(b[5:], maxRefusalReason+1) },
		"not utf-8":   func(b []byte) { b[len(b)-1] = 0xff },
		"length lies": func(b []byte) { b[6]++ },
	} {
		b := bytes.Clone(good)
		edit(b)
		_, err := decodeRefusal(b)
		require.ErrorIs(t, err, ErrMalformed, name)
	}
	r, err := decodeRefusal(appendRefusal(nil, 200, "from a newer version"))
	require.NoError(t, err, "unknown codes are kept for the log")
	require.Equal(t, "code-200", r.code.String())
}

// pipeRead runs readRefusal on one end of a pipe while the other writes
// b and closes.
func pipeRead(t *testing.T, b []byte) (*refusal, error) {
	t.Helper()
	ours, theirs := net.Pipe()
	defer ours.Close()
	go func() {
		_, _ = theirs.Write(b)
		_ = theirs.Close()
	}()
	return readRefusal(ours)
}

func TestReadRefusal(t *testing.T) {
	r, err := pipeRead(t, appendRefusal(nil, refuseOwnID, "fix myid"))
	require.NoError(t, err)
	require.Equal(t, &refusal{code: refuseOwnID, reason: "fix myid"}, r)

	_, err = pipeRead(t, nil)
	require.ErrorIs(t, err, io.EOF, "a plain close is not a refusal")
	_, err = pipeRead(t, []byte("x"))
	require.ErrorIs(t, err, errPeerSpoke)
	_, err = pipeRead(t, []byte("ZBKP"))
	require.ErrorIs(t, err, errPeerSpoke)
	whole := appendRefusal(nil, refuseOwnID, "fix myid")
	_, err = pipeRead(t, whole[:len(whole)-1])
	require.ErrorIs(t, err, errPeerSpoke)
}

func FuzzDecodeRefusal(f *testing.F) {
	for code := refuseVersion; code <= refuseDuplicateID; code++ {
		f.Add(appendRefusal(nil, code, code.String()+" reason"))
	}
	f.Add([]byte{})
	f.Add(refusalMagic[:])
	f.Add(appendRefusal(nil, refuseOwnID, strings.Repeat("ü", maxRefusalReason)))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRefusal(b)
		if err != nil {
			require.ErrorIs(t, err, ErrMalformed)
			return
		}
		require.NotZero(t, r.code)
		require.True(t, utf8.ValidString(r.reason))
		require.Equal(t, b, appendRefusal(nil, r.code, r.reason), "a decodable input is canonical")
	})
}
