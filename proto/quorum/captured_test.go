package quorum_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// Bytes Apache ZooKeeper 3.8.0 (Debian) sent to the Go peers of
// TestInteropZooKeeper38, captured with ZKQUORUM_CAPTURE (see
// testdata/zk38/README.md). They run without Java: every record must
// decode, re-encode to the same bytes, and say what the scenario did.

func readCapture(t *testing.T, name string) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", "zk38", name))
	require.NoError(t, err)
	return b
}

// summarize walks a leader → learner stream and describes each packet,
// checking that each re-encodes to the bytes it came from.
func summarize(t *testing.T, stream []byte) []string {
	var out []string
	r := bytes.NewReader(stream)
	for {
		off := len(stream) - r.Len()
		p, err := quorum.ReadPacket(r, quorum.Limits{})
		if err == io.EOF {
			return out
		}
		require.NoError(t, err, "at offset %d", off)
		end := len(stream) - r.Len()
		require.Equal(t, stream[off:end], p.Encode(), "%s re-encodes byte for byte", p)
		line := fmt.Sprintf("%s 0x%x", p.Type, uint64(p.Zxid))
		switch p.Type {
		case quorum.LeaderInfo:
			e, v, err := quorum.DecodeLeaderInfo(&p)
			require.NoError(t, err)
			line += fmt.Sprintf(" epoch=%d protocol=0x%x", e, v)
		case quorum.Snap:
			sum, err := quorum.CopySnapshotBody(nil, r, quorum.SnapLimits{KeepPaths: true})
			require.NoError(t, err)
			line += fmt.Sprintf(" body=%d sessions=%d acls=%d paths=%s", sum.Bytes, len(sum.Sessions), sum.ACLs, strings.Join(sum.Paths, ","))
		case quorum.NewLeader:
			line += fmt.Sprintf(" config=%t", strings.HasSuffix(string(p.Data), "version=0"))
		case quorum.Proposal, quorum.Inform:
			x, err := decodeTxn(p.Data)
			require.NoError(t, err)
			require.Equal(t, p.Zxid, x.zxid)
			line += fmt.Sprintf(" type=%d cxid=%d path=%s data=%s", x.typ, x.cxid, x.path, x.data)
		case quorum.Ping:
			touches, err := quorum.DecodeTouches(&p)
			require.NoError(t, err)
			require.Empty(t, touches)
			continue // how many depends on timing
		case quorum.Revalidate:
			_, valid, err := quorum.DecodeRevalidateReply(&p)
			require.NoError(t, err)
			line += fmt.Sprintf(" valid=%t", valid)
		}
		if p.Data == nil {
			line += " null"
		}
		out = append(out, line)
	}
}

func TestZooKeeper38Captured(t *testing.T) {
	b := readCapture(t, "initial-message-from-1.bin")
	im, err := quorum.ReadInitialMessage(bytes.NewReader(b))
	require.NoError(t, err)
	require.Equal(t, quorum.ProtocolV1, im.Protocol)
	require.Equal(t, int64(1), im.Sid)
	require.Len(t, im.Addrs, 1)
	require.True(t, strings.HasPrefix(im.Addrs[0], "127.0.0.1:"))
	enc, err := im.Encode()
	require.NoError(t, err)
	require.Equal(t, b, enc)

	// With multiAddress.enabled=true (TestInteropGoLeader).
	b = readCapture(t, "initial-message-v2-from-1.bin")
	im, err = quorum.ReadInitialMessage(bytes.NewReader(b))
	require.NoError(t, err)
	require.Equal(t, quorum.ProtocolV2, im.Protocol)
	require.Equal(t, int64(1), im.Sid)
	require.Len(t, im.Addrs, 1)
	enc, err = im.Encode()
	require.NoError(t, err)
	require.Equal(t, b, enc)

	for name, state := range map[string]quorum.ServerState{"notification-from-3-to-100.bin": quorum.Leading, "notification-from-1-to-100.bin": quorum.Following} {
		b := readCapture(t, name)
		n, err := quorum.DecodeNotification(b)
		require.NoError(t, err, name)
		require.Equal(t, state, n.State, name)
		require.Equal(t, int64(3), n.Leader)
		require.Equal(t, int64(0), n.Zxid)
		require.Equal(t, int64(1), n.ElectionEpoch)
		require.Equal(t, int64(1), n.PeerEpoch)
		require.Equal(t, quorum.NotificationVersion, n.Version)
		require.Len(t, b, 44+len(n.Config))
		require.Equal(t, 3, strings.Count(string(n.Config), ":participant\n"))
		require.True(t, strings.HasSuffix(string(n.Config), "\nversion=0"))
		enc, err := n.Encode()
		require.NoError(t, err)
		require.Equal(t, b, enc, name)
	}

	require.Equal(t, []string{
		"LEADERINFO 0x100000000 epoch=1 protocol=0x10000",
		"SNAP 0x100000002 body=678 sessions=1 acls=2 paths=,/zookeeper,/zookeeper/config,/zookeeper/quota,/before null",
		"NEWLEADER 0x100000000 config=true",
		"UPTODATE 0xffffffffffffffff null",
		"INFORM 0x100000003 type=1 cxid=2 path=/interop data=one",
		"INFORM 0x100000004 type=5 cxid=3 path=/interop data=two",
		"INFORM 0x100000005 type=-10 cxid=0 path= data=",
		"REVALIDATE 0xffffffffffffffff valid=true",
		"REVALIDATE 0xffffffffffffffff valid=false",
		"INFORM 0x100000006 type=1 cxid=1 path=/forwarded data=via REQUEST",
		"SYNC 0x0 null",
		"INFORM 0x100000007 type=-11 cxid=3 path= data=",
	}, summarize(t, readCapture(t, "observer-snap-stream.bin")))
	require.Equal(t, []string{
		"LEADERINFO 0x100000000 epoch=1 protocol=0x10000",
		"DIFF 0x100000007 null",
		"NEWLEADER 0x100000000 config=true",
		"UPTODATE 0xffffffffffffffff null",
	}, summarize(t, readCapture(t, "observer-diff-stream.bin")))
	require.Equal(t, []string{
		"LEADERINFO 0x100000000 epoch=1 protocol=0x10000",
		"TRUNC 0x100000007 null",
		"NEWLEADER 0x100000000 config=true",
		"UPTODATE 0xffffffffffffffff null",
	}, summarize(t, readCapture(t, "observer-trunc-stream.bin")))
	require.Equal(t, []string{
		"LEADERINFO 0x100000000 epoch=1 protocol=0x10000",
		"SNAP 0x100000007 body=862 sessions=1 acls=2 paths=,/interop,/zookeeper,/zookeeper/config,/zookeeper/quota,/before,/forwarded null",
		"NEWLEADER 0x100000000 config=true",
		"UPTODATE 0xffffffffffffffff null",
		"PROPOSAL 0x100000008 type=1 cxid=6 path=/follower data=f",
		"COMMIT 0x100000008 null",
	}, summarize(t, readCapture(t, "follower-snap-stream.bin")))
}
