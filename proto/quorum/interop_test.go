package quorum_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/internal/zkreal"
	"github.com/zabkeeper/zabkeeper/proto"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// Interop with Debian's Apache ZooKeeper 3.8: a 3-server ensemble on
// loopback, and Go peers that speak to it through package quorum only (the
// test's own jute reads cover just the txn records INFORM carries, since
// zabkeeper's log format is not yet ZooKeeper's).

const (
	tickMs    = 1000
	initLimit = 20
	syncLimit = 5
)

type zkServer struct {
	sid                                  int64
	clientPort, quorumPort, electionPort int
	dir                                  string
	zk                                   *zkreal.Server
}

type ensemble struct {
	servers []*zkServer
}

func freePorts(t *testing.T, n int) []int {
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	out := make([]int, n)
	for i := range out {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		lns = append(lns, l)
		out[i] = l.Addr().(*net.TCPAddr).Port
	}
	return out
}

// startEnsemble runs three QuorumPeerMain JVMs and stops them when the test
// ends.
func startEnsemble(t *testing.T) *ensemble {
	zkreal.Require(t)
	ports := freePorts(t, 9)
	e := &ensemble{}
	servers := map[string]string{}
	for i := range 3 {
		s := &zkServer{sid: int64(i + 1), clientPort: ports[3*i], quorumPort: ports[3*i+1], electionPort: ports[3*i+2], dir: t.TempDir()}
		servers[fmt.Sprintf("server.%d", s.sid)] = fmt.Sprintf("127.0.0.1:%d:%d", s.quorumPort, s.electionPort)
		e.servers = append(e.servers, s)
	}
	for _, s := range e.servers {
		launch(t, s, servers)
	}
	return e
}

// launch runs s as an ensemble member through zkreal (QuorumPeerMain, zoo.cfg
// and log under s.dir, dataDir s.dir/data) with the test's timing and the
// zoo.cfg lines given (server.N lines and any others) until the test ends,
// logging the tail of its log if the test failed.
func launch(t *testing.T, s *zkServer, config map[string]string) {
	t.Helper()
	cfg := map[string]string{
		"initLimit":              strconv.Itoa(initLimit),
		"syncLimit":              strconv.Itoa(syncLimit),
		"4lw.commands.whitelist": "srvr,mntr,ruok",
	}
	for k, v := range config {
		cfg[k] = v
	}
	z, err := zkreal.Launch(s.dir, zkreal.Options{
		DataDir:    filepath.Join(s.dir, "data"),
		TickTimeMs: tickMs,
		ClientPort: s.clientPort,
		MyID:       int(s.sid),
		Config:     cfg,
		Props:      map[string]string{"zookeeper.log.dir": s.dir},
	})
	require.NoError(t, err)
	s.zk = z
	t.Cleanup(func() {
		z.Stop()
		if t.Failed() {
			t.Logf("server %d log tail:\n%s", s.sid, tail(z.Log(), 4000))
		}
	})
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// fourLetter sends a four-letter word to a client port.
func fourLetter(port int, cmd string) (string, error) {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, cmd); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	return string(b), err
}

var (
	modeRe = regexp.MustCompile(`(?m)^Mode: (\w+)`)
	zxidRe = regexp.MustCompile(`(?m)^Zxid: 0x([0-9a-f]+)`)
)

type srvrInfo struct {
	mode string
	zxid int64
}

func srvr(port int) (srvrInfo, error) {
	out, err := fourLetter(port, "srvr")
	if err != nil {
		return srvrInfo{}, err
	}
	m, z := modeRe.FindStringSubmatch(out), zxidRe.FindStringSubmatch(out)
	if m == nil || z == nil {
		return srvrInfo{}, fmt.Errorf("srvr: %q", out)
	}
	zx, err := strconv.ParseInt(z[1], 16, 64)
	return srvrInfo{mode: m[1], zxid: zx}, err
}

// waitMode polls srvr on port until the server says it is in mode: a
// ZooKeeper that just sent UPTODATE (or had it acked) may still answer
// srvr with "not currently serving requests" for a moment.
func waitMode(t *testing.T, port int, mode, why string) {
	t.Helper()
	var last string
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		info, err := srvr(port)
		if err == nil && info.mode == mode {
			return
		}
		last = fmt.Sprintf("%+v, %v", info, err)
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: srvr did not say %s within 30s (last: %s)", why, mode, last)
}

// waitServing polls srvr until one server leads and two follow; it returns
// the leader's sid.
func (e *ensemble) waitServing(t *testing.T) int64 {
	deadline := time.Now().Add(90 * time.Second)
	for {
		leader, followers := int64(0), 0
		for _, s := range e.servers {
			if info, err := srvr(s.clientPort); err == nil {
				switch info.mode {
				case "leader":
					leader = s.sid
				case "follower":
					followers++
				}
			}
		}
		if leader != 0 && followers == 2 {
			return leader
		}
		if time.Now().After(deadline) {
			t.Fatalf("ensemble did not elect a leader within 90s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (e *ensemble) server(sid int64) *zkServer { return e.servers[sid-1] }

// configString is the ensemble's QuorumVerifier string as a member would
// gossip it.
func (e *ensemble) configString() string {
	var b strings.Builder
	for _, s := range e.servers {
		fmt.Fprintf(&b, "server.%d=127.0.0.1:%d:%d:participant\n", s.sid, s.quorumPort, s.electionPort)
	}
	b.WriteString("version=0")
	return b.String()
}

type quietLog struct{}

func (quietLog) Printf(string, ...any) {}

func TestInteropZooKeeper38(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-server Apache ZooKeeper ensemble")
	}
	e := startEnsemble(t)
	leader := e.waitServing(t)
	t.Logf("ZooKeeper ensemble up, leader sid %d", leader)

	c, _, err := zk.Connect([]string{fmt.Sprintf("127.0.0.1:%d", e.server(leader%3+1).clientPort)}, 20*time.Second,
		zk.WithLogger(quietLog{}), zk.WithLogInfo(false))
	require.NoError(t, err)
	defer c.Close()
	// Some history before the observer joins, so its sync has content.
	_, err = c.Create("/before", []byte("b"), 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)

	t.Run("election", func(t *testing.T) { testElection(t, e, leader) })
	t.Run("observer", func(t *testing.T) { testObserver(t, e, leader, c) })
	t.Run("diff-and-trunc", func(t *testing.T) { testDiffAndTrunc(t, e, leader) })
	t.Run("follower", func(t *testing.T) { testFollower(t, e, leader, c) })
}

// testElection joins every server's election port twice: as sid 0, whose
// connection the server drops before connecting back (so ZooKeeper's own
// initial message is read), and as sid 100, whose connection it keeps. Each
// time a LOOKING notification gets the server's current vote, which must
// name the leader srvr reports, in the epoch of srvr's zxid.
func testElection(t *testing.T, e *ensemble, leader int64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	myAddr := ln.Addr().String()
	cfg := []byte(e.configString())

	var votes []quorum.Notification
	ask := func(t *testing.T, conn net.Conn, mySid, from int64) quorum.Notification {
		n := quorum.Notification{State: quorum.Looking, Leader: mySid, Zxid: 0, ElectionEpoch: 1, PeerEpoch: 0,
			Version: quorum.NotificationVersion, Config: cfg}
		b, err := n.Encode()
		require.NoError(t, err)
		require.NoError(t, quorum.WriteFrame(conn, b))
		_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
		frame, err := quorum.ReadFrame(bufio.NewReader(conn))
		require.NoError(t, err)
		capture(t, fmt.Sprintf("notification-from-%d-to-%d.bin", from, mySid), frame)
		got, err := quorum.DecodeNotification(frame)
		require.NoError(t, err)
		return got
	}

	for _, s := range e.servers {
		// sid 0 < s.sid: ZooKeeper drops our connection and connects back.
		conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.electionPort))
		require.NoError(t, err)
		im := quorum.InitialMessage{Protocol: quorum.ProtocolV1, Sid: 0, Addrs: []string{myAddr}}
		b, err := im.Encode()
		require.NoError(t, err)
		_, err = conn.Write(b)
		require.NoError(t, err)
		require.False(t, quorum.Survives(0, s.sid))
		_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		require.ErrorIs(t, err, io.EOF, "server %d keeps a connection from a smaller sid", s.sid)
		conn.Close()

		_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(15 * time.Second))
		back, err := ln.Accept()
		require.NoError(t, err, "server %d did not connect back", s.sid)
		_ = back.SetReadDeadline(time.Now().Add(15 * time.Second))
		rec := &bytes.Buffer{}
		theirs, err := quorum.ReadInitialMessage(&recorder{r: back, w: rec})
		capture(t, fmt.Sprintf("initial-message-from-%d.bin", s.sid), rec.Bytes())
		require.NoError(t, err)
		require.Equal(t, quorum.InitialMessage{Protocol: quorum.ProtocolV1, Sid: s.sid,
			Addrs: []string{fmt.Sprintf("127.0.0.1:%d", s.electionPort)}}, theirs, "ZooKeeper 3.8's initial message")
		require.True(t, quorum.Survives(theirs.Sid, 0))
		votes = append(votes, ask(t, back, 0, s.sid))
		back.Close()

		// sid 100 > s.sid: our connection is kept.
		conn, err = net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.electionPort))
		require.NoError(t, err)
		im.Sid = 100
		b, err = im.Encode()
		require.NoError(t, err)
		_, err = conn.Write(b)
		require.NoError(t, err)
		votes = append(votes, ask(t, conn, 100, s.sid))
		conn.Close()
	}

	for i, v := range votes {
		s := e.servers[i/2]
		info, err := srvr(s.clientPort)
		require.NoError(t, err)
		t.Logf("server %d (%s, srvr zxid 0x%x) answered: state %s leader %d zxid 0x%x electionEpoch %d peerEpoch %d version %d",
			s.sid, info.mode, info.zxid, v.State, v.Leader, v.Zxid, v.ElectionEpoch, v.PeerEpoch, v.Version)
		require.Equal(t, leader, v.Leader, "vote of server %d", s.sid)
		want := quorum.Following
		if s.sid == leader {
			want = quorum.Leading
		}
		require.Equal(t, want, v.State)
		require.Equal(t, quorum.EpochOf(info.zxid), v.PeerEpoch, "peer epoch = epoch of srvr's zxid")
		require.LessOrEqual(t, v.Zxid, info.zxid)
		require.Equal(t, quorum.NotificationVersion, v.Version)
		require.GreaterOrEqual(t, v.ElectionEpoch, int64(1), "the round that elected the leader")
		require.Equal(t, votes[0].Zxid, v.Zxid)
		for _, srv := range e.servers {
			require.Contains(t, string(v.Config), fmt.Sprintf("server.%d=127.0.0.1:%d:%d:participant", srv.sid, srv.quorumPort, srv.electionPort))
		}
		require.True(t, strings.HasSuffix(string(v.Config), "version=0"), "config %q", v.Config)
	}
}

// observerConn is a Go observer's link to the ZooKeeper leader.
type observerConn struct {
	t    *testing.T
	conn net.Conn
	// r reads through bufio and records every byte consumed (capture).
	r     io.Reader
	rec   *bytes.Buffer
	pings int
	// touches go into every PING reply: the sessions this observer's
	// (imaginary) clients keep alive.
	touches []quorum.Touch
}

func (o *observerConn) send(p quorum.Packet) {
	require.NoError(o.t, quorum.WritePacket(o.conn, &p))
}

// next reads the next packet, answering PINGs (with no session touches) on
// the way, as a learner must within syncLimit ticks.
func (o *observerConn) next() quorum.Packet {
	for {
		_ = o.conn.SetReadDeadline(time.Now().Add(time.Duration(initLimit*tickMs) * time.Millisecond))
		p, err := quorum.ReadPacket(o.r, quorum.Limits{})
		require.NoError(o.t, err)
		if p.Type != quorum.Ping {
			return p
		}
		touches, err := quorum.DecodeTouches(&p)
		require.NoError(o.t, err)
		require.Empty(o.t, touches, "the leader's PING carries no touches")
		o.pings++
		o.send(quorum.NewPingReply(&p, o.touches))
	}
}

// txn is the part of a ZooKeeper txn the test checks.
type txn struct {
	session int64
	cxid    int32
	zxid    int64
	typ     int32
	path    string
	data    []byte
	version int32
}

// decodeTxn reads TxnHeader and, for create and setData, the record
// (CreateTxn, SetDataTxn) with jute primitives.
func decodeTxn(b []byte) (txn, error) {
	d := proto.NewDecoder(b)
	x := txn{session: d.ReadLong(), cxid: d.ReadInt(), zxid: d.ReadLong()}
	d.ReadLong() // time
	x.typ = d.ReadInt()
	switch x.typ {
	case 1, 15: // CreateTxn {path; data; acl; ephemeral; parentCVersion}
		x.path, x.data = d.ReadString(), d.ReadBuffer()
		n := d.ReadVectorLen(12)
		for range n {
			d.ReadInt()
			d.ReadString()
			d.ReadString()
		}
		d.ReadBool()
		d.ReadInt()
	case 5: // SetDataTxn {path; data; version}
		x.path, x.data, x.version = d.ReadString(), d.ReadBuffer(), d.ReadInt()
	case -10: // CreateSessionTxn {timeOut}
		x.version = d.ReadInt()
	}
	return x, d.Err()
}

// testObserver connects to the leader's quorum port as an observer with an
// empty history, follows the handshake and sync to UPTODATE, then sees the
// INFORMs of a client's writes.
func testObserver(t *testing.T, e *ensemble, leader int64, c *zk.Conn) {
	o, newEpoch, start := join(t, e, leader, learnerOpts{observer: true, sid: 100})
	defer o.conn.Close()
	require.Equal(t, quorum.Snap, start.Type, "an empty observer gets a SNAP")
	sum, err := quorum.CopySnapshotBody(nil, o.r, quorum.SnapLimits{KeepPaths: true})
	require.NoError(t, err)
	t.Logf("SNAP body: %d bytes, %d sessions, %d ACLs, paths %q", sum.Bytes, len(sum.Sessions), sum.ACLs, sum.Paths)
	require.Contains(t, sum.Paths, "")
	require.Contains(t, sum.Paths, "/zookeeper")
	require.Contains(t, sum.Paths, "/before")
	require.Contains(t, sum.Sessions, quorum.Touch{Session: c.SessionID(), Timeout: 20000})
	synced, informs := o.syncToUpToDate(newEpoch)
	t.Logf("observer up to date in epoch %d (%d txns in sync, %d before UPTODATE)", newEpoch, len(synced), len(informs))
	// Writes through the client now reach the observer as INFORMs.
	_, err = c.Create("/interop", []byte("one"), 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
	st, err := c.Set("/interop", []byte("two"), 0)
	require.NoError(t, err)
	var create, set *txn
	deadline := time.Now().Add(30 * time.Second)
	for (create == nil || set == nil) && time.Now().Before(deadline) {
		p := o.next()
		if p.Type != quorum.Inform {
			t.Fatalf("expected INFORM, got %s", p)
		}
		x, err := decodeTxn(p.Data)
		require.NoError(t, err)
		require.Equal(t, p.Zxid, x.zxid, "INFORM zxid is the txn's")
		if x.path == "/interop" && x.typ == 1 {
			create = &x
		}
		if x.path == "/interop" && x.typ == 5 {
			set = &x
		}
	}
	require.NotNil(t, create, "no INFORM for the create")
	require.NotNil(t, set, "no INFORM for the setData")
	require.Equal(t, c.SessionID(), create.session)
	require.Equal(t, []byte("one"), create.data)
	require.Equal(t, st.Czxid, create.zxid)
	require.Equal(t, c.SessionID(), set.session)
	require.Equal(t, []byte("two"), set.data)
	require.Equal(t, st.Mzxid, set.zxid)
	require.Equal(t, int32(1), set.version, "SetDataTxn carries the new version")
	require.Greater(t, set.cxid, create.cxid)
	t.Logf("INFORM create zxid 0x%x, setData zxid 0x%x; %d PINGs answered", create.zxid, set.zxid, o.pings)

	testForwarding(t, o, c)
	capture(t, "observer-snap-stream.bin", o.rec.Bytes())
}

type learnerOpts struct {
	observer      bool
	sid           int64
	acceptedEpoch int64
	// currentEpoch and lastZxid go into ACKEPOCH.
	currentEpoch int32
	lastZxid     int64
}

// join connects to the leader's quorum port as a learner and runs
// discovery: LEARNERINFO, LEADERINFO, ACKEPOCH. It returns the link, the
// new epoch and the packet that starts the sync (DIFF, TRUNC or SNAP).
func join(t *testing.T, e *ensemble, leader int64, opts learnerOpts) (*observerConn, int64, quorum.Packet) {
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", e.server(leader).quorumPort))
	require.NoError(t, err)
	rec := &bytes.Buffer{}
	o := &observerConn{t: t, conn: conn, r: &recorder{r: bufio.NewReader(conn), w: rec}, rec: rec}
	o.send(quorum.NewLearnerInfo(opts.observer, opts.acceptedEpoch,
		quorum.LearnerInfo{Sid: opts.sid, ProtocolVersion: quorum.LearnerProtocol, ConfigVersion: 0}))
	li := o.next()
	newEpoch, version, err := quorum.DecodeLeaderInfo(&li)
	require.NoError(t, err)
	require.Equal(t, quorum.LearnerProtocol, version)
	info, err := srvr(e.server(leader).clientPort)
	require.NoError(t, err)
	require.Equal(t, quorum.EpochOf(info.zxid), newEpoch, "LEADERINFO's epoch is the leader's")
	require.Greater(t, newEpoch, int64(0))
	ce := opts.currentEpoch
	if newEpoch == opts.acceptedEpoch {
		ce = -1 // already accepted: not an ack (Learner.registerWithLeader)
	}
	o.send(quorum.NewAckEpoch(opts.lastZxid, ce))
	start := o.next()
	t.Logf("sync: %s", start)
	return o, newEpoch, start
}

// syncToUpToDate reads the sync stream after its first packet (and the
// SNAP body, if any) through NEWLEADER and UPTODATE, acking both, and
// returns the txns proposed during the sync and between NEWLEADER and
// UPTODATE.
func (o *observerConn) syncToUpToDate(newEpoch int64) (synced, late []txn) {
	t := o.t
	for {
		p := o.next()
		if p.Type == quorum.NewLeader {
			require.Equal(t, quorum.MakeZxid(newEpoch, 0), p.Zxid)
			require.Contains(t, string(p.Data), "version=0", "NEWLEADER carries the config")
			o.send(quorum.NewAck(p.Zxid))
			break
		}
		switch p.Type {
		case quorum.Proposal, quorum.Inform:
			x, err := decodeTxn(p.Data)
			require.NoError(t, err)
			synced = append(synced, x)
		case quorum.Commit:
		default:
			t.Fatalf("unexpected %s during sync", p)
		}
	}
	for {
		p := o.next()
		if p.Type == quorum.UpToDate {
			require.Equal(t, int64(-1), p.Zxid)
			o.send(quorum.NewAck(quorum.MakeZxid(newEpoch, 0)))
			return synced, late
		}
		require.Contains(t, []quorum.PacketType{quorum.Inform, quorum.Proposal, quorum.Commit}, p.Type, "before UPTODATE: %s", p)
		if p.Type != quorum.Commit {
			x, err := decodeTxn(p.Data)
			require.NoError(t, err)
			late = append(late, x)
		}
	}
}

// testDiffAndTrunc: a learner that already holds the leader's history gets
// an empty DIFF; one that claims txns the leader never had in the same
// epoch gets a TRUNC to the leader's last committed zxid.
func testDiffAndTrunc(t *testing.T, e *ensemble, leader int64) {
	// The leader applies a txn a moment after it commits it: wait until
	// its zxid holds still, so DIFF and TRUNC are judged against it.
	info, err := srvr(e.server(leader).clientPort)
	require.NoError(t, err)
	for still, deadline := 0, time.Now().Add(10*time.Second); still < 3 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		again, err := srvr(e.server(leader).clientPort)
		require.NoError(t, err)
		if again.zxid == info.zxid {
			still++
		} else {
			info, still = again, 0
		}
	}
	epoch := quorum.EpochOf(info.zxid)

	o, newEpoch, start := join(t, e, leader, learnerOpts{observer: true, sid: 102, acceptedEpoch: epoch,
		currentEpoch: int32(epoch), lastZxid: info.zxid})
	defer o.conn.Close()
	require.Equal(t, epoch, newEpoch)
	require.Equal(t, quorum.Diff, start.Type)
	require.Equal(t, info.zxid, start.Zxid, "DIFF to the leader's zxid")
	synced, _ := o.syncToUpToDate(newEpoch)
	require.Empty(t, synced)

	o2, newEpoch, start := join(t, e, leader, learnerOpts{observer: true, sid: 103, acceptedEpoch: epoch,
		currentEpoch: int32(epoch), lastZxid: info.zxid + 5})
	defer o2.conn.Close()
	require.Equal(t, quorum.Trunc, start.Type)
	require.Equal(t, info.zxid, start.Zxid, "TRUNC to the leader's last committed zxid")
	o2.syncToUpToDate(newEpoch)
	capture(t, "observer-diff-stream.bin", o.rec.Bytes())
	capture(t, "observer-trunc-stream.bin", o2.rec.Bytes())
}

// testFollower joins as a follower (a sid outside the config, so it does
// not vote): PROPOSAL, our ACK, then COMMIT for a client's write.
func testFollower(t *testing.T, e *ensemble, leader int64, c *zk.Conn) {
	o, newEpoch, start := join(t, e, leader, learnerOpts{sid: 101})
	defer o.conn.Close()
	require.Equal(t, quorum.Snap, start.Type)
	_, err := quorum.CopySnapshotBody(nil, o.r, quorum.SnapLimits{})
	require.NoError(t, err)
	o.syncToUpToDate(newEpoch)

	_, err = c.Create("/follower", []byte("f"), 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
	var proposed txn
	for {
		p := o.next()
		require.Equal(t, quorum.Proposal, p.Type, "a follower gets PROPOSALs: %s", p)
		x, err := decodeTxn(p.Data)
		require.NoError(t, err)
		require.Equal(t, p.Zxid, x.zxid)
		o.send(quorum.NewAck(p.Zxid))
		cm := o.next()
		require.Equal(t, quorum.Commit, cm.Type, "COMMIT follows: %s", cm)
		require.Equal(t, p.Zxid, cm.Zxid, "one COMMIT per proposal, in order")
		require.Nil(t, cm.Data)
		if x.path == "/follower" {
			proposed = x
			break
		}
	}
	require.Equal(t, int32(1), proposed.typ)
	require.Equal(t, []byte("f"), proposed.data)
	require.Equal(t, c.SessionID(), proposed.session)
	t.Logf("follower: PROPOSAL, ACK, COMMIT of zxid 0x%x", proposed.zxid)
	capture(t, "follower-snap-stream.bin", o.rec.Bytes())
}

// informOf reads INFORMs (answering PINGs) until one for session arrives
// and returns its txn; an INFORM closing session fails unless wantClose.
func (o *observerConn) informOf(session int64) txn {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		p := o.next()
		require.Equal(o.t, quorum.Inform, p.Type, "expected INFORM, got %s", p)
		x, err := decodeTxn(p.Data)
		require.NoError(o.t, err)
		if x.session == session {
			return x
		}
	}
	o.t.Fatalf("no INFORM for session 0x%x within 30s", session)
	return txn{}
}

// testForwarding acts as a learner whose client opened a session: it
// forwards createSession, a create and a sync in REQUEST packets, keeps the
// session alive past its timeout only through PING touches, revalidates it
// (and an unknown one), and closes it.
func testForwarding(t *testing.T, o *observerConn, c *zk.Conn) {
	const timeout = 4000
	session := int64(100)<<56 | 1
	auth := []proto.Id{{Scheme: "ip", ID: "127.0.0.1"}}
	body := proto.NewEncoder(nil)
	body.WriteInt(timeout)
	o.send(quorum.NewRequest(quorum.Forwarded{Session: session, Op: proto.OpCreateSession, Body: body.Bytes(), Auth: auth}))
	cs := o.informOf(session)
	require.Equal(t, int32(proto.OpCreateSession), cs.typ)
	require.Equal(t, int32(timeout), cs.version, "CreateSessionTxn timeout")

	// Twice the session timeout, kept alive by nothing but our touches
	// (and the link by our PING replies: syncLimit is 5 ticks, less than the hold).
	o.touches = []quorum.Touch{{Session: session, Timeout: timeout}}
	pings := o.pings
	hold := time.Now().Add(2 * timeout * time.Millisecond)
	for time.Now().Before(hold) {
		_ = o.conn.SetReadDeadline(time.Now().Add(time.Until(hold) + 50*time.Millisecond))
		p, err := quorum.ReadPacket(o.r, quorum.Limits{})
		if ne, ok := errors.Unwrap(errors.Unwrap(err)).(net.Error); ok && ne.Timeout() {
			break
		}
		require.NoError(t, err)
		switch p.Type {
		case quorum.Ping:
			o.pings++
			o.send(quorum.NewPingReply(&p, o.touches))
		case quorum.Inform:
			x, err := decodeTxn(p.Data)
			require.NoError(t, err)
			require.False(t, x.session == session && x.typ == int32(proto.OpCloseSession), "the leader expired a touched session")
		default:
			t.Fatalf("unexpected %s", p)
		}
	}
	require.GreaterOrEqual(t, o.pings-pings, 4, "PINGs every tickTime/2 while holding")

	o.send(quorum.NewRevalidate(session, timeout))
	o.send(quorum.NewRevalidate(int64(100)<<56|99, timeout))
	for i, wantValid := range []bool{true, false} {
		p := o.next()
		require.Equal(t, quorum.Revalidate, p.Type, "reply %d: %s", i, p)
		s, valid, err := quorum.DecodeRevalidateReply(&p)
		require.NoError(t, err)
		require.Equal(t, wantValid, valid, "session 0x%x", s)
	}

	cr := proto.CreateRequest{Path: "/forwarded", Data: []byte("via REQUEST"), ACL: proto.OpenACLUnsafe}
	body = proto.NewEncoder(nil)
	cr.Encode(body)
	o.send(quorum.NewRequest(quorum.Forwarded{Session: session, Cxid: 1, Op: proto.OpCreate, Body: body.Bytes(), Auth: auth}))
	created := o.informOf(session)
	require.Equal(t, int32(proto.OpCreate), created.typ, "forwarded create became txn type %d", created.typ)
	require.Equal(t, int32(1), created.cxid)
	require.Equal(t, "/forwarded", created.path)
	// The client's server applies the txn on its own COMMIT: sync first.
	_, err := c.Sync("/forwarded")
	require.NoError(t, err)
	data, st, err := c.Get("/forwarded")
	require.NoError(t, err)
	require.Equal(t, []byte("via REQUEST"), data)
	require.Equal(t, created.zxid, st.Czxid)
	require.Zero(t, st.EphemeralOwner)

	body = proto.NewEncoder(nil)
	body.WriteString("/forwarded")
	o.send(quorum.NewRequest(quorum.Forwarded{Session: session, Cxid: 2, Op: proto.OpSync, Body: body.Bytes(), Auth: auth}))
	p := o.next()
	require.Equal(t, quorum.Sync, p.Type, "answer to a forwarded sync: %s", p)
	require.Nil(t, p.Data)

	o.send(quorum.NewRequest(quorum.Forwarded{Session: session, Cxid: 3, Op: proto.OpCloseSession, Body: []byte{}, Auth: auth}))
	closed := o.informOf(session)
	require.Equal(t, int32(proto.OpCloseSession), closed.typ)
	require.Equal(t, int32(3), closed.cxid)
	t.Logf("forwarded: createSession 0x%x, create 0x%x, closeSession 0x%x; %d PINGs answered", cs.zxid, created.zxid, closed.zxid, o.pings)
}

// TestRefusesOversizedPeerPacket: a peer that claims a 1 GiB packet over
// real TCP gets an error naming the limit, and the reader allocates nothing
// near the claimed size.
func TestRefusesOversizedPeerPacket(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
		if err != nil {
			return
		}
		defer c.Close()
		e := proto.NewEncoder(nil)
		e.WriteInt(int32(quorum.Proposal))
		e.WriteLong(0x100000001)
		e.WriteInt(1 << 30) // claimed data length
		_, _ = c.Write(append(e.Bytes(), make([]byte, 4096)...))
		<-ctx.Done()
	}()
	conn, err := ln.Accept()
	require.NoError(t, err)
	defer conn.Close()
	var before, after runtimeMem
	before.read()
	_, err = quorum.ReadPacket(bufio.NewReader(conn), quorum.Limits{})
	after.read()
	require.ErrorIs(t, err, quorum.ErrTooLarge)
	require.Contains(t, err.Error(), "data length 1073741824 exceeds limit 2097150")
	require.Less(t, after.total-before.total, uint64(1<<20), "bytes allocated while refusing")

	// A packet within the limit whose data never arrives: an error, not a hang or a 2 MiB allocation.
	e := proto.NewEncoder(nil)
	e.WriteInt(int32(quorum.Proposal))
	e.WriteLong(1)
	e.WriteInt(2<<20 - 1000)
	before.read()
	_, err = quorum.ReadPacket(io.MultiReader(bytes.NewReader(e.Bytes()), bytes.NewReader(make([]byte, 100))), quorum.Limits{})
	after.read()
	require.True(t, errors.Is(err, io.ErrUnexpectedEOF), "%v", err)
	require.Less(t, after.total-before.total, uint64(1<<20))
}

// recorder passes reads through and records the bytes they return, so a
// capture holds exactly what the codec consumed.
type recorder struct {
	r io.Reader
	w *bytes.Buffer
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.w.Write(p[:n])
	return n, err
}

// capture writes b to $ZKQUORUM_CAPTURE/name when that is set: the bytes
// ZooKeeper sent, for testdata/zk38 (TestZooKeeper38Captured).
func capture(t *testing.T, name string, b []byte) {
	dir := os.Getenv("ZKQUORUM_CAPTURE")
	if dir == "" {
		return
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
}
