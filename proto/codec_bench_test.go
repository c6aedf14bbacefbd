package proto

import "testing"

// Codec benchmarks: the per-request encode and decode work of the client
// path, with SetBytes so `go test -bench` shows MB/s too.

// requestBody is a request frame without its length prefix, as the server's
// reader hands it to DecodeRequestFrame.
func requestBody(hdr RequestHeader, req Record) []byte { return EncodeRequest(hdr, req)[4:] }

func BenchmarkEncodeSetDataRequest(b *testing.B) {
	req := &SetDataRequest{Path: "/app/config/node-0001", Data: make([]byte, 100), Version: -1}
	hdr := RequestHeader{Xid: 1, Type: OpSetData}
	b.SetBytes(int64(len(EncodeRequest(hdr, req))))
	b.ReportAllocs()
	for b.Loop() {
		_ = EncodeRequest(hdr, req)
	}
}

func BenchmarkDecodeSetDataRequest(b *testing.B) {
	frame := requestBody(RequestHeader{Xid: 1, Type: OpSetData},
		&SetDataRequest{Path: "/app/config/node-0001", Data: make([]byte, 100), Version: -1})
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := DecodeRequestFrame(frame); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeGetDataReply(b *testing.B) {
	resp := &GetDataResponse{Data: make([]byte, 100), Stat: Stat{Czxid: 1, Mzxid: 2, Version: 3, DataLength: 100}}
	hdr := ReplyHeader{Xid: 1, Zxid: 2}
	b.SetBytes(int64(len(EncodeReply(hdr, resp))))
	b.ReportAllocs()
	for b.Loop() {
		_ = EncodeReply(hdr, resp)
	}
}

func BenchmarkDecodeMultiRequest(b *testing.B) {
	multi := &MultiRequest{}
	for i := range 4 {
		multi.Ops = append(multi.Ops, MultiOp{Type: OpSetData,
			Req: &SetDataRequest{Path: "/app/node-" + string(rune('a'+i)), Data: make([]byte, 100), Version: -1}})
	}
	frame := requestBody(RequestHeader{Xid: 1, Type: OpMulti}, multi)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := DecodeRequestFrame(frame); err != nil {
			b.Fatal(err)
		}
	}
}
