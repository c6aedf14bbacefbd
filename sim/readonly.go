package sim

import (
	"bytes"

	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto"
)

// Read-only mode (engine/readonly.go, ZooKeeper's readonlymode.enabled). On
// a third of the seeds every replica runs with it, and one or two read-only
// clients join the workload: they allow read-only access in their
// handshake, start a new session on every connection (as the Java client
// does until it has seen a read-write server), read the workload's keys
// and, on a read-only connection, try writes too. Their operations are not
// linearizable and stay out of the history; the watches their reads set are
// checked like everyone's (watch.go), and on a read-only connection their
// replies are checked against the rules of read-only mode:
//   - a read from a read-only server returns committed state: the node's
//     mzxid is a committed txn and its data is what that txn wrote, so a
//     server cut off from its leader never shows a write the ensemble did
//     not commit;
//   - a write on a read-only connection is answered NotReadOnly (or
//     SessionExpired, once its local session is gone), never carried out;
//   - when the election ends (the server leads, follows or observes),
//     every read-only connection is closed before the server serves again.

// issueReadOnly sends one read-only client operation.
func (sm *Sim) issueReadOnly(c *client) {
	r := sm.rng
	p := sm.pick(keys)
	var op proto.OpCode
	var body proto.Record
	switch x := r.IntN(10); {
	case x < 2 && c.cn.roClient:
		if r.IntN(2) == 0 {
			op, body = proto.OpSetData, &proto.SetDataRequest{Path: p, Data: sm.value(c), Version: -1}
		} else {
			op, body = proto.OpCreate, &proto.CreateRequest{Path: p, Data: sm.value(c), ACL: proto.OpenACLUnsafe}
		}
	case x < 6:
		op, body = proto.OpGetData, &proto.GetDataRequest{Path: p, Watch: r.IntN(3) == 0}
	case x < 8:
		op, body = proto.OpExists, &proto.ExistsRequest{Path: p, Watch: r.IntN(3) == 0}
	default:
		op, body = proto.OpGetChildren, &proto.GetChildrenRequest{Path: sm.pick([]string{"/", "/a", "/b"}), Watch: r.IntN(3) == 0}
	}
	c.xid++
	if sm.traceOn(c.cn.srv.id) {
		sm.tracef(c.cn.srv.id, "c%d → n%d xid %d %s %s (read-only client)", c.id, c.cn.srv.id, c.xid, op, describeReq(body))
	}
	sm.send(c, &pend{xid: c.xid, op: op, body: body}, body)
}

// checkReadOnlyReply checks the reply to a read-only client's request that
// a read-only server answered.
func (sm *Sim) checkReadOnlyReply(c *client, p *pend, o *Output) {
	cn := c.cn
	if cn == nil || !cn.roClient {
		return
	}
	switch p.op {
	case proto.OpSetData, proto.OpCreate:
		sm.report.Counters["read-only-writes-refused"]++
		if e := o.Header.Err; e != proto.ErrNotReadOnly && e != proto.ErrSessionExpired {
			sm.violation("read-only: n%d answered c%d's %s on a read-only connection with %s, not NotReadOnly", cn.srv.id, c.id, p.op, e)
		}
		return
	}
	if o.Header.Err != proto.ErrOK {
		return
	}
	sm.report.Counters["read-only-reads"]++
	switch resp := o.Body.(type) {
	case *proto.GetDataResponse:
		path := p.body.(*proto.GetDataRequest).Path
		sm.checkCommittedRead(c, path, resp.Stat.Mzxid, resp.Data, true)
	case *proto.ExistsResponse:
		path := p.body.(*proto.ExistsRequest).Path
		sm.checkCommittedRead(c, path, resp.Stat.Mzxid, nil, false)
	}
}

// checkCommittedRead checks that a node read on a read-only server was last
// written by a committed txn, which wrote this data when withData is set.
func (sm *Sim) checkCommittedRead(c *client, path string, mzxid int64, data []byte, withData bool) {
	srv := c.cn.srv.id
	h, ok := sm.check.committed[mzxid]
	if !ok {
		sm.violation("read-only: c%d read %s on read-only n%d last modified at 0x%x, which is not a committed txn", c.id, path, srv, mzxid)
		return
	}
	raw, ok := sm.txnData[h]
	if !ok || !withData {
		return
	}
	t, err := tree.UnmarshalTxn(raw)
	if err != nil {
		return // noteCommitted reports it
	}
	if wrote, found := txnWrote(t, path); found && !bytes.Equal(wrote, data) {
		sm.violation("read-only: c%d read %s = %q on read-only n%d, but the committed txn 0x%x that last modified it wrote %q", c.id, path, data, srv, mzxid, wrote)
	} else if !found {
		sm.violation("read-only: c%d read %s on read-only n%d as last modified by committed txn 0x%x, which did not write it", c.id, path, srv, mzxid)
	}
}

// txnWrote returns the data a txn (or the last sub-txn of a multi) wrote
// to path by a create or setData.
func txnWrote(t *tree.Txn, path string) ([]byte, bool) {
	switch t.Type {
	case proto.OpCreate, proto.OpCreate2, proto.OpCreateContainer, proto.OpCreateTTL, proto.OpSetData:
		if t.Path == path {
			return t.Data, true
		}
	case proto.OpMulti:
		var out []byte
		found := false
		for i := range t.Ops {
			if d, ok := txnWrote(&t.Ops[i], path); ok {
				out, found = d, true
			}
		}
		return out, found
	}
	return nil, false
}

// checkReadOnlyConns checks that a server whose election ended holds no
// read-only connection: leaving read-only mode closes them all.
func (sm *Sim) checkReadOnlyConns(s *server) {
	if !sm.prof.readOnly || s.status.Role == zab.Looking || s.roConns == 0 {
		return
	}
	// The lowest such connection is named; found without sorting the
	// keys, which this did after every Ready.
	var first *conn
	for _, cn := range s.conns {
		if cn.roServer && (first == nil || cn.id < first.id) {
			first = cn
		}
	}
	if first != nil {
		sm.violation("read-only: n%d is %s again with read-only connection %d of c%d still open", s.id, s.status.Role, first.id, first.cl.id)
	}
}
