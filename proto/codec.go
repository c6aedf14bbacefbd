package proto

// Encode and Decode methods for the fixed-shape records, in zookeeper.jute
// field order. Decode methods return d.Err(): the Decoder stops at the first
// problem and every later read yields a zero value, so a record never needs
// to check errors field by field. Multi records live in multi.go.

// Minimum encoded sizes, used to bound vector counts before allocating.
const (
	minACLSize        = 4 + 4 + 4 // perms, empty scheme, empty id
	minClientInfoSize = 4 + 4     // empty scheme, empty user
)

// Encode writes the RequestHeader.
func (r *RequestHeader) Encode(e *Encoder) {
	e.WriteInt(r.Xid)
	e.WriteInt(int32(r.Type))
}

// Decode reads the RequestHeader.
func (r *RequestHeader) Decode(d *Decoder) error {
	r.Xid = d.ReadInt()
	r.Type = OpCode(d.ReadInt())
	return d.Err()
}

// Encode writes the ReplyHeader.
func (r *ReplyHeader) Encode(e *Encoder) {
	e.WriteInt(r.Xid)
	e.WriteLong(r.Zxid)
	e.WriteInt(int32(r.Err))
}

// Decode reads the ReplyHeader.
func (r *ReplyHeader) Decode(d *Decoder) error {
	r.Xid = d.ReadInt()
	r.Zxid = d.ReadLong()
	r.Err = ErrCode(d.ReadInt())
	return d.Err()
}

// Encode writes the ConnectRequest; the readOnly byte only when HasReadOnly.
func (r *ConnectRequest) Encode(e *Encoder) {
	e.WriteInt(r.ProtocolVersion)
	e.WriteLong(r.LastZxidSeen)
	e.WriteInt(r.TimeOut)
	e.WriteLong(r.SessionID)
	e.WriteBuffer(r.Passwd)
	if r.HasReadOnly {
		e.WriteBool(r.ReadOnly)
	}
}

// Decode reads the ConnectRequest. The trailing readOnly byte is optional
// (go-zk and clients older than 3.4 omit it); HasReadOnly records whether it
// was present so the response can mirror the request.
func (r *ConnectRequest) Decode(d *Decoder) error {
	r.ProtocolVersion = d.ReadInt()
	r.LastZxidSeen = d.ReadLong()
	r.TimeOut = d.ReadInt()
	r.SessionID = d.ReadLong()
	r.Passwd = d.ReadBuffer()
	r.ReadOnly, r.HasReadOnly = false, false
	if d.Err() == nil && d.Remaining() > 0 {
		r.ReadOnly = d.ReadBool()
		r.HasReadOnly = true
	}
	return d.Err()
}

// Encode writes the ConnectResponse; the readOnly byte only when HasReadOnly.
func (r *ConnectResponse) Encode(e *Encoder) {
	e.WriteInt(r.ProtocolVersion)
	e.WriteInt(r.TimeOut)
	e.WriteLong(r.SessionID)
	e.WriteBuffer(r.Passwd)
	if r.HasReadOnly {
		e.WriteBool(r.ReadOnly)
	}
}

// Decode reads the ConnectResponse, with the readOnly byte optional as in
// ConnectRequest.
func (r *ConnectResponse) Decode(d *Decoder) error {
	r.ProtocolVersion = d.ReadInt()
	r.TimeOut = d.ReadInt()
	r.SessionID = d.ReadLong()
	r.Passwd = d.ReadBuffer()
	r.ReadOnly, r.HasReadOnly = false, false
	if d.Err() == nil && d.Remaining() > 0 {
		r.ReadOnly = d.ReadBool()
		r.HasReadOnly = true
	}
	return d.Err()
}

// Encode writes the Stat (always StatSize bytes).
func (s *Stat) Encode(e *Encoder) {
	e.WriteLong(s.Czxid)
	e.WriteLong(s.Mzxid)
	e.WriteLong(s.Ctime)
	e.WriteLong(s.Mtime)
	e.WriteInt(s.Version)
	e.WriteInt(s.Cversion)
	e.WriteInt(s.Aversion)
	e.WriteLong(s.EphemeralOwner)
	e.WriteInt(s.DataLength)
	e.WriteInt(s.NumChildren)
	e.WriteLong(s.Pzxid)
}

// Decode reads the Stat.
func (s *Stat) Decode(d *Decoder) error {
	s.Czxid = d.ReadLong()
	s.Mzxid = d.ReadLong()
	s.Ctime = d.ReadLong()
	s.Mtime = d.ReadLong()
	s.Version = d.ReadInt()
	s.Cversion = d.ReadInt()
	s.Aversion = d.ReadInt()
	s.EphemeralOwner = d.ReadLong()
	s.DataLength = d.ReadInt()
	s.NumChildren = d.ReadInt()
	s.Pzxid = d.ReadLong()
	return d.Err()
}

// Encode writes the Id.
func (i *Id) Encode(e *Encoder) {
	e.WriteString(i.Scheme)
	e.WriteString(i.ID)
}

// Decode reads the Id; null strings read as "" (kazoo sends auth:"" as null).
func (i *Id) Decode(d *Decoder) error {
	i.Scheme = d.ReadString()
	i.ID = d.ReadString()
	return d.Err()
}

// Encode writes the ACL.
func (a *ACL) Encode(e *Encoder) {
	e.WriteInt(a.Perms)
	a.Id.Encode(e)
}

// Decode reads the ACL.
func (a *ACL) Decode(d *Decoder) error {
	a.Perms = d.ReadInt()
	return a.Id.Decode(d)
}

// WriteACLs writes a vector<ACL>; nil is written as an empty vector because
// go-zk cannot read a null one.
func WriteACLs(e *Encoder, acls []ACL) {
	e.WriteInt(int32(len(acls)))
	for i := range acls {
		acls[i].Encode(e)
	}
}

// ReadACLs reads a vector<ACL>; null and empty both read as nil. The count is
// checked against the bytes left before anything is allocated.
func ReadACLs(d *Decoder) []ACL {
	n := d.ReadVectorLen(minACLSize)
	if d.Err() != nil || n == 0 {
		return nil
	}
	out := make([]ACL, n)
	for i := range out {
		if out[i].Decode(d) != nil {
			return nil
		}
	}
	return out
}

// Encode writes the CreateRequest.
func (r *CreateRequest) Encode(e *Encoder) {
	e.WriteString(r.Path)
	e.WriteBuffer(r.Data)
	WriteACLs(e, r.ACL)
	e.WriteInt(r.Flags)
}

// Decode reads the CreateRequest.
func (r *CreateRequest) Decode(d *Decoder) error {
	r.Path = d.ReadString()
	r.Data = d.ReadBuffer()
	r.ACL = ReadACLs(d)
	r.Flags = d.ReadInt()
	return d.Err()
}

// Encode writes the CreateTTLRequest.
func (r *CreateTTLRequest) Encode(e *Encoder) {
	e.WriteString(r.Path)
	e.WriteBuffer(r.Data)
	WriteACLs(e, r.ACL)
	e.WriteInt(r.Flags)
	e.WriteLong(r.TTL)
}

// Decode reads the CreateTTLRequest.
func (r *CreateTTLRequest) Decode(d *Decoder) error {
	r.Path = d.ReadString()
	r.Data = d.ReadBuffer()
	r.ACL = ReadACLs(d)
	r.Flags = d.ReadInt()
	r.TTL = d.ReadLong()
	return d.Err()
}

// Encode writes the CreateResponse.
func (r *CreateResponse) Encode(e *Encoder) { e.WriteString(r.Path) }

// Decode reads the CreateResponse.
func (r *CreateResponse) Decode(d *Decoder) error {
	r.Path = d.ReadString()
	return d.Err()
}

// Encode writes the Create2Response.
func (r *Create2Response) Encode(e *Encoder) {
	e.WriteString(r.Path)
	r.Stat.Encode(e)
}

// Decode reads the Create2Response.
func (r *Create2Response) Decode(d *Decoder) error {
	r.Path = d.ReadString()
	return r.Stat.Decode(d)
}

// Encode writes the DeleteRequest.
func (r *DeleteRequest) Encode(e *Encoder) {
	e.WriteString(r.Path)
	e.WriteInt(r.Version)
}

// Decode reads the DeleteRequest.
func (r *DeleteRequest) Decode(d *Decoder) error {
	r.Path = d.ReadString()
	r.Version = d.ReadInt()
	return d.Err()
}

// Encode writes the ExistsRequest.
func (r *ExistsRequest) Encode(e *Encoder) {
	e.WriteString(r.Path)
	e.WriteBool(r.Watch)
}

// Decode reads the ExistsRequest.
func (r *ExistsRequest) Decode(d *Decoder) error {
	r.Path = d.ReadString()
	r.Watch = d.ReadBool()
	return d.Err()
}

// Encode writes the ExistsResponse (a bare Stat).
func (r *ExistsResponse) Encode(e *Encoder) { r.Stat.Encode(e) }

// Decode reads the ExistsResponse.
func (r *ExistsResponse) Decode(d *Decoder) error { return r.Stat.Decode(d) }

// Encode writes the GetDataRequest.
func (r *GetDataRequest) Encode(e *Encoder) {
	e.WriteString(r.Path)
	e.WriteBool(r.Watch)
}

// Decode reads the GetDataRequest.
func (r *GetDataRequest) Decode(d *Decoder) error {
	r.Path = d.ReadString()
	r.Watch = d.ReadBool()
	return d.Err()
}

// Encode writes the GetDataResponse; nil Data goes out as a null buffer,
// which every client accepts.
func (r *GetDataResponse) Encode(e *Encoder) {
	e.WriteBuffer(r.Data)
	r.Stat.Encode(e)
}

// Decode reads the GetDataResponse.
func (r *GetDataResponse) Decode(d *Decoder) error {
	r.Data = d.ReadBuffer()
	return r.Stat.Decode(d)
}

// Encode writes the SetDataRequest.
func (r *SetDataRequest) Encode(e *Encoder) {
	e.WriteString(r.Path)
	e.WriteBuffer(r.Data)
	e.WriteInt(r.Version)
}

// Decode reads the SetDataRequest.
func (r *SetDataRequest) Decode(d *Decoder) error {
	r.Path = d.ReadString()
	r.Data = d.ReadBuffer()
	r.Version = d.ReadInt()
	return d.Err()
}

// Encode writes the SetDataResponse (a bare Stat).
func (r *SetDataResponse) Encode(e *Encoder) { r.Stat.Encode(e) }

// Decode reads the SetDataResponse.
func (r *SetDataResponse) Decode(d *Decoder) error { return r.Stat.Decode(d) }

// Encode writes the GetACLRequest.
func (r *GetACLRequest) Encode(e *Encoder) { e.WriteString(r.Path) }

// Decode reads the GetACLRequest.
func (r *GetACLRequest) Decode(d *Decoder) error {
	r.Path = d.ReadString()
	return d.Err()
}

// Encode writes the GetACLResponse.
func (r *GetACLResponse) Encode(e *Encoder) {
	WriteACLs(e, r.ACL)
	r.Stat.Encode(e)
}

// Decode reads the GetACLResponse.
func (r *GetACLResponse) Decode(d *Decoder) error {
	r.ACL = ReadACLs(d)
	return r.Stat.Decode(d)
}

// Encode writes the SetACLRequest.
func (r *SetACLRequest) Encode(e *Encoder) {
	e.WriteString(r.Path)
	WriteACLs(e, r.ACL)
	e.WriteInt(r.Version)
}

// Decode reads the SetACLRequest.
func (r *SetACLRequest) Decode(d *Decoder) error {
	r.Path = d.ReadString()
	r.ACL = ReadACLs(d)
	r.Version = d.ReadInt()
	return d.Err()
}

// Encode writes the SetACLResponse (a bare Stat).
func (r *SetACLResponse) Encode(e *Encoder) { r.Stat.Encode(e) }

// Decode reads the SetACLResponse.
func (r *SetACLResponse) Decode(d *Decoder) error { return r.Stat.Decode(d) }

// Encode writes the GetChildrenRequest.
func (r *GetChildrenRequest) Encode(e *Encoder) {
	e.WriteString(r.Path)
	e.WriteBool(r.Watch)
}

// Decode reads the GetChildrenRequest.
func (r *GetChildrenRequest) Decode(d *Decoder) error {
	r.Path = d.ReadString()
	r.Watch = d.ReadBool()
	return d.Err()
}

// Encode writes the GetChildrenResponse.
func (r *GetChildrenResponse) Encode(e *Encoder) { e.WriteStrings(r.Children) }

// Decode reads the GetChildrenResponse.
func (r *GetChildrenResponse) Decode(d *Decoder) error {
	r.Children = d.ReadStrings()
	return d.Err()
}

// Encode writes the GetChildren2Request.
func (r *GetChildren2Request) Encode(e *Encoder) {
	e.WriteString(r.Path)
	e.WriteBool(r.Watch)
}

// Decode reads the GetChildren2Request.
func (r *GetChildren2Request) Decode(d *Decoder) error {
	r.Path = d.ReadString()
	r.Watch = d.ReadBool()
	return d.Err()
}

// Encode writes the GetChildren2Response.
func (r *GetChildren2Response) Encode(e *Encoder) {
	e.WriteStrings(r.Children)
	r.Stat.Encode(e)
}

// Decode reads the GetChildren2Response.
func (r *GetChildren2Response) Decode(d *Decoder) error {
	r.Children = d.ReadStrings()
	return r.Stat.Decode(d)
}

// Encode writes the SyncRequest.
func (r *SyncRequest) Encode(e *Encoder) { e.WriteString(r.Path) }

// Decode reads the SyncRequest.
func (r *SyncRequest) Decode(d *Decoder) error {
	r.Path = d.ReadString()
	return d.Err()
}

// Encode writes the SyncResponse.
func (r *SyncResponse) Encode(e *Encoder) { e.WriteString(r.Path) }

// Decode reads the SyncResponse.
func (r *SyncResponse) Decode(d *Decoder) error {
	r.Path = d.ReadString()
	return d.Err()
}

// Encode writes the CheckVersionRequest.
func (r *CheckVersionRequest) Encode(e *Encoder) {
	e.WriteString(r.Path)
	e.WriteInt(r.Version)
}

// Decode reads the CheckVersionRequest.
func (r *CheckVersionRequest) Decode(d *Decoder) error {
	r.Path = d.ReadString()
	r.Version = d.ReadInt()
	return d.Err()
}

// Encode writes the ReconfigRequest.
func (r *ReconfigRequest) Encode(e *Encoder) {
	e.WriteString(r.JoiningServers)
	e.WriteString(r.LeavingServers)
	if r.NewMembersNull && r.NewMembers == "" {
		e.WriteInt(-1)
	} else {
		e.WriteString(r.NewMembers)
	}
	e.WriteLong(r.CurConfigID)
}

// Decode reads the ReconfigRequest; go-zk sends unused member lists as null.
func (r *ReconfigRequest) Decode(d *Decoder) error {
	r.JoiningServers = d.ReadString()
	r.LeavingServers = d.ReadString()
	r.NewMembers, r.NewMembersNull = d.readNullableString()
	r.CurConfigID = d.ReadLong()
	return d.Err()
}

// Encode writes the CheckWatchesRequest.
func (r *CheckWatchesRequest) Encode(e *Encoder) {
	e.WriteString(r.Path)
	e.WriteInt(r.Type)
}

// Decode reads the CheckWatchesRequest.
func (r *CheckWatchesRequest) Decode(d *Decoder) error {
	r.Path = d.ReadString()
	r.Type = d.ReadInt()
	return d.Err()
}

// Encode writes the RemoveWatchesRequest.
func (r *RemoveWatchesRequest) Encode(e *Encoder) {
	e.WriteString(r.Path)
	e.WriteInt(r.Type)
}

// Decode reads the RemoveWatchesRequest.
func (r *RemoveWatchesRequest) Decode(d *Decoder) error {
	r.Path = d.ReadString()
	r.Type = d.ReadInt()
	return d.Err()
}

// Encode writes the DeleteContainerRequest. The path is a jute buffer, which
// has the same wire shape as a non-null ustring.
func (r *DeleteContainerRequest) Encode(e *Encoder) { e.WriteString(r.Path) }

// Decode reads the DeleteContainerRequest; a null path reads as "".
func (r *DeleteContainerRequest) Decode(d *Decoder) error {
	r.Path = d.ReadString()
	return d.Err()
}

// Encode writes the AuthPacket.
func (r *AuthPacket) Encode(e *Encoder) {
	e.WriteInt(r.Type)
	e.WriteString(r.Scheme)
	e.WriteBuffer(r.Auth)
}

// Decode reads the AuthPacket.
func (r *AuthPacket) Decode(d *Decoder) error {
	r.Type = d.ReadInt()
	r.Scheme = d.ReadString()
	r.Auth = d.ReadBuffer()
	return d.Err()
}

// Encode writes the SetWatches.
func (r *SetWatches) Encode(e *Encoder) {
	e.WriteLong(r.RelativeZxid)
	e.WriteStrings(r.DataWatches)
	e.WriteStrings(r.ExistWatches)
	e.WriteStrings(r.ChildWatches)
}

// Decode reads the SetWatches.
func (r *SetWatches) Decode(d *Decoder) error {
	r.RelativeZxid = d.ReadLong()
	r.DataWatches = d.ReadStrings()
	r.ExistWatches = d.ReadStrings()
	r.ChildWatches = d.ReadStrings()
	return d.Err()
}

// Encode writes the SetWatches2.
func (r *SetWatches2) Encode(e *Encoder) {
	e.WriteLong(r.RelativeZxid)
	e.WriteStrings(r.DataWatches)
	e.WriteStrings(r.ExistWatches)
	e.WriteStrings(r.ChildWatches)
	e.WriteStrings(r.PersistentWatches)
	e.WriteStrings(r.PersistentRecursiveWatches)
}

// Decode reads the SetWatches2.
func (r *SetWatches2) Decode(d *Decoder) error {
	r.RelativeZxid = d.ReadLong()
	r.DataWatches = d.ReadStrings()
	r.ExistWatches = d.ReadStrings()
	r.ChildWatches = d.ReadStrings()
	r.PersistentWatches = d.ReadStrings()
	r.PersistentRecursiveWatches = d.ReadStrings()
	return d.Err()
}

// Encode writes the GetSASLRequest.
func (r *GetSASLRequest) Encode(e *Encoder) { e.WriteBuffer(r.Token) }

// Decode reads the GetSASLRequest.
func (r *GetSASLRequest) Decode(d *Decoder) error {
	r.Token = d.ReadBuffer()
	return d.Err()
}

// Encode writes the SetSASLResponse.
func (r *SetSASLResponse) Encode(e *Encoder) { e.WriteBuffer(r.Token) }

// Decode reads the SetSASLResponse.
func (r *SetSASLResponse) Decode(d *Decoder) error {
	r.Token = d.ReadBuffer()
	return d.Err()
}

// Encode writes the GetEphemeralsRequest.
func (r *GetEphemeralsRequest) Encode(e *Encoder) { e.WriteString(r.PrefixPath) }

// Decode reads the GetEphemeralsRequest.
func (r *GetEphemeralsRequest) Decode(d *Decoder) error {
	r.PrefixPath = d.ReadString()
	return d.Err()
}

// Encode writes the GetEphemeralsResponse.
func (r *GetEphemeralsResponse) Encode(e *Encoder) { e.WriteStrings(r.Ephemerals) }

// Decode reads the GetEphemeralsResponse.
func (r *GetEphemeralsResponse) Decode(d *Decoder) error {
	r.Ephemerals = d.ReadStrings()
	return d.Err()
}

// Encode writes the GetAllChildrenNumberRequest.
func (r *GetAllChildrenNumberRequest) Encode(e *Encoder) { e.WriteString(r.Path) }

// Decode reads the GetAllChildrenNumberRequest.
func (r *GetAllChildrenNumberRequest) Decode(d *Decoder) error {
	r.Path = d.ReadString()
	return d.Err()
}

// Encode writes the GetAllChildrenNumberResponse.
func (r *GetAllChildrenNumberResponse) Encode(e *Encoder) { e.WriteInt(r.TotalNumber) }

// Decode reads the GetAllChildrenNumberResponse.
func (r *GetAllChildrenNumberResponse) Decode(d *Decoder) error {
	r.TotalNumber = d.ReadInt()
	return d.Err()
}

// Encode writes the AddWatchRequest.
func (r *AddWatchRequest) Encode(e *Encoder) {
	e.WriteString(r.Path)
	e.WriteInt(r.Mode)
}

// Decode reads the AddWatchRequest.
func (r *AddWatchRequest) Decode(d *Decoder) error {
	r.Path = d.ReadString()
	r.Mode = d.ReadInt()
	return d.Err()
}

// Encode writes the ErrorResponse.
func (r *ErrorResponse) Encode(e *Encoder) { e.WriteInt(int32(r.Err)) }

// Decode reads the ErrorResponse.
func (r *ErrorResponse) Decode(d *Decoder) error {
	r.Err = ErrCode(d.ReadInt())
	return d.Err()
}

// Encode writes the ClientInfo.
func (r *ClientInfo) Encode(e *Encoder) {
	e.WriteString(r.AuthScheme)
	e.WriteString(r.User)
}

// Decode reads the ClientInfo.
func (r *ClientInfo) Decode(d *Decoder) error {
	r.AuthScheme = d.ReadString()
	r.User = d.ReadString()
	return d.Err()
}

// Encode writes the WhoAmIResponse; nil is an empty vector, never null.
func (r *WhoAmIResponse) Encode(e *Encoder) {
	e.WriteInt(int32(len(r.ClientInfo)))
	for i := range r.ClientInfo {
		r.ClientInfo[i].Encode(e)
	}
}

// Decode reads the WhoAmIResponse; null and empty both read as nil.
func (r *WhoAmIResponse) Decode(d *Decoder) error {
	r.ClientInfo = nil
	n := d.ReadVectorLen(minClientInfoSize)
	if d.Err() != nil || n == 0 {
		return d.Err()
	}
	out := make([]ClientInfo, n)
	for i := range out {
		if err := out[i].Decode(d); err != nil {
			return err
		}
	}
	r.ClientInfo = out
	return nil
}

// Encode writes the WatcherEvent.
func (r *WatcherEvent) Encode(e *Encoder) {
	e.WriteInt(r.Type)
	e.WriteInt(r.State)
	e.WriteString(r.Path)
}

// Decode reads the WatcherEvent.
func (r *WatcherEvent) Decode(d *Decoder) error {
	r.Type = d.ReadInt()
	r.State = d.ReadInt()
	r.Path = d.ReadString()
	return d.Err()
}

// Encode writes nothing: the record has no fields.
func (r *EmptyRecord) Encode(*Encoder) {}

// Decode reads nothing; it reports an earlier error of d, if any.
func (r *EmptyRecord) Decode(d *Decoder) error { return d.Err() }
