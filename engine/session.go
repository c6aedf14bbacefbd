package engine

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
	// moves it (the leader then keeps the first requester as the owner in
	// memory, Node.owners, peercaps.go).
	owner int64
	// closing is set once a closeSession txn was proposed for it.
	closing bool
}

// passwordLen is the length of a session password, as in ZooKeeper.
const passwordLen = 16

// sessionSuperSecret is the constant ZooKeeper mixes into the seed of a
// session's password (ZooKeeperServer.superSecret).
const sessionSuperSecret = 0xB3415C00

// SessionPassword returns the password of session id exactly as Apache
// ZooKeeper derives it (ZooKeeperServer.generatePasswd): 16 bytes from
// java.util.Random seeded with id ^ 0xB3415C00. ZooKeeper keeps no password
// on disk and recomputes it on every reconnect, so a client that connected
// to ZooKeeper reconnects to zabkeeper with the same id and password, and
// the other way round.
func SessionPassword(id int64) []byte {
	const (
		mult = 0x5DEECE66D
		mask = 1<<48 - 1
	)
	seed := (uint64(id^sessionSuperSecret) ^ mult) & mask // new Random(seed)
	p := make([]byte, passwordLen)
	for i := 0; i < len(p); {
		seed = (seed*mult + 0xB) & mask // next(32)
		r := uint32(seed >> 16)
		for n := min(len(p)-i, 4); n > 0; n-- { // nextBytes: low byte first
			p[i] = byte(r)
			r >>= 8
			i++
		}
	}
	return p
}

// sessionPassword is the password of a new session: SessionPassword with
// ZooKeeper's secret. The secret argument (engine.Config.SessionSecret) is
// no longer used: every replica derives the password from the id alone,
// as ZooKeeper does.
func sessionPassword(_ []byte, id int64) []byte { return SessionPassword(id) }

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
