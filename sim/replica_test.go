package sim

import (
	"slices"
	"strings"

	"github.com/zabkeeper/zabkeeper/engine"
	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto"
)

// deadReplica never does anything: no leader, no replies.
type deadReplica struct{}

func (*deadReplica) Tick(int64)                                              {}
func (*deadReplica) Step(zab.Message)                                        {}
func (*deadReplica) Connect(uint64, *proto.ConnectRequest, string, int64)    {}
func (*deadReplica) Submit(uint64, int32, proto.OpCode, proto.Record, int64) {}
func (*deadReplica) Disconnect(uint64)                                       {}
func (*deadReplica) Persisted(int64)                                         {}
func (*deadReplica) TransferLeadership() bool                                { return false }
func (*deadReplica) HasReady() bool                                          { return false }
func (*deadReplica) Ready() Batch                                            { return Batch{} }
func (*deadReplica) Advance()                                                {}
func (*deadReplica) Status() zab.Status                                      { return zab.Status{} }
func (*deadReplica) Role() (zab.Role, int64)                                 { return zab.Status{}.Role, 0 }
func (*deadReplica) LastZxid() int64                                         { return 0 }
func (*deadReplica) Digest() uint64                                          { return 0 }
func (*deadReplica) Ephemerals(int64) []string                               { return nil }
func (*deadReplica) Snapshot() (int64, []byte)                               { return 0, nil }

// staleReads wraps a replica and, once in a while, answers a getData with
// data it never held.
type staleReads struct {
	Replica
	n *int
}

func (r staleReads) Ready() Batch {
	b := r.Replica.Ready()
	for i := range b.Outputs {
		if gd, ok := b.Outputs[i].Body.(*proto.GetDataResponse); ok {
			*r.n++
			if *r.n%5 == 0 {
				bad := *gd
				bad.Data = []byte("never written")
				b.Outputs[i].Body = &bad
			}
		}
	}
	return b
}

// panicky wraps a replica and panics on its n-th Step, as a replica bug
// would.
type panicky struct {
	Replica
	n *int
}

func (r panicky) Step(m zab.Message) {
	*r.n--
	if *r.n == 0 {
		panic("replica bug")
	}
	r.Replica.Step(m)
}

// dropEvents wraps a replica and drops every watch event it delivers.
type dropEvents struct{ Replica }

func (r dropEvents) Ready() Batch {
	b := r.Replica.Ready()
	b.Outputs = slices.DeleteFunc(b.Outputs, func(o Output) bool { return o.Kind == OutEvent })
	return b
}

// fakeEvents wraps a replica and turns some replies' zxids into a watch
// event nobody set.
type fakeEvents struct {
	Replica
	n *int
}

func (r fakeEvents) Ready() Batch {
	b := r.Replica.Ready()
	for _, o := range b.Outputs {
		if o.Kind == OutReply && o.Header.Zxid > 0 {
			if *r.n++; *r.n%50 == 0 {
				ev := Output{Conn: o.Conn, Kind: OutEvent, Header: proto.ReplyHeader{Xid: proto.XidNotification, Zxid: o.Header.Zxid},
					Body: &proto.WatcherEvent{Type: proto.EventNodeDataChanged, State: proto.StateSyncConnected, Path: "/never-watched"}}
				b.Outputs = append([]Output{ev}, b.Outputs...)
				break
			}
		}
	}
	return b
}

// eagerFsync wraps a replica and tells it its entries are durable as soon
// as it hands them out, as a disk that acknowledges fsync from its cache
// would: its ACKs then promise what the disk does not hold.
type eagerFsync struct {
	Replica
	last *int64
}

func (r eagerFsync) Ready() Batch {
	b := r.Replica.Ready()
	if n := len(b.Entries); n > 0 {
		*r.last = b.Entries[n-1].Zxid
	}
	return b
}

func (r eagerFsync) Advance() {
	r.Replica.Advance()
	if *r.last != 0 {
		z := *r.last
		*r.last = 0
		r.Replica.Persisted(z)
	}
}

// roConns tracks which connections a wrapped replica answered as a
// read-only server.
type roConns map[engine.ConnID]bool

func (ro roConns) note(b *Batch) {
	for _, o := range b.Outputs {
		if o.Kind == OutConnect && o.Connect != nil && o.Connect.ReadOnly && o.Connect.TimeOut > 0 {
			ro[o.Conn] = true
		}
	}
}

// keepReadOnlyConns wraps a replica that forgets to close its read-only
// clients when the election ends: it drops those closes.
type keepReadOnlyConns struct{ Replica }

func (r keepReadOnlyConns) Ready() Batch {
	b := r.Replica.Ready()
	b.Outputs = slices.DeleteFunc(slices.Clone(b.Outputs), func(o Output) bool {
		return o.Kind == OutClose && strings.HasPrefix(o.Reason, "read-only mode ends")
	})
	return b
}

// acceptReadOnlyWrites wraps a replica whose read-only mode answers writes
// as if it had carried them out.
type acceptReadOnlyWrites struct{ Replica }

func (r acceptReadOnlyWrites) Ready() Batch {
	b := r.Replica.Ready()
	b.Outputs = slices.Clone(b.Outputs)
	for i := range b.Outputs {
		if b.Outputs[i].Kind == OutReply && b.Outputs[i].Header.Err == proto.ErrNotReadOnly {
			b.Outputs[i].Header.Err = proto.ErrOK
		}
	}
	return b
}

// uncommittedReadOnlyReads wraps a replica whose read-only mode serves a
// getData with data no committed txn wrote, as a server reading its log's
// uncommitted tail would.
type uncommittedReadOnlyReads struct {
	Replica
	ro roConns
}

func (r uncommittedReadOnlyReads) Ready() Batch {
	b := r.Replica.Ready()
	r.ro.note(&b)
	b.Outputs = slices.Clone(b.Outputs)
	for i := range b.Outputs {
		if gd, ok := b.Outputs[i].Body.(*proto.GetDataResponse); ok && r.ro[b.Outputs[i].Conn] {
			bad := *gd
			bad.Data = []byte("proposed, never committed")
			b.Outputs[i].Body = &bad
		}
	}
	return b
}
