package server

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/netstub/zklink"
	"github.com/zabkeeper/zabkeeper/netstub/zktcp"
	"github.com/zabkeeper/zabkeeper/proto"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// ensemble returns the voters and observers of the configured ensemble, or
// nil, nil for a standalone server.
func (c Config) ensemble() (voters, observers []int64) {
	for id, spec := range c.Servers {
		if spec.Observer {
			observers = append(observers, int64(id))
		} else {
			voters = append(voters, int64(id))
		}
	}
	slices.Sort(voters)
	slices.Sort(observers)
	return voters, observers
}

// spoolDirName is the directory of dataDir where snapshots received from a
// leader wait until they are installed.
const spoolDirName = "incoming"

// openPeers starts the peer transport of an ensemble member: it listens on
// this server's quorum port, on its own server.N address or, with
// quorumListenOnAllIPs, on every interface, and ZooKeeper's election port
// beside it.
func (s *Server) openPeers(ctx context.Context, retry bool) error {
	if len(s.cfg.Servers) == 0 {
		return nil
	}
	me := s.cfg.Servers[s.cfg.ServerID]
	// Snapshots from a leader are spooled next to ours; what a crash left
	// there is of no use.
	spool := filepath.Join(s.cfg.DataDir, spoolDirName)
	if err := os.RemoveAll(spool); err != nil {
		return fmt.Errorf("server: clear %s: %w", spool, err)
	}
	if err := os.MkdirAll(spool, 0o755); err != nil {
		return fmt.Errorf("server: create %s: %w", spool, err)
	}
	host := me.Host
	if s.cfg.QuorumListenOnAllIPs {
		host = ""
	}
	ln, err := s.listen(ctx, retry, "quorum", host, me.QuorumPort)
	if err != nil {
		return err
	}
	return s.openZooKeeperPeers(ctx, retry, ln, host, spool)
}

// openZooKeeperPeers starts the peer transport: Apache ZooKeeper's
// election port beside the quorum port already bound (qln), so ZooKeeper
// servers and this one form one ensemble.
func (s *Server) openZooKeeperPeers(ctx context.Context, retry bool, qln net.Listener, host, spool string) error {
	me := s.cfg.Servers[s.cfg.ServerID]
	eln, err := s.listen(ctx, retry, "election", host, me.ElectionPort)
	if err != nil {
		_ = qln.Close()
		return err
	}
	// Port 0 (tests) means the one the listener got.
	electionAddr := ""
	if me.ElectionPort != 0 {
		electionAddr = net.JoinHostPort(me.Host, strconv.Itoa(me.ElectionPort))
	}
	var (
		book  zklink.Book
		learn func([]byte) (map[int64]zktcp.Peer, error)
	)
	if s.cfg.Dynamic.ReconfigEnabled {
		s.book = newPeerBook(s.cfg.Servers)
		book, learn = s.book.lookup, s.learnConfig
	}
	t, err := zktcp.New(zktcp.Config{
		ID:               int64(s.cfg.ServerID),
		ElectionListener: eln,
		QuorumListener:   qln,
		ElectionAddr:     electionAddr,
		Peers:            s.cfg.zkPeers(),
		Config:           []byte(s.cfg.quorumConfigString()),
		Book:             book,
		LearnConfig:      learn,
		TickTime:         time.Duration(s.cfg.TickTime) * time.Millisecond,
		InitLimit:        s.cfg.InitLimit,
		SyncLimit:        s.cfg.SyncLimit,
		// ZooKeeper reads a packet's data up to jute.maxbuffer plus its
		// extra allowance; a txn of the largest request must fit.
		MaxPacket: max(quorum.DefaultMaxData, proto.TxnLimit(s.cfg.JuteMaxBuffer)+peerFrameSlack),
		SpoolDir:  spool,
		Logger:    s.log.With("component", "peers", "protocol", PeerProtocolZooKeeper),
		TLS:       s.peerTLS(),
		// Every extension this version has, in a hello ZooKeeper ignores:
		// each link carries those its peer announces too, none with a
		// ZooKeeper server.
		Caps: zab.AllCaps,
	})
	if err != nil {
		_ = qln.Close()
		_ = eln.Close()
		return fmt.Errorf("server: ZooKeeper peer transport: %w", err)
	}
	s.log.Info("peer links speak Apache ZooKeeper's quorum protocol", "quorum", qln.Addr().String(), "election", eln.Addr().String())
	s.peers, s.zkPeers = t, t
	return nil
}

// zkPeers maps every other server's id to its two ZooKeeper ports.
func (c Config) zkPeers() map[int64]zktcp.Peer {
	out := map[int64]zktcp.Peer{}
	for id, spec := range c.Servers {
		if id != c.ServerID {
			out[int64(id)] = zktcp.Peer{
				QuorumAddr:   net.JoinHostPort(spec.Host, strconv.Itoa(spec.QuorumPort)),
				ElectionAddr: net.JoinHostPort(spec.Host, strconv.Itoa(spec.ElectionPort)),
			}
		}
	}
	return out
}

// notePeerRole tells the ZooKeeper transport the engine's role after a
// Ready (learner links follow the leader; a leader accepts learners).
func (s *Server) notePeerRole() {
	if s.zkPeers == nil {
		return
	}
	s.zkPeers.SetRole(s.node.Role()) // Status would allocate on a leader
}

// PeerAddr returns the address the peer transport listens on, or nil for a
// standalone server.
func (s *Server) PeerAddr() net.Addr {
	if s.peers == nil {
		return nil
	}
	return s.zkPeers.QuorumAddr()
}

// ElectionAddr returns the address of the election port, or nil for a
// standalone server.
func (s *Server) ElectionAddr() net.Addr {
	if s.zkPeers == nil {
		return nil
	}
	return s.zkPeers.ElectionAddr()
}

// PeerAddrs are the addresses of another server's peer ports.
type PeerAddrs struct {
	// Quorum is its host:quorumPort.
	Quorum string
	// Election is its host:electionPort.
	Election string
}

// SetPeerAddrs replaces the addresses of the other servers (tests bind
// every server to port 0 first, then tell each where the others are).
func (s *Server) SetPeerAddrs(addrs map[int64]PeerAddrs) {
	if s.zkPeers == nil {
		return
	}
	zp := map[int64]zktcp.Peer{}
	for id, a := range addrs {
		zp[id] = zktcp.Peer{QuorumAddr: a.Quorum, ElectionAddr: a.Election}
	}
	s.zkPeers.SetPeers(zp)
}

// peerRecv is the channel of peer messages, nil (never ready) when
// standalone.
func (s *Server) peerRecv() <-chan zab.Message {
	if s.peers == nil {
		return nil
	}
	return s.peers.Recv()
}

// sendPeers hands Ready's messages to the transport, as one batch: the
// packets for one peer go out in one write (zktcp's SendBatch), not one
// write(2) per PROPOSAL, COMMIT or ACK.
func (s *Server) sendPeers(msgs []zab.Message) {
	if s.zkPeers != nil {
		s.zkPeers.SendBatch(msgs)
		return
	}
	if s.peers == nil {
		return
	}
	for _, m := range msgs {
		s.peers.Send(m)
	}
}

// randomSeed seeds the engine's election jitter.
func randomSeed() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
}
