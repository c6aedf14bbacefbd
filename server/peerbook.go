package server

import (
	"net"
	"strconv"
	"sync"

	"github.com/zabkeeper/zabkeeper/engine"
	"github.com/zabkeeper/zabkeeper/netstub/zklink"
)

// peerBook is the members' addresses the ZooKeeper peer transport prints
// configurations with (zklink.Book), with reconfigEnabled: the servers of
// zoo.cfg (or its dynamic file), of every configuration activated since,
// and of a pending one (a leader's NEWLEADER carries its last-seen
// configuration, which may name a joiner). An id keeps its newest
// address. Safe for concurrent use: the transport's goroutines read it.
type peerBook struct {
	mu sync.Mutex
	m  map[int64]zklink.Member
}

func newPeerBook(servers map[int]ServerSpec) *peerBook {
	b := &peerBook{m: map[int64]zklink.Member{}}
	for id, s := range servers {
		b.m[int64(id)] = bookMember(engine.Member{ID: int64(id), Host: s.Host, QuorumPort: s.QuorumPort,
			ElectionPort: s.ElectionPort, ClientPort: s.ClientPort, ClientHost: s.ClientAddr})
	}
	return b
}

// add records members' addresses.
func (b *peerBook) add(members []engine.Member) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range members {
		b.m[m.ID] = bookMember(m)
	}
}

// lookup is the zklink.Book.
func (b *peerBook) lookup(id int64) (zklink.Member, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m, ok := b.m[id]
	return m, ok
}

// bookMember is m as zklink prints it: the client part as
// engine.ConfigData writes it (a port alone reads as 0.0.0.0, as
// ZooKeeper's QuorumServer makes it).
func bookMember(m engine.Member) zklink.Member {
	zm := zklink.Member{ID: m.ID, Host: m.Host, QuorumPort: m.QuorumPort, ElectionPort: m.ElectionPort, Observer: m.Observer}
	if m.ClientPort != 0 {
		host := m.ClientHost
		if host == "" {
			host = "0.0.0.0"
		}
		zm.ClientAddr = net.JoinHostPort(host, strconv.Itoa(m.ClientPort))
	}
	return zm
}

// noteConfigVersions runs after every Ready, before its messages go out:
// a new active configuration version goes to the peer transport
// (FOLLOWERINFO carries it, a leader refuses a learner ahead of it), and
// a new pending configuration's members go to the book, so a NEWLEADER
// naming a joiner prints its address.
func (s *Server) noteConfigVersions() {
	if s.zkPeers == nil || s.book == nil {
		return
	}
	active, pending := s.node.ConfigVersions()
	if active != s.noted.active || !s.noted.set {
		s.zkPeers.SetConfigVersion(active)
	}
	if pending != 0 && pending != s.noted.pending {
		if members, ok := s.node.PendingMembers(); ok {
			s.book.add(members)
		}
	}
	s.noted.active, s.noted.pending, s.noted.set = active, pending, true
}
