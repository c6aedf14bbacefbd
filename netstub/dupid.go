package netstub

import (
	"time"
)

// DupIDs is the duplicate-id rule of dupdetect.go for a transport
// (netstub/zktcp applies it to the nonces of learners' hellos on
// ZooKeeper's quorum port): a restarted process, with a new nonce,
// replaces its old connection; two live processes with one id, proven by
// dupTurns turns between their nonces, are refused until one is quiet.
// Not safe for concurrent use: the transport holds its own lock.
type DupIDs struct{ d dupDetector }

// DupVerdict is what DupIDs says about one connection.
type DupVerdict int

// Verdicts of DupIDs.Admit.
const (
	// DupAccept: accept it (replacing the id's previous connection).
	DupAccept DupVerdict = DupVerdict(dupAccept)
	// DupDetected: two live processes were just proven; refuse it and
	// close the id's current connection (log at Error, once).
	DupDetected DupVerdict = DupVerdict(dupDetected)
	// DupRefuse: the id is in quarantine; refuse it (quietly).
	DupRefuse DupVerdict = DupVerdict(dupRefuse)
	// DupCleared: the quarantine ended; accept it (log that).
	DupCleared DupVerdict = DupVerdict(dupCleared)
)

// NewNonce returns a random, non-zero transport instance nonce.
func NewNonce() uint64 { return newNonce() }

// FormatNonce formats a nonce for log lines.
func FormatNonce(n uint64) string { return fmtNonce(n) }

// Admit records a connection of server id with nonce (non-zero) from addr
// at now and says whether to accept it; for DupDetected, pair are the
// addresses of the two processes.
func (d *DupIDs) Admit(id int64, nonce uint64, addr string, now time.Time) (v DupVerdict, pair [2]string) {
	verdict, h := d.d.admit(id, nonce, addr, now)
	return DupVerdict(verdict), [2]string{h.pair[0].addr, h.pair[1].addr}
}

// Prune forgets the ids keep refuses (servers no longer configured).
func (d *DupIDs) Prune(keep func(int64) bool) { d.d.prune(keep) }

// Duplicates returns, sorted, the peer ids two live processes use now
// (those in quarantine whose two processes still connect).
func (d *DupIDs) Duplicates(self int64, now time.Time) []int64 { return d.d.duplicates(self, now) }

// Quiet is how long only one nonce must be seen to end a quarantine.
func (d *DupIDs) Quiet() time.Duration { return d.d.quietOrDefault() }

// ClaimOwn records a connection from another process claiming self, this
// server's own id (with its nonce, 0 if it sent none), and reports
// whether it starts an episode to log at Error (none was seen for Quiet).
// Duplicates lists self while such claims keep coming.
func (d *DupIDs) ClaimOwn(self int64, nonce uint64, addr string, now time.Time) bool {
	return d.d.claimOwn(self, nonce, addr, now)
}
