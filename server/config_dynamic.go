package server

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/zabkeeper/zabkeeper/engine"
)

// DynamicConfig holds the zoo.cfg keys of ZooKeeper 3.5+'s dynamic
// configuration, read as QuorumPeerConfig reads them.
type DynamicConfig struct {
	// File is dynamicConfigFile: the file holding the server.N lines
	// instead of zoo.cfg ("" when zoo.cfg holds them). A relative path is
	// relative to the working directory, as Java opens it.
	File string
	// Version is the configuration's version: the hex number after the
	// last '.' of File's name (zoo.cfg.dynamic.100000000), 0 when that is
	// not a hex number, or zoo.cfg's own version key when the server.N
	// lines are in zoo.cfg. ZooKeeper puts it in /zookeeper/config.
	Version int64
	// ReconfigEnabled is reconfigEnabled (default false, as ZooKeeper):
	// with it on, an ensemble of zabkeeper servers takes reconfig requests
	// (engine/reconfig.go) and each server rewrites its dynamic config file
	// and zoo.cfg as ZooKeeper does (server/reconfig.go); with it off they
	// get ReconfigDisabled, as from ZooKeeper.
	ReconfigEnabled bool
	// StandaloneEnabled is standaloneEnabled (default true, as
	// ZooKeeper). zabkeeper uses it only for what /zookeeper/config holds:
	// ZooKeeper runs a single participant without the flag as a standalone
	// server, whose config node stays empty.
	StandaloneEnabled bool
}

// dynamicKeys collects, while zoo.cfg is read, what finish needs.
type dynamicKeys struct {
	fileLine int
	// static is the first server.N, group or weight line of zoo.cfg,
	// which ZooKeeper refuses beside a dynamicConfigFile.
	static *cfgProperty
	// hier is the first group.N or weight.N line.
	hier *cfgProperty
	// version is zoo.cfg's version key, used without a dynamic file.
	version *cfgProperty
}

// isDynamicKey reports whether key is one of the dynamic configuration
// keys dynamicKeys.take reads (server.N lines excepted).
func isDynamicKey(key string) bool {
	switch key {
	case "dynamicConfigFile", "reconfigEnabled", "standaloneEnabled", "version":
		return true
	}
	return strings.HasPrefix(key, "group.") || strings.HasPrefix(key, "weight.")
}

// take reads one dynamic configuration key of zoo.cfg.
func (d *dynamicKeys) take(c *Config, p cfgProperty) error {
	bad := func(format string, args ...any) error {
		return &ConfigError{Key: p.key, Line: p.line, Err: fmt.Errorf(format, args...)}
	}
	switch p.key {
	case "dynamicConfigFile":
		if p.value == "" {
			return bad("empty path")
		}
		c.Dynamic.File, d.fileLine = p.value, p.line
	case "reconfigEnabled", "standaloneEnabled":
		v, err := parseJavaBool(p.value)
		if err != nil {
			return bad("%v", err)
		}
		if p.key == "reconfigEnabled" {
			c.Dynamic.ReconfigEnabled = v
		} else {
			c.Dynamic.StandaloneEnabled = v
		}
	case "version":
		pc := p
		d.version = &pc
	default: // group.N, weight.N
		if d.hier == nil {
			pc := p
			d.hier = &pc
		}
		d.staticMember(p)
	}
	return nil
}

// staticMember notes a server.N, group.N or weight.N line of zoo.cfg.
func (d *dynamicKeys) staticMember(p cfgProperty) {
	if d.static == nil {
		pc := p
		d.static = &pc
	}
}

// finish applies the dynamic configuration once zoo.cfg is read: with a
// dynamicConfigFile it reads the server.N lines from that file, as
// QuorumPeerConfig.parse does.
func (d *dynamicKeys) finish(c *Config, logger *slog.Logger) error {
	if c.Dynamic.File == "" {
		if d.hier != nil {
			return errHierarchical(d.hier.key, "", d.hier.line)
		}
		if d.version != nil && len(c.Servers) > 0 {
			v, err := strconv.ParseInt(d.version.value, 16, 64)
			if err != nil {
				return &ConfigError{Key: "version", Line: d.version.line, Err: fmt.Errorf("%q is not a hex number", d.version.value)}
			}
			c.Dynamic.Version = v
		}
		return nil
	}
	if d.static != nil {
		// QuorumPeerConfig.parseProperties: "parameter: server.1 must be in
		// a separate dynamic config file".
		return &ConfigError{Key: d.static.key, Line: d.static.line, Err: fmt.Errorf(
			"must be in the dynamic config file %s, not in zoo.cfg, when dynamicConfigFile is set (ZooKeeper refuses this too)", c.Dynamic.File)}
	}
	servers, err := readDynamicConfigFile(c.Dynamic.File, d.fileLine)
	if err != nil {
		return err
	}
	c.Servers = servers
	c.Dynamic.Version = versionFromFilename(c.Dynamic.File)
	logger.Info("ensemble read from the dynamic config file", "dynamicConfigFile", c.Dynamic.File,
		"servers", len(servers), "version", strconv.FormatUint(uint64(c.Dynamic.Version), 16))
	return nil
}

// readDynamicConfigFile reads a dynamic configuration file: java.util.
// Properties syntax, only server.N lines (the last of a repeated key wins).
// Like ZooKeeper it refuses a version line (the version is the file name's)
// and any other key; unlike ZooKeeper, which runs standalone when the file
// names no participant, it refuses a file without one: a server started
// alone on an ensemble's dataDir would serve a history of its own.
func readDynamicConfigFile(path string, line int) (map[int]ServerSpec, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !filepath.IsAbs(path) {
			if wd, werr := os.Getwd(); werr == nil {
				err = fmt.Errorf("%w (a relative path is relative to the working directory %s, as in ZooKeeper)", err, wd)
			}
		}
		return nil, &ConfigError{Key: "dynamicConfigFile", Line: line, Err: err}
	}
	defer f.Close()
	props, err := readCfgProperties(f)
	if err != nil {
		return nil, &ConfigError{File: path, Key: "(syntax)", Err: err}
	}
	last := map[string]int{}
	var ordered []cfgProperty
	for _, p := range props {
		if i, ok := last[p.key]; ok {
			ordered[i] = p
			continue
		}
		last[p.key] = len(ordered)
		ordered = append(ordered, p)
	}
	servers := map[int]ServerSpec{}
	for _, p := range ordered {
		bad := func(format string, args ...any) error {
			return &ConfigError{File: path, Key: p.key, Line: p.line, Err: fmt.Errorf(format, args...)}
		}
		switch {
		case strings.HasPrefix(p.key, "server."):
			spec, err := parseServerSpec(strings.TrimPrefix(p.key, "server."), p.value)
			if err != nil {
				return nil, &ConfigError{File: path, Key: p.key, Line: p.line, Err: err}
			}
			servers[spec.ID] = spec
		case strings.HasPrefix(p.key, "group.") || strings.HasPrefix(p.key, "weight."):
			return nil, errHierarchical(p.key, path, p.line)
		case p.key == "version":
			return nil, bad("a dynamic config file holds no version: its name gives it (zoo.cfg.dynamic.<hex version>); ZooKeeper refuses this line too")
		default:
			return nil, bad("unrecognised parameter in a dynamic config file (only server.N lines belong there)")
		}
	}
	participants, observers := 0, 0
	for _, s := range servers {
		if s.Observer {
			observers++
		} else {
			participants++
		}
	}
	switch {
	case participants == 0 && observers > 0:
		return nil, &ConfigError{File: path, Key: "server.N", Err: errors.New("observers without participants is an invalid configuration")}
	case participants == 0:
		return nil, &ConfigError{File: path, Key: "server.N", Err: errors.New(
			"no server.N line: refusing to start as a standalone server on what should be an ensemble's dataDir")}
	}
	return servers, nil
}

// errHierarchical refuses group.N and weight.N lines: ZooKeeper's
// hierarchical quorums, which zabkeeper does not implement. Running them as
// majorities would let a mixed ensemble's quorums fail to intersect.
func errHierarchical(key, file string, line int) error {
	return &ConfigError{File: file, Key: key, Line: line, Err: errors.New(
		"hierarchical quorums (group.N/weight.N lines) are not supported: zabkeeper's quorums are majorities of the participants; remove the group and weight lines to run with majority quorums")}
}

// versionFromFilename is QuorumPeerConfig.getVersionFromFilename: the part
// of the name after its last '.' read as a hex number (zoo.cfg.dynamic.0
// is version 0, zoo.cfg.dynamic.1001 is 0x1001), and 0 when it is not one
// (zoo.cfg.dynamic).
func versionFromFilename(name string) int64 {
	i := strings.LastIndexByte(name, '.')
	if i < 0 {
		return 0
	}
	v, err := strconv.ParseInt(name[i+1:], 16, 64)
	if err != nil {
		return 0
	}
	return v
}

// warnNextDynamicConfig warns about the file an unfinished ZooKeeper
// reconfiguration leaves beside zoo.cfg (<zoo.cfg>.dynamic.next, the
// proposed configuration): ZooKeeper would finish that reconfiguration;
// zabkeeper takes a reconfig that is in flight from its txn log instead.
func (c Config) warnNextDynamicConfig(cfgPath string, logger *slog.Logger) {
	if logger == nil || c.Dynamic.File == "" {
		return
	}
	next := cfgPath + ".dynamic.next"
	if _, err := os.Stat(next); err == nil {
		logger.Warn("a proposed configuration of an unfinished ZooKeeper reconfig is present; zabkeeper ignores it (a reconfig in flight is taken from the txn log)",
			"file", next)
	}
}

// parseJavaBool reads a boolean as zabkeeper reads zoo.cfg booleans: true,
// yes, 1 or false, no, 0, empty, any case.
func parseJavaBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "true", "yes", "1":
		return true, nil
	case "false", "no", "0", "":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean", v)
}

// ensembleConfigData is what /zookeeper/config holds on this server, as on
// a ZooKeeper 3.8 server with this configuration: the members and version
// (engine.ConfigData) in an ensemble, "" for a standalone server, a single
// participant with standaloneEnabled (ZooKeeper runs that standalone)
// included.
func (c Config) ensembleConfigData() string {
	participants := 0
	for _, s := range c.Servers {
		if !s.Observer {
			participants++
		}
	}
	if len(c.Servers) == 0 || participants == 1 && c.Dynamic.StandaloneEnabled {
		return ""
	}
	return c.quorumConfigString()
}

// quorumConfigString is the ensemble's config as ZooKeeper's QuorumVerifier
// prints it: /zookeeper/config's data, and what ZooKeeper's peers send in
// notifications and NEWLEADER.
func (c Config) quorumConfigString() string {
	return engine.ConfigData(c.members(), c.Dynamic.Version)
}

// members are the server.N lines as the engine's Members.
func (c Config) members() []engine.Member {
	members := make([]engine.Member, 0, len(c.Servers))
	for id, s := range c.Servers {
		members = append(members, engine.Member{ID: int64(id), Host: s.Host, QuorumPort: s.QuorumPort,
			ElectionPort: s.ElectionPort, Observer: s.Observer, ClientPort: s.ClientPort, ClientHost: s.ClientAddr})
	}
	return members
}
