package netstub

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"time"
	"unicode/utf8"
)

// The handshake a dialer sends right after connecting, all integers
// big-endian:
//
//	magic    4 bytes "ZBKP"
//	version  u8      handshakeVersion
//	from     i64     the dialer's id
//	to       i64     the id the dialer expects to reach
//	nonce    u64     the dialer's instance nonce (see TCP.nonce)
//
// The acceptor answers nothing if it accepts the connection, and a refusal
// (below) before closing it if it refuses: the dialer never reads
// otherwise. Version 1 had no nonce. handshakeMagic, handshakeVersion and
// handshakeLen are in tcp.go.

// The refusal an acceptor writes before closing a connection whose
// handshake it refused, all integers big-endian:
//
//	magic    4 bytes "ZBKR"
//	code     u8      refusalCode, never 0
//	length   u16     length of the reason, at most maxRefusalReason
//	reason   bytes   UTF-8 text for the dialer's log
//
// Its format does not depend on the handshake version, so that servers of
// different versions can still tell each other why they refuse.
var refusalMagic = [4]byte{'Z', 'B', 'K', 'R'}

const (
	refusalHeaderLen = 4 + 1 + 2
	maxRefusalReason = 512
	// refusalLinger bounds how long the acceptor waits, after writing a
	// refusal, for the dialer to hang up; see TCP.refuse.
	refusalLinger = time.Second
	// refusalDrain bounds what the acceptor reads and discards meanwhile.
	refusalDrain = 4 << 20
	// refusalLogEvery is how often a dialer logs at Error that a peer
	// keeps refusing it for the same reason; the retries in between, every
	// backoffMax or so, are logged at Debug.
	refusalLogEvery = time.Minute
)

// refusalCode says why an acceptor refused a connection.
type refusalCode uint8

const (
	refuseVersion      refusalCode = 1 + iota // handshake version mismatch
	refuseUnknownID                           // the dialer's id is not configured here
	refuseOwnID                               // the dialer claims the acceptor's id
	refuseMisaddressed                        // the dialer meant another server
	refuseDuplicateID                         // two live servers dial with the dialer's id
)

func (c refusalCode) String() string {
	switch c {
	case refuseVersion:
		return "version"
	case refuseUnknownID:
		return "unknown-id"
	case refuseOwnID:
		return "own-id"
	case refuseMisaddressed:
		return "misaddressed"
	case refuseDuplicateID:
		return "duplicate-id"
	case refuseCertificate:
		return "certificate"
	default:
		return fmt.Sprintf("code-%d", uint8(c))
	}
}

// refusal is a handshake the acceptor refuses and tells the dialer about.
type refusal struct {
	code   refusalCode // why, for programs
	reason string      // why, for the operator reading the dialer's log
	// level is the level the acceptor logs it at: Warn by default (the
	// zero value is Info, so constructors set it), Debug for the repeats
	// of something already logged at Error.
	level slog.Level
}

func (r *refusal) Error() string { return r.reason }

func refused(code refusalCode, format string, args ...any) *refusal {
	return &refusal{code: code, reason: fmt.Sprintf(format, args...), level: slog.LevelWarn}
}

// newNonce returns a random, non-zero instance nonce. Two processes, or
// two runs of one, draw the same one with probability 2⁻⁶⁴.
func newNonce() uint64 {
	for {
		if n := rand.Uint64(); n != 0 {
			return n
		}
	}
}

// appendHandshake appends the handshake a dialer sends.
func appendHandshake(dst []byte, from, to int64, nonce uint64) []byte {
	dst = append(dst, handshakeMagic[:]...)
	dst = append(dst, handshakeVersion)
	dst = binary.BigEndian.AppendUint64(dst, uint64(from))
	dst = binary.BigEndian.AppendUint64(dst, uint64(to))
	return binary.BigEndian.AppendUint64(dst, nonce)
}

// handshake reads and checks the dialer's header and returns its id and
// nonce. A *refusal error is worth telling the dialer (see refuse); other
// errors come from peers that do not speak the protocol at all.
func (t *TCP) handshake(c net.Conn) (int64, uint64, error) {
	_ = c.SetReadDeadline(time.Now().Add(handshakeTimeout))
	var h [handshakeLen]byte
	// Magic and version first: another version's header may be shorter.
	if _, err := io.ReadFull(c, h[:5]); err != nil {
		return 0, 0, fmt.Errorf("reading handshake: %w", err)
	}
	if [4]byte(h[:4]) != handshakeMagic {
		return 0, 0, fmt.Errorf("bad magic %q", h[:4])
	}
	if h[4] != handshakeVersion {
		return 0, 0, refused(refuseVersion,
			"handshake version %d, want %d: the peer runs an incompatible zabkeeper version", h[4], handshakeVersion)
	}
	if _, err := io.ReadFull(c, h[5:]); err != nil {
		return 0, 0, fmt.Errorf("reading handshake: %w", err)
	}
	_ = c.SetReadDeadline(time.Time{})
	from := int64(binary.BigEndian.Uint64(h[5:]))
	to := int64(binary.BigEndian.Uint64(h[13:]))
	nonce := binary.BigEndian.Uint64(h[21:])
	if from == t.id {
		if nonce == t.nonce {
			return 0, 0, refused(refuseMisaddressed,
				"this server (id %d) dialed itself: the address configured for peer %d leads here (address misconfigured?)", t.id, to)
		}
		remote := c.RemoteAddr().String()
		t.mu.Lock()
		first := t.dup.claimOwn(t.id, nonce, remote, time.Now())
		t.mu.Unlock()
		r := refused(refuseOwnID,
			"peer claims this server's own id %d: two servers are running with id %d (this one and the one at %s): fix myid", from, from, remote)
		if first {
			t.log.Error(fmt.Sprintf("two servers are running with id %d (this one and the one at %s): fix myid", from, remote),
				"remote", remote, "nonce", fmtNonce(nonce), "own_nonce", fmtNonce(t.nonce))
		}
		r.level = slog.LevelDebug // logged at Error once per episode, just above
		return 0, 0, r
	}
	if to != t.id {
		return 0, 0, refused(refuseMisaddressed, "peer %d dialed id %d, this is %d (address misconfigured?)", from, to, t.id)
	}
	t.mu.Lock()
	_, known := t.peers[from]
	t.mu.Unlock()
	if !known {
		return 0, 0, refused(refuseUnknownID, "unknown peer id %d", from)
	}
	return from, nonce, nil
}

func fmtNonce(n uint64) string { return fmt.Sprintf("%016x", n) }

// refuse logs why c was refused and, for a *refusal, tells the dialer
// before the caller closes c.
func (t *TCP) refuse(c net.Conn, remote string, err error) {
	var r *refusal
	if !errors.As(err, &r) {
		t.log.Warn("refused connection", "remote", remote, "err", err)
		return
	}
	t.log.Log(context.Background(), r.level, "refused connection", "remote", remote, "code", r.code, "err", r.reason)
	_ = c.SetWriteDeadline(time.Now().Add(refusalLinger))
	if _, err := c.Write(appendRefusal(nil, r.code, r.reason)); err != nil {
		return
	}
	// Closing with unread bytes (the dialer writes its queue right after
	// its handshake) would reset the connection, and a reset may discard
	// the refusal before the dialer reads it. So: end our side, then read
	// until the dialer, having read the refusal, hangs up.
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = c.SetReadDeadline(time.Now().Add(refusalLinger))
	_, _ = io.CopyN(io.Discard, c, refusalDrain)
}

// appendRefusal appends a refusal; a reason longer than maxRefusalReason
// bytes or not UTF-8 is cut or repaired.
func appendRefusal(dst []byte, code refusalCode, reason string) []byte {
	reason = strings.ToValidUTF8(reason, "\uFFFD")
	if len(reason) > maxRefusalReason {
		n := maxRefusalReason
		for n > 0 && !utf8.RuneStart(reason[n]) {
			n--
		}
		reason = reason[:n]
	}
	dst = append(dst, refusalMagic[:]...)
	dst = append(dst, byte(code))
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(reason)))
	return append(dst, reason...)
}

// decodeRefusal decodes exactly one refusal. Every error wraps
// ErrMalformed.
func decodeRefusal(b []byte) (*refusal, error) {
	n, err := refusalReasonLen(b)
	if err != nil {
		return nil, err
	}
	if len(b) != refusalHeaderLen+n {
		return nil, fmt.Errorf("%w: refusal of %d bytes, header says %d", ErrMalformed, len(b), refusalHeaderLen+n)
	}
	reason := b[refusalHeaderLen:]
	if !utf8.Valid(reason) {
		return nil, fmt.Errorf("%w: refusal reason is not UTF-8", ErrMalformed)
	}
	return &refusal{code: refusalCode(b[4]), reason: string(reason)}, nil
}

// refusalReasonLen checks a refusal header and returns its reason length.
func refusalReasonLen(b []byte) (int, error) {
	switch {
	case len(b) < refusalHeaderLen:
		return 0, fmt.Errorf("%w: refusal header of %d bytes", ErrMalformed, len(b))
	case [4]byte(b[:4]) != refusalMagic:
		return 0, fmt.Errorf("%w: refusal magic %q", ErrMalformed, b[:4])
	case b[4] == 0:
		return 0, fmt.Errorf("%w: refusal code 0", ErrMalformed)
	}
	n := int(binary.BigEndian.Uint16(b[5:]))
	if n > maxRefusalReason {
		return 0, fmt.Errorf("%w: refusal reason of %d bytes exceeds %d", ErrMalformed, n, maxRefusalReason)
	}
	return n, nil
}

// readRefusal reads what a peer sends on one of our outbound connections:
// nothing until it closes or resets it (the error that returns), or a
// refusal. Anything else is errPeerSpoke.
func readRefusal(c net.Conn) (*refusal, error) {
	buf := make([]byte, 1, refusalHeaderLen+maxRefusalReason)
	if _, err := io.ReadFull(c, buf); err != nil {
		return nil, err
	}
	if buf[0] != refusalMagic[0] {
		return nil, errPeerSpoke
	}
	// A refusal arrives whole at once; do not wait forever for the rest.
	_ = c.SetReadDeadline(time.Now().Add(handshakeTimeout))
	buf = buf[:refusalHeaderLen]
	if _, err := io.ReadFull(c, buf[1:]); err != nil {
		return nil, fmt.Errorf("%w: truncated refusal: %w", errPeerSpoke, err)
	}
	n, err := refusalReasonLen(buf)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errPeerSpoke, err)
	}
	buf = buf[:refusalHeaderLen+n]
	if _, err := io.ReadFull(c, buf[refusalHeaderLen:]); err != nil {
		return nil, fmt.Errorf("%w: truncated refusal: %w", errPeerSpoke, err)
	}
	r, err := decodeRefusal(buf)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errPeerSpoke, err)
	}
	return r, nil
}

// refusalLogged is the last refusal from one peer logged at Error.
type refusalLogged struct {
	code refusalCode
	at   time.Time
}

// watchOutbound blocks until the peer closes, resets or writes on conn,
// one of our outbound connections, and returns why. The peer writes on it
// only to refuse it, which is logged at Error (a configuration to fix: the
// peer says what), at most once per refusalLogEvery and peer for the same
// code, since a refused dialer retries every backoffMax or so.
func (t *TCP) watchOutbound(conn net.Conn, peer int64) error {
	r, err := readRefusal(conn)
	if err != nil {
		return err
	}
	now := time.Now()
	level := slog.LevelDebug
	t.mu.Lock()
	if r.code == refuseDuplicateID || r.code == refuseOwnID {
		t.dup.told = now
	}
	if last, ok := t.refusals[peer]; !ok || last.code != r.code || now.Sub(last.at) >= refusalLogEvery {
		level = slog.LevelError
		if t.refusals == nil {
			t.refusals = map[int64]refusalLogged{}
		}
		for id, l := range t.refusals { // bound the map by forgetting
			if now.Sub(l.at) >= refusalLogEvery {
				delete(t.refusals, id)
			}
		}
		t.refusals[peer] = refusalLogged{code: r.code, at: now}
	}
	t.mu.Unlock()
	t.log.Log(context.Background(), level, "peer refused our connection", "peer", peer, "code", r.code, "reason", r.reason)
	return fmt.Errorf("refused by peer %d (%v): %s", peer, r.code, r.reason)
}
