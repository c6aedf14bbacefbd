package server

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zabkeeper/zabkeeper/engine"
	"github.com/zabkeeper/zabkeeper/proto"
)

// The audit log, as ZooKeeper 3.6+ writes it with audit.enable=true: one
// line per write and per auth event, with ZooKeeper's field names (user,
// operation, znode, znode_type, acl, session, ip, result; AuditEvent and
// AuditConstants in apache/zookeeper) as one JSON object per line, plus
// time and, on failure, the error. The event loop only formats a line and
// offers it to a bounded queue; a writer goroutine owns the file. When the
// queue is full the line is dropped and counted
// (zabkeeper_audit_dropped_total), so a slow disk never stalls the loop.

// auditEntry is one line of the audit log.
type auditEntry struct {
	Time      string `json:"time"`
	Session   string `json:"session"`
	IP        string `json:"ip"`
	User      string `json:"user"`
	Operation string `json:"operation"`
	Znode     string `json:"znode,omitempty"`
	ZnodeType string `json:"znode_type,omitempty"`
	ACL       string `json:"acl,omitempty"`
	Scheme    string `json:"scheme,omitempty"`
	Result    string `json:"result"`
	Error     string `json:"error,omitempty"`
}

// auditLog queues lines for its writer goroutine.
type auditLog struct {
	lines   chan []byte
	dropped atomic.Int64
	written atomic.Int64
	out     io.Writer
	closer  io.Closer // nil for stderr
	done    chan struct{}
	once    sync.Once
	log     *slog.Logger
}

// newAuditLog opens the audit log of cfg and starts its writer.
func newAuditLog(cfg AuditConfig, logger *slog.Logger) (*auditLog, error) {
	a := &auditLog{lines: make(chan []byte, max(cfg.BufferSize, 1)), done: make(chan struct{}), log: logger}
	if cfg.BufferSize <= 0 {
		a.lines = make(chan []byte, DefaultAuditBufferSize)
	}
	switch cfg.File {
	case "", "stderr":
		a.out = os.Stderr
	default:
		f, err := os.OpenFile(cfg.File, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return nil, fmt.Errorf("audit: open %s: %w", cfg.File, err)
		}
		a.out, a.closer = f, f
	}
	go a.run()
	return a, nil
}

// run writes queued lines until close.
func (a *auditLog) run() {
	defer close(a.done)
	failed := false
	for line := range a.lines {
		if _, err := a.out.Write(line); err != nil {
			if !failed {
				a.log.Error("audit log write failed; lines are lost until it recovers", "err", err)
			}
			failed = true
			a.dropped.Add(1)
			continue
		}
		failed = false
		a.written.Add(1)
	}
}

// offer queues one entry, or counts it dropped when the queue is full.
func (a *auditLog) offer(e *auditEntry) {
	b, err := json.Marshal(e)
	if err != nil {
		a.dropped.Add(1)
		return
	}
	select {
	case a.lines <- append(b, '\n'):
	default:
		a.dropped.Add(1)
	}
}

// close flushes what is queued and closes the file.
func (a *auditLog) close() {
	a.once.Do(func() {
		close(a.lines)
		<-a.done
		if a.closer != nil {
			_ = a.closer.Close()
		}
	})
}

// auditPending is what the loop keeps of an audited request until its
// reply: the identities it was judged with and what it touched.
type auditPending struct {
	ids     []proto.Id
	op      proto.OpCode
	req     proto.Record
	session string
	ip      string
}

// auditRequest notes a request the audit log will record once answered
// (writes and auth); nil when the log is off or the request is a read.
func (s *Server) auditRequest(r *engine.Request) *auditPending {
	if s.audit == nil {
		return nil
	}
	p := &auditPending{op: r.Op, req: r.Body}
	switch r.Op {
	case proto.OpCreate, proto.OpCreate2, proto.OpCreateContainer, proto.OpCreateTTL, proto.OpDelete,
		proto.OpSetData, proto.OpSetACL, proto.OpMulti, proto.OpReconfig:
	case proto.OpAuth:
		// ids: once the engine took the auth (auditSubmitted).
	default:
		return nil
	}
	// The socket may be gone already, and will be by the time the reply
	// (or its loss) is logged; the engine still knows the connection until
	// the disconnect behind this request reaches it.
	session, ip, ids, _ := s.node.ConnInfo(r.Conn)
	p.session, p.ip = fmt.Sprintf("0x%x", session), ip
	if r.Op != proto.OpAuth {
		p.ids = ids // an auth's: once the engine took it (auditSubmitted)
	}
	return p
}

// auditSubmitted records, for an auth, the identities the connection holds
// once the engine took it.
func (s *Server) auditSubmitted(p *auditPending, conn engine.ConnID) {
	if p != nil && p.op == proto.OpAuth {
		_, _, p.ids, _ = s.node.ConnInfo(conn)
	}
}

// auditAbandoned logs the audited requests of a connection that closed
// before their replies: result "unknown", since a write may still apply.
func (s *Server) auditAbandoned(q []arrival) {
	if s.audit == nil {
		return
	}
	for _, a := range q {
		if a.audit == nil {
			continue
		}
		e := a.audit.entry()
		e.Result = "unknown"
		if auditFill(&e, a.audit.op, a.audit.req) {
			s.audit.offer(&e)
		}
	}
}

// entry starts the line of a pending request.
func (p *auditPending) entry() auditEntry {
	return auditEntry{
		Time:    time.Now().UTC().Format(time.RFC3339Nano),
		Session: p.session,
		IP:      p.ip,
		User:    auditUsers(p.ids),
		Result:  "success",
	}
}

// auditReply writes the lines of an answered audited request.
func (s *Server) auditReply(p *auditPending, errCode proto.ErrCode) {
	if p == nil || s.audit == nil {
		return
	}
	base := p.entry()
	if errCode != proto.ErrOK {
		base.Result, base.Error = "failure", errCode.String()
	}
	if m, ok := p.req.(*proto.MultiRequest); ok && errCode == proto.ErrOK {
		// As ZooKeeper: a successful multi is logged op by op.
		for _, op := range m.Ops {
			e := base
			if auditFill(&e, op.Type, op.Req) {
				s.audit.offer(&e)
			}
		}
		return
	}
	e := base
	if auditFill(&e, p.op, p.req) {
		s.audit.offer(&e)
	}
}

// auditFill sets the operation fields of an entry; false for an op that is
// not audited (a check inside a multi).
func auditFill(e *auditEntry, op proto.OpCode, req proto.Record) bool {
	switch r := req.(type) {
	case *proto.CreateRequest:
		e.Operation, e.Znode, e.ZnodeType = "create", r.Path, createMode(op, r.Flags)
	case *proto.CreateTTLRequest:
		e.Operation, e.Znode, e.ZnodeType = "create", r.Path, createMode(op, r.Flags)
	case *proto.DeleteRequest:
		e.Operation, e.Znode = "delete", r.Path
	case *proto.SetDataRequest:
		e.Operation, e.Znode = "setData", r.Path
	case *proto.SetACLRequest:
		e.Operation, e.Znode, e.ACL = "setAcl", r.Path, auditACL(r.ACL)
	case *proto.MultiRequest:
		e.Operation = "multiOperation"
	case *proto.AuthPacket:
		// The scheme only: the auth data is a password or a token.
		e.Operation, e.Scheme = "addAuth", r.Scheme
	default:
		switch op {
		case proto.OpReconfig:
			e.Operation = "reconfig"
		case proto.OpAuth:
			e.Operation = "addAuth"
		case proto.OpMulti:
			e.Operation = "multiOperation"
		default:
			return false
		}
	}
	return true
}

// createMode names a create's flags as ZooKeeper's CreateMode does.
func createMode(op proto.OpCode, flags int32) string {
	if op == proto.OpCreateContainer {
		return "CONTAINER"
	}
	switch flags {
	case 0:
		return "PERSISTENT"
	case 1:
		return "EPHEMERAL"
	case 2:
		return "PERSISTENT_SEQUENTIAL"
	case 3:
		return "EPHEMERAL_SEQUENTIAL"
	case 4:
		return "CONTAINER"
	case 5:
		return "PERSISTENT_WITH_TTL"
	case 6:
		return "PERSISTENT_SEQUENTIAL_WITH_TTL"
	}
	return fmt.Sprintf("flags(%d)", flags)
}

// auditUsers joins a connection's identities as scheme:id, with a digest
// shown by its user name only (its hash is a secret).
func auditUsers(ids []proto.Id) string {
	parts := make([]string, 0, len(ids))
	for _, id := range ids {
		v := id.ID
		if id.Scheme == "digest" {
			v, _, _ = strings.Cut(v, ":")
		}
		parts = append(parts, id.Scheme+":"+v)
	}
	return strings.Join(parts, ",")
}

// auditACL formats an ACL as ZooKeeper's audit log does (scheme:id:perms),
// digest hashes masked.
func auditACL(acl []proto.ACL) string {
	parts := make([]string, 0, len(acl))
	for _, a := range acl {
		v := a.Id.ID
		if a.Id.Scheme == "digest" {
			user, _, _ := strings.Cut(v, ":")
			v = user + ":x"
		}
		parts = append(parts, fmt.Sprintf("%s:%s:%s", a.Id.Scheme, v, permString(a.Perms)))
	}
	return strings.Join(parts, ",")
}

// permString spells perms as zkCli does (crwda).
func permString(p int32) string {
	var b strings.Builder
	for _, x := range []struct {
		bit int32
		c   byte
	}{{proto.PermCreate, 'c'}, {proto.PermDelete, 'd'}, {proto.PermRead, 'r'}, {proto.PermWrite, 'w'}, {proto.PermAdmin, 'a'}} {
		if p&x.bit != 0 {
			b.WriteByte(x.c)
		}
	}
	return b.String()
}

// initSecurity builds the oidc verifier and opens the audit log.
func (s *Server) initSecurity() error {
	v, err := newOIDCVerifier(s.cfg.Security.OIDC, s.log.With("component", "oidc"))
	if err != nil {
		return err
	}
	s.oidc = v
	if v != nil {
		names := make([]string, 0, len(s.cfg.Security.OIDC.Issuers))
		for _, is := range s.cfg.Security.OIDC.Issuers {
			names = append(names, is.Name+"="+is.Issuer)
		}
		s.log.Info("oidc auth scheme on", "issuers", names)
	}
	s.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "zabkeeper_oidc_refused_total", Help: "Tokens of the oidc auth scheme refused.",
	}, func() float64 { return float64(s.oidcRefused.Load()) }))
	if !s.cfg.Security.Audit.Enable {
		return nil
	}
	a, err := newAuditLog(s.cfg.Security.Audit, s.log)
	if err != nil {
		return err
	}
	s.audit = a
	s.registry.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "zabkeeper_audit_dropped_total", Help: "Audit log lines dropped because the writer fell behind.",
		}, func() float64 { return float64(a.dropped.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "zabkeeper_audit_written_total", Help: "Audit log lines written.",
		}, func() float64 { return float64(a.written.Load()) }),
	)
	s.log.Info("audit log on", "file", s.cfg.Security.Audit.File, "buffer", cap(a.lines))
	return nil
}
