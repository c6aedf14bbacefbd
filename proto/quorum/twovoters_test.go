package quorum_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/internal/zkreal"
	"github.com/zabkeeper/zabkeeper/proto"
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
// extra zoo.cfg lines given, key to value) and connects to its election port. Everything
// is closed when the test ends.
func startTwoVoters(t *testing.T, extraConfig map[string]string) *twoVoters {
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
	config := map[string]string{
		"server.1":                      fmt.Sprintf("127.0.0.1:%d:%d", v.zk.quorumPort, v.zk.electionPort),
		fmt.Sprintf("server.%d", goSid): fmt.Sprintf("127.0.0.1:%d:%d", v.quorumPort(), v.electionPort()),
	}
	for k, val := range extraConfig {
		config[k] = val
	}
	launch(t, v.zk, config)

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

// goLeader is the Go peer leading a ZooKeeper follower over the quorum
// port: it answers forwarded requests with proposals, commits what the
// follower ACKs and PINGs every tickTime/2.
type goLeader struct {
	t      *testing.T
	fc     net.Conn
	fr     *bufio.Reader
	wmu    sync.Mutex
	epoch  int64
	config []byte
	// zxid is the last zxid proposed; pending the proposals not ACKed
	// yet, in order.
	zxid    int64
	pending []int64
	// acked are the proposals the follower ACKed (and we committed).
	acked map[int64]bool
	// proposed is the zxid of the last proposal of each forwarded op.
	proposed map[proto.OpCode]int64
	// touches are the session timeouts the follower's PINGs carried.
	touches map[int64]int32
	// upToDateAcked is set by the ACK that follows UPTODATE.
	upToDateAcked bool
	pkts          chan quorum.Packet
	readErr       chan error
	stop          chan struct{}
}

// winElection sends ZooKeeper our vote (for goSid, with our zxid) until it
// votes for us too, and returns the config string its votes carry.
func (v *twoVoters) winElection(t *testing.T, zxid int64) []byte {
	vote := v.readVote(t)
	require.Equal(t, quorum.Looking, vote.State)
	v.vote(t, quorum.Notification{State: quorum.Looking, Leader: goSid, Zxid: zxid, ElectionEpoch: vote.ElectionEpoch,
		PeerEpoch: quorum.EpochOf(zxid), Version: quorum.NotificationVersion, Config: vote.Config})
	for vote.Leader != goSid {
		vote = v.readVote(t)
	}
	t.Logf("ZooKeeper votes for the Go peer: state %s zxid 0x%x round %d peerEpoch %d", vote.State, vote.Zxid, vote.ElectionEpoch, vote.PeerEpoch)
	return vote.Config
}

// acceptFollower takes ZooKeeper's connection to our quorum port and runs
// discovery as the leader of epoch: FOLLOWERINFO, LEADERINFO, ACKEPOCH. It
// returns the follower's last zxid and current epoch from ACKEPOCH.
func (v *twoVoters) acceptFollower(t *testing.T, epoch int64, config []byte) (*goLeader, int64, int32) {
	_ = v.quorumLn.(*net.TCPListener).SetDeadline(time.Now().Add(30 * time.Second))
	fc, err := v.quorumLn.Accept()
	require.NoError(t, err, "ZooKeeper did not follow us")
	t.Cleanup(func() { fc.Close() })
	l := &goLeader{t: t, fc: fc, fr: bufio.NewReader(fc), epoch: epoch, config: config, acked: map[int64]bool{},
		proposed: map[proto.OpCode]int64{}, touches: map[int64]int32{}}
	_ = fc.SetReadDeadline(time.Now().Add(30 * time.Second))
	fi := l.read()
	info, err := quorum.DecodeLearnerInfo(&fi)
	require.NoError(t, err)
	require.Equal(t, quorum.FollowerInfo, fi.Type)
	require.Equal(t, quorum.LearnerInfo{Sid: 1, ProtocolVersion: quorum.LearnerProtocol, ConfigVersion: 0}, info)
	require.Less(t, quorum.EpochOf(fi.Zxid), epoch)
	l.send(quorum.NewLeaderInfo(epoch))
	ae := l.read()
	lastZxid, currentEpoch, err := quorum.DecodeAckEpoch(&ae)
	require.NoError(t, err)
	return l, lastZxid, currentEpoch
}

func (l *goLeader) read() quorum.Packet {
	p, err := quorum.ReadPacket(l.fr, quorum.Limits{})
	require.NoError(l.t, err)
	return p
}

// send writes a packet.
func (l *goLeader) send(p quorum.Packet) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	require.NoError(l.t, quorum.WritePacket(l.fc, &p))
}

// finishSync sends NEWLEADER, waits for its ACK and sends UPTODATE; from
// then on a goroutine reads the follower's packets for serve.
func (l *goLeader) finishSync() {
	t := l.t
	l.send(quorum.NewNewLeader(l.epoch, l.config))
	ack := l.read()
	require.Equal(t, quorum.Ack, ack.Type, "%s", ack)
	require.Equal(t, quorum.MakeZxid(l.epoch, 0), ack.Zxid)
	l.send(quorum.NewUpToDate())
	l.zxid = quorum.MakeZxid(l.epoch, 0)
	l.pkts, l.readErr, l.stop = make(chan quorum.Packet, 16), make(chan error, 1), make(chan struct{})
	t.Cleanup(func() { close(l.stop) })
	go func() {
		for {
			_ = l.fc.SetReadDeadline(time.Now().Add(time.Duration(syncLimit*tickMs) * time.Millisecond))
			p, err := quorum.ReadPacket(l.fr, quorum.Limits{})
			if err != nil {
				l.readErr <- err
				return
			}
			select {
			case l.pkts <- p:
			case <-l.stop:
				return
			}
		}
	}()
}

// serve leads until done returns true (checked after every packet and
// PING), at most 60 s: it proposes what the follower forwards, checks
// that ACKs come one per proposal in order, commits each, and records the
// follower's session touches.
func (l *goLeader) serve(what string, done func() bool) { l.serveInjecting(what, nil, done) }

// proposeTxn proposes a txn of ours, marshalled as ZooKeeper's, and leads
// until the follower ACKs it.
func (l *goLeader) proposeTxn(txn *tree.Txn) {
	l.sendTxn(txn)
	l.serve(fmt.Sprintf("ACK of 0x%x", txn.Zxid), func() bool { return l.acked[txn.Zxid] })
}

// sendTxn sends the PROPOSAL of a txn of ours, marshalled as ZooKeeper's,
// and expects its ACK next in line.
func (l *goLeader) sendTxn(txn *tree.Txn) {
	p, err := quorum.NewProposal(quorum.Proposal, txn.Zxid, txn.Marshal())
	require.NoError(l.t, err)
	l.pending = append(l.pending, txn.Zxid)
	l.send(p)
}

// propose turns a forwarded request into the PROPOSAL of a ZooKeeper txn:
// TxnHeader, then the record (no TxnDigest: readers take EOF as none).
func propose(t *testing.T, zxid int64, f quorum.Forwarded) quorum.Packet {
	e := proto.NewEncoder(nil)
	e.WriteLong(f.Session)
	e.WriteInt(f.Cxid)
	e.WriteLong(zxid)
	e.WriteLong(time.Now().UnixMilli())
	e.WriteInt(int32(f.Op))
	d := proto.NewDecoder(f.Body)
	switch f.Op {
	case proto.OpCreateSession: // CreateSessionTxn {int timeOut}
		e.WriteInt(d.ReadInt())
	case proto.OpCreate: // CreateTxn {path; data; acl; ephemeral; parentCVersion}
		var r proto.CreateRequest
		require.NoError(t, r.Decode(d))
		e.WriteString(r.Path)
		e.WriteBuffer(r.Data)
		proto.WriteACLs(e, r.ACL)
		e.WriteBool(false)
		e.WriteInt(-1) // the follower computes parent cversion + 1
	default:
		t.Fatalf("the test leader does not propose op %d", f.Op)
	}
	require.NoError(t, d.Err())
	p, err := quorum.NewProposal(quorum.Proposal, zxid, e.Bytes())
	require.NoError(t, err)
	return p
}
