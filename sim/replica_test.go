package sim

import (
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
func (*deadReplica) HasReady() bool                                          { return false }
func (*deadReplica) Ready() Batch                                            { return Batch{} }
func (*deadReplica) Advance()                                                {}
func (*deadReplica) Status() zab.Status                                      { return zab.Status{} }
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
