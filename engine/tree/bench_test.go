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

// BenchmarkCreateInterleaved creates children of one parent named as the
// load generator's create workload names them (c<session>-<k>, 64 sessions
// in turn), past 200,000 children: each lands mid-set, so the child set's
// searches decode names from the arena.
func BenchmarkCreateInterleaved(b *testing.B) {
	tr := New(Options{})
	c := Caller{SessionID: 1}
	data := make([]byte, 100)
	zxid := int64(1)
	tr.Apply(tr.Prepare(Txn{Zxid: zxid}, c, proto.OpCreate, &proto.CreateRequest{Path: "/d", ACL: proto.OpenACLUnsafe}))
	k := 0
	create := func() {
		zxid++
		p := "/d/c" + strconv.Itoa(k%64) + "-" + strconv.Itoa(k/64)
		k++
		if res := tr.Apply(tr.Prepare(Txn{Zxid: zxid, SessionID: 1}, c, proto.OpCreate, &proto.CreateRequest{Path: p, Data: data, ACL: proto.OpenACLUnsafe})); res.Err != proto.ErrOK {
			b.Fatal(res.Err)
		}
	}
	for range 200_000 {
		create()
	}
	b.ReportAllocs()
	for b.Loop() {
		create()
	}
}
