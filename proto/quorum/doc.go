// Package quorum is Apache ZooKeeper's server-to-server wire format: the
// election port's initial connection message and its length-framed fast
// leader election notifications, and the leader/learner QuorumPacket stream
// on the quorum port with each packet type's payload, as ZooKeeper 3.5 to
// 3.9 send them.
//
// It only encodes and decodes: no sockets, goroutines or clocks. Readers take
// an io.Reader (give them a *bufio.Reader on a connection) and check every
// length against a hard limit before reading or allocating, so a peer that
// claims a huge packet gets an error naming the limit, never an allocation
// of the size it claimed.
//
// The facts (field orders, limits, version differences) are in
// zookeeper-disk-and-quorum.md sections 8 to 12; the ZooKeeper classes each
// part matches are named in the comments. docs/ZAB.md maps these packets to
// engine/zab's messages.
package quorum

import "errors"

// Errors every decoder wraps, so a caller can log the reason and close the
// link: errors.Is(err, ErrTooLarge) and so on.
var (
	// ErrTooLarge: a length prefix or count exceeds the decoder's limit.
	ErrTooLarge = errors.New("quorum: too large")
	// ErrMalformed: the bytes do not form the record (short, bad length,
	// bad field value).
	ErrMalformed = errors.New("quorum: malformed")
	// ErrVersion: a protocol version this codec does not speak.
	ErrVersion = errors.New("quorum: unsupported protocol version")
)
