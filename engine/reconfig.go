package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto"
)

// Dynamic reconfiguration, the engine's part (zab/reconfig.go has the
// protocol's): a reconfig request (opcode 16) is a write, forwarded to the
// leader, which validates it as ZooKeeper's PrepRequestProcessor does, in
// its order — reconfigEnabled (ReconfigDisabled), a standalone server
// (Unimplemented), a reconfig in flight (ReconfigInProgress), curConfigId
// against the last-seen version unless -1 (BadVersion), the new member
// list (BadArguments), at least two voters with standaloneEnabled (one
// without), a quorum of the new voters connected and synced
// (NewConfigNoQuorum), WRITE on /zookeeper/config (NoAuth; super only by
// default) — and turns it into ZooKeeper's reconfig txn: a SetDataTxn of
// /zookeeper/config with the new configuration's string (ConfigData, its
// version the txn's zxid). zab activates the configuration when the txn
// commits; every replica applies the txn, which answers the client with the
// new data and Stat and fires the node's watches. Ready.Config tells the
// caller the configuration changed (dynamic config file, peer links).
//
// Beyond ZooKeeper, which ignores them: an incremental reconfig that
// removes an id that is no member, or names an id twice, is BadArguments.

// maxServerID is the largest server id: session ids hold it in one byte.
const maxServerID = 255

// ConfigChange is a configuration this server activated (Ready.Config).
type ConfigChange struct {
	// Version is the configuration's version (the zxid of its reconfig
	// txn).
	Version int64
	// Data is /zookeeper/config's content: the server lines and version.
	Data string
	// Members are the servers of the configuration.
	Members []Member
}

// ErrBadConfig is wrapped by the errors of ParseMember and
// ParseConfigData.
var ErrBadConfig = errors.New("engine: bad server configuration")

// ParseMember parses the value of a server.N line, as ZooKeeper's
// QuorumServer does: host:quorumPort:electionPort[:participant|observer]
// [;[clientHost:]clientPort], the host an IPv6 literal in brackets or not.
// One address per server (no '|').
func ParseMember(id int64, spec string) (Member, error) {
	bad := func(format string, args ...any) (Member, error) {
		return Member{}, fmt.Errorf("%w: server.%d=%s: %s", ErrBadConfig, id, spec, fmt.Sprintf(format, args...))
	}
	if id < 1 || id > maxServerID {
		return bad("id out of range [1, %d]", maxServerID)
	}
	m := Member{ID: id}
	serverPart, clientPart, hasClient := strings.Cut(spec, ";")
	serverPart = strings.TrimSpace(serverPart)
	if strings.Contains(serverPart, "|") {
		return bad("multiple addresses per server are not supported")
	}
	var rest string
	if strings.HasPrefix(serverPart, "[") {
		end := strings.Index(serverPart, "]")
		if end < 0 || len(serverPart) == end+1 || serverPart[end+1] != ':' {
			return bad("want host:quorumPort:electionPort[:role][;[clientAddr:]clientPort]")
		}
		m.Host, rest = serverPart[1:end], serverPart[end+2:]
	} else {
		var ok bool
		if m.Host, rest, ok = strings.Cut(serverPart, ":"); !ok {
			return bad("want host:quorumPort:electionPort[:role][;[clientAddr:]clientPort]")
		}
	}
	fields := strings.Split(rest, ":")
	if m.Host == "" || len(fields) < 2 || len(fields) > 3 {
		return bad("want host:quorumPort:electionPort[:role][;[clientAddr:]clientPort]")
	}
	if !validHost(m.Host) {
		return bad("bad host %q", m.Host)
	}
	port := func(s string) (int, bool) {
		n, err := strconv.Atoi(s)
		return n, err == nil && n >= 1 && n <= 65535
	}
	var ok bool
	if m.QuorumPort, ok = port(fields[0]); !ok {
		return bad("bad quorum port %q", fields[0])
	}
	if m.ElectionPort, ok = port(fields[1]); !ok {
		return bad("bad election port %q", fields[1])
	}
	if len(fields) == 3 {
		switch strings.ToLower(fields[2]) {
		case "participant":
		case "observer":
			m.Observer = true
		default:
			return bad("role %q is neither participant nor observer", fields[2])
		}
	}
	if hasClient {
		clientPart = strings.TrimSpace(clientPart)
		portText := clientPart
		if i := strings.LastIndex(clientPart, ":"); i >= 0 {
			m.ClientHost = strings.Trim(clientPart[:i], "[]")
			portText = clientPart[i+1:]
			if m.ClientHost == "" {
				return bad("empty client address")
			}
			if !validHost(m.ClientHost) {
				return bad("bad client address %q", m.ClientHost)
			}
		}
		if m.ClientPort, ok = port(portText); !ok {
			return bad("bad client port %q", portText)
		}
		if m.ClientHost == "" {
			// A port alone reads as the wildcard address, as
			// QuorumServer makes it (ConfigData prints it so).
			m.ClientHost = "0.0.0.0"
		}
	}
	return m, nil
}

// ParseConfigData parses a configuration as /zookeeper/config, a dynamic
// config file or a reconfig's newMembers writes it: "server.N=..." lines
// (newline or comma separated), an optional "version=<hex>" line, blank
// lines and '#' comments. An id given twice, a weight or group line (a
// hierarchical quorum) or any other key is an error. version is 0 without
// a version line.
func ParseConfigData(data string) (members []Member, version int64, err error) {
	data = strings.ReplaceAll(data, ",", "\n")
	seen := map[int64]bool{}
	for _, line := range strings.Split(data, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "!") {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, 0, fmt.Errorf("%w: %q is no key=value line", ErrBadConfig, line)
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch {
		case key == "version":
			v, err := strconv.ParseUint(value, 16, 64)
			if err != nil {
				return nil, 0, fmt.Errorf("%w: version %q is not hex", ErrBadConfig, value)
			}
			version = int64(v)
		case strings.HasPrefix(key, "server."):
			id, err := strconv.ParseInt(key[len("server."):], 10, 64)
			if err != nil {
				return nil, 0, fmt.Errorf("%w: %q is no server id", ErrBadConfig, key)
			}
			if seen[id] {
				return nil, 0, fmt.Errorf("%w: server.%d given twice", ErrBadConfig, id)
			}
			seen[id] = true
			m, err := ParseMember(id, value)
			if err != nil {
				return nil, 0, err
			}
			members = append(members, m)
		default:
			return nil, 0, fmt.Errorf("%w: unsupported key %q", ErrBadConfig, key)
		}
	}
	if err := checkAddresses(members); err != nil {
		return nil, 0, err
	}
	slices.SortFunc(members, func(a, b Member) int { return int(a.ID - b.ID) })
	return members, version, nil
}

// validHost reports whether h can be a server's host in a configuration:
// no white space (a line is trimmed, so " " would print back as no host),
// no brackets, and none of the separators of a server line or of the
// dynamic file (",", ";", "|", "=").
func validHost(h string) bool {
	return h != "" && !strings.ContainsFunc(h, func(r rune) bool {
		return unicode.IsSpace(r) || strings.ContainsRune("[],;|=", r)
	})
}

// checkAddresses refuses two servers sharing a quorum or election address
// (ZooKeeper's QuorumServer.checkAddressDuplicate).
func checkAddresses(members []Member) error {
	used := map[string]int64{}
	for _, m := range members {
		for _, p := range []int{m.QuorumPort, m.ElectionPort} {
			a := hostPort(m.Host, p)
			if other, ok := used[a]; ok && other != m.ID {
				return fmt.Errorf("%w: servers %d and %d share address %s", ErrBadConfig, other, m.ID, a)
			}
			used[a] = m.ID
		}
	}
	return nil
}

// membership is the zab view of members.
func membership(members []Member, version int64) zab.Membership {
	m := zab.Membership{Version: version}
	for _, s := range members {
		if s.Observer {
			m.Observers = append(m.Observers, s.ID)
		} else {
			m.Voters = append(m.Voters, s.ID)
		}
	}
	return m
}

// reconfigOf is zab's Config.ReconfigOf: the configuration a reconfig txn
// writes. A txn whose data does not parse is no reconfig zab acts on
// (ZooKeeper's leader never proposes one).
func reconfigOf(data []byte) (zab.Membership, bool) {
	// The TxnHeader's type is its last int32.
	if len(data) < tree.TxnHeaderSize || proto.OpCode(int32(binary.BigEndian.Uint32(data[tree.TxnHeaderSize-4:]))) != proto.OpReconfig {
		return zab.Membership{}, false
	}
	txn, err := tree.UnmarshalTxn(data)
	if err != nil || txn.Type != proto.OpReconfig {
		return zab.Membership{}, false
	}
	members, _, err := ParseConfigData(string(txn.Data))
	if err != nil {
		return zab.Membership{}, false
	}
	return membership(members, 0), true
}

// reconfigurable reports whether this server can take reconfig requests:
// a member of an ensemble (ZooKeeper's standalone server answers
// Unimplemented).
func (n *Node) reconfigurable() bool {
	return n.cfg.ServerID != 0 && n.cfg.Tree.ConfigData != ""
}

// prepareReconfig validates a reconfig on the leader and returns its txn,
// or an error txn.
func (n *Node) prepareReconfig(hdr tree.Txn, caller tree.Caller, r *proto.ReconfigRequest) *tree.Txn {
	errTxn := func(code proto.ErrCode) *tree.Txn {
		t := hdr
		t.Type, t.Err = proto.OpError, code
		return &t
	}
	if !n.cfg.ReconfigEnabled {
		return errTxn(proto.ErrReconfigDisabled)
	}
	if !n.reconfigurable() {
		return errTxn(proto.ErrUnimplemented)
	}
	st := n.zab.Status()
	data, applied := n.tree.ConfigNode()
	if st.PendingConfig != 0 || applied != st.ConfigVersion {
		// One in flight, or committed and not yet applied here.
		return errTxn(proto.ErrReconfigInProgress)
	}
	if r.CurConfigID != -1 && r.CurConfigID != st.ConfigVersion {
		return errTxn(proto.ErrBadVersion)
	}
	current, _, err := ParseConfigData(string(data))
	if err != nil {
		return errTxn(proto.ErrBadArguments)
	}
	next, err := nextMembers(current, r)
	if err != nil {
		return errTxn(proto.ErrBadArguments)
	}
	m := membership(next, hdr.Zxid)
	if minVoters := 1 + btoi(n.cfg.StandaloneEnabled); len(m.Voters) < minVoters {
		return errTxn(proto.ErrBadArguments)
	}
	if !n.zab.QuorumSynced(m) {
		return errTxn(proto.ErrNewConfigNoQuorum)
	}
	return n.tree.PrepareReconfig(hdr, caller, []byte(ConfigData(next, hdr.Zxid)))
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// nextMembers is the configuration a reconfig asks for: newMembers when it
// is not null, else current minus leavingServers plus joiningServers
// (a joiner replaces a member of its id: how a role or address changes).
func nextMembers(current []Member, r *proto.ReconfigRequest) ([]Member, error) {
	if !r.NewMembersNull {
		members, _, err := ParseConfigData(r.NewMembers)
		return members, err
	}
	byID := map[int64]Member{}
	for _, m := range current {
		byID[m.ID] = m
	}
	seen := map[int64]bool{}
	for _, s := range splitList(r.LeavingServers) {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: leaving server %q is no id", ErrBadConfig, s)
		}
		if _, ok := byID[id]; !ok || seen[id] {
			return nil, fmt.Errorf("%w: leaving server %d is no member or is named twice", ErrBadConfig, id)
		}
		seen[id] = true
		delete(byID, id)
	}
	joined := map[int64]bool{}
	for _, s := range splitList(r.JoiningServers) {
		key, value, ok := strings.Cut(s, "=")
		if !ok || strings.Contains(value, "=") {
			return nil, fmt.Errorf("%w: %q: wrong format of server string", ErrBadConfig, s)
		}
		key = strings.TrimSpace(key)
		id, err := strconv.ParseInt(key[strings.LastIndex(key, ".")+1:], 10, 64)
		if err != nil || joined[id] {
			return nil, fmt.Errorf("%w: %q: bad or repeated server id", ErrBadConfig, s)
		}
		joined[id] = true
		m, err := ParseMember(id, strings.TrimSpace(value))
		if err != nil {
			return nil, err
		}
		if m.ClientPort == 0 {
			// ZooKeeper: "each server should have 3 ports specified".
			return nil, fmt.Errorf("%w: %q has no client port", ErrBadConfig, s)
		}
		byID[id] = m
	}
	next := make([]Member, 0, len(byID))
	for _, id := range sortedMemberIDs(byID) {
		next = append(next, byID[id])
	}
	if err := checkAddresses(next); err != nil {
		return nil, err
	}
	return next, nil
}

func sortedMemberIDs(m map[int64]Member) []int64 {
	ids := make([]int64, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// splitList splits a comma-separated list, trimming blanks and dropping
// empty items (ZooKeeper's StringUtils.split).
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// noteConfig queues Ready.Config once the configuration zab activated is
// the one /zookeeper/config holds (the reconfig txn applied, or a snapshot
// brought it).
func (n *Node) noteConfig() {
	if !n.cfg.ReconfigEnabled || !n.reconfigurable() {
		return
	}
	data, version := n.tree.ConfigNode()
	if active := n.zab.ConfigVersion(); active > version {
		data, version = n.versionConfigNode(data, version, active)
	}
	if version == n.configOut || version != n.zab.ConfigVersion() {
		return
	}
	members, _, err := ParseConfigData(string(data))
	if err != nil {
		return // never one a reconfig wrote
	}
	n.configOut = version
	n.tail(false).Config = &ConfigChange{Version: version, Data: string(data), Members: members}
}

// versionConfigNode gives /zookeeper/config (data, version) the version
// active of zab's configuration in force when that configuration is the
// node's under a newer version: ZOOKEEPER-1783's first leader (zab's
// newLeaderConfig) activates the initial configuration under NEWLEADER's
// zxid, with no txn, and ZooKeeper's processReconfig then writes it into
// the node (initConfigInZKDatabase). It returns the node as it is now.
func (n *Node) versionConfigNode(data []byte, version, active int64) ([]byte, int64) {
	members, _, err := ParseConfigData(string(data))
	if err != nil {
		return data, version
	}
	m, cur := membership(members, active), n.zab.ActiveConfig()
	slices.Sort(m.Voters)
	slices.Sort(m.Observers)
	if !slices.Equal(m.Voters, cur.Voters) || !slices.Equal(m.Observers, cur.Observers) {
		return data, version // another configuration: its txn brings it
	}
	next := ConfigData(members, active)
	n.tree.SetConfigNode(next, active)
	n.cfg.Tree.ConfigData, n.cfg.Tree.ConfigVersion = next, active
	return n.tree.ConfigNode()
}

// restoreConfig, at start, takes the configuration /zookeeper/config
// holds when a snapshot brought a newer one than the server's files (it
// crashed between applying a reconfig and writing its dynamic config
// file), so zab starts from it; the log's reconfig txns after the snapshot
// are zab's to find.
func (n *Node) restoreConfig() {
	n.configOut = n.cfg.Tree.ConfigVersion
	if !n.cfg.ReconfigEnabled || !n.reconfigurable() {
		return
	}
	data, version := n.tree.ConfigNode()
	if version <= n.cfg.Tree.ConfigVersion {
		return
	}
	members, _, err := ParseConfigData(string(data))
	if err != nil {
		return
	}
	m := membership(members, version)
	n.cfg.Voters, n.cfg.Observers = m.Voters, m.Observers
	n.cfg.Tree.ConfigData, n.cfg.Tree.ConfigVersion = string(data), version
}

// Configs returns the active configuration and the pending one, if any
// (for the simulator's checks, and mntr's synced followers).
func (n *Node) Configs() (active zab.Membership, pending *zab.Membership) {
	active = n.zab.ActiveConfig()
	if p, ok := n.zab.PendingConfig(); ok {
		pending = &p
	}
	return active, pending
}

// ConfigVersions returns the versions of zab's active configuration and of
// its newest pending one (0 without), without allocating.
func (n *Node) ConfigVersions() (active, pending int64) { return n.zab.ConfigVersions() }

// PendingMembers returns the servers of the newest pending configuration,
// with their addresses, from the reconfig txn that proposed it; ok is
// false without one or when the log no longer holds its txn. The peer
// transport prints a leader's NEWLEADER from them (ZooKeeper's last-seen
// configuration), which may name a server that is no member yet.
func (n *Node) PendingMembers() (members []Member, ok bool) {
	data, ok := n.zab.PendingConfigEntry()
	if !ok {
		return nil, false
	}
	txn, err := tree.UnmarshalTxn(data)
	if err != nil || txn.Type != proto.OpReconfig {
		return nil, false
	}
	members, _, err = ParseConfigData(string(txn.Data))
	return members, err == nil
}
