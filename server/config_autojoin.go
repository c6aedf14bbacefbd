package server

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// AutoJoinConfig holds the zabkeeper.autojoin keys: a server started with
// them joins a running ensemble by reconfig (server/autojoin does it, before
// and after the server starts), so a StatefulSet scaled up needs no
// hand-run command. Off by default.
type AutoJoinConfig struct {
	// Enabled is zabkeeper.autojoin (shipped configs write it as
	// ${ZABKEEPER_AUTOJOIN:-false}, so the environment turns it on). With it
	// on, this server's id may be missing from zoo.cfg's server.N lines:
	// the ensemble's own configuration decides the members.
	Enabled bool
	// Server is zabkeeper.autojoin.server: this server's own server.N value
	// (host:quorumPort:electionPort[;[clientAddr:]clientPort]), the line
	// the ensemble is asked to add. "" means this server's server.N line of
	// zoo.cfg, and is required when zoo.cfg has none.
	Server string
	// Seeds is zabkeeper.autojoin.seeds: client addresses (host:port, comma
	// separated) to read the ensemble's configuration from. Empty means the
	// client addresses of zoo.cfg's other server.N lines.
	Seeds []string
	// Digest is zabkeeper.autojoin.digest: user:password of a digest
	// identity allowed to reconfig (ZooKeeper's default: the super user of
	// DigestAuthenticationProvider.superDigest). Never logged.
	Digest string
}

// isAutoJoinKey reports whether key is one of the zabkeeper.autojoin keys.
func isAutoJoinKey(key string) bool {
	return key == "zabkeeper.autojoin" || strings.HasPrefix(key, "zabkeeper.autojoin.")
}

// autoJoinKey reads one zabkeeper.autojoin key of zoo.cfg.
func (c *Config) autoJoinKey(p cfgProperty) error {
	bad := func(format string, args ...any) error {
		return &ConfigError{Key: p.key, Line: p.line, Err: fmt.Errorf(format, args...)}
	}
	switch p.key {
	case "zabkeeper.autojoin":
		v, err := parseJavaBool(p.value)
		if err != nil {
			return bad("%v", err)
		}
		c.AutoJoin.Enabled = v
	case "zabkeeper.autojoin.server":
		if p.value != "" {
			// The id is checked once myid is known; 1 stands in for it.
			if _, err := parseServerSpec("1", p.value); err != nil {
				return bad("%v", err)
			}
		}
		c.AutoJoin.Server = p.value
	case "zabkeeper.autojoin.seeds":
		c.AutoJoin.Seeds = nil
		for _, s := range strings.Split(p.value, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			if _, port, err := net.SplitHostPort(s); err != nil || port == "" {
				return bad("seed %q: want host:port", s)
			}
			c.AutoJoin.Seeds = append(c.AutoJoin.Seeds, s)
		}
	case "zabkeeper.autojoin.digest":
		if p.value != "" && !strings.Contains(p.value, ":") {
			return bad("want user:password")
		}
		c.AutoJoin.Digest = p.value
	default:
		return bad("unknown autojoin key (want zabkeeper.autojoin, .server, .seeds or .digest)")
	}
	return nil
}

// AutoJoinSelf is this server's own member line for autojoin: the
// zabkeeper.autojoin.server value, else its server.N line of zoo.cfg.
func (c Config) AutoJoinSelf() (ServerSpec, error) {
	if c.ServerID < 1 {
		return ServerSpec{}, errors.New("autojoin needs a server id (myid or myidFromHostnameOrdinal)")
	}
	if c.AutoJoin.Server == "" {
		if s, ok := c.Servers[c.ServerID]; ok {
			if s.ClientPort == 0 {
				s.ClientPort = c.ClientPort
			}
			return s, nil
		}
		return ServerSpec{}, &ConfigError{Key: "zabkeeper.autojoin.server", Err: fmt.Errorf(
			"server %d has no server.N line in zoo.cfg: set zabkeeper.autojoin.server to its host:quorumPort:electionPort;clientPort", c.ServerID)}
	}
	s, err := parseServerSpec(strconv.Itoa(c.ServerID), c.AutoJoin.Server)
	if err != nil {
		return ServerSpec{}, &ConfigError{Key: "zabkeeper.autojoin.server", Err: err}
	}
	if s.ClientPort == 0 {
		s.ClientPort = c.ClientPort
	}
	return s, nil
}

// AutoJoinSeeds is where autojoin reads the ensemble's configuration:
// zabkeeper.autojoin.seeds, else the client addresses of zoo.cfg's
// server.N lines other than this server's (the line's client part, else
// this server's clientPort on the line's host).
func (c Config) AutoJoinSeeds() []string {
	if len(c.AutoJoin.Seeds) > 0 {
		return append([]string(nil), c.AutoJoin.Seeds...)
	}
	var seeds []string
	for id := 1; id <= 255; id++ {
		s, ok := c.Servers[id]
		if !ok || id == c.ServerID {
			continue
		}
		seeds = append(seeds, s.ClientAddress(c.ClientPort))
	}
	return seeds
}

// ClientAddress is where clients reach the server of this line: its client
// part, with the peer host standing in for a wildcard or missing client
// address, and defaultPort when the line has no client port.
func (s ServerSpec) ClientAddress(defaultPort int) string {
	host, port := s.ClientAddr, s.ClientPort
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = s.Host
	}
	if port == 0 {
		port = defaultPort
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// UseEnsembleConfig replaces the members with an ensemble's configuration
// in /zookeeper/config's form (server.N=... lines and version=<hex>), as
// autojoin found it, and checks the result as LoadConfig checks zoo.cfg:
// this server must be one of the members.
func (c *Config) UseEnsembleConfig(data string) error {
	servers := map[int]ServerSpec{}
	var version int64
	for _, line := range strings.Split(data, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		switch {
		case !ok:
			return fmt.Errorf("ensemble config: %q is not key=value", line)
		case key == "version":
			v, err := strconv.ParseInt(value, 16, 64)
			if err != nil {
				return fmt.Errorf("ensemble config: version %q is not a hex number", value)
			}
			version = v
		case strings.HasPrefix(key, "server."):
			spec, err := parseServerSpec(strings.TrimPrefix(key, "server."), value)
			if err != nil {
				return fmt.Errorf("ensemble config: %s: %w", key, err)
			}
			servers[spec.ID] = spec
		default:
			return fmt.Errorf("ensemble config: unexpected key %q", key)
		}
	}
	me, ok := servers[c.ServerID]
	if !ok {
		return fmt.Errorf("ensemble config version %x: my id %d not in the peer list", version, c.ServerID)
	}
	c.Servers, c.Dynamic.Version = servers, version
	if me.ClientPort != 0 {
		// The ensemble's line for us is the one we asked to add; its client
		// part is where we listen (as useOwnClientPort).
		c.ClientPort = me.ClientPort
		if me.ClientAddr != "" {
			c.ClientPortAddress = me.ClientAddr
		}
	}
	return c.Validate()
}
