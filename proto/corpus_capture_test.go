//go:build capture

package proto

// Regenerates the fuzz seed corpus from the bytes a real client sends:
//
//	go test -tags capture -run TestCaptureCorpus ./proto
//
// A fake server on 127.0.0.1:0 answers github.com/go-zookeeper/zk with
// plausible replies while the client is driven through every call it has;
// each frame seen is written under testdata/fuzz/<FuzzName>/. go-zk v1.0.4
// has no addWatch, getChildren (8), multiRead or setWatches2: those are
// seeded from the sample records in the fuzz tests instead.

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"
)

type nopLogger struct{}

func (nopLogger) Printf(string, ...interface{}) {}

// captured is one frame body seen by the fake server, or sent by it.
type captured struct {
	name    string
	connect bool   // the bare ConnectRequest frame
	reply   bool   // sent by the server
	op      OpCode // request type (or the type being answered)
	body    []byte // frame body, no length prefix
}

type fakeServer struct {
	t      *testing.T
	ln     net.Listener
	mu     sync.Mutex
	frames []captured
	conn   net.Conn
}

func (s *fakeServer) record(c captured) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.body = append([]byte(nil), c.body...)
	s.frames = append(s.frames, c)
}

// drop closes the current client connection, making go-zk reconnect with
// its session and resend its watches.
func (s *fakeServer) drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		s.conn.Close()
	}
}

func (s *fakeServer) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conn = c
		s.mu.Unlock()
		go s.handle(c)
	}
}

var capturePasswd = []byte("0123456789abcdef")

func (s *fakeServer) send(c net.Conn, op OpCode, frame []byte) {
	s.record(captured{name: "reply-" + op.String(), reply: true, op: op, body: frame[4:]})
	_, _ = c.Write(frame)
}

func (s *fakeServer) handle(c net.Conn) {
	defer c.Close()
	body, err := ReadFrame(c, nil, DefaultMaxBuffer)
	if err != nil {
		return
	}
	s.record(captured{name: "connect", connect: true, body: body})
	var creq ConnectRequest
	if Unmarshal(body, &creq) != nil {
		return
	}
	resp := ConnectResponse{TimeOut: 900, SessionID: 0x0100000000001234, Passwd: capturePasswd, HasReadOnly: creq.HasReadOnly}
	_, _ = c.Write(AppendRecords(nil, &resp))
	stat := Stat{Czxid: 1, Mzxid: 1, Ctime: 1700000000000, Mtime: 1700000000000, DataLength: 5, Pzxid: 1}
	for {
		body, err := ReadFrame(c, nil, DefaultMaxBuffer)
		if err != nil {
			return
		}
		hdr, req, err := DecodeRequestFrame(body)
		s.record(captured{name: hdr.Type.String(), op: hdr.Type, body: body})
		rh := ReplyHeader{Xid: hdr.Xid, Zxid: 1}
		if err != nil {
			rh.Err = ErrUnimplemented
			s.send(c, hdr.Type, EncodeReply(rh, nil))
			return
		}
		var out Record
		switch r := req.(type) {
		case *CreateRequest:
			if hdr.Type == OpCreate {
				out = &CreateResponse{Path: r.Path}
			} else {
				out = &Create2Response{Path: r.Path, Stat: stat}
			}
		case *CreateTTLRequest:
			out = &Create2Response{Path: r.Path, Stat: stat}
		case *ExistsRequest:
			out = &ExistsResponse{Stat: stat}
		case *GetDataRequest:
			out = &GetDataResponse{Data: []byte("hello"), Stat: stat}
		case *SetDataRequest:
			out = &SetDataResponse{Stat: stat}
		case *GetACLRequest:
			out = &GetACLResponse{ACL: OpenACLUnsafe, Stat: stat}
		case *SetACLRequest:
			out = &SetACLResponse{Stat: stat}
		case *GetChildrenRequest:
			out = &GetChildrenResponse{Children: []string{"a", "b"}}
		case *GetChildren2Request:
			out = &GetChildren2Response{Children: []string{"a", "b"}, Stat: stat}
		case *SyncRequest:
			out = &SyncResponse{Path: r.Path}
		case *ReconfigRequest:
			out = &GetDataResponse{Data: []byte("server.1=127.0.0.1:2888:3888;2181\nversion=100000000"), Stat: stat}
		case *MultiRequest:
			mr := &MultiResponse{}
			for _, op := range r.Ops {
				switch q := op.Req.(type) {
				case *CreateRequest:
					mr.Results = append(mr.Results, MultiResult{Type: OpCreate, Resp: &CreateResponse{Path: q.Path}})
				case *SetDataRequest:
					mr.Results = append(mr.Results, MultiResult{Type: OpSetData, Resp: &SetDataResponse{Stat: stat}})
				default:
					mr.Results = append(mr.Results, MultiResult{Type: op.Type})
				}
			}
			out = mr
		}
		if hdr.Type == OpPing {
			rh.Xid = XidPing
		}
		s.send(c, hdr.Type, EncodeReply(rh, out))
		if hdr.Type == OpCloseSession {
			return
		}
	}
}

func TestCaptureCorpus(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &fakeServer{t: t, ln: ln}
	go srv.serve()
	defer ln.Close()

	conn, events, err := zk.Connect([]string{ln.Addr().String()}, time.Second, zk.WithLogger(nopLogger{}))
	require.NoError(t, err)
	waitState := func(want zk.State) {
		deadline := time.After(10 * time.Second)
		for {
			select {
			case ev := <-events:
				if ev.State == want {
					return
				}
			case <-deadline:
				t.Fatalf("no %v", want)
			}
		}
	}
	waitState(zk.StateHasSession)

	acl := zk.WorldACL(zk.PermAll)
	for _, flags := range []int32{zk.FlagPersistent, zk.FlagEphemeral, zk.FlagSequence, zk.FlagEphemeral | zk.FlagSequence} {
		_, err = conn.Create(fmt.Sprintf("/c%d", flags), []byte("data"), flags, acl)
		require.NoError(t, err)
	}
	_, err = conn.Create("/nodata", nil, zk.FlagPersistent, zk.DigestACL(zk.PermRead, "user", "password"))
	require.NoError(t, err)
	_, err = conn.CreateContainer("/container", nil, zk.FlagContainer, acl)
	require.NoError(t, err)
	_, err = conn.CreateTTL("/ttl", []byte("t"), zk.FlagTTL, acl, 5*time.Second)
	require.NoError(t, err)
	_, err = conn.CreateTTL("/ttlseq", []byte("t"), zk.FlagPersistentSequentialWithTTL, acl, time.Hour)
	require.NoError(t, err)
	_, err = conn.CreateProtectedEphemeralSequential("/lock/n-", []byte("x"), acl)
	require.NoError(t, err)
	_, _, err = conn.Exists("/c0")
	require.NoError(t, err)
	_, _, _, err = conn.ExistsW("/watched")
	require.NoError(t, err)
	_, _, err = conn.Get("/c0")
	require.NoError(t, err)
	_, _, _, err = conn.GetW("/c0")
	require.NoError(t, err)
	_, err = conn.Set("/c0", []byte("new data"), 0)
	require.NoError(t, err)
	_, err = conn.Set("/c0", nil, -1)
	require.NoError(t, err)
	_, _, err = conn.GetACL("/c0")
	require.NoError(t, err)
	_, err = conn.SetACL("/c0", zk.DigestACL(zk.PermAll, "user", "password"), 0)
	require.NoError(t, err)
	_, _, err = conn.Children("/")
	require.NoError(t, err)
	_, _, _, err = conn.ChildrenW("/")
	require.NoError(t, err)
	_, err = conn.Sync("/c0")
	require.NoError(t, err)
	_, err = conn.Multi(
		&zk.CreateRequest{Path: "/m", Data: []byte("m"), Acl: acl, Flags: 0},
		&zk.SetDataRequest{Path: "/m", Data: []byte("mm"), Version: -1},
		&zk.CheckVersionRequest{Path: "/m", Version: 1},
		&zk.DeleteRequest{Path: "/m", Version: -1},
	)
	require.NoError(t, err)
	require.NoError(t, conn.AddAuth("digest", []byte("user:password")))
	_, err = conn.IncrementalReconfig([]string{"server.2=127.0.0.1:2889:3889;2182"}, nil, -1)
	require.NoError(t, err)
	_, err = conn.Reconfig([]string{"server.1=127.0.0.1:2888:3888;2181"}, 0x100000000)
	require.NoError(t, err)
	require.NoError(t, conn.Delete("/c0", -1))
	require.NoError(t, conn.Delete("/c1", 3))
	time.Sleep(700 * time.Millisecond) // idle long enough for a ping

	// Reconnect: a ConnectRequest with a session id, then setWatches.
	srv.drop()
	waitState(zk.StateHasSession)
	time.Sleep(300 * time.Millisecond)
	_, _, err = conn.Exists("/after-reconnect")
	require.NoError(t, err)
	conn.Close()
	time.Sleep(200 * time.Millisecond)

	srv.mu.Lock()
	frames := append([]captured(nil), srv.frames...)
	srv.mu.Unlock()
	writeCorpus(t, frames)
}

func writeCorpus(t *testing.T, frames []captured) {
	seen := map[string]bool{}
	count := map[string]int{}
	n := 0
	old, err := filepath.Glob(filepath.Join("testdata", "fuzz", "*", "gozk-*"))
	require.NoError(t, err)
	for _, f := range old {
		require.NoError(t, os.Remove(f))
	}
	put := func(fuzzName, name string, args ...string) {
		content := "go test fuzz v1\n" + strings.Join(args, "\n") + "\n"
		key := fuzzName + "\x00" + content
		if seen[key] {
			return
		}
		seen[key] = true
		dir := filepath.Join("testdata", "fuzz", fuzzName)
		require.NoError(t, os.MkdirAll(dir, 0o755))
		n++
		count[fuzzName]++
		file := filepath.Join(dir, fmt.Sprintf("gozk-%02d-%s", count[fuzzName], name))
		require.NoError(t, os.WriteFile(file, []byte(content), 0o644))
	}
	bytesArg := func(b []byte) string { return fmt.Sprintf("[]byte(%q)", b) }
	for _, f := range frames {
		put("FuzzReadFrame", f.name, bytesArg(AppendFrame(nil, f.body)))
		switch {
		case f.connect:
			put("FuzzConnectRequest", f.name, bytesArg(f.body))
		case f.reply:
			put("FuzzReplyHeader", f.name, bytesArg(f.body))
			body := f.body[16:]
			put("FuzzDecodeResponse", f.name, fmt.Sprintf("int32(%d)", f.op), bytesArg(body))
			if f.op == OpMulti {
				put("FuzzMultiResponse", f.name, bytesArg(body))
			}
		default:
			body := f.body[8:]
			put("FuzzDecodeRequest", f.name, fmt.Sprintf("int32(%d)", f.op), bytesArg(body))
			if f.op == OpMulti || f.op == OpMultiRead {
				put("FuzzMultiRequest", f.name, fmt.Sprintf("bool(%v)", f.op == OpMultiRead), bytesArg(body))
			}
		}
	}
	t.Logf("wrote %d corpus files from %d frames", n, len(frames))
}
