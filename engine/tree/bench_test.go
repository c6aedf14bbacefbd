package tree

import (
	"strconv"
	"testing"

	"github.com/zabkeeper/zabkeeper/proto"
)

func BenchmarkPrepareApplyCreate(b *testing.B) {
	tr := New(Options{})
	c := Caller{SessionID: 1}
	data := make([]byte, 100)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		hdr := Txn{Zxid: int64(i + 1), SessionID: 1, Time: int64(i)}
		txn := tr.Prepare(hdr, c, proto.OpCreate, &proto.CreateRequest{Path: "/n" + strconv.Itoa(i), Data: data, ACL: proto.OpenACLUnsafe})
		if res := tr.Apply(txn); res.Err != proto.ErrOK {
			b.Fatal(res.Err)
		}
	}
}

func BenchmarkSetData(b *testing.B) {
	tr := New(Options{})
	c := Caller{SessionID: 1}
	zxid := int64(1)
	tr.Apply(tr.Prepare(Txn{Zxid: zxid}, c, proto.OpCreate, &proto.CreateRequest{Path: "/a", ACL: proto.OpenACLUnsafe}))
	req := &proto.SetDataRequest{Path: "/a", Data: make([]byte, 100), Version: -1}
	b.ReportAllocs()
	for b.Loop() {
		zxid++
		if res := tr.Apply(tr.Prepare(Txn{Zxid: zxid}, c, proto.OpSetData, req)); res.Err != proto.ErrOK {
			b.Fatal(res.Err)
		}
	}
}

func BenchmarkGetData(b *testing.B) {
	tr := New(Options{})
	c := Caller{SessionID: 1}
	tr.Apply(tr.Prepare(Txn{Zxid: 1}, c, proto.OpCreate, &proto.CreateRequest{Path: "/a", Data: make([]byte, 100), ACL: proto.OpenACLUnsafe}))
	req := &proto.GetDataRequest{Path: "/a"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tr.Read(c, 1, proto.OpGetData, req); err != proto.ErrOK {
			b.Fatal(err)
		}
	}
}
