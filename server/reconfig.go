package server

import (
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/zabkeeper/zabkeeper/engine"
	"github.com/zabkeeper/zabkeeper/netstub/zktcp"
)

// Dynamic reconfiguration, the server's part: when the engine activates a
// configuration (engine.Ready.Config), the server records it as ZooKeeper's
// QuorumPeer.setQuorumVerifier does — the members, one server.N line each,
// sorted, no version line, in <zoo.cfg>.dynamic.<hex version> beside
// zoo.cfg, and zoo.cfg's dynamicConfigFile pointing at it (its server.N,
// group, weight and version lines removed, as QuorumPeerConfig.
// editStaticConfig does) — so a restart starts from it; and it links to the
// new members and drops the links to servers that left.

var _ engine.ConfigHandler = readyHandler{}

// ActivateConfig records the configuration this server activated and
// links to its members, before the batch's messages go out. A file it
// cannot write (zoo.cfg on a read-only mount, a Kubernetes ConfigMap say)
// does not stop the server, as it does not stop ZooKeeper: the
// configuration is in force all the same and the log says the files are
// stale. (The txn log holds the reconfig, so a restarted server is brought
// to it by its leader.)
func (h readyHandler) ActivateConfig(c engine.ConfigChange) error {
	s := h.s
	file, err := s.writeDynamicConfig(c)
	if err != nil {
		s.log.Error("the new configuration is in force, but its files could not be written: a restart starts from the old ones",
			"version", strconv.FormatUint(uint64(c.Version), 16), "err", err)
	}
	if s.book != nil {
		s.book.add(c.Members)
	}
	s.linkMembers(c.Members)
	var voters, observers []int64
	for _, m := range c.Members {
		if m.Observer {
			observers = append(observers, m.ID)
		} else {
			voters = append(voters, m.ID)
		}
	}
	s.log.Info("configuration activated", "version", strconv.FormatUint(uint64(c.Version), 16),
		"voters", voters, "observers", observers, "dynamicConfigFile", file)
	return nil
}

// dynamicConfigBase is the path the dynamic config files are named after:
// zoo.cfg's (Config.Path), or, for a configuration not read from a file,
// the dynamic file's without its ".dynamic.<version>" suffix; "" when
// there is neither (nothing to rewrite).
func (s *Server) dynamicConfigBase() string {
	if s.cfg.Path != "" {
		return s.cfg.Path
	}
	if f := s.dynFile; f != "" {
		if i := strings.LastIndex(f, ".dynamic."); i > 0 {
			return f[:i]
		}
	}
	return ""
}

// writeDynamicConfig writes c as <base>.dynamic.<hex version> and points
// zoo.cfg at it; it returns the file, "" when there is nowhere to write.
func (s *Server) writeDynamicConfig(c engine.ConfigChange) (string, error) {
	base := s.dynamicConfigBase()
	if base == "" {
		return "", nil
	}
	file, err := filepath.Abs(base + ".dynamic." + strconv.FormatUint(uint64(c.Version), 16))
	if err != nil {
		return "", fmt.Errorf("server: dynamic config file: %w", err)
	}
	members := slices.Clone(c.Members)
	slices.SortFunc(members, func(a, b engine.Member) int { return int(a.ID - b.ID) })
	var b bytes.Buffer
	for _, m := range members {
		line, _, _ := strings.Cut(engine.ConfigData([]engine.Member{m}, 0), "\n")
		b.WriteString(line)
		b.WriteByte('\n')
	}
	if err := writeFileSynced(file, b.Bytes()); err != nil {
		return "", err
	}
	if s.cfg.Path != "" {
		if err := editStaticConfig(s.cfg.Path, file); err != nil {
			return "", err
		}
	}
	s.dynFile = file
	return file, nil
}

// editStaticConfig rewrites zoo.cfg at path without its membership lines
// (server.N, group.N, weight.N, version, dynamicConfigFile) and with
// dynamicConfigFile=file, keeping every other line as it was.
func editStaticConfig(path, file string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("server: read %s: %w", path, err)
	}
	var b bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(old))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		key, _, _ := strings.Cut(strings.TrimSpace(line), "=")
		key = strings.TrimSpace(key)
		if strings.HasPrefix(key, "server.") || strings.HasPrefix(key, "group.") || strings.HasPrefix(key, "weight.") ||
			key == "version" || key == "dynamicConfigFile" {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("server: read %s: %w", path, err)
	}
	b.WriteString("dynamicConfigFile=" + file + "\n")
	return writeFileSynced(path, b.Bytes())
}

// writeFileSynced replaces path with data atomically and durably: a
// temporary file, fsync, rename, fsync of the directory.
func writeFileSynced(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("server: write %s: %w", path, err)
	}
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("server: write %s: %w", path, err)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("server: sync directory of %s: %w", path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("server: sync directory of %s: %w", path, err)
	}
	return nil
}

// linkMembers points the peer transport at the members of a new
// configuration: links to servers that joined at once; the links to
// servers that left go with the next configuration, so that a removed
// server still hears the COMMITANDACTIVATE that removes it (sent in the
// same batch) and knows it is out.
func (s *Server) linkMembers(members []engine.Member) {
	if s.zkPeers == nil {
		return // standalone: the engine refuses reconfig there
	}
	addrs := s.peersOf(members)
	all := maps.Clone(addrs)
	for id, a := range s.memberAddrs {
		if _, ok := addrs[id]; !ok {
			all[id] = a // until the next configuration
		}
	}
	s.memberAddrs = addrs
	s.zkPeers.SetPeers(all)
}

// peersOf maps members other than this server to their peer ports.
func (s *Server) peersOf(members []engine.Member) map[int64]zktcp.Peer {
	addrs := map[int64]zktcp.Peer{}
	for _, m := range members {
		if m.ID != int64(s.cfg.ServerID) {
			addrs[m.ID] = zktcp.Peer{
				QuorumAddr:   net.JoinHostPort(m.Host, strconv.Itoa(m.QuorumPort)),
				ElectionAddr: net.JoinHostPort(m.Host, strconv.Itoa(m.ElectionPort)),
			}
		}
	}
	return addrs
}

// learnConfig is the peer transport's LearnConfig: a notification carried
// a configuration newer than this server has seen (it restarted from an
// older dynamic file, say, while members joined), so its members'
// addresses go to the book, for this server's notifications to print it,
// and to the transport, for it to reach them. The configuration is not
// activated here: the engine adopts it from the notification for the
// election, and the leader's NEWLEADER brings it. Called from the
// transport's goroutines.
func (s *Server) learnConfig(config []byte) (map[int64]zktcp.Peer, error) {
	members, version, err := engine.ParseConfigData(string(config))
	if err != nil {
		return nil, err
	}
	s.book.add(members)
	ids := make([]int64, len(members))
	for i, m := range members {
		ids[i] = m.ID
	}
	s.log.Info("learned the members of a newer configuration from a notification",
		"version", strconv.FormatUint(uint64(version), 16), "members", ids)
	return s.peersOf(members), nil
}
