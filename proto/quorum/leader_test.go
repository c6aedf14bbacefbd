package quorum_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/internal/zkreal"
	"github.com/zabkeeper/zabkeeper/proto"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// TestInteropGoLeader: the reverse of TestInteropGoVoter. In a two-voter
// ensemble of ZooKeeper 3.8 (sid 1) and a Go peer (sid 4), the Go peer's
// vote wins (same epoch and zxid, higher sid), ZooKeeper follows it, and a
// go-zk client connected to ZooKeeper has its session and its create
// forwarded to the Go leader in REQUESTs, proposed back as ZooKeeper txns,
// ACKed, COMMITted and answered. The txn records are written here with jute
// primitives (zabkeeper's txn format is not yet ZooKeeper's).
func TestInteropGoLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Apache ZooKeeper")
	}
	zkreal.Require(t)
	ports := freePorts(t, 3)
	zkS := &zkServer{sid: 1, clientPort: ports[0], quorumPort: ports[1], electionPort: ports[2], dir: t.TempDir()}
	elec, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer elec.Close()
	quorumLn, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer quorumLn.Close()
	const mySid = 4
	myQuorum, myElection := quorumLn.Addr().(*net.TCPAddr).Port, elec.Addr().(*net.TCPAddr).Port
	// Multi-address on: ZooKeeper sends the V2 initial message (and still
	// takes our V1).
	launch(t, zkS, fmt.Sprintf("multiAddress.enabled=true\nserver.1=127.0.0.1:%d:%d\nserver.%d=127.0.0.1:%d:%d\n",
		zkS.quorumPort, zkS.electionPort, mySid, myQuorum, myElection))

	// Election: ZooKeeper's dropped connection, then ours, its vote, ours.
	_ = elec.(*net.TCPListener).SetDeadline(time.Now().Add(60 * time.Second))
	in, err := elec.Accept()
	require.NoError(t, err, "ZooKeeper never connected to our election port")
	_ = in.SetReadDeadline(time.Now().Add(10 * time.Second))
	rec := &bytes.Buffer{}
	theirs, err := quorum.ReadInitialMessage(&recorder{r: in, w: rec})
	require.NoError(t, err)
	require.Equal(t, quorum.InitialMessage{Protocol: quorum.ProtocolV2, Sid: 1,
		Addrs: []string{fmt.Sprintf("127.0.0.1:%d", zkS.electionPort)}}, theirs)
	capture(t, "initial-message-v2-from-1.bin", rec.Bytes())
	in.Close()
	var conn net.Conn
	require.Eventually(t, func() bool {
		conn, err = net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", zkS.electionPort))
		return err == nil
	}, 30*time.Second, 100*time.Millisecond)
	defer conn.Close()
	im := quorum.InitialMessage{Protocol: quorum.ProtocolV1, Sid: mySid, Addrs: []string{elec.Addr().String()}}
	b, err := im.Encode()
	require.NoError(t, err)
	_, err = conn.Write(b)
	require.NoError(t, err)
	er := bufio.NewReader(conn)
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	frame, err := quorum.ReadFrame(er)
	require.NoError(t, err)
	vote, err := quorum.DecodeNotification(frame)
	require.NoError(t, err)
	require.Equal(t, quorum.Looking, vote.State)
	config := vote.Config
	mine := quorum.Notification{State: quorum.Looking, Leader: mySid, Zxid: 0, ElectionEpoch: vote.ElectionEpoch,
		PeerEpoch: 0, Version: quorum.NotificationVersion, Config: config}
	b, err = mine.Encode()
	require.NoError(t, err)
	require.NoError(t, quorum.WriteFrame(conn, b))
	// It adopts our vote and tells us so.
	for vote.Leader != mySid {
		frame, err := quorum.ReadFrame(er)
		require.NoError(t, err)
		vote, err = quorum.DecodeNotification(frame)
		require.NoError(t, err)
	}
	t.Logf("ZooKeeper votes for the Go peer: state %s leader %d zxid 0x%x round %d peerEpoch %d", vote.State, vote.Leader, vote.Zxid, vote.ElectionEpoch, vote.PeerEpoch)

	// Discovery and sync, as the leader.
	_ = quorumLn.(*net.TCPListener).SetDeadline(time.Now().Add(30 * time.Second))
	fc, err := quorumLn.Accept()
	require.NoError(t, err, "ZooKeeper did not follow us")
	defer fc.Close()
	fr := bufio.NewReader(fc)
	_ = fc.SetReadDeadline(time.Now().Add(30 * time.Second))
	read := func() quorum.Packet {
		p, err := quorum.ReadPacket(fr, quorum.Limits{})
		require.NoError(t, err)
		return p
	}
	var wmu sync.Mutex
	send := func(p quorum.Packet) error {
		wmu.Lock()
		defer wmu.Unlock()
		return quorum.WritePacket(fc, &p)
	}
	fi := read()
	info, err := quorum.DecodeLearnerInfo(&fi)
	require.NoError(t, err)
	require.Equal(t, quorum.FollowerInfo, fi.Type)
	require.Equal(t, quorum.LearnerInfo{Sid: 1, ProtocolVersion: quorum.LearnerProtocol, ConfigVersion: 0}, info)
	const epoch = 1
	require.Less(t, quorum.EpochOf(fi.Zxid), int64(epoch))
	require.NoError(t, send(quorum.NewLeaderInfo(epoch)))
	ae := read()
	lastZxid, currentEpoch, err := quorum.DecodeAckEpoch(&ae)
	require.NoError(t, err)
	require.Equal(t, int64(0), lastZxid)
	require.Equal(t, int32(0), currentEpoch)
	diff, err := quorum.NewSyncStart(quorum.Diff, 0)
	require.NoError(t, err)
	require.NoError(t, send(diff))
	require.NoError(t, send(quorum.NewNewLeader(epoch, config)))
	ack := read()
	require.Equal(t, quorum.Ack, ack.Type, "%s", ack)
	require.Equal(t, quorum.MakeZxid(epoch, 0), ack.Zxid)
	require.NoError(t, send(quorum.NewUpToDate()))

	// Broadcast: a reader goroutine, PINGs every tickTime/2 from here.
	pkts := make(chan quorum.Packet, 16)
	readErr := make(chan error, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			_ = fc.SetReadDeadline(time.Now().Add(time.Duration(syncLimit*tickMs) * time.Millisecond))
			p, err := quorum.ReadPacket(fr, quorum.Limits{})
			if err != nil {
				readErr <- err
				return
			}
			select {
			case pkts <- p:
			case <-stop:
				return
			}
		}
	}()
	c, _, err := zk.Connect([]string{fmt.Sprintf("127.0.0.1:%d", zkS.clientPort)}, 20*time.Second,
		zk.WithLogger(quietLog{}), zk.WithLogInfo(false))
	require.NoError(t, err)
	defer c.Close()
	created := make(chan error, 1)
	go func() {
		// Connect returns at once; Create waits for the session.
		_, err := c.Create("/fromgo", []byte("led by Go"), 0, zk.WorldACL(zk.PermAll))
		created <- err
	}()

	zxid := quorum.MakeZxid(epoch, 0)
	var touched, uptodateAck bool
	var createZxid int64
	ticker := time.NewTicker(tickMs / 2 * time.Millisecond)
	defer ticker.Stop()
	deadline := time.After(60 * time.Second)
	for createZxid == 0 || !touched {
		select {
		case <-ticker.C:
			require.NoError(t, send(quorum.NewPing(zxid)))
		case err := <-readErr:
			t.Fatalf("follower link: %v", err)
		case <-deadline:
			t.Fatalf("no create within 60s (touched %v, create zxid 0x%x)", touched, createZxid)
		case p := <-pkts:
			switch p.Type {
			case quorum.Ack:
				if p.Zxid == quorum.MakeZxid(epoch, 0) {
					uptodateAck = true // the ACK after UPTODATE
					continue
				}
				require.Equal(t, zxid, p.Zxid, "ACK of our last proposal")
				require.NoError(t, send(quorum.NewCommit(p.Zxid)))
			case quorum.Ping:
				touches, err := quorum.DecodeTouches(&p)
				require.NoError(t, err)
				for _, tc := range touches {
					if tc.Session == c.SessionID() && c.SessionID() != 0 {
						require.Equal(t, int32(20000), tc.Timeout)
						touched = true
					}
				}
			case quorum.Request:
				f, err := quorum.DecodeRequest(&p)
				require.NoError(t, err)
				zxid++
				require.NoError(t, send(propose(t, zxid, f)))
				if f.Op == proto.OpCreate {
					createZxid = zxid
				}
			default:
				t.Fatalf("unexpected %s from the follower", p)
			}
		}
	}
	require.True(t, uptodateAck, "the follower ACKs UPTODATE")
	select {
	case err := <-created:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("the client's create did not return")
	}
	data, st, err := c.Get("/fromgo")
	require.NoError(t, err)
	require.Equal(t, []byte("led by Go"), data)
	require.Equal(t, createZxid, st.Czxid)
	t.Logf("ZooKeeper followed the Go leader: session 0x%x touched in PINGs, /fromgo created at 0x%x", c.SessionID(), st.Czxid)
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
