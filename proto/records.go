package proto

// Records of the client protocol, in jute field order (zookeeper.jute).
// Every record implements Record; codec.go and multi.go hold the encoders
// and decoders.

// Record is any jute record.
type Record interface {
	Encode(e *Encoder)
	Decode(d *Decoder) error
}

// RequestHeader precedes every client request after the handshake.
type RequestHeader struct {
	Xid  int32
	Type OpCode
}

// ReplyHeader precedes every server reply and notification.
type ReplyHeader struct {
	Xid  int32
	Zxid int64
	Err  ErrCode
}

// ConnectRequest is the first frame a client sends. HasReadOnly records
// whether the frame carried the trailing readOnly byte (go-zk omits it), so
// the reply can mirror it.
type ConnectRequest struct {
	ProtocolVersion int32
	LastZxidSeen    int64
	TimeOut         int32
	SessionID       int64
	Passwd          []byte
	ReadOnly        bool
	HasReadOnly     bool
}

// ConnectResponse answers a ConnectRequest. The readOnly byte is written only
// when HasReadOnly is set.
type ConnectResponse struct {
	ProtocolVersion int32
	TimeOut         int32
	SessionID       int64
	Passwd          []byte
	ReadOnly        bool
	HasReadOnly     bool
}

// CreateRequest is used by create (1), create2 (15) and createContainer (19).
type CreateRequest struct {
	Path  string
	Data  []byte
	ACL   []ACL
	Flags int32
}

// CreateTTLRequest is createTTL (21).
type CreateTTLRequest struct {
	Path  string
	Data  []byte
	ACL   []ACL
	Flags int32
	TTL   int64
}

// CreateResponse answers create (1).
type CreateResponse struct{ Path string }

// Create2Response answers create2, createContainer and createTTL.
type Create2Response struct {
	Path string
	Stat Stat
}

// DeleteRequest is delete (2).
type DeleteRequest struct {
	Path    string
	Version int32
}

// ExistsRequest is exists (3).
type ExistsRequest struct {
	Path  string
	Watch bool
}

// ExistsResponse (a SetDataResponse on the wire) answers exists.
type ExistsResponse struct{ Stat Stat }

// GetDataRequest is getData (4).
type GetDataRequest struct {
	Path  string
	Watch bool
}

// GetDataResponse answers getData.
type GetDataResponse struct {
	Data []byte
	Stat Stat
}

// SetDataRequest is setData (5).
type SetDataRequest struct {
	Path    string
	Data    []byte
	Version int32
}

// SetDataResponse answers setData.
type SetDataResponse struct{ Stat Stat }

// GetACLRequest is getACL (6).
type GetACLRequest struct{ Path string }

// GetACLResponse answers getACL.
type GetACLResponse struct {
	ACL  []ACL
	Stat Stat
}

// SetACLRequest is setACL (7); Version is checked against aversion.
type SetACLRequest struct {
	Path    string
	ACL     []ACL
	Version int32
}

// SetACLResponse answers setACL.
type SetACLResponse struct{ Stat Stat }

// GetChildrenRequest is getChildren (8).
type GetChildrenRequest struct {
	Path  string
	Watch bool
}

// GetChildrenResponse answers getChildren.
type GetChildrenResponse struct{ Children []string }

// GetChildren2Request is getChildren2 (12).
type GetChildren2Request struct {
	Path  string
	Watch bool
}

// GetChildren2Response answers getChildren2.
type GetChildren2Response struct {
	Children []string
	Stat     Stat
}

// SyncRequest is sync (9).
type SyncRequest struct{ Path string }

// SyncResponse answers sync.
type SyncResponse struct{ Path string }

// CheckVersionRequest is check (13), valid only inside multi.
type CheckVersionRequest struct {
	Path    string
	Version int32
}

// ReconfigRequest is reconfig (16).
type ReconfigRequest struct {
	JoiningServers string
	LeavingServers string
	NewMembers     string
	CurConfigID    int64
	// NewMembersNull is set when newMembers was null on the wire, which
	// is what makes a reconfig incremental for ZooKeeper
	// (PrepRequestProcessor tests newMembers != null); go-zk's and the
	// Java client's incremental calls send it so. Encode writes null then
	// too.
	NewMembersNull bool
}

// CheckWatchesRequest is checkWatches (17).
type CheckWatchesRequest struct {
	Path string
	Type int32
}

// RemoveWatchesRequest is removeWatches (18).
type RemoveWatchesRequest struct {
	Path string
	Type int32
}

// DeleteContainerRequest is deleteContainer (20); clients may not send it.
type DeleteContainerRequest struct{ Path string }

// AuthPacket is auth (100).
type AuthPacket struct {
	Type   int32
	Scheme string
	Auth   []byte
}

// SetWatches is setWatches (101).
type SetWatches struct {
	RelativeZxid int64
	DataWatches  []string
	ExistWatches []string
	ChildWatches []string
}

// SetWatches2 is setWatches2 (105).
type SetWatches2 struct {
	RelativeZxid               int64
	DataWatches                []string
	ExistWatches               []string
	ChildWatches               []string
	PersistentWatches          []string
	PersistentRecursiveWatches []string
}

// GetSASLRequest is sasl (102).
type GetSASLRequest struct{ Token []byte }

// SetSASLResponse answers sasl.
type SetSASLResponse struct{ Token []byte }

// GetEphemeralsRequest is getEphemerals (103).
type GetEphemeralsRequest struct{ PrefixPath string }

// GetEphemeralsResponse answers getEphemerals.
type GetEphemeralsResponse struct{ Ephemerals []string }

// GetAllChildrenNumberRequest is getAllChildrenNumber (104).
type GetAllChildrenNumberRequest struct{ Path string }

// GetAllChildrenNumberResponse answers getAllChildrenNumber.
type GetAllChildrenNumberResponse struct{ TotalNumber int32 }

// AddWatchRequest is addWatch (106).
type AddWatchRequest struct {
	Path string
	Mode int32
}

// ErrorResponse is the body of a failed multi op and of an addWatch reply.
type ErrorResponse struct{ Err ErrCode }

// ClientInfo is one entry of a whoAmI reply.
type ClientInfo struct {
	AuthScheme string
	User       string
}

// WhoAmIResponse answers whoAmI (107).
type WhoAmIResponse struct{ ClientInfo []ClientInfo }

// WatcherEvent is the body of a notification (xid -1).
type WatcherEvent struct {
	Type  int32
	State int32
	Path  string
}

// MultiHeader precedes every op of a multi request and response.
type MultiHeader struct {
	Type OpCode
	Done bool
	Err  ErrCode
}

// MultiOp is one op of a multi or multiRead request: Type and the request
// record for it (*CreateRequest, *CreateTTLRequest, *DeleteRequest,
// *SetDataRequest, *CheckVersionRequest, *GetChildrenRequest, *GetDataRequest).
type MultiOp struct {
	Type OpCode
	Req  Record
}

// MultiRequest is multi (14) or multiRead (22).
type MultiRequest struct{ Ops []MultiOp }

// MultiResult is one result of a multi response. Type is the op's result
// type (OpError for a failed op, with Err set); Resp is the body record
// (nil for delete and check).
type MultiResult struct {
	Type OpCode
	Err  ErrCode
	Resp Record
}

// MultiResponse answers multi and multiRead.
type MultiResponse struct{ Results []MultiResult }

// EmptyRecord is the body of requests and replies that carry none (ping,
// closeSession, whoAmI request, delete reply …).
type EmptyRecord struct{}
