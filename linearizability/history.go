// Package linearizability checks histories of ZooKeeper client operations.
//
// A recorder (the deterministic simulator, or the real-process fault harness)
// appends one [Op] per client call to a [History] and hands the history to two
// checkers:
//
//   - [CheckLinearizable] runs Porcupine over every write, every sync and
//     every read that directly follows a sync of its session, against an
//     independent model of the ZooKeeper data tree (model.go). Writes in
//     ZooKeeper are linearizable, and in zabkeeper a sync is a quorum
//     operation, so a sync followed by a read is linearizable too.
//   - [CheckReads] checks the guarantee ZooKeeper gives plain reads, which
//     are served locally and may be stale: per session, reply zxids never go
//     back, a session reads its own writes, and every read returns exactly the
//     tree as of its reply zxid.
//
// Everything in this package is plain data and pure functions, apart from
// [WriteVisualization], which writes an HTML file.
package linearizability

import (
	"fmt"
	"strings"
)

// OpKind is the kind of a recorded client operation.
type OpKind int

// Operation kinds. Check is only valid as a sub-operation of a Multi; a Multi
// holds only Create, Delete, SetData and Check sub-operations.
const (
	Create OpKind = iota + 1
	Delete
	SetData
	GetData
	Exists
	GetChildren
	Multi
	Check
	Sync
	CloseSession
)

var kindNames = map[OpKind]string{
	Create: "create", Delete: "delete", SetData: "setData", GetData: "getData",
	Exists: "exists", GetChildren: "getChildren", Multi: "multi", Check: "check",
	Sync: "sync", CloseSession: "closeSession",
}

// String returns the ZooKeeper name of the operation kind.
func (k OpKind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("OpKind(%d)", int(k))
}

// IsWrite reports whether operations of this kind change the tree (or may).
func (k OpKind) IsWrite() bool {
	switch k {
	case Create, Delete, SetData, Multi, Check, CloseSession:
		return true
	}
	return false
}

// IsRead reports whether the kind is one of the modelled reads.
func (k OpKind) IsRead() bool {
	return k == GetData || k == Exists || k == GetChildren
}

// Create modes (ZooKeeper's CreateMode flags 0..3). Containers and TTL nodes
// are not modelled: a history that uses them is rejected with an error.
const (
	ModePersistent          int32 = 0
	ModeEphemeral           int32 = 1
	ModeSequential          int32 = 2
	ModeEphemeralSequential int32 = 3
)

func isEphemeralMode(m int32) bool  { return m == ModeEphemeral || m == ModeEphemeralSequential }
func isSequentialMode(m int32) bool { return m == ModeSequential || m == ModeEphemeralSequential }

// ZooKeeper error codes that the checkers interpret. Any other code on a
// reply is treated as a server-side rejection that had no effect and is not
// checked further (for example NoAuth, QuotaExceeded, ThrottledOp).
const (
	ErrOK                     int32 = 0
	ErrRuntimeInconsistency   int32 = -2 // multi sub-ops after the failing one
	ErrConnectionLoss         int32 = -4 // client side: outcome unknown
	ErrOperationTimeout       int32 = -7 // client side: outcome unknown
	ErrBadArguments           int32 = -8
	ErrNoNode                 int32 = -101
	ErrBadVersion             int32 = -103
	ErrNoChildrenForEphemeral int32 = -108
	ErrNodeExists             int32 = -110
	ErrNotEmpty               int32 = -111
	ErrSessionExpired         int32 = -112
	ErrRequestTimeout         int32 = -122 // client side: outcome unknown
)

// Unknown is the Return value of an operation whose outcome is unknown: the
// client timed out or lost its connection before a reply arrived. Such an
// operation may or may not have taken effect, at any time after its Call.
const Unknown int64 = -1

// Op is one recorded client operation: what was asked and what came back.
//
// Times are virtual (simulator) or wall-clock (real processes) nanoseconds; the
// checkers only compare them. Operations of one session are issued in Call
// order (ZooKeeper answers a connection's requests in order).
type Op struct {
	// Session is the client session id; it is also the owner of the
	// ephemeral nodes the session creates.
	Session int64
	// Call is when the client issued the request. Return is when the reply
	// arrived, or Unknown (-1) if no reply ever did.
	Call, Return int64

	Kind OpKind
	Path string
	// Data is the payload of a create or setData.
	Data []byte
	// Version is the expected version of a setData, delete or check; -1
	// matches any version.
	Version int32
	// Mode is the create mode, 0..3 (see ModePersistent and friends).
	Mode int32
	// Ops are the sub-operations of a Multi (Kind, Path, Data, Version, Mode
	// as request; Err, Name, StatVersion, Mzxid, Czxid as per-op result).
	Ops []Op

	// Err is the ZooKeeper error code of the reply (0 ok). A multi that
	// reached the server replies 0 at top level and puts the per-op codes in
	// Ops[i].Err. The client-side codes ConnectionLoss, OperationTimeout and
	// RequestTimeout mean "outcome unknown", exactly like Return == Unknown.
	Err int32
	// Name is the path a successful create returned (with the sequential
	// suffix); empty means "not recorded" and is not checked.
	Name string
	// RespData is the data a getData returned.
	RespData []byte
	// Exists is the answer of an exists (a NoNode reply also means false).
	Exists bool
	// StatVersion is Stat.version seen by getData/exists, or the new version
	// returned by setData.
	StatVersion int32
	// Children is the getChildren result, in any order.
	Children []string
	// Zxid is ReplyHeader.zxid: the server's last applied zxid when it
	// replied; 0 if not recorded.
	Zxid int64
	// Mzxid and Czxid come from the returned Stat where there is one (getData,
	// exists, setData, create2); 0 if not recorded.
	Mzxid, Czxid int64
	// SyncedBefore is set by the recorder on a read whose session's previous
	// operation was a completed Sync (no other operation between them). The
	// pair is checked as one linearizable read spanning [sync.Call, Return].
	SyncedBefore bool
}

// Completed reports whether a reply arrived for the operation.
func (o *Op) Completed() bool { return o.Return >= 0 && !isClientSideErr(o.Err) }

func isClientSideErr(code int32) bool {
	return code == ErrConnectionLoss || code == ErrOperationTimeout || code == ErrRequestTimeout
}

// String renders the operation and its outcome on one line, for reports.
func (o *Op) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "s%#x ", o.Session)
	b.WriteString(describeRequest(o))
	b.WriteString(" -> ")
	if !o.Completed() {
		b.WriteString("?")
	} else {
		b.WriteString(describeOutcome(o))
	}
	if o.Zxid != 0 {
		fmt.Fprintf(&b, " @zxid %#x", o.Zxid)
	}
	if o.Return >= 0 {
		fmt.Fprintf(&b, " [%d,%d]", o.Call, o.Return)
	} else {
		fmt.Fprintf(&b, " [%d,?]", o.Call)
	}
	return b.String()
}

// History is the list of recorded operations, in any order.
type History struct {
	Ops []Op
}

// Add appends one operation to the history.
func (h *History) Add(op Op) { h.Ops = append(h.Ops, op) }

// AddExpiry records that a session expired, as a CloseSession operation. The
// server may have expired the session at any time after the session's last
// reply, so the operation's Call is the latest Return among the session's
// completed operations recorded so far (its earliest Call if none completed,
// learnedAt if the history has none of its operations). Return is confirmedAt,
// the time by which the closeSession transaction is known to be committed (a
// simulator can observe the commit), or Unknown if nobody knows: a client
// learning of expiry on reconnect does not prove the commit happened yet.
// Record expiries after the session's other operations.
func (h *History) AddExpiry(session, learnedAt, confirmedAt int64) {
	call, seen := int64(-1), false
	first := int64(-1)
	for i := range h.Ops {
		op := &h.Ops[i]
		if op.Session != session {
			continue
		}
		if first < 0 || op.Call < first {
			first = op.Call
		}
		if op.Completed() && op.Return > call {
			call, seen = op.Return, true
		}
	}
	switch {
	case seen:
	case first >= 0:
		call = first
	default:
		call = learnedAt
	}
	h.Add(Op{Session: session, Call: call, Return: confirmedAt, Kind: CloseSession})
}

func describeRequest(o *Op) string {
	switch o.Kind {
	case Create:
		return fmt.Sprintf("create(%s, %q, %s)", o.Path, o.Data, modeName(o.Mode))
	case Delete:
		return fmt.Sprintf("delete(%s, v%d)", o.Path, o.Version)
	case SetData:
		return fmt.Sprintf("setData(%s, %q, v%d)", o.Path, o.Data, o.Version)
	case Check:
		return fmt.Sprintf("check(%s, v%d)", o.Path, o.Version)
	case Multi:
		parts := make([]string, len(o.Ops))
		for i := range o.Ops {
			parts[i] = describeRequest(&o.Ops[i])
		}
		return "multi[" + strings.Join(parts, "; ") + "]"
	case CloseSession:
		return "closeSession"
	case Sync:
		return fmt.Sprintf("sync(%s)", o.Path)
	default:
		s := fmt.Sprintf("%s(%s)", o.Kind, o.Path)
		if o.SyncedBefore {
			s += "+synced"
		}
		return s
	}
}

func describeOutcome(o *Op) string {
	if o.Kind == Multi && o.Err == ErrOK {
		parts := make([]string, len(o.Ops))
		for i := range o.Ops {
			parts[i] = describeOutcome(&o.Ops[i])
		}
		return "[" + strings.Join(parts, "; ") + "]"
	}
	if o.Err != ErrOK {
		return errName(o.Err)
	}
	switch o.Kind {
	case Create:
		if o.Name != "" {
			return "ok " + o.Name
		}
	case SetData:
		return fmt.Sprintf("ok v%d", o.StatVersion)
	case GetData:
		return fmt.Sprintf("%q v%d", o.RespData, o.StatVersion)
	case Exists:
		if o.Exists {
			return fmt.Sprintf("true v%d", o.StatVersion)
		}
		return "false"
	case GetChildren:
		return fmt.Sprintf("%v", sortedCopy(o.Children))
	}
	return "ok"
}

func modeName(m int32) string {
	switch m {
	case ModePersistent:
		return "P"
	case ModeEphemeral:
		return "E"
	case ModeSequential:
		return "PS"
	case ModeEphemeralSequential:
		return "ES"
	}
	return fmt.Sprintf("mode%d", m)
}

var errNames = map[int32]string{
	ErrOK: "ok", ErrRuntimeInconsistency: "RuntimeInconsistency", ErrConnectionLoss: "ConnectionLoss",
	ErrOperationTimeout: "OperationTimeout", ErrBadArguments: "BadArguments", ErrNoNode: "NoNode",
	ErrBadVersion: "BadVersion", ErrNoChildrenForEphemeral: "NoChildrenForEphemerals",
	ErrNodeExists: "NodeExists", ErrNotEmpty: "NotEmpty", ErrSessionExpired: "SessionExpired",
	ErrRequestTimeout: "RequestTimeout",
}

func errName(code int32) string {
	if s, ok := errNames[code]; ok {
		return s
	}
	return fmt.Sprintf("err%d", code)
}
