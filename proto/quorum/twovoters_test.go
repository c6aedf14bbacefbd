package quorum_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/internal/zkreal"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// goSid is the Go peer's sid in a two-voter ensemble with ZooKeeper
// (sid 1): larger, so its election connection is the one that survives.
const goSid = 4

// twoVoters is a two-voter ensemble of one Apache ZooKeeper 3.8 server
// (sid 1) and a Go peer (sid goSid) that speaks only package quorum, up to
// the election: ZooKeeper runs, its first election connection (dropped, as
// it comes from the smaller sid) was read and ours to it is open.
type twoVoters struct {
	zk *zkServer
	// elec and quorumLn are the Go peer's election and quorum ports.
	elec, quorumLn net.Listener
	// theirs is the initial message of ZooKeeper's dropped connection and
	// theirsRaw its bytes.
	theirs    quorum.InitialMessage
	theirsRaw []byte
	// conn is our election connection to ZooKeeper; votes reads it.
	conn  net.Conn
	votes *bufio.Reader
}

// startTwoVoters runs ZooKeeper with both voters in its config (and the
// extra zoo.cfg lines given) and connects to its election port. Everything
// is closed when the test ends.
func startTwoVoters(t *testing.T, extraConfig string) *twoVoters {
	t.Helper()
	zkreal.Require(t)
	ports := freePorts(t, 3)
	v := &twoVoters{zk: &zkServer{sid: 1, clientPort: ports[0], quorumPort: ports[1], electionPort: ports[2], dir: t.TempDir()}}
	var err error
	v.elec, err = net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { v.elec.Close() })
	v.quorumLn, err = net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { v.quorumLn.Close() })
	launch(t, v.zk, fmt.Sprintf("%sserver.1=127.0.0.1:%d:%d\nserver.%d=127.0.0.1:%d:%d\n", extraConfig,
		v.zk.quorumPort, v.zk.electionPort, goSid, v.quorumPort(), v.electionPort()))

	// ZooKeeper (sid 1 < goSid) connects to our election port, says who
	// it is and drops the connection: only ours to it may survive.
	_ = v.elec.(*net.TCPListener).SetDeadline(time.Now().Add(60 * time.Second))
	in, err := v.elec.Accept()
	require.NoError(t, err, "ZooKeeper never connected to our election port")
	_ = in.SetReadDeadline(time.Now().Add(10 * time.Second))
	rec := &bytes.Buffer{}
	v.theirs, err = quorum.ReadInitialMessage(&recorder{r: in, w: rec})
	require.NoError(t, err)
	v.theirsRaw = rec.Bytes()
	require.False(t, quorum.Survives(v.theirs.Sid, goSid))
	in.Close()

	// Our connection to it is kept; its queued votes arrive on it.
	require.Eventually(t, func() bool {
		v.conn, err = net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", v.zk.electionPort))
		return err == nil
	}, 30*time.Second, 100*time.Millisecond)
	t.Cleanup(func() { v.conn.Close() })
	im := quorum.InitialMessage{Protocol: quorum.ProtocolV1, Sid: goSid, Addrs: []string{v.elec.Addr().String()}}
	b, err := im.Encode()
	require.NoError(t, err)
	_, err = v.conn.Write(b)
	require.NoError(t, err)
	v.votes = bufio.NewReader(v.conn)
	return v
}

func (v *twoVoters) quorumPort() int   { return v.quorumLn.Addr().(*net.TCPAddr).Port }
func (v *twoVoters) electionPort() int { return v.elec.Addr().(*net.TCPAddr).Port }

// readVote reads ZooKeeper's next notification.
func (v *twoVoters) readVote(t *testing.T) quorum.Notification {
	t.Helper()
	_ = v.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	frame, err := quorum.ReadFrame(v.votes)
	require.NoError(t, err)
	n, err := quorum.DecodeNotification(frame)
	require.NoError(t, err)
	return n
}

// vote sends our notification.
func (v *twoVoters) vote(t *testing.T, n quorum.Notification) {
	t.Helper()
	b, err := n.Encode()
	require.NoError(t, err)
	require.NoError(t, quorum.WriteFrame(v.conn, b))
}
