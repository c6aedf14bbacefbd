package engine

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/proto"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// Application payloads between a learner and its leader (zab.MsgApp) are
// encoded ZooKeeper quorum packets (proto/quorum), in both peer protocols,
// so that the ZooKeeper link edge maps them 1:1 to the packets a ZooKeeper
// peer sends and expects:
//   - learner to leader: REQUEST (a forwarded write, session change or
//     sync, in ZooKeeper's shape), PING with (session, timeout) touches,
//     REVALIDATE (a reconnect, to a leader whose link lacks
//     CapMoveRequest; peercaps.go);
//   - leader to learner: the REVALIDATE reply, SYNC (the answer to a
//     forwarded sync).
//
// Zab fences them by epoch; their content is the engine's business.

// forwarded is a request the leader must turn into a txn. The server that
// holds the session's connection answers the client when the txn commits.
// No time and no password travel: the leader stamps the time from its own
// clock and every server derives a session's password from its id
// (SessionPassword), as ZooKeeper does.
type forwarded struct {
	session int64
	cxid    int32
	op      proto.OpCode
	auth    []proto.Id
	// body is the marshalled request record, as REQUEST carries it after
	// the RequestHeader (empty for closeSession; createSession and
	// moveSession carry timeout instead).
	body []byte
	// timeout is the negotiated timeout of a new session (createSession)
	// or of the connection a session moves to (moveSession).
	timeout int32
	// from is the server the request came from: the sender of the peer
	// message, or the leader itself. Not encoded: zab names the sender.
	from int64
}

// errBadPayload wraps every payload decoding error.
var errBadPayload = errors.New("engine: malformed peer payload")

// hasTimeoutBody reports whether op's REQUEST body is an int32 timeout:
// ZooKeeper's createSession, and the native moveSession.
func hasTimeoutBody(op proto.OpCode) bool {
	return op == proto.OpCreateSession || op == tree.OpMoveSession
}

// encodeRequest returns the REQUEST packet of f.
func encodeRequest(f *forwarded) []byte {
	body := f.body
	if hasTimeoutBody(f.op) {
		body = binary.BigEndian.AppendUint32(nil, uint32(f.timeout))
	}
	return appendRequest(f, body)
}

// appendRequest returns the REQUEST packet of f with body, in one exactly
// sized buffer.
func appendRequest(f *forwarded, body []byte) []byte {
	q := quorum.Forwarded{Session: f.session, Cxid: f.cxid, Op: f.op, Body: body, Auth: f.auth}
	return quorum.AppendRequest(make([]byte, 0, quorum.RequestLen(q)), q)
}

// maxFwdBody bounds the capacity fwdBody keeps between forwards.
const maxFwdBody = 64 << 10

// encodeForward returns the REQUEST packet a learner forwards for f, whose
// record rec (when not nil, and not a closeSession's) is the body: it is
// marshalled into the node's scratch encoder and copied once into the
// packet, the packet's only allocation.
func (n *Node) encodeForward(f *forwarded, rec proto.Record) []byte {
	if rec == nil || f.op == proto.OpCloseSession || hasTimeoutBody(f.op) {
		return encodeRequest(f)
	}
	n.fwdBody.Reset()
	rec.Encode(&n.fwdBody)
	out := appendRequest(f, n.fwdBody.Bytes())
	if n.fwdBody.Len() > maxFwdBody {
		n.fwdBody = proto.Encoder{}
	}
	return out
}

// encodeTouches returns a learner's PING carrying the sessions it saw alive,
// each with its timeout, as ZooKeeper's learner writes its PING reply.
func encodeTouches(touches []quorum.Touch) []byte {
	return quorum.NewPingReply(&quorum.Packet{Type: quorum.Ping}, touches).Encode()
}

// payloadLimits bounds a peer payload's data as the transports bound a
// frame: a forwarded request holds a client request of up to
// jute.maxbuffer, which the txn limit (proto.TxnLimit of it) covers. With
// ZooKeeper's default limit alone, a learner's forward of a large node
// would be dropped here when jute.maxbuffer is raised.
func (n *Node) payloadLimits() quorum.Limits {
	limit := n.cfg.Tree.MaxTxnSize
	if limit <= 0 {
		limit = proto.TxnLimit(proto.DefaultMaxBuffer)
	}
	return quorum.Limits{MaxData: max(quorum.DefaultMaxData, limit)}
}

// decodePacket decodes a peer payload: exactly one quorum packet, in raw
// form (quorum.ParseRaw): its Data aliases b, which a Message's payload
// never changes, and nothing is copied.
func decodePacket(b []byte, lim quorum.Limits) (quorum.Packet, error) {
	p, n, err := quorum.ParseRaw(b, lim)
	if err != nil {
		return quorum.Packet{}, fmt.Errorf("%w: %w", errBadPayload, err)
	}
	if n != len(b) {
		return quorum.Packet{}, fmt.Errorf("%w: %d bytes after the %s packet", errBadPayload, len(b)-n, p.Type)
	}
	return p, nil
}

// decodeForwarded reads a REQUEST. The request record is decoded here,
// once (rec; nil for session changes): the leader never decodes it again.
// A record that does not decode is not a malformed packet: as ZooKeeper's
// PrepRequestProcessor does, the leader answers it with a MarshallingError
// txn (recErr). f.body aliases p's data.
func (n *Node) decodeForwarded(p *quorum.Packet) (f forwarded, rec proto.Record, recErr error, err error) {
	q, err := quorum.DecodeRequestHead(p)
	if err != nil {
		return forwarded{}, nil, nil, fmt.Errorf("%w: %w", errBadPayload, err)
	}
	f = forwarded{session: q.Session, cxid: q.Cxid, op: q.Op, auth: n.forwardedAuth(p)}
	switch {
	case hasTimeoutBody(q.Op):
		if len(q.Body) != 4 {
			return forwarded{}, nil, nil, fmt.Errorf("%w: %v REQUEST body of %d bytes (want an int32 timeout)", errBadPayload, q.Op, len(q.Body))
		}
		f.timeout = int32(binary.BigEndian.Uint32(q.Body))
	case q.Op == proto.OpCloseSession:
	default:
		f.body = q.Body
		if rec, recErr = proto.DecodeRequest(q.Op, q.Body); recErr != nil {
			recErr = fmt.Errorf("%w: %v request record: %w", errBadPayload, q.Op, recErr)
		}
	}
	return f, rec, recErr, nil
}

// maxFwdAuth bounds the distinct authinfo encodings fwdAuth keeps: past
// it the cache starts over (a learner's clients mostly share a few, such
// as ip:127.0.0.1).
const maxFwdAuth = 64

// forwardedAuth returns the authinfo Ids of a REQUEST: those of an earlier
// REQUEST with the same encoded authinfo, shared (the tree only reads a
// caller's Ids, and the slice is full so an append copies), else decoded
// and remembered. The Ids are the same either way, so what the leader
// decides is too.
func (n *Node) forwardedAuth(p *quorum.Packet) []proto.Id {
	raw := p.RawAuth()
	if raw == nil {
		return p.AuthInfo()
	}
	if ids, ok := n.fwdAuth[string(raw)]; ok {
		return ids
	}
	ids := p.AuthInfo()
	ids = ids[:len(ids):len(ids)]
	if n.fwdAuth == nil || len(n.fwdAuth) >= maxFwdAuth {
		n.fwdAuth = make(map[string][]proto.Id)
	}
	n.fwdAuth[string(raw)] = ids
	return ids
}

// PeerError is a peer payload this server dropped (or answered with a
// MarshallingError txn) because it did not decode or was not one this
// server takes in its role.
type PeerError struct {
	From int64
	Err  error
}

func (e PeerError) Error() string { return fmt.Sprintf("server %d: %v", e.From, e.Err) }

// peerError records a payload this server refused: the caller logs the
// errors (PeerErrors) and counts them (PeerErrorCount).
func (n *Node) peerError(from int64, err error) {
	n.peerErrCount++
	if len(n.peerErrs) < maxPeerErrors {
		n.peerErrs = append(n.peerErrs, PeerError{From: from, Err: err})
	}
}

// maxPeerErrors bounds the errors kept between two PeerErrors calls: a
// peer sending garbage must not grow memory.
const maxPeerErrors = 64

// PeerErrors returns, once, the peer payloads refused since the last call
// (at most maxPeerErrors of them; PeerErrorCount counts them all). A
// refused payload is never applied: the engine has no logger, so the caller
// logs these with the peer and the reason.
func (n *Node) PeerErrors() []PeerError {
	out := n.peerErrs
	n.peerErrs = nil
	return out
}

// PeerErrorCount is the number of peer payloads refused since start.
func (n *Node) PeerErrorCount() int64 { return n.peerErrCount }
