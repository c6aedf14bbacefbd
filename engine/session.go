package engine

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
)

// session is one client session as every replica knows it (created and
// closed by txns), plus this server's liveness bookkeeping.
type session struct {
	id      int64
	timeout int32 // negotiated, ms
	passwd  []byte
	// expireTick is the tick at which the session expires unless touched.
	expireTick int64
	// conn is the connection on this server that holds the session, or 0.
	conn ConnID
	// owner is the id of the server whose client connection holds the
	// session, replicated by txns: createSession names the server that
	// created it, moveSession the server the client reconnected to (every
	// reconnect but one to the leader that owns the session already is a
	// moveSession). The leader turns a write, sync or closeSession
	// forwarded by any other server into an error txn with SessionMoved,
	// and a server that is not the owner closes its connection of the
	// session when a moveSession applies. 0 means unknown: a session loaded
	// from a snapshot (whose format has no owner, after a restart or a SNAP
	// sync) may be served by any server until its client reconnects, which
	// moves it.
	owner int64
	// closing is set once a closeSession txn was proposed for it.
	closing bool
}

// passwordLen is the length of a session password, as in ZooKeeper.
const passwordLen = 16

// sessionPassword mints the password of a new session: an HMAC of the id
// under this server's secret. It is carried in the createSession txn, so any
// replica can check it later without knowing the secret.
func sessionPassword(secret []byte, id int64) []byte {
	m := hmac.New(sha256.New, secret)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(id))
	m.Write(b[:])
	return m.Sum(nil)[:passwordLen]
}

// initialSessionID seeds session ids as ZooKeeper does: the server id in the
// high byte and 40 bits of the start time below it.
func initialSessionID(serverID, startMs int64) int64 {
	next := int64(uint64(startMs<<24) >> 8)
	return next | (serverID << 56)
}

// ticksFor converts a session timeout to the number of ticks after a touch at
// which it expires, rounded up plus one so a session never expires early.
// A Tick lasts tickMs/perTick ms.
func ticksFor(timeoutMs int32, tickMs, perTick int) int64 {
	t, k := int64(tickMs), int64(perTick)
	return (int64(timeoutMs)*k+t-1)/t + 1
}
