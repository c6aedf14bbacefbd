package tree

import (
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/zabkeeper/zabkeeper/proto"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata")

// goldenTxns is one txn of every type and form Marshal writes.
func goldenTxns() []*Txn {
	acl := []proto.ACL{{Perms: proto.PermAll, Id: proto.Id{Scheme: "world", ID: "anyone"}},
		{Perms: proto.PermRead, Id: proto.Id{Scheme: "digest", ID: "u:abc="}}}
	h := func(zxid int64, x Txn) *Txn {
		x.Zxid, x.SessionID, x.Cxid, x.Time = zxid, 0x1000023f5a60000, int32(zxid), 1764730000000+zxid
		if x.Type != proto.OpError {
			x.DigestVersion, x.Digest = DigestVersion, 0x0123456789abcdef^uint64(zxid)
		}
		return &x
	}
	return []*Txn{
		h(0x100000001, Txn{Type: proto.OpCreateSession, TimeOut: 30000, Owner: 1}),
		h(0x100000002, Txn{Type: proto.OpCreate, Path: "/a", Data: []byte("hello"), ACL: acl, Mode: proto.ModePersistent, ParentCversion: 1}),
		h(0x100000003, Txn{Type: proto.OpCreate2, Path: "/a/e0000000000", Data: nil, ACL: acl[:1], Mode: proto.ModeEphemeral, ParentCversion: 1}),
		h(0x100000004, Txn{Type: proto.OpCreateContainer, Path: "/c", Data: []byte{}, ACL: acl[:1], Mode: proto.ModeContainer, ParentCversion: 2}),
		h(0x100000005, Txn{Type: proto.OpCreateTTL, Path: "/t", Data: []byte("t"), ACL: acl[:1], Mode: proto.ModePersistentWithTTL, TTL: 5000, ParentCversion: 3}),
		h(0x100000006, Txn{Type: proto.OpCreate, Path: "/c2", ACL: acl[:1], Mode: proto.ModeContainer, ParentCversion: 4}),
		h(0x100000007, Txn{Type: proto.OpSetData, Path: "/a", Data: []byte("world"), Version: 1}),
		h(0x100000008, Txn{Type: proto.OpSetACL, Path: "/a", ACL: acl[1:], Version: 1}),
		h(0x100000009, Txn{Type: proto.OpDelete, Path: "/t"}),
		h(0x10000000a, Txn{Type: proto.OpDeleteContainer, Path: "/c"}),
		h(0x10000000b, Txn{Type: proto.OpMulti, Ops: []Txn{
			{Type: proto.OpCheck, Path: "/a", Version: 2},
			{Type: proto.OpCreate, Path: "/m", Data: []byte("m"), ACL: acl[:1], Mode: proto.ModePersistent, ParentCversion: 6},
			{Type: proto.OpSetData, Path: "/m", Data: []byte("n"), Version: 1},
			{Type: proto.OpDelete, Path: "/m"},
		}}),
		h(0x10000000c, Txn{Type: proto.OpMulti, Ops: []Txn{{Type: proto.OpError}, {Type: proto.OpError, Err: proto.ErrNoNode},
			{Type: proto.OpError, Err: proto.ErrRuntimeInconsistency}}}),
		h(0x10000000d, Txn{Type: proto.OpMulti, Ops: []Txn{{Type: proto.OpCreate2, Path: "/mc", ACL: acl[:1], Mode: proto.ModeContainer, ParentCversion: 8}}}),
		h(0x10000000e, Txn{Type: proto.OpError, Err: proto.ErrNodeExists}),
		h(0x10000000f, Txn{Type: proto.OpSync, Path: "/a"}),
		h(0x100000010, Txn{Type: OpMoveSession, TimeOut: 20000, Owner: 3}),
		h(0x100000011, Txn{Type: proto.OpCloseSession, Paths: []string{"/a/e0000000000"}}),
		h(0x100000012, Txn{Type: proto.OpCloseSession}),
		h(0x100000013, Txn{Type: proto.OpCreateSession, TimeOut: 4000}),
	}
}

// TestTxnGolden pins the bytes Marshal writes (go test -run TestTxnGolden
// -update rewrites the file after a deliberate change; ZooKeeper reads the
// same bytes in disk's TestTxnLogToolkitReadsOurLog).
func TestTxnGolden(t *testing.T) {
	var b strings.Builder
	for _, x := range goldenTxns() {
		fmt.Fprintf(&b, "%v %#x\n%s\n", x.Type, x.Zxid, hex.EncodeToString(x.Marshal()))
	}
	const path = "testdata/txn-golden.txt"
	if *updateGolden {
		require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(want), b.String())
	for _, x := range goldenTxns() {
		back, err := UnmarshalTxn(x.Marshal())
		require.NoError(t, err)
		require.Equal(t, x, back)
	}
}
