package server

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"
)

// allWords enables every four-letter word.
func allWords() map[string]bool {
	m := map[string]bool{}
	for _, w := range FourLetterWords() {
		m[w] = true
	}
	return m
}

// sampleInfo is a server state with a bit of everything.
func sampleInfo() ServerInfo {
	est := time.UnixMilli(1700000000123)
	return ServerInfo{
		Version:    "3.9.0-zabkeeper-0.1.0-dev, built on 01/01/2026 00:00 GMT",
		Mode:       "standalone",
		MinLatency: 0.2, AvgLatency: 1.23456, MaxLatency: 17.9,
		Received: 120, Sent: 119,
		Connections: 2, Outstanding: 1,
		Zxid:      0x100000003,
		NodeCount: 7, WatchCount: 3, WatchPaths: 2, WatchingConns: 2,
		Ephemerals: 2, ApproxDataSize: 321,
		OpenFDs: 42, MaxFDs: 1048576,
		Clients: []ClientInfo{
			{
				Addr: "127.0.0.1:50312", Interest: 1, Queued: 0, Received: 60, Sent: 59,
				SessionID: 0x1000a1b2c3d0000, LastOp: "GETD", LastCxid: 0x1f, LastZxid: 0x100000003,
				Timeout: 30000, Established: est, LastResponse: est.Add(5 * time.Second),
				LastLatency: 1, MinLatency: 0, AvgLatency: 2.7, MaxLatency: 9,
			},
			{
				Addr: "10.1.2.3:40000", Interest: 0, Queued: 1, Received: 1, Sent: 0,
			},
		},
		Watches: map[int64][]string{
			0x1000a1b2c3d0000: {"/b", "/a"},
			0x1000a1b2c3d0001: {"/a"},
		},
		SessionEphemerals: map[int64][]string{
			0x1000a1b2c3d0000: {"/lock/x", "/election/n_0001"},
		},
		SessionExpiry: map[int64]time.Time{
			0x1000a1b2c3d0000: time.UnixMilli(1700000030000),
			0x1000a1b2c3d0001: time.UnixMilli(1700000030000),
			-1:                time.UnixMilli(1700000032000),
		},
		Sessions:    3,
		Env:         [][2]string{{"zookeeper.version", "3.9.0-zabkeeper-0.1.0-dev"}, {"host.name", "zk1"}, {"java.version", "go1.26"}},
		Conf:        [][2]string{{"clientPort", "2181"}, {"dataDir", "/d"}, {"dataLogDir", "/l"}, {"tickTime", "2000"}},
		DataDirSize: 1024, LogDirSize: 4096,
		Uptime: 90 * time.Second,
	}
}

func TestFourLetterWords(t *testing.T) {
	info := sampleInfo()
	for _, tc := range []struct{ cmd, want string }{
		{"ruok", "imok"},
		{"isro", "rw"},
		{"srvr", "Zookeeper version: 3.9.0-zabkeeper-0.1.0-dev, built on 01/01/2026 00:00 GMT\n" +
			"Latency min/avg/max: 0/1.2346/17\n" +
			"Received: 120\nSent: 119\nConnections: 2\nOutstanding: 1\nZxid: 0x100000003\nMode: standalone\nNode count: 7\n"},
		{"stat", "Zookeeper version: 3.9.0-zabkeeper-0.1.0-dev, built on 01/01/2026 00:00 GMT\n" +
			"Clients:\n" +
			" /127.0.0.1:50312[1](queued=0,recved=60,sent=59)\n" +
			" /10.1.2.3:40000[0](queued=1,recved=1,sent=0)\n" +
			"\n" +
			"Latency min/avg/max: 0/1.2346/17\n" +
			"Received: 120\nSent: 119\nConnections: 2\nOutstanding: 1\nZxid: 0x100000003\nMode: standalone\nNode count: 7\n"},
		{"cons", " /127.0.0.1:50312[1](queued=0,recved=60,sent=59,sid=0x1000a1b2c3d0000,lop=GETD,est=1700000000123,to=30000," +
			"lcxid=0x1f,lzxid=0x100000003,lresp=1700000005123,llat=1,minlat=0,avglat=2,maxlat=9)\n" +
			" /10.1.2.3:40000[0](queued=1,recved=1,sent=0)\n" +
			"\n"},
		{"mntr", "zk_version\t3.9.0-zabkeeper-0.1.0-dev, built on 01/01/2026 00:00 GMT\n" +
			"zk_server_state\tstandalone\n" +
			"zk_avg_latency\t1.2346\n" +
			"zk_max_latency\t17\n" +
			"zk_min_latency\t0\n" +
			"zk_packets_received\t120\n" +
			"zk_packets_sent\t119\n" +
			"zk_num_alive_connections\t2\n" +
			"zk_outstanding_requests\t1\n" +
			"zk_znode_count\t7\n" +
			"zk_watch_count\t3\n" +
			"zk_ephemerals_count\t2\n" +
			"zk_approximate_data_size\t321\n" +
			"zk_open_file_descriptor_count\t42\n" +
			"zk_max_file_descriptor_count\t1048576\n" +
			"zk_uptime\t90000\n" +
			"zk_global_sessions\t3\n" +
			"zk_local_sessions\t0\n" +
			"zk_data_dir_size\t1024\n" +
			"zk_log_dir_size\t4096\n" +
			"zk_last_proposal_size\t0\n" +
			"zk_min_proposal_size\t0\n" +
			"zk_max_proposal_size\t0\n" +
			"zk_last_client_response_size\t0\n" +
			"zk_min_client_response_size\t0\n" +
			"zk_max_client_response_size\t0\n" +
			"zk_digest_mismatches_count\t0\n"},
		{"conf", "clientPort=2181\ndataDir=/d\ndataDirSize=1024\ndataLogDir=/l\ndataLogSize=4096\ntickTime=2000\n"},
		{"envi", "Environment:\nzookeeper.version=3.9.0-zabkeeper-0.1.0-dev\nhost.name=zk1\njava.version=go1.26\n"},
		{"wchs", "2 connections watching 2 paths\nTotal watches:3\n"},
		{"wchc", "0x1000a1b2c3d0000\n\t/a\n\t/b\n0x1000a1b2c3d0001\n\t/a\n\n"},
		{"wchp", "/a\n\t0x1000a1b2c3d0000\n\t0x1000a1b2c3d0001\n/b\n\t0x1000a1b2c3d0000\n\n"},
		{"dump", "SessionTracker dump:\n" +
			"Session Sets (2)/(3):\n" +
			"2 expire at Tue Nov 14 22:13:50 UTC 2023:\n" +
			"\t0x1000a1b2c3d0000\n\t0x1000a1b2c3d0001\n" +
			"1 expire at Tue Nov 14 22:13:52 UTC 2023:\n" +
			"\t0xffffffffffffffff\n" +
			"ephemeral nodes dump:\n" +
			"Sessions with Ephemerals (1):\n" +
			"0x1000a1b2c3d0000:\n\t/election/n_0001\n\t/lock/x\n" +
			"Connections dump:\n"},
		{"dirs", "datadir_size: 1024\nlogdir_size: 4096\n"},
		{"crst", "Connection stats reset.\n"},
		{"srst", "Server stats reset.\n"},
	} {
		t.Run(tc.cmd, func(t *testing.T) {
			require.Equal(t, tc.want, FourLetter(tc.cmd, allWords(), info))
		})
	}
}

func TestFourLetterModes(t *testing.T) {
	info := sampleInfo()
	info.ReadOnly = true
	require.Equal(t, "ro", FourLetter("isro", allWords(), info))
	require.True(t, strings.HasPrefix(FourLetter("srvr", allWords(), info),
		"Zookeeper version: "+info.Version+"\nREAD-ONLY mode; serving only read-only clients\nLatency"))

	info = sampleInfo()
	info.Mode = "leader"
	info.ProposalSizes = [3]int64{10, 5, 300}
	info.Learners, info.SyncedFollowers, info.SyncedObservers, info.PendingSyncs = 2, 2, 1, 0
	info.OutstandingProposals = 3
	info.DuplicateIDs = []int64{2, 5}
	require.True(t, strings.HasSuffix(FourLetter("srvr", allWords(), info), "Mode: leader\nNode count: 7\nProposal sizes last/min/max: 10/5/300\n"))
	require.True(t, strings.HasSuffix(FourLetter("mntr", allWords(), info),
		"zk_learners\t2\nzk_synced_followers\t2\nzk_synced_non_voting_followers\t0\nzk_synced_observers\t1\nzk_pending_syncs\t0\nzk_outstanding_proposals\t3\n"))
	require.Contains(t, FourLetter("mntr", allWords(), info), "zk_duplicate_server_ids\t2,5\n")

	info = sampleInfo()
	info.Membership = []string{"server.1=a:2888:3888:participant", "server.2=b:2888:3888:participant"}
	require.True(t, strings.HasSuffix(FourLetter("conf", allWords(), info),
		"tickTime=2000\nmembership: \nserver.1=a:2888:3888:participant\nserver.2=b:2888:3888:participant\n"))

	info = sampleInfo()
	info.NotServing = true
	for _, w := range []string{"srvr", "stat", "mntr", "conf", "cons", "wchs", "wchc", "wchp", "dump", "crst", "srst", "dirs"} {
		reply, reset := FourLetterCommand(w, allWords(), info)
		require.Equal(t, "This ZooKeeper instance is not currently serving requests\n", reply, w)
		require.Equal(t, ResetNone, reset, w)
	}
	require.Equal(t, "imok", FourLetter("ruok", allWords(), info))
	require.Equal(t, "null", FourLetter("isro", allWords(), info))
	require.True(t, strings.HasPrefix(FourLetter("envi", allWords(), info), "Environment:\n"))
}

// TestFourLetterReadOnly: a read-only server answers as ZooKeeper 3.8's
// ReadOnlyZooKeeperServer does: isro "ro", the READ-ONLY line after the
// version in srvr and stat, Mode and zk_server_state "read-only".
func TestFourLetterReadOnly(t *testing.T) {
	info := sampleInfo()
	info.ReadOnly, info.Mode, info.LocalSessions = true, "read-only", 2
	require.Equal(t, "ro", FourLetter("isro", allWords(), info))
	for _, w := range []string{"srvr", "stat"} {
		out := FourLetter(w, allWords(), info)
		require.True(t, strings.HasPrefix(out, "Zookeeper version: "+info.Version+"\nREAD-ONLY mode; serving only read-only clients\n"), w)
		require.Contains(t, out, "\nMode: read-only\nNode count: ", w)
	}
	mntr := FourLetter("mntr", allWords(), info)
	require.Contains(t, mntr, "zk_server_state\tread-only\n")
	require.Contains(t, mntr, "zk_local_sessions\t2\n")
	require.NotContains(t, mntr, "zk_learners")
}

func TestFourLetterFormatting(t *testing.T) {
	info := sampleInfo()
	for _, tc := range []struct {
		avg  float64
		want string
	}{{0, "0.0"}, {2, "2.0"}, {0.5, "0.5"}, {1.0 / 3, "0.3333"}, {0.00004, "0.0"}, {0.0004, "0.0004"}, {12345678.9, "12345678.9"}} {
		info.AvgLatency = tc.avg
		require.Contains(t, FourLetter("srvr", allWords(), info), "Latency min/avg/max: 0/"+tc.want+"/17\n")
	}
	info.Zxid = -1
	require.Contains(t, FourLetter("srvr", allWords(), info), "Zxid: 0xffffffffffffffff\n")
	info.Clients = []ClientInfo{{Addr: "[::1]:1", Interest: 5, SessionID: 1, LastCxid: -1, LastZxid: -1}}
	require.Equal(t, " /[::1]:1[5](queued=0,recved=0,sent=0,sid=0x1,lop=NA,est=0,to=0,lzxid=0xffffffffffffffff,"+
		"lresp=0,llat=0,minlat=0,avglat=0,maxlat=0)\n\n", FourLetter("cons", allWords(), info))
}

func TestFourLetterWhitelist(t *testing.T) {
	info := sampleInfo()
	only := map[string]bool{"srvr": true}
	for _, w := range FourLetterWords() {
		reply, reset := FourLetterCommand(w, only, info)
		require.Equal(t, ResetNone, reset)
		if w == "srvr" {
			require.True(t, strings.HasPrefix(reply, "Zookeeper version: "))
			continue
		}
		require.Equal(t, w+" is not executed because it is not in the whitelist.\n", reply)
	}
	for _, w := range []string{"kill", "RUOK", "", "ruokk"} {
		require.Equal(t, "", FourLetter(w, allWords(), info), w)
	}
	require.Equal(t, "", FourLetter("kill", nil, info))
	require.Equal(t, "ruok is not executed because it is not in the whitelist.\n", FourLetter("ruok", nil, info))

	_, reset := FourLetterCommand("crst", allWords(), info)
	require.Equal(t, ResetConnStats, reset)
	_, reset = FourLetterCommand("srst", allWords(), info)
	require.Equal(t, ResetServerStats, reset)
	_, reset = FourLetterCommand("srst", only, info)
	require.Equal(t, ResetNone, reset)

	// The default configuration's whitelist answers srvr only.
	require.Contains(t, FourLetter("stat", DefaultConfig().FourLetterWords, info), "not in the whitelist")
}

func TestFullVersion(t *testing.T) {
	old := Version
	t.Cleanup(func() { Version = old })
	Version = "1.2.3+dirty_x"
	require.Equal(t, "3.9.0-zabkeeper-1.2.3-dirty-x, built on "+BuildDate, FullVersion())
}

// serveFourLetter starts a TCP listener answering each connection's
// four-letter word with FourLetter, the way the server does, and returns its
// address.
func serveFourLetter(t *testing.T, whitelist map[string]bool, info ServerInfo) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				cmd := make([]byte, 4)
				if _, err := io.ReadFull(c, cmd); err != nil {
					return
				}
				_, _ = io.WriteString(c, FourLetter(string(cmd), whitelist, info))
			}()
		}
	}()
	return ln.Addr().String()
}

func TestGoZkParsesFourLetterWords(t *testing.T) {
	info := sampleInfo()
	info.Version = FullVersion()
	info.Clients = info.Clients[:1] // go-zk's cons parser wants session fields on every line
	addr := serveFourLetter(t, allWords(), info)

	stats, ok := zk.FLWSrvr([]string{addr}, 2*time.Second)
	require.True(t, ok, "%+v", stats)
	require.Len(t, stats, 1)
	s := stats[0]
	require.NoError(t, s.Error)
	require.Equal(t, "3.9.0-zabkeeper-"+Version, s.Version)
	require.Equal(t, time.Date(2026, 1, 1, 0, 0, 0, 0, s.BuildTime.Location()), s.BuildTime)
	require.Equal(t, int64(0), s.MinLatency)
	require.InDelta(t, 1.2346, s.AvgLatency, 1e-9)
	require.Equal(t, int64(17), s.MaxLatency)
	require.Equal(t, int64(120), s.Received)
	require.Equal(t, int64(119), s.Sent)
	require.Equal(t, int64(2), s.Connections)
	require.Equal(t, int64(1), s.Outstanding)
	require.Equal(t, int32(1), s.Epoch)
	require.Equal(t, int32(3), s.Counter)
	require.Equal(t, zk.ModeStandalone, s.Mode)
	require.Equal(t, int64(7), s.NodeCount)

	require.Equal(t, []bool{true}, zk.FLWRuok([]string{addr}, 2*time.Second))

	clients, ok := zk.FLWCons([]string{addr}, 2*time.Second)
	require.True(t, ok, "%+v", clients)
	require.Len(t, clients, 1)
	require.NoError(t, clients[0].Error)
	require.Len(t, clients[0].Clients, 1)
	c := clients[0].Clients[0]
	require.Equal(t, "127.0.0.1:50312", c.Addr)
	require.Equal(t, int64(0), c.Queued)
	require.Equal(t, int64(60), c.Received)
	require.Equal(t, int64(59), c.Sent)
	require.Equal(t, int64(0x1000a1b2c3d0000), c.SessionID)
	require.Equal(t, "GETD", c.LastOperation)
	require.Equal(t, time.Unix(1700000000123, 0), c.Established) // go-zk reads ms as seconds
	require.Equal(t, int32(30000), c.Timeout)
	require.Equal(t, int64(0x1f), c.Lcxid)
	require.Equal(t, int64(0x100000003), c.Lzxid)
	require.Equal(t, int32(1), c.LastLatency)
	require.Equal(t, int32(0), c.MinLatency)
	require.Equal(t, int32(2), c.AvgLatency)
	require.Equal(t, int32(9), c.MaxLatency)

	// A leader and a follower parse too; srvr must stay parseable when only
	// srvr is whitelisted (the default), and ruok then fails as with ZooKeeper.
	for _, mode := range []string{"leader", "follower"} {
		info.Mode = mode
		addr := serveFourLetter(t, DefaultConfig().FourLetterWords, info)
		stats, ok := zk.FLWSrvr([]string{addr}, 2*time.Second)
		require.True(t, ok, "%s: %v", mode, stats[0].Error)
		require.Equal(t, map[string]zk.Mode{"leader": zk.ModeLeader, "follower": zk.ModeFollower}[mode], stats[0].Mode)
		require.Equal(t, []bool{false}, zk.FLWRuok([]string{addr}, 2*time.Second))
	}
}

func TestFourLetterTraceMaskReply(t *testing.T) {
	info := sampleInfo()
	info.TraceMask = DefaultTraceMask
	require.Equal(t, "306", FourLetter("gtmk", allWords(), info))
	info.TraceMask = -5
	require.Equal(t, "-5", FourLetter("stmk", allWords(), info))
	info.NotServing = true // the trace mask does not need a serving server
	require.Equal(t, "-5", FourLetter("gtmk", allWords(), info))
}

// The registry is the one list of words: ZooKeeper 3.8's words in its
// documented order, and nothing else is taken for a word (not the retired
// "kill", not upper case, not a frame length).
func TestFourLetterRegistry(t *testing.T) {
	require.Equal(t, []string{"conf", "cons", "crst", "dump", "envi", "ruok", "srst", "srvr", "stat",
		"wchs", "wchc", "wchp", "mntr", "isro", "gtmk", "stmk", "dirs"}, FourLetterWords())
	for _, w := range []string{"", "ruo", "RUOK", "kill", "\x00\x00\x00\x2c"} {
		require.False(t, isFourLetterWord(w), "%q", w)
	}
}
