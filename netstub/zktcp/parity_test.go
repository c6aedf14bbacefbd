package zktcp

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// What zabkeeper's former one-port transport (netstub/tcp.go, removed)
// gave users, checked on this one (docs/ZAB.md, "Parity with the native
// transport").

// movingResolver answers one name with an address the test changes, as a
// headless service's DNS does when a pod comes back with a new IP.
type movingResolver struct {
	mu      sync.Mutex
	name    string
	ip      string
	lookups int
}

func (r *movingResolver) LookupHost(_ context.Context, host string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lookups++
	if host != r.name || r.ip == "" {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return []string{r.ip}, nil
}

func (r *movingResolver) move(ip string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ip = ip
}

// listenTransport starts a transport with both ports on host (port 0:
// any), peers set later.
func listenTransport(t *testing.T, id int64, electionAddr, quorumAddr string, mutate func(*Config)) *Transport {
	t.Helper()
	el, err := net.Listen("tcp", electionAddr)
	require.NoError(t, err)
	ql, err := net.Listen("tcp", quorumAddr)
	require.NoError(t, err)
	cfg := Config{
		ID: id, ElectionListener: el, QuorumListener: ql, Config: []byte("version=0"),
		TickTime: 100 * time.Millisecond, InitLimit: 20, SyncLimit: 10,
		SpoolDir: t.TempDir(), Logger: testLogger(t),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	tr, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// voteUntil sends from's vote to peer 1 until to delivers it.
func voteUntil(t *testing.T, from, to *Transport, round int64) {
	t.Helper()
	v := zab.Vote{Leader: from.id, PeerEpoch: 1, Round: round, State: zab.Looking}
	deadline := time.After(15 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		from.Send(zab.Message{Type: zab.MsgNotification, To: to.id, Vote: v})
		for {
			select {
			case m := <-to.Recv():
				if m.Type == zab.MsgNotification && m.From == from.id && m.Vote == v {
					return
				}
				continue
			case <-tick.C:
			case <-deadline:
				t.Fatalf("no vote from %d reached %s", from.id, to.ElectionAddr())
			}
			break
		}
	}
}

// TestZKTCPResolvesPeerNameOnEveryDial: a peer named by host name that
// restarts on another IP is reached there (netstub.DialPeer looks the name
// up on every dial). Server 2 keeps the election connection it dials to 1
// (the larger id's survives); 1 moves from 127.0.0.2 to 127.0.0.3 on the
// same ports.
func TestZKTCPResolvesPeerNameOnEveryDial(t *testing.T) {
	first := listenTransport(t, 1, "127.0.0.2:0", "127.0.0.2:0", nil)
	eport := first.ElectionAddr().(*net.TCPAddr).Port
	qport := first.QuorumAddr().(*net.TCPAddr).Port
	res := &movingResolver{name: "zk-0.zk-hs.test", ip: "127.0.0.2"}
	logs := &lockedBuffer{}
	two := listenTransport(t, 2, "127.0.0.1:0", "127.0.0.1:0", func(c *Config) {
		c.Resolver = res
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	two.SetPeers(map[int64]Peer{1: {
		ElectionAddr: net.JoinHostPort(res.name, strconv.Itoa(eport)),
		QuorumAddr:   net.JoinHostPort(res.name, strconv.Itoa(qport)),
	}})
	back := map[int64]Peer{2: {ElectionAddr: two.ElectionAddr().String(), QuorumAddr: two.QuorumAddr().String()}}
	first.SetPeers(back)
	voteUntil(t, two, first, 1)

	require.NoError(t, first.Close())
	second := listenTransport(t, 1, net.JoinHostPort("127.0.0.3", strconv.Itoa(eport)), net.JoinHostPort("127.0.0.3", strconv.Itoa(qport)), nil)
	second.SetPeers(back)
	res.move("127.0.0.3")
	voteUntil(t, two, second, 2)
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "remote=127.0.0.3:"+strconv.Itoa(eport)) },
		5*time.Second, 10*time.Millisecond, "the election link names the new IP")
	res.mu.Lock()
	require.GreaterOrEqual(t, res.lookups, 2)
	res.mu.Unlock()
}

// TestZKTCPRetriesUnresolvedPeerName: a peer whose name does not resolve
// yet is dialed again, with backoff, until it does.
func TestZKTCPRetriesUnresolvedPeerName(t *testing.T) {
	one := listenTransport(t, 1, "127.0.0.1:0", "127.0.0.1:0", nil)
	res := &movingResolver{name: "zk-0.zk-hs.test"}
	two := listenTransport(t, 2, "127.0.0.1:0", "127.0.0.1:0", func(c *Config) { c.Resolver = res })
	two.SetPeers(map[int64]Peer{1: {
		ElectionAddr: net.JoinHostPort(res.name, strconv.Itoa(one.ElectionAddr().(*net.TCPAddr).Port)),
		QuorumAddr:   net.JoinHostPort(res.name, strconv.Itoa(one.QuorumAddr().(*net.TCPAddr).Port)),
	}})
	one.SetPeers(map[int64]Peer{2: {ElectionAddr: two.ElectionAddr().String(), QuorumAddr: two.QuorumAddr().String()}})
	two.Send(zab.Message{Type: zab.MsgNotification, To: 1, Vote: zab.Vote{Leader: 2, Round: 1, State: zab.Looking}})
	require.Eventually(t, func() bool {
		res.mu.Lock()
		defer res.mu.Unlock()
		return res.lookups >= 3
	}, 10*time.Second, 10*time.Millisecond, "the name is looked up again while it does not resolve")
	res.move("127.0.0.1")
	m := recv(t, one, zab.MsgNotification)
	require.Equal(t, int64(2), m.From)
}

// TestZKTCPOwnIDClaimIsADuplicate: another process that connects saying
// it is this server (a copied myid), on either port, is logged once at
// Error and listed by DuplicateIDs, as netstub's transport does; its
// connections are closed.
func TestZKTCPOwnIDClaimIsADuplicate(t *testing.T) {
	logs := &lockedBuffer{}
	ts := clusterWith(t, 2, func(c *Config) {
		c.Caps = zab.AllCaps
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	one := ts[0]
	one.SetRole(zab.Leading, 1)
	require.Empty(t, one.DuplicateIDs())

	requireClosed(t, dialLearner(t, one, 1, 0x1b))
	require.Equal(t, []int64{1}, one.DuplicateIDs())
	require.Equal(t, 1, strings.Count(logs.String(), "two servers are running with id 1"))

	// The election port: an initial message with id 1, no nonce.
	c, err := net.Dial("tcp", one.ElectionAddr().String())
	require.NoError(t, err)
	defer c.Close()
	msg := quorum.InitialMessage{Protocol: quorum.ProtocolV1, Sid: 1, Addrs: []string{"127.0.0.9:3888"}}
	im, err := msg.Encode()
	require.NoError(t, err)
	_, err = c.Write(im)
	require.NoError(t, err)
	requireClosed(t, c)
	require.Equal(t, []int64{1}, one.DuplicateIDs())
	require.Equal(t, 1, strings.Count(logs.String(), "two servers are running with id 1"), "once per episode")
	require.Empty(t, ts[1].DuplicateIDs())
}

// TestZKTCPPacketLimitIsMaxPacket: a proposal over ZooKeeper's default
// read limit but within MaxPacket (a raised jute.maxbuffer, the same on
// every server) goes through, as netstub's MaxFrame lets it; one over
// MaxPacket closes the link on the leader's side before it is written.
func TestZKTCPPacketLimitIsMaxPacket(t *testing.T) {
	const limit = 8 << 20
	ts := clusterWith(t, 2, func(c *Config) { c.MaxPacket = limit })
	leader, learner := ts[0], ts[1]
	handshakeToAckEpoch(t, leader, learner, 0)
	leader.Send(zab.Message{Type: zab.MsgSnap, To: 2, Epoch: 4, Zxid: zab.MakeZxid(3, 7), Snapshot: zab.SnapshotBytes(snapBody())})
	recv(t, learner, zab.MsgSnap)

	big := make([]byte, quorum.DefaultMaxData+1<<20)
	leader.Send(zab.Message{Type: zab.MsgProposal, To: 2, Epoch: 4, Entry: zab.Entry{Zxid: zab.MakeZxid(4, 1), Data: big}})
	m := recv(t, learner, zab.MsgProposal)
	require.Len(t, m.Entry.Data, len(big))

	leader.Send(zab.Message{Type: zab.MsgProposal, To: 2, Epoch: 4, Entry: zab.Entry{Zxid: zab.MakeZxid(4, 2), Data: make([]byte, limit+1)}})
	require.Equal(t, int64(2), recv(t, leader, zab.MsgLinkDown).From, "the leader drops the link it cannot write")
}
