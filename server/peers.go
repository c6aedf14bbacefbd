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

	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/netstub"
	"github.com/zabkeeper/zabkeeper/proto"
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

// peerAddrs maps every other server's id to its quorum address.
func (c Config) peerAddrs() map[int64]string {
	out := map[int64]string{}
	for id, spec := range c.Servers {
		if id != c.ServerID {
			out[int64(id)] = net.JoinHostPort(spec.Host, strconv.Itoa(spec.QuorumPort))
		}
	}
	return out
}

// spoolDirName is the directory of dataDir where snapshots received from a
// leader wait until they are installed.
const spoolDirName = "incoming"

// openPeers starts the peer transport of an ensemble member: it listens on
// this server's quorum port, on its own server.N address or, with
// quorumListenOnAllIPs, on every interface. Election and broadcast share it
// (ZooKeeper uses a second port for election; ours is accepted and unused).
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
	t, err := netstub.NewTCP(netstub.TCPConfig{
		ID:       int64(s.cfg.ServerID),
		Listener: ln,
		Peers:    s.cfg.peerAddrs(),
		SpoolDir: spool,
		// A proposal carries a txn of up to proto.TxnLimit of
		// jute.maxbuffer; a forwarded request is smaller.
		MaxFrame: max(netstub.DefaultMaxFrame, proto.TxnLimit(s.cfg.JuteMaxBuffer)+peerFrameSlack),
		Logger:   s.log.With("component", "peers"),
		TLS:      s.peerTLS(),
	})
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("server: peer transport: %w", err)
	}
	s.peers = t
	return nil
}

// PeerAddr returns the address the peer transport listens on, or nil for a
// standalone server.
func (s *Server) PeerAddr() net.Addr {
	if s.peers == nil {
		return nil
	}
	return s.peers.Addr()
}

// SetPeerAddrs replaces the quorum addresses of the other servers (tests bind
// every server to port 0 first, then tell each where the others are).
func (s *Server) SetPeerAddrs(addrs map[int64]string) {
	if s.peers != nil {
		s.peers.SetPeers(addrs)
	}
}

// peerRecv is the channel of peer messages, nil (never ready) when
// standalone.
func (s *Server) peerRecv() <-chan zab.Message {
	if s.peers == nil {
		return nil
	}
	return s.peers.Recv()
}

// sendPeers hands Ready's messages to the transport.
func (s *Server) sendPeers(msgs []zab.Message) {
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
