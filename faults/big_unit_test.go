package faults

import (
	"bytes"
	"strings"
	"testing"

	"github.com/zabkeeper/zabkeeper/proto"
	"github.com/zabkeeper/zabkeeper/server"
)

// The largest values fill a request frame to exactly jute.maxbuffer, as
// the servers' codec encodes it, and the harness's limit is the servers'
// default.
func TestBigValueLimits(t *testing.T) {
	if juteMaxBuffer != server.DefaultJuteMaxBuffer {
		t.Fatalf("juteMaxBuffer %d, the server's default %d", juteMaxBuffer, server.DefaultJuteMaxBuffer)
	}
	hdr := len(proto.Marshal(&proto.RequestHeader{Xid: 1, Type: proto.OpSetData}))
	for _, path := range []string{bigKey(0, 0), bigKey(12, 1), idleBigPath} {
		set := proto.Marshal(&proto.SetDataRequest{Path: path, Data: make([]byte, maxSetValue(path)), Version: -1})
		if got := hdr + len(set); got != juteMaxBuffer {
			t.Errorf("setData of %s with the largest value: a frame of %d bytes, want %d", path, got, juteMaxBuffer)
		}
		create := proto.Marshal(&proto.CreateRequest{Path: path, Data: make([]byte, maxCreateValue(path)), ACL: proto.OpenACLUnsafe})
		if got := hdr + len(create); got != juteMaxBuffer {
			t.Errorf("create of %s with the largest value: a frame of %d bytes, want %d", path, got, juteMaxBuffer)
		}
	}
}

// A value reads back as its tag only when every byte is the one written;
// a change anywhere, a cut, or two values spliced read as damage.
func TestBigRecord(t *testing.T) {
	a, b := bigValue("w1-1", 100_000), bigValue("w1-2", 100_000)
	if got := string(bigRecord(a)); got != "w1-1:100000" {
		t.Fatalf("bigRecord = %q", got)
	}
	if bytes.Equal(a[10:], b[10:]) {
		t.Fatal("two tags, one filler")
	}
	flipped := bytes.Clone(a)
	flipped[77_777] ^= 1
	spliced := append(bytes.Clone(a[:50_000]), b[50_000:]...)
	for name, v := range map[string][]byte{"flipped": flipped, "cut": a[:99_999], "spliced": spliced, "no tag": b[5:], "empty": nil} {
		if got := string(bigRecord(v)); !strings.HasPrefix(got, "corrupt:") {
			t.Errorf("%s: bigRecord = %q, want damage", name, got)
		}
	}
	if got := string(recordedData("/g0/k0", []byte("w1-3"))); got != "w1-3" {
		t.Errorf("a small value recorded as %q", got)
	}
}
