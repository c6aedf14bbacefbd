package proto

import "fmt"

// OpCode is a ZooKeeper request type (ZooDefs.OpCode).
type OpCode int32

// Opcodes of ZooKeeper 3.9.
const (
	OpNotification         OpCode = 0
	OpCreate               OpCode = 1
	OpDelete               OpCode = 2
	OpExists               OpCode = 3
	OpGetData              OpCode = 4
	OpSetData              OpCode = 5
	OpGetACL               OpCode = 6
	OpSetACL               OpCode = 7
	OpGetChildren          OpCode = 8
	OpSync                 OpCode = 9
	OpPing                 OpCode = 11
	OpGetChildren2         OpCode = 12
	OpCheck                OpCode = 13
	OpMulti                OpCode = 14
	OpCreate2              OpCode = 15
	OpReconfig             OpCode = 16
	OpCheckWatches         OpCode = 17
	OpRemoveWatches        OpCode = 18
	OpCreateContainer      OpCode = 19
	OpDeleteContainer      OpCode = 20
	OpCreateTTL            OpCode = 21
	OpMultiRead            OpCode = 22
	OpAuth                 OpCode = 100
	OpSetWatches           OpCode = 101
	OpSasl                 OpCode = 102
	OpGetEphemerals        OpCode = 103
	OpGetAllChildrenNumber OpCode = 104
	OpSetWatches2          OpCode = 105
	OpAddWatch             OpCode = 106
	OpWhoAmI               OpCode = 107
	OpCreateSession        OpCode = -10
	OpCloseSession         OpCode = -11
	OpError                OpCode = -1
)

var opNames = map[OpCode]string{
	OpNotification: "notification", OpCreate: "create", OpDelete: "delete", OpExists: "exists",
	OpGetData: "getData", OpSetData: "setData", OpGetACL: "getACL", OpSetACL: "setACL",
	OpGetChildren: "getChildren", OpSync: "sync", OpPing: "ping", OpGetChildren2: "getChildren2",
	OpCheck: "check", OpMulti: "multi", OpCreate2: "create2", OpReconfig: "reconfig",
	OpCheckWatches: "checkWatches", OpRemoveWatches: "removeWatches", OpCreateContainer: "createContainer",
	OpDeleteContainer: "deleteContainer", OpCreateTTL: "createTTL", OpMultiRead: "multiRead",
	OpAuth: "auth", OpSetWatches: "setWatches", OpSasl: "sasl", OpGetEphemerals: "getEphemerals",
	OpGetAllChildrenNumber: "getAllChildrenNumber", OpSetWatches2: "setWatches2", OpAddWatch: "addWatch",
	OpWhoAmI: "whoAmI", OpCreateSession: "createSession", OpCloseSession: "closeSession", OpError: "error",
}

// String names the opcode as ZooDefs.OpCode does, for logs.
func (o OpCode) String() string {
	if s, ok := opNames[o]; ok {
		return s
	}
	return fmt.Sprintf("op(%d)", int32(o))
}

// Special xids.
const (
	XidNotification int32 = -1
	XidPing         int32 = -2
	XidAuth         int32 = -4
	XidSetWatches   int32 = -8
)

// ErrCode is a ZooKeeper error code (KeeperException.Code). 0 is OK.
type ErrCode int32

// Error codes sent on the wire.
const (
	ErrOK                       ErrCode = 0
	ErrSystemError              ErrCode = -1
	ErrRuntimeInconsistency     ErrCode = -2
	ErrDataInconsistency        ErrCode = -3
	ErrConnectionLoss           ErrCode = -4
	ErrMarshallingError         ErrCode = -5
	ErrUnimplemented            ErrCode = -6
	ErrOperationTimeout         ErrCode = -7
	ErrBadArguments             ErrCode = -8
	ErrNewConfigNoQuorum        ErrCode = -13
	ErrReconfigInProgress       ErrCode = -14
	ErrAPIError                 ErrCode = -100
	ErrNoNode                   ErrCode = -101
	ErrNoAuth                   ErrCode = -102
	ErrBadVersion               ErrCode = -103
	ErrNoChildrenForEphemerals  ErrCode = -108
	ErrNodeExists               ErrCode = -110
	ErrNotEmpty                 ErrCode = -111
	ErrSessionExpired           ErrCode = -112
	ErrInvalidCallback          ErrCode = -113
	ErrInvalidACL               ErrCode = -114
	ErrAuthFailed               ErrCode = -115
	ErrSessionMoved             ErrCode = -118
	ErrNotReadOnly              ErrCode = -119
	ErrEphemeralOnLocalSession  ErrCode = -120
	ErrNoWatcher                ErrCode = -121
	ErrRequestTimeout           ErrCode = -122
	ErrReconfigDisabled         ErrCode = -123
	ErrSessionClosedRequireSasl ErrCode = -124
	ErrQuotaExceeded            ErrCode = -125
	ErrThrottledOp              ErrCode = -127
)

var errNames = map[ErrCode]string{
	ErrOK: "OK", ErrSystemError: "SystemError", ErrRuntimeInconsistency: "RuntimeInconsistency",
	ErrDataInconsistency: "DataInconsistency", ErrConnectionLoss: "ConnectionLoss",
	ErrMarshallingError: "MarshallingError", ErrUnimplemented: "Unimplemented",
	ErrOperationTimeout: "OperationTimeout", ErrBadArguments: "BadArguments",
	ErrNewConfigNoQuorum: "NewConfigNoQuorum", ErrReconfigInProgress: "ReconfigInProgress",
	ErrAPIError: "APIError", ErrNoNode: "NoNode", ErrNoAuth: "NoAuth", ErrBadVersion: "BadVersion",
	ErrNoChildrenForEphemerals: "NoChildrenForEphemerals", ErrNodeExists: "NodeExists",
	ErrNotEmpty: "NotEmpty", ErrSessionExpired: "SessionExpired", ErrInvalidCallback: "InvalidCallback",
	ErrInvalidACL: "InvalidACL", ErrAuthFailed: "AuthFailed", ErrSessionMoved: "SessionMoved",
	ErrNotReadOnly: "NotReadOnly", ErrEphemeralOnLocalSession: "EphemeralOnLocalSession",
	ErrNoWatcher: "NoWatcher", ErrRequestTimeout: "RequestTimeout", ErrReconfigDisabled: "ReconfigDisabled",
	ErrSessionClosedRequireSasl: "SessionClosedRequireSasl", ErrQuotaExceeded: "QuotaExceeded",
	ErrThrottledOp: "ThrottledOp",
}

// String names the code as KeeperException.Code does, for logs.
func (e ErrCode) String() string {
	if s, ok := errNames[e]; ok {
		return s
	}
	return fmt.Sprintf("err(%d)", int32(e))
}

// Error makes ErrCode usable as a Go error.
func (e ErrCode) Error() string { return "zookeeper: " + e.String() }

// Permission bits of an ACL.
const (
	PermRead   int32 = 1
	PermWrite  int32 = 2
	PermCreate int32 = 4
	PermDelete int32 = 8
	PermAdmin  int32 = 16
	PermAll    int32 = 31
)

// Create modes (the flags field of a create request).
const (
	ModePersistent                  int32 = 0
	ModeEphemeral                   int32 = 1
	ModePersistentSequential        int32 = 2
	ModeEphemeralSequential         int32 = 3
	ModeContainer                   int32 = 4
	ModePersistentWithTTL           int32 = 5
	ModePersistentSequentialWithTTL int32 = 6
)

// Watch event types.
const (
	EventNone                int32 = -1
	EventNodeCreated         int32 = 1
	EventNodeDeleted         int32 = 2
	EventNodeDataChanged     int32 = 3
	EventNodeChildrenChanged int32 = 4
)

// Keeper states carried in watch events.
const (
	StateDisconnected  int32 = 0
	StateSyncConnected int32 = 3
	StateAuthFailed    int32 = 4
	StateConnectedRO   int32 = 5
	StateExpired       int32 = -112
	StateClosed        int32 = 7
)

// Watcher types for checkWatches and removeWatches.
const (
	WatcherChildren            int32 = 1
	WatcherData                int32 = 2
	WatcherAny                 int32 = 3
	WatcherPersistent          int32 = 4
	WatcherPersistentRecursive int32 = 5
)

// addWatch modes.
const (
	AddWatchPersistent          int32 = 0
	AddWatchPersistentRecursive int32 = 1
)

// Id names a principal in an ACL: scheme ("world", "auth", "digest", "ip") and id.
type Id struct {
	Scheme string
	ID     string
}

// ACL grants Perms to Id.
type ACL struct {
	Perms int32
	Id    Id
}

// Common ACLs.
var (
	WorldAnyone   = Id{Scheme: "world", ID: "anyone"}
	OpenACLUnsafe = []ACL{{Perms: PermAll, Id: WorldAnyone}}
	CreatorAllACL = []ACL{{Perms: PermAll, Id: Id{Scheme: "auth", ID: ""}}}
	ReadACLUnsafe = []ACL{{Perms: PermRead, Id: WorldAnyone}}
)

// Stat is a znode's metadata, in wire order.
type Stat struct {
	Czxid          int64
	Mzxid          int64
	Ctime          int64
	Mtime          int64
	Version        int32
	Cversion       int32
	Aversion       int32
	EphemeralOwner int64
	DataLength     int32
	NumChildren    int32
	Pzxid          int64
}

// StatSize is the encoded size of a Stat.
const StatSize = 68

// DefaultMaxBuffer is jute.maxbuffer's default (0xfffff).
const DefaultMaxBuffer = 0xfffff

// Size limits that every layer derives from jute.maxbuffer, so that what a
// server accepts from a client it can also log, snapshot, send to its
// peers and read back.
const (
	// MaxMaxBuffer is the largest jute.maxbuffer a server accepts: the
	// txn it allows (TxnLimit) still fits a jute length (int32) and every
	// frame and record that carries it.
	MaxMaxBuffer = 512 << 20
	// MaxTxnSize is TxnLimit(MaxMaxBuffer): no stored txn or snapshot node
	// record is larger, so readers of files accept up to it whatever the
	// configuration (a file outlives a lowered jute.maxbuffer).
	MaxTxnSize = 2*MaxMaxBuffer + txnSlack
	// txnSlack covers a txn's headers beyond its request's bytes.
	txnSlack = 1 << 20
)

// TxnLimit is the largest marshalled txn, and snapshot node record, that a
// server with jute.maxbuffer = maxBuffer produces. A request of at most
// maxBuffer bytes becomes a txn of about its size (a multi's ops grow by a
// few bytes each, at most half again); twice it plus 1 MiB leaves room, and
// the leader refuses anything larger before proposing it (a create whose
// "auth" ACL expands to many ids, say).
func TxnLimit(maxBuffer int) int {
	return 2*min(max(maxBuffer, 0), MaxMaxBuffer) + txnSlack
}
