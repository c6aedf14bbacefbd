package engine

import (
	"errors"
	"fmt"

	"github.com/zabkeeper/zabkeeper/proto"
)

// Application payloads between a learner and its leader (zab.MsgApp). Zab
// fences them by epoch; their content is the engine's business.

type appKind int32

const (
	// appRequest is a client write, session change (create, move) or sync
	// forwarded to the leader, which turns it into a txn.
	appRequest appKind = 1
	// appTouch reports the sessions a learner saw alive since its last
	// report, so the leader alone decides expiry.
	appTouch appKind = 2
)

// forwarded is a request the leader must turn into a txn. The server that
// holds the session's connection answers the client when the txn commits.
type forwarded struct {
	session int64
	cxid    int32
	op      proto.OpCode
	time    int64
	auth    []proto.Id
	// body is the marshalled request record (nil for createSession).
	body []byte
	// timeout is the negotiated timeout of a new session (createSession)
	// or of the connection a session moves to (moveSession); passwd is a
	// new session's password.
	timeout int32
	passwd  []byte
	// from is the server the request came from: the sender of the peer
	// message, or the leader itself. Not encoded: zab names the sender.
	from int64
}

// errBadPayload wraps every payload decoding error.
var errBadPayload = errors.New("engine: malformed peer payload")

func encodeForwarded(f *forwarded) []byte {
	e := proto.NewEncoder(nil)
	e.WriteInt(int32(appRequest))
	e.WriteLong(f.session)
	e.WriteInt(f.cxid)
	e.WriteInt(int32(f.op))
	e.WriteLong(f.time)
	e.WriteInt(int32(len(f.auth)))
	for i := range f.auth {
		f.auth[i].Encode(e)
	}
	e.WriteBuffer(f.body)
	e.WriteInt(f.timeout)
	e.WriteBuffer(f.passwd)
	return e.Bytes()
}

func encodeTouch(sessions []int64) []byte {
	e := proto.NewEncoder(nil)
	e.WriteInt(int32(appTouch))
	e.WriteInt(int32(len(sessions)))
	for _, s := range sessions {
		e.WriteLong(s)
	}
	return e.Bytes()
}

// decodePayload returns the kind and, for appRequest, the request; for
// appTouch, the session ids.
func decodePayload(b []byte) (appKind, *forwarded, []int64, error) {
	d := proto.NewDecoder(b)
	kind := appKind(d.ReadInt())
	switch kind {
	case appRequest:
		f := &forwarded{session: d.ReadLong(), cxid: d.ReadInt(), op: proto.OpCode(d.ReadInt()), time: d.ReadLong()}
		n := d.ReadVectorLen(8)
		for i := 0; i < n && d.Err() == nil; i++ {
			var id proto.Id
			_ = id.Decode(d)
			f.auth = append(f.auth, id)
		}
		f.body = d.ReadBuffer()
		f.timeout = d.ReadInt()
		f.passwd = d.ReadBuffer()
		if err := d.Err(); err != nil {
			return 0, nil, nil, fmt.Errorf("%w: %w", errBadPayload, err)
		}
		return kind, f, nil, nil
	case appTouch:
		n := d.ReadVectorLen(8)
		ids := make([]int64, 0, n)
		for i := 0; i < n && d.Err() == nil; i++ {
			ids = append(ids, d.ReadLong())
		}
		if err := d.Err(); err != nil {
			return 0, nil, nil, fmt.Errorf("%w: %w", errBadPayload, err)
		}
		return kind, nil, ids, nil
	}
	if err := d.Err(); err != nil {
		return 0, nil, nil, fmt.Errorf("%w: %w", errBadPayload, err)
	}
	return 0, nil, nil, fmt.Errorf("%w: kind %d", errBadPayload, kind)
}
