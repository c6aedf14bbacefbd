package server

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultTraceMask is ZooKeeper's initial trace mask (ZooTrace: client
// requests, server packets, sessions and warnings), what gtmk answers until
// stmk changes it.
const DefaultTraceMask = 1<<1 | 1<<4 | 1<<5 | 1<<8

// FourLetterWords returns the four-letter words zabkeeper knows, in the
// order ZooKeeper's documentation lists them; "*" in 4lw.commands.whitelist
// enables all of them.
func FourLetterWords() []string {
	words := make([]string, len(fourLetterTable))
	for i, w := range fourLetterTable {
		words[i] = w.word
	}
	return words
}

// isFourLetterWord reports whether w is a known four-letter word.
func isFourLetterWord(w string) bool { _, ok := lookupFourLetter(w); return ok }

func lookupFourLetter(w string) (fourLetterWord, bool) {
	i := slices.IndexFunc(fourLetterTable, func(e fourLetterWord) bool { return e.word == w })
	if i < 0 {
		return fourLetterWord{}, false
	}
	return fourLetterTable[i], true
}

// fourLetterWord is one entry of the registry of four-letter words: the one
// place a word is added.
type fourLetterWord struct {
	word string
	// anyState is true for the words ZooKeeper answers while the server does
	// not serve; the others answer flwNotServing then.
	anyState bool
	// answer writes the reply and reports the statistics reset the caller
	// must perform.
	answer func(b *strings.Builder, info ServerInfo) Reset
}

// fourLetterTable holds every word zabkeeper answers, in the order
// ZooKeeper's documentation lists them.
var fourLetterTable = []fourLetterWord{
	{word: "conf", answer: answerWith(flwWriteConf)},
	{word: "cons", answer: func(b *strings.Builder, info ServerInfo) Reset {
		for _, c := range info.Clients {
			flwWriteClient(b, c, false)
			b.WriteString("\n")
		}
		b.WriteString("\n")
		return ResetNone
	}},
	{word: "crst", answer: func(b *strings.Builder, _ ServerInfo) Reset {
		b.WriteString("Connection stats reset.\n")
		return ResetConnStats
	}},
	{word: "dump", answer: answerWith(flwWriteDump)},
	{word: "envi", anyState: true, answer: func(b *strings.Builder, info ServerInfo) Reset {
		b.WriteString("Environment:\n")
		for _, kv := range info.Env {
			b.WriteString(kv[0] + "=" + kv[1] + "\n")
		}
		return ResetNone
	}},
	// ruok answers imok even while not serving: the process is alive.
	{word: "ruok", anyState: true, answer: func(b *strings.Builder, _ ServerInfo) Reset {
		b.WriteString("imok")
		return ResetNone
	}},
	{word: "srst", answer: func(b *strings.Builder, _ ServerInfo) Reset {
		b.WriteString("Server stats reset.\n")
		return ResetServerStats
	}},
	{word: "srvr", answer: func(b *strings.Builder, info ServerInfo) Reset { flwWriteStat(b, info, false); return ResetNone }},
	{word: "stat", answer: func(b *strings.Builder, info ServerInfo) Reset { flwWriteStat(b, info, true); return ResetNone }},
	{word: "wchs", answer: func(b *strings.Builder, info ServerInfo) Reset {
		b.WriteString(flwItoa(info.WatchingConns) + " connections watching " + flwItoa(info.WatchPaths) + " paths\n")
		b.WriteString("Total watches:" + flwItoa(info.WatchCount) + "\n")
		return ResetNone
	}},
	{word: "wchc", answer: answerWith(flwWriteWatchesBySession)},
	{word: "wchp", answer: answerWith(flwWriteWatchesByPath)},
	{word: "mntr", answer: answerWith(flwWriteMonitor)},
	{word: "isro", anyState: true, answer: func(b *strings.Builder, info ServerInfo) Reset {
		switch {
		case info.NotServing:
			b.WriteString("null")
		case info.ReadOnly:
			b.WriteString("ro")
		default:
			b.WriteString("rw")
		}
		return ResetNone
	}},
	// gtmk and stmk print the mask as a bare decimal number, no newline, as
	// ZooKeeper does; stmk's 8-byte argument is read and set by the caller
	// before info is taken.
	{word: "gtmk", anyState: true, answer: answerTraceMask},
	{word: "stmk", anyState: true, answer: answerTraceMask},
	{word: "dirs", answer: func(b *strings.Builder, info ServerInfo) Reset {
		b.WriteString("datadir_size: " + flwI64toa(info.DataDirSize) + "\n")
		b.WriteString("logdir_size: " + flwI64toa(info.LogDirSize) + "\n")
		return ResetNone
	}},
}

// answerWith adapts a writer that resets nothing to a table entry.
func answerWith(write func(*strings.Builder, ServerInfo)) func(*strings.Builder, ServerInfo) Reset {
	return func(b *strings.Builder, info ServerInfo) Reset { write(b, info); return ResetNone }
}

func answerTraceMask(b *strings.Builder, info ServerInfo) Reset {
	b.WriteString(flwI64toa(info.TraceMask))
	return ResetNone
}

// flwNotServing is ZooKeeper's answer while the server is not serving requests
// (for instance during leader election).
const flwNotServing = "This ZooKeeper instance is not currently serving requests"

// ServerInfo is what the four-letter words report, collected by the server at
// the moment of the request.
type ServerInfo struct {
	// Version is the full version line, normally FullVersion(), e.g.
	// "3.9.0-zabkeeper-0.1.0-dev, built on 01/01/2026 00:00 GMT". Monitoring
	// tools parse it: keep the "built on MM/dd/yyyy HH:mm GMT" form.
	Version string
	// Mode is standalone, leader, follower, observer or read-only.
	Mode string
	// NotServing is true while the server does not serve clients (election,
	// recovery); most words then answer ZooKeeper's "not currently serving".
	NotServing bool
	// MinLatency, AvgLatency and MaxLatency are request latencies in ms since
	// the last srst. Min and max are printed as whole ms, avg with up to 4
	// decimals, as ZooKeeper 3.6+ does.
	MinLatency, AvgLatency, MaxLatency float64
	// Received and Sent count packets since the last srst.
	Received, Sent int64
	// Connections is the number of live client connections.
	Connections int
	// Outstanding is the number of requests queued or in progress.
	Outstanding int
	// Zxid is the last processed zxid.
	Zxid int64
	// NodeCount is the number of znodes, "/" and "/zookeeper" included,
	// plus one, as ZooKeeper reports it: its DataTree keeps the root under
	// both "" and "/" and counts its map's entries, so ZooKeeper 3.8 says 5
	// for an empty tree (/, /zookeeper, /zookeeper/quota, /zookeeper/config).
	// The same figure on every server lets monitoring compare the servers
	// of a mixed ensemble (srvr, stat, mntr zk_znode_count, the admin
	// server's node_count and znode_count).
	NodeCount int
	// WatchCount is the total number of watches (wchs, mntr).
	WatchCount int
	// WatchPaths is the number of distinct watched paths (wchs).
	WatchPaths int
	// WatchingConns is the number of connections with at least one watch (wchs).
	WatchingConns int
	// Ephemerals is the number of ephemeral znodes.
	Ephemerals int
	// ApproxDataSize is the sum of the sizes of paths and data, in bytes.
	ApproxDataSize int64
	// OpenFDs and MaxFDs are the process's open and maximum file descriptors.
	OpenFDs, MaxFDs int64
	// ReadOnly is true when the server runs in read-only mode: isro answers
	// "ro" and srvr/stat add ZooKeeper's "READ-ONLY mode" line (Mode is then
	// "read-only").
	ReadOnly bool
	// Clients are the live connections, for stat and cons.
	Clients []ClientInfo
	// Watches maps a session id to its watched paths, for wchc; wchp is the
	// inverse.
	Watches map[int64][]string
	// SessionEphemerals maps a session id to its ephemeral paths, for dump.
	SessionEphemerals map[int64][]string
	// SessionExpiry maps each live session to the time it expires unless
	// touched, for dump.
	SessionExpiry map[int64]time.Time
	// Sessions is the number of live sessions (mntr zk_global_sessions).
	Sessions int
	// LocalSessions is the number of local sessions, those of read-only
	// clients (mntr zk_local_sessions).
	LocalSessions int
	// Env are the envi pairs: zookeeper.version, host.name, java.version
	// (the Go version), os.name, os.arch, user.dir ... in order.
	Env [][2]string
	// Conf are the conf pairs, normally Config.Properties().
	Conf [][2]string
	// Membership are the server.N lines printed after "membership: " by conf
	// on a quorum member, normally Config.Membership(); empty when standalone.
	Membership []string
	// DataDirSize and LogDirSize are the bytes used by the snapshot and log
	// directories (conf, dirs).
	DataDirSize, LogDirSize int64
	// Uptime is how long the server has been running (mntr zk_uptime).
	Uptime time.Duration
	// Epoch is the epoch being led or followed and QuorumSize the number of
	// voters in the configuration in force (0 when standalone): ZooKeeper's
	// QuorumPeer.getQuorumSize, the size of its voting view, not a
	// majority; mntr reports both.
	Epoch      int64
	QuorumSize int
	// Learners, SyncedFollowers, SyncedObservers and PendingSyncs are
	// reported by mntr on a leader only. SyncedFollowers counts
	// SyncedNonVotingFollowers too, as ZooKeeper's does.
	Learners, SyncedFollowers, SyncedNonVotingFollowers, SyncedObservers, PendingSyncs int
	// OutstandingProposals is the number of proposals not yet committed
	// (leader only).
	OutstandingProposals int
	// DuplicateIDs are server ids that two running processes claim, as the
	// peer transport detected (mntr zk_duplicate_server_ids, when any).
	DuplicateIDs []int64
	// TraceMask is the trace mask gtmk prints and stmk has just set.
	TraceMask int64
	// ProposalSizes is the last, smallest and largest proposal size in bytes,
	// reported by stat and srvr on a leader only.
	ProposalSizes [3]int64
	// ResponseSizes is the last, smallest and largest client reply size in
	// bytes, -1 before the first (mntr zk_*_client_response_size).
	ResponseSizes [3]int64
	// ClientTLS is true when a client port speaks TLS; mntr then reports
	// the three TLS handshake figures below under ZooKeeper's names.
	ClientTLS bool
	// OutstandingTLSHandshakes is the number of client TLS handshakes in
	// progress (zk_outstanding_tls_handshake).
	OutstandingTLSHandshakes int64
	// TLSHandshakeExceeded counts the connections closed because
	// outstandingHandshake.limit handshakes were in progress
	// (zk_tls_handshake_exceeded).
	TLSHandshakeExceeded int64
	// UnsuccessfulHandshakes counts the client TLS handshakes that failed:
	// bad or missing certificate, plain text on the TLS port, timeout
	// (zk_unsuccessful_handshake).
	UnsuccessfulHandshakes int64
	// DigestMismatches counts the times the tree digest, after replaying
	// the log at start, differed from the one a snapshot recorded
	// (ZooKeeper's digest_mismatches_count).
	DigestMismatches int64
}

// ClientInfo describes one client connection for stat and cons.
type ClientInfo struct {
	// Addr is the remote address, host:port.
	Addr string
	// Interest is the connection's interest set (1 read, 4 write), as NIO
	// reports it.
	Interest int
	// Queued is the number of outstanding requests of the connection.
	Queued int
	// Received and Sent count the connection's packets.
	Received, Sent int64
	// SessionID is the connection's session, 0 before the handshake; cons
	// prints the session fields only when it is set.
	SessionID int64
	// LastOp is the short name of the last operation (GETD, SETD, PING, ...),
	// "" printed as "NA".
	LastOp string
	// LastCxid is the client xid of the last request, negative if none.
	LastCxid int64
	// LastZxid is the zxid of the last response.
	LastZxid int64
	// Timeout is the negotiated session timeout in ms.
	Timeout int
	// Established is when the connection was accepted.
	Established time.Time
	// LastResponse is when the last response was sent, zero if none.
	LastResponse time.Time
	// LastLatency, MinLatency, AvgLatency and MaxLatency are the connection's
	// request latencies in ms (printed as whole ms).
	LastLatency, MinLatency, AvgLatency, MaxLatency float64
}

// Reset is the statistics reset a four-letter word asks of the server.
type Reset int

const (
	// ResetNone asks for nothing.
	ResetNone Reset = iota
	// ResetServerStats asks to reset the server's latency and packet
	// statistics (srst).
	ResetServerStats
	// ResetConnStats asks to reset every connection's statistics (crst).
	ResetConnStats
)

// FourLetter answers cmd (ruok, srvr, stat, mntr, conf, cons, envi, wchs,
// wchc, wchp, dump, isro, gtmk, stmk, crst, srst, dirs) for info, honouring the
// whitelist: a known command that is not whitelisted answers "<cmd> is not
// executed because it is not in the whitelist.\n" exactly as ZooKeeper 3.8;
// an unknown word answers "" (the server just closes the connection).
//
// crst and srst only answer their confirmation here; use FourLetterCommand to
// learn which reset the caller must perform.
func FourLetter(cmd string, whitelist map[string]bool, info ServerInfo) (reply string) {
	reply, _ = FourLetterCommand(cmd, whitelist, info)
	return reply
}

// FourLetterCommand is FourLetter that also reports the statistics reset the
// caller must perform (crst, srst). The reply is produced as if the reset had
// already happened, so the caller may reset before or after sending it.
func FourLetterCommand(cmd string, whitelist map[string]bool, info ServerInfo) (reply string, reset Reset) {
	w, ok := lookupFourLetter(cmd)
	if !ok {
		return "", ResetNone
	}
	if !whitelist[cmd] {
		return cmd + " is not executed because it is not in the whitelist.\n", ResetNone
	}
	if info.NotServing && !w.anyState {
		return flwNotServing + "\n", ResetNone
	}
	var b strings.Builder
	reset = w.answer(&b, info)
	return b.String(), reset
}

// flwWriteWatchesBySession writes the wchc answer: each watching session and
// its paths.
func flwWriteWatchesBySession(b *strings.Builder, info ServerInfo) {
	for _, sid := range flwSortedKeys(info.Watches) {
		b.WriteString(flwHex(sid) + "\n")
		for _, p := range flwSortedStrings(info.Watches[sid]) {
			b.WriteString("\t" + p + "\n")
		}
	}
	b.WriteString("\n")
}

// flwWriteWatchesByPath writes the wchp answer: each watched path and the
// sessions watching it.
func flwWriteWatchesByPath(b *strings.Builder, info ServerInfo) {
	byPath := map[string][]int64{}
	for sid, paths := range info.Watches {
		for _, p := range paths {
			byPath[p] = append(byPath[p], sid)
		}
	}
	paths := make([]string, 0, len(byPath))
	for p := range byPath {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		b.WriteString(p + "\n")
		sids := byPath[p]
		slices.Sort(sids)
		for _, sid := range sids {
			b.WriteString("\t" + flwHex(sid) + "\n")
		}
	}
	b.WriteString("\n")
}

// flwWriteStat writes the srvr answer, or with clients the stat answer.
func flwWriteStat(b *strings.Builder, info ServerInfo, clients bool) {
	b.WriteString("Zookeeper version: " + info.Version + "\n")
	if info.ReadOnly {
		b.WriteString("READ-ONLY mode; serving only read-only clients\n")
	}
	if clients {
		b.WriteString("Clients:\n")
		for _, c := range info.Clients {
			flwWriteClient(b, c, true)
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	b.WriteString("Latency min/avg/max: " + flwMs(info.MinLatency) + "/" + flwAvg(info.AvgLatency) + "/" + flwMs(info.MaxLatency) + "\n")
	b.WriteString("Received: " + flwI64toa(info.Received) + "\n")
	b.WriteString("Sent: " + flwI64toa(info.Sent) + "\n")
	b.WriteString("Connections: " + flwItoa(info.Connections) + "\n")
	b.WriteString("Outstanding: " + flwItoa(info.Outstanding) + "\n")
	b.WriteString("Zxid: " + flwHex(info.Zxid) + "\n")
	b.WriteString("Mode: " + info.Mode + "\n")
	b.WriteString("Node count: " + flwItoa(info.NodeCount) + "\n")
	if info.Mode == "leader" {
		p := info.ProposalSizes
		b.WriteString("Proposal sizes last/min/max: " + flwI64toa(p[0]) + "/" + flwI64toa(p[1]) + "/" + flwI64toa(p[2]) + "\n")
	}
}

// flwWriteClient writes one connection line without its newline: the brief form
// for stat, the full form with session fields for cons.
func flwWriteClient(b *strings.Builder, c ClientInfo, brief bool) {
	b.WriteString(" /" + c.Addr + "[")
	if c.Interest == 0 {
		b.WriteString("0")
	} else {
		b.WriteString(strconv.FormatInt(int64(c.Interest), 16))
	}
	b.WriteString("](queued=" + flwItoa(c.Queued) + ",recved=" + flwI64toa(c.Received) + ",sent=" + flwI64toa(c.Sent))
	if !brief && c.SessionID != 0 {
		lop := c.LastOp
		if lop == "" {
			lop = "NA"
		}
		b.WriteString(",sid=" + flwHex(c.SessionID) + ",lop=" + lop)
		b.WriteString(",est=" + flwI64toa(flwUnixMilli(c.Established)) + ",to=" + flwItoa(c.Timeout))
		if c.LastCxid >= 0 {
			b.WriteString(",lcxid=" + flwHex(c.LastCxid))
		}
		b.WriteString(",lzxid=" + flwHex(c.LastZxid) + ",lresp=" + flwI64toa(flwUnixMilli(c.LastResponse)))
		b.WriteString(",llat=" + flwMs(c.LastLatency) + ",minlat=" + flwMs(c.MinLatency))
		b.WriteString(",avglat=" + flwMs(c.AvgLatency) + ",maxlat=" + flwMs(c.MaxLatency))
	}
	b.WriteString(")")
}

// flwWriteMonitor writes the mntr answer: tab-separated zk_<key> lines.
func flwWriteMonitor(b *strings.Builder, info ServerInfo) {
	for _, v := range monitorValues(info) {
		b.WriteString("zk_" + v.key + "\t" + v.text + "\n")
	}
}

// flwWriteConf writes the conf answer: the Conf pairs, with the directory sizes
// after dataDir and dataLogDir as ZooKeeper prints them, then the membership
// of a quorum member.
func flwWriteConf(b *strings.Builder, info ServerInfo) {
	for _, kv := range info.Conf {
		b.WriteString(kv[0] + "=" + kv[1] + "\n")
		switch kv[0] {
		case "dataDir":
			b.WriteString("dataDirSize=" + flwI64toa(info.DataDirSize) + "\n")
		case "dataLogDir":
			b.WriteString("dataLogSize=" + flwI64toa(info.LogDirSize) + "\n")
		}
	}
	if len(info.Membership) > 0 {
		b.WriteString("membership: \n")
		for _, m := range info.Membership {
			b.WriteString(m + "\n")
		}
	}
}

// flwJavaDateLayout is the layout of java.util.Date.toString().
const flwJavaDateLayout = "Mon Jan 02 15:04:05 MST 2006"

// flwWriteDump writes the dump answer: sessions grouped by expiry time, then
// ephemeral nodes by session.
func flwWriteDump(b *strings.Builder, info ServerInfo) {
	byExpiry := map[int64][]int64{}
	for sid, t := range info.SessionExpiry {
		k := flwUnixMilli(t)
		byExpiry[k] = append(byExpiry[k], sid)
	}
	b.WriteString("SessionTracker dump:\n")
	b.WriteString("Session Sets (" + flwItoa(len(byExpiry)) + ")/(" + flwItoa(len(info.SessionExpiry)) + "):\n")
	for _, at := range flwSortedKeys(byExpiry) {
		sids := byExpiry[at]
		slices.Sort(sids)
		b.WriteString(flwItoa(len(sids)) + " expire at " + time.UnixMilli(at).UTC().Format(flwJavaDateLayout) + ":\n")
		for _, sid := range sids {
			b.WriteString("\t" + flwHex(sid) + "\n")
		}
	}
	b.WriteString("ephemeral nodes dump:\n")
	b.WriteString("Sessions with Ephemerals (" + flwItoa(len(info.SessionEphemerals)) + "):\n")
	for _, sid := range flwSortedKeys(info.SessionEphemerals) {
		b.WriteString(flwHex(sid) + ":\n")
		for _, p := range flwSortedStrings(info.SessionEphemerals[sid]) {
			b.WriteString("\t" + p + "\n")
		}
	}
	b.WriteString("Connections dump:\n")
}

// flwHex formats v as Java's "0x" + Long.toHexString(v): two's complement for
// negative values.
func flwHex(v int64) string { return "0x" + strconv.FormatUint(uint64(v), 16) }

// flwItoa formats an int in decimal.
func flwItoa(v int) string { return strconv.Itoa(v) }

// flwI64toa formats an int64 in decimal.
func flwI64toa(v int64) string { return strconv.FormatInt(v, 10) }

// flwMs formats a latency as whole milliseconds, as ZooKeeper's long counters.
func flwMs(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "0"
	}
	return strconv.FormatInt(int64(v), 10)
}

// flwAvg formats an average latency as ZooKeeper 3.6+ does: rounded to 4
// decimals and printed like a Java double ("0.0", "1.5", "0.3333"), except
// that tiny values are not printed in scientific notation, which monitoring
// tools cannot parse.
func flwAvg(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		v = 0
	}
	v = math.Round(v*1e4) / 1e4
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// flwUnixMilli returns t in ms since the epoch, 0 for the zero time.
func flwUnixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// flwSortedKeys returns the keys of m in increasing order.
func flwSortedKeys[V any](m map[int64]V) []int64 {
	keys := make([]int64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// flwSortedStrings returns a sorted copy of s.
func flwSortedStrings(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
