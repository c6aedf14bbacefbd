package proto

// Sample records shared by the round-trip tests and the fuzz seeds.

var sampleStat = Stat{
	Czxid: 0x100000001, Mzxid: 0x100000002, Ctime: 1700000000000, Mtime: 1700000000123,
	Version: 3, Cversion: 4, Aversion: 5, EphemeralOwner: 0x0100000000001234,
	DataLength: 11, NumChildren: 2, Pzxid: 0x100000003,
}

var sampleACL = []ACL{
	{Perms: PermAll, Id: WorldAnyone},
	{Perms: PermRead | PermAdmin, Id: Id{Scheme: "digest", ID: "user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY="}},
	{Perms: PermAll, Id: Id{Scheme: "auth", ID: ""}},
}

// sample is a record and, for requests, the opcode it travels under.
type sample struct {
	name string
	op   OpCode // request opcode, or 0 when rec is not a request body
	resp OpCode // opcode whose reply body rec is, or 0
	rec  Record
}

func sampleRecords() []sample {
	return []sample{
		{name: "RequestHeader", rec: &RequestHeader{Xid: 7, Type: OpGetData}},
		{name: "ReplyHeader", rec: &ReplyHeader{Xid: 7, Zxid: 0x200000005, Err: ErrNoNode}},
		{name: "ConnectRequest44", rec: &ConnectRequest{TimeOut: 30000, Passwd: make([]byte, 16)}},
		{name: "ConnectRequest45", rec: &ConnectRequest{LastZxidSeen: 9, TimeOut: 4000, SessionID: 0x1234, Passwd: []byte("0123456789abcdef"), ReadOnly: true, HasReadOnly: true}},
		{name: "ConnectResponse", rec: &ConnectResponse{TimeOut: 4000, SessionID: 0x1234, Passwd: []byte("0123456789abcdef")}},
		{name: "ConnectResponseRO", rec: &ConnectResponse{TimeOut: 4000, SessionID: 0x1234, Passwd: []byte("0123456789abcdef"), HasReadOnly: true}},
		{name: "Stat", rec: func() *Stat { s := sampleStat; return &s }()},
		{name: "Id", rec: &Id{Scheme: "ip", ID: "10.0.0.0/8"}},
		{name: "ACL", rec: &ACL{Perms: PermCreate, Id: WorldAnyone}},
		{name: "Create", op: OpCreate, rec: &CreateRequest{Path: "/a", Data: []byte("x"), ACL: sampleACL, Flags: ModeEphemeralSequential}},
		{name: "CreateNilData", op: OpCreate2, rec: &CreateRequest{Path: "/a/b", ACL: OpenACLUnsafe}},
		{name: "CreateEmptyData", op: OpCreateContainer, rec: &CreateRequest{Path: "/c", Data: []byte{}, ACL: OpenACLUnsafe, Flags: ModeContainer}},
		{name: "CreateTTL", op: OpCreateTTL, rec: &CreateTTLRequest{Path: "/t", Data: []byte("t"), ACL: OpenACLUnsafe, Flags: ModePersistentWithTTL, TTL: 5000}},
		{name: "CreateResponse", resp: OpCreate, rec: &CreateResponse{Path: "/a0000000001"}},
		{name: "Create2Response", resp: OpCreate2, rec: &Create2Response{Path: "/a", Stat: sampleStat}},
		{name: "Delete", op: OpDelete, rec: &DeleteRequest{Path: "/a", Version: -1}},
		{name: "Exists", op: OpExists, rec: &ExistsRequest{Path: "/a", Watch: true}},
		{name: "ExistsResponse", resp: OpExists, rec: &ExistsResponse{Stat: sampleStat}},
		{name: "GetData", op: OpGetData, rec: &GetDataRequest{Path: "/a"}},
		{name: "GetDataResponse", resp: OpGetData, rec: &GetDataResponse{Data: []byte("hello world"), Stat: sampleStat}},
		{name: "GetDataResponseNull", resp: OpGetData, rec: &GetDataResponse{Stat: sampleStat}},
		{name: "SetData", op: OpSetData, rec: &SetDataRequest{Path: "/a", Data: []byte("v2"), Version: 1}},
		{name: "SetDataResponse", resp: OpSetData, rec: &SetDataResponse{Stat: sampleStat}},
		{name: "GetACL", op: OpGetACL, rec: &GetACLRequest{Path: "/a"}},
		{name: "GetACLResponse", resp: OpGetACL, rec: &GetACLResponse{ACL: sampleACL, Stat: sampleStat}},
		{name: "SetACL", op: OpSetACL, rec: &SetACLRequest{Path: "/a", ACL: ReadACLUnsafe, Version: 2}},
		{name: "SetACLResponse", resp: OpSetACL, rec: &SetACLResponse{Stat: sampleStat}},
		{name: "GetChildren", op: OpGetChildren, rec: &GetChildrenRequest{Path: "/", Watch: true}},
		{name: "GetChildrenResponse", resp: OpGetChildren, rec: &GetChildrenResponse{Children: []string{"zookeeper", "a"}}},
		{name: "GetChildren2", op: OpGetChildren2, rec: &GetChildren2Request{Path: "/"}},
		{name: "GetChildren2Response", resp: OpGetChildren2, rec: &GetChildren2Response{Children: []string{"x"}, Stat: sampleStat}},
		{name: "Sync", op: OpSync, rec: &SyncRequest{Path: "/a"}},
		{name: "SyncResponse", resp: OpSync, rec: &SyncResponse{Path: "/a"}},
		{name: "Check", op: OpCheck, rec: &CheckVersionRequest{Path: "/a", Version: 3}},
		{name: "Reconfig", op: OpReconfig, rec: &ReconfigRequest{JoiningServers: "server.2=h:1:2;2181", NewMembers: "", CurConfigID: -1}},
		{name: "ReconfigIncremental", op: OpReconfig, rec: &ReconfigRequest{LeavingServers: "3", NewMembersNull: true, CurConfigID: 5}},
		{name: "CheckWatches", op: OpCheckWatches, rec: &CheckWatchesRequest{Path: "/a", Type: WatcherData}},
		{name: "RemoveWatches", op: OpRemoveWatches, rec: &RemoveWatchesRequest{Path: "/a", Type: WatcherAny}},
		{name: "DeleteContainer", op: OpDeleteContainer, rec: &DeleteContainerRequest{Path: "/c"}},
		{name: "Auth", op: OpAuth, rec: &AuthPacket{Scheme: "digest", Auth: []byte("user:password")}},
		{name: "SetWatches", op: OpSetWatches, rec: &SetWatches{RelativeZxid: 5, DataWatches: []string{"/a"}, ChildWatches: []string{"/", "/b"}}},
		{name: "SetWatches2", op: OpSetWatches2, rec: &SetWatches2{RelativeZxid: 5, ExistWatches: []string{"/e"}, PersistentWatches: []string{"/p"}, PersistentRecursiveWatches: []string{"/r"}}},
		{name: "Sasl", op: OpSasl, rec: &GetSASLRequest{Token: []byte{1, 2, 3}}},
		{name: "SaslResponse", resp: OpSasl, rec: &SetSASLResponse{Token: []byte{4}}},
		{name: "GetEphemerals", op: OpGetEphemerals, rec: &GetEphemeralsRequest{PrefixPath: "/"}},
		{name: "GetEphemeralsResponse", resp: OpGetEphemerals, rec: &GetEphemeralsResponse{Ephemerals: []string{"/e1"}}},
		{name: "GetAllChildrenNumber", op: OpGetAllChildrenNumber, rec: &GetAllChildrenNumberRequest{Path: "/"}},
		{name: "GetAllChildrenNumberResponse", resp: OpGetAllChildrenNumber, rec: &GetAllChildrenNumberResponse{TotalNumber: 42}},
		{name: "AddWatch", op: OpAddWatch, rec: &AddWatchRequest{Path: "/a", Mode: AddWatchPersistentRecursive}},
		{name: "AddWatchResponse", resp: OpAddWatch, rec: &ErrorResponse{Err: ErrOK}},
		{name: "ErrorResponse", rec: &ErrorResponse{Err: ErrBadVersion}},
		{name: "ClientInfo", rec: &ClientInfo{AuthScheme: "ip", User: "127.0.0.1"}},
		{name: "WhoAmIResponse", resp: OpWhoAmI, rec: &WhoAmIResponse{ClientInfo: []ClientInfo{{AuthScheme: "ip", User: "127.0.0.1"}, {AuthScheme: "digest", User: "user"}}}},
		{name: "WatcherEvent", rec: &WatcherEvent{Type: EventNodeDataChanged, State: StateSyncConnected, Path: "/a"}},
		{name: "MultiHeader", rec: &MultiHeader{Type: OpCreate, Done: false, Err: -1}},
		{name: "Ping", op: OpPing, rec: &EmptyRecord{}},
		{name: "CloseSession", op: OpCloseSession, rec: &EmptyRecord{}},
		{name: "WhoAmI", op: OpWhoAmI, rec: &EmptyRecord{}},
		{name: "Multi", op: OpMulti, rec: &MultiRequest{Ops: []MultiOp{
			{Type: OpCreate, Req: &CreateRequest{Path: "/m", Data: []byte("m"), ACL: OpenACLUnsafe}},
			{Type: OpCreate2, Req: &CreateRequest{Path: "/m/a", ACL: OpenACLUnsafe, Flags: ModeEphemeral}},
			{Type: OpCreateContainer, Req: &CreateRequest{Path: "/m/c", ACL: OpenACLUnsafe, Flags: ModeContainer}},
			{Type: OpCreateTTL, Req: &CreateTTLRequest{Path: "/m/t", ACL: OpenACLUnsafe, Flags: ModePersistentWithTTL, TTL: 1}},
			{Type: OpSetData, Req: &SetDataRequest{Path: "/m", Data: []byte("n"), Version: 0}},
			{Type: OpCheck, Req: &CheckVersionRequest{Path: "/m", Version: 1}},
			{Type: OpDelete, Req: &DeleteRequest{Path: "/m/a", Version: -1}},
		}}},
		{name: "MultiEmpty", op: OpMulti, rec: &MultiRequest{}},
		{name: "MultiRead", op: OpMultiRead, rec: &MultiRequest{Ops: []MultiOp{
			{Type: OpGetChildren, Req: &GetChildrenRequest{Path: "/", Watch: true}},
			{Type: OpGetData, Req: &GetDataRequest{Path: "/a"}},
		}}},
		{name: "MultiResponse", resp: OpMulti, rec: &MultiResponse{Results: []MultiResult{
			{Type: OpCreate, Resp: &CreateResponse{Path: "/m"}},
			{Type: OpCreate2, Resp: &Create2Response{Path: "/m/a", Stat: sampleStat}},
			{Type: OpSetData, Resp: &SetDataResponse{Stat: sampleStat}},
			{Type: OpCheck},
			{Type: OpDelete},
		}}},
		{name: "MultiResponseFailed", resp: OpMulti, rec: &MultiResponse{Results: []MultiResult{
			{Type: OpError, Err: ErrOK, Resp: &ErrorResponse{Err: ErrOK}},
			{Type: OpError, Err: ErrBadVersion, Resp: &ErrorResponse{Err: ErrBadVersion}},
			{Type: OpError, Err: ErrRuntimeInconsistency, Resp: &ErrorResponse{Err: ErrRuntimeInconsistency}},
		}}},
		{name: "MultiReadResponse", resp: OpMultiRead, rec: &MultiResponse{Results: []MultiResult{
			{Type: OpGetChildren, Resp: &GetChildrenResponse{Children: []string{"a"}}},
			{Type: OpGetData, Resp: &GetDataResponse{Data: []byte("d"), Stat: sampleStat}},
			{Type: OpError, Err: ErrNoNode, Resp: &ErrorResponse{Err: ErrNoNode}},
		}}},
	}
}
