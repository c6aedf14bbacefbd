package loadgen

import (
	"context"
	"encoding/binary"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/internal/testserver"
	"github.com/zabkeeper/zabkeeper/proto"
	"github.com/zabkeeper/zabkeeper/server"
)

// A lean session gets the server's error codes as proto.ErrCode (the run
// counts them and goes on) and its replies are checked.
func TestLeanConnErrorsAndReplies(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.AdminServerAddress, cfg.AdminServerPort = "127.0.0.1", 0
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.DataLogDir = cfg.DataDir
	cfg.ClientPort = 0
	cfg.ClientPortAddress = "127.0.0.1"
	addr := testserver.StartLogged(t, cfg, slog.New(slog.DiscardHandler)).Addr

	c, err := dialLean(context.Background(), addr, 10*time.Second, nil)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.create("/lean", []byte("abc")))
	err = c.create("/lean", []byte("abc"))
	require.ErrorIs(t, err, proto.ErrNodeExists)
	require.True(t, isServerError(err))
	require.NoError(t, c.get("/lean", 3))
	require.ErrorContains(t, c.get("/lean", 4), "3 bytes of data")
	require.NoError(t, c.set("/lean", []byte("abcd")))
	require.NoError(t, c.get("/lean", 4))
	err = c.set("/missing", nil)
	require.ErrorIs(t, err, proto.ErrNoNode)
	require.Positive(t, c.zxid, "replies carry the zxid")
}

// FuzzLeanReply feeds arbitrary reply frames to the lean client's requests:
// it returns an error or accepts the reply, and never panics.
func FuzzLeanReply(f *testing.F) {
	ok := func(xid int32, body []byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(16+len(body)))
		b = binary.BigEndian.AppendUint32(b, uint32(xid))
		b = binary.BigEndian.AppendUint64(b, 7)
		b = binary.BigEndian.AppendUint32(b, 0)
		return append(b, body...)
	}
	f.Add(uint8(0), ok(1, []byte{0, 0, 0, 2, '/', 'a'}))
	f.Add(uint8(1), ok(1, make([]byte, statSize)))
	f.Add(uint8(2), ok(1, append([]byte{0, 0, 0, 1, 'x'}, make([]byte, statSize)...)))
	f.Add(uint8(2), ok(2, nil))
	f.Add(uint8(1), []byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, op uint8, reply []byte) {
		client, srv := net.Pipe()
		defer client.Close()
		go func() {
			defer srv.Close()
			buf := make([]byte, 4096)
			_, _ = srv.Read(buf) // the request
			_, _ = srv.Write(reply)
		}()
		c := &leanConn{nc: client, br: newReader(client), out: make([]byte, 0, 64)}
		_ = client.SetDeadline(time.Now().Add(5 * time.Second))
		var err error
		switch op % 3 {
		case 0:
			err = c.create("/a", nil)
		case 1:
			err = c.set("/a", nil)
		case 2:
			err = c.get("/a", 1)
		}
		if err == nil {
			require.GreaterOrEqual(t, len(reply), 20)
		}
	})
}
