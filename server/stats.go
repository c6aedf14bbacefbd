package server

import (
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/zabkeeper/zabkeeper/engine"
	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto"
)

// stats are the server-wide counters the four-letter words report. The
// packet counters are atomic (connection goroutines bump them); latency is
// only touched by the event loop.
type stats struct {
	received atomic.Int64
	sent     atomic.Int64
	// receivedBefore holds the packets received before the last srst, so
	// Work keeps growing across resets.
	receivedBefore atomic.Int64

	latMin, latMax, latSum time.Duration
	latCount               int64
	ops                    map[proto.OpCode]int64
	// respSizes is the last, smallest and largest reply size, -1 for none.
	respSizes [3]int64
	// digestMismatches counts Ready.DigestMismatch reports (mntr
	// zk_digest_mismatches_count); never reset, as ZooKeeper's counter.
	digestMismatches atomic.Int64
}

func (st *stats) reset() {
	st.receivedBefore.Add(st.received.Swap(0))
	st.sent.Store(0)
	st.latMin, st.latMax, st.latSum, st.latCount = 0, 0, 0, 0
	st.ops = map[proto.OpCode]int64{}
	st.respSizes = [3]int64{-1, -1, -1}
}

// observeResponse records a client reply's size (without the length
// prefix), as ZooKeeper's ServerStats.updateClientResponseSize.
func (st *stats) observeResponse(n int) {
	v := int64(n)
	st.respSizes[0] = v
	if st.respSizes[1] < 0 || v < st.respSizes[1] {
		st.respSizes[1] = v
	}
	if v > st.respSizes[2] {
		st.respSizes[2] = v
	}
}

func (st *stats) observeLatency(d time.Duration) {
	if st.latCount == 0 || d < st.latMin {
		st.latMin = d
	}
	if d > st.latMax {
		st.latMax = d
	}
	st.latSum += d
	st.latCount++
}

// Work is the requests this server has received from clients plus the
// txns it has handed to its log since it started: work done, as a count
// that only grows (srst resets the packets srvr reports, not this). The
// binary's GOMAXPROCS controller compares its rate before and after it
// gives the server another P, to keep the P only where it does more work
// (cmd/zabkeeper/procs.go). Safe to call from any goroutine.
func (s *Server) Work() int64 {
	return s.stats.received.Load() + s.stats.receivedBefore.Load() + s.txnsLogged.Load()
}

func (st *stats) countOp(op proto.OpCode) { st.ops[op]++ }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// fourLetterReply answers a four-letter word from the event loop, where the
// Node may be read safely.
func (s *Server) fourLetterReply(word string, mask int64) string {
	if word == "stmk" && s.cfg.FourLetterWords[word] {
		s.traceMask = mask
	}
	reply, reset := FourLetterCommand(word, s.cfg.FourLetterWords, s.serverInfo(word))
	switch reset {
	case ResetServerStats:
		s.stats.reset()
	case ResetConnStats:
		s.connMu.Lock()
		for _, c := range s.conns {
			c.received.Store(0)
			c.sent.Store(0)
		}
		s.connMu.Unlock()
	}
	return reply
}

// membership is what conf prints after "membership: ": ZooKeeper prints
// its quorum verifier, the configuration in force, which is what
// /zookeeper/config holds once a reconfig (or the first leader's version,
// ZOOKEEPER-1783) changed zoo.cfg's; nil for a standalone server.
func (s *Server) membership(t *tree.Tree) []string {
	m := s.cfg.Membership()
	if m == nil {
		return nil
	}
	if data, _ := t.ConfigNode(); len(data) > 0 {
		return strings.Split(string(data), "\n")
	}
	return m
}

// serverInfo collects what the four-letter words print. The per-session
// tables are built only for the words that print them.
func (s *Server) serverInfo(word string) ServerInfo {
	t := s.node.Tree()
	info := ServerInfo{
		Version:        FullVersion(),
		Mode:           s.mode(),
		NotServing:     !s.node.Serving() && !s.node.ReadOnly(),
		ReadOnly:       s.node.ReadOnly(),
		Received:       s.stats.received.Load(),
		Sent:           s.stats.sent.Load(),
		Outstanding:    s.node.Outstanding(),
		Zxid:           s.node.LastZxid(),
		NodeCount:      t.NodeCount() + 1, // as ZooKeeper counts (ServerInfo.NodeCount)
		WatchCount:     t.WatchCount(),
		Ephemerals:     t.EphemeralCount(),
		ApproxDataSize: t.ApproximateDataSize(),
		Sessions:       s.node.SessionCount(),
		LocalSessions:  s.node.LocalSessionCount(),
		Conf:           s.confProperties(),
		Membership:     s.membership(t),
		Uptime:         time.Since(s.startedAt),
		TraceMask:      s.traceMask,
		OpenFDs:        openFDs(),
		MaxFDs:         maxFDs(),
		ResponseSizes:  s.stats.respSizes,

		ClientTLS:                s.cfg.TLS.ClientTLS(),
		OutstandingTLSHandshakes: s.tlsHS.outstanding.Load(),
		TLSHandshakeExceeded:     s.tlsHS.exceeded.Load(),
		UnsuccessfulHandshakes:   s.tlsHS.failed.Load(),

		DigestMismatches: s.stats.digestMismatches.Load(),
	}
	if s.zkPeers != nil {
		info.DuplicateIDs = s.zkPeers.DuplicateIDs()
	}
	if voters, _ := s.cfg.ensemble(); len(voters) > 0 {
		st := s.node.Status()
		// The configuration in force, which a reconfig changes from the
		// one the server started with: ZooKeeper counts from its current
		// QuorumVerifier too.
		if active, _ := s.node.Configs(); len(active.Voters) > 0 {
			voters = active.Voters
		}
		info.Epoch, info.QuorumSize = st.Epoch, len(voters)
		if st.Role == zab.Leading {
			// ZooKeeper's: synced_followers counts every synced
			// follower, a non-voting one (a server about to join)
			// too, which synced_non_voting_followers counts apart.
			info.Learners = len(st.Followers)
			info.OutstandingProposals = st.Outstanding
			info.SyncedObservers = st.SyncedObservers
			info.SyncedNonVotingFollowers = st.SyncedNonVoting
			info.SyncedFollowers = len(st.Followers) - st.SyncedObservers
		}
	}
	if s.stats.latCount > 0 {
		info.MinLatency = ms(s.stats.latMin)
		info.MaxLatency = ms(s.stats.latMax)
		info.AvgLatency = ms(s.stats.latSum) / float64(s.stats.latCount)
	}
	s.connMu.Lock()
	info.Connections = len(s.conns)
	if word != "" { // "" asks for the figures only (metrics)
		for _, c := range s.conns {
			info.Clients = append(info.Clients, ClientInfo{
				Addr: c.remote, Interest: 1, Received: c.received.Load(), Sent: c.sent.Load(),
				SessionID: c.sessionID.Load(), Timeout: int(c.timeoutMs.Load()), Established: c.started,
				LastCxid: -1,
			})
		}
	}
	s.connMu.Unlock()
	sort.Slice(info.Clients, func(i, j int) bool { return info.Clients[i].Addr < info.Clients[j].Addr })

	switch word {
	case "wchs", "wchc", "wchp", "dump":
		// Only the words that print them walk every watch.
		byWatcher := t.WatchesByWatcher()
		paths := map[string]struct{}{}
		for _, ps := range byWatcher {
			for _, p := range ps {
				paths[p] = struct{}{}
			}
		}
		info.WatchPaths, info.WatchingConns = len(paths), len(byWatcher)
		if word == "wchs" {
			break
		}
		info.Watches = map[int64][]string{}
		for w, ps := range byWatcher {
			sid := s.node.SessionOf(engine.ConnID(w))
			info.Watches[sid] = append(info.Watches[sid], ps...)
		}
		info.SessionEphemerals = map[int64][]string{}
		for _, c := range info.Clients {
			if c.SessionID != 0 {
				info.SessionEphemerals[c.SessionID] = t.Ephemerals(c.SessionID)
			}
		}
	case "envi":
		info.Env = environment()
	}
	return info
}

// environment lists envi's pairs, naming Go where ZooKeeper names Java.
func environment() [][2]string {
	host, _ := os.Hostname()
	wd, _ := os.Getwd()
	return [][2]string{
		{"zookeeper.version", FullVersion()},
		{"host.name", host},
		{"java.version", runtime.Version()},
		{"java.vendor", "zabkeeper (Go)"},
		{"os.name", runtime.GOOS},
		{"os.arch", runtime.GOARCH},
		{"user.dir", wd},
		{"go.maxprocs", strconv.Itoa(runtime.GOMAXPROCS(0))},
	}
}

// openFDs counts this process's open file descriptors (Linux /proc), or -1.
func openFDs() int64 {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return int64(len(entries))
}

// maxFDs returns the soft limit on open file descriptors, or -1.
func maxFDs() int64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return -1
	}
	return int64(lim.Cur)
}

// mode is what srvr and stat print after "Mode: ", as ZooKeeper does.
func (s *Server) mode() string {
	if len(s.cfg.Servers) == 0 {
		return "standalone"
	}
	if s.node.ReadOnly() {
		return "read-only" // ReadOnlyZooKeeperServer.getState
	}
	switch s.node.Status().Role {
	case zab.Leading:
		return "leader"
	case zab.Following:
		return "follower"
	case zab.Observing:
		return "observer"
	}
	return "looking"
}
