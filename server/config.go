package server

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/zabkeeper/zabkeeper/disk"
	"github.com/zabkeeper/zabkeeper/proto"
	"github.com/zabkeeper/zabkeeper/server/admin"
)

// Default values of the configuration, as in ZooKeeper 3.9.
const (
	DefaultTickTime        = 2000
	DefaultDataDir         = "./data"
	DefaultClientPort      = 2181
	DefaultMaxClientCnxns  = 60
	DefaultSnapRetainCount = 3
	DefaultJuteMaxBuffer   = 0xfffff
	DefaultSnapCount       = 100000
	// DefaultContainerCheckInterval is znode.container.checkIntervalMs's default.
	DefaultContainerCheckInterval = 60000
	DefaultInitLimit              = 10
	DefaultSyncLimit              = 5
)

// cfgMinSnapRetainCount is the smallest autopurge.snapRetainCount ZooKeeper
// accepts; smaller values are raised to it.
const cfgMinSnapRetainCount = 3

// cfgMinSnapCount is the smallest snapCount ZooKeeper accepts; smaller values
// are raised to it.
const cfgMinSnapCount = 2

// Config is the server's configuration, read from a zoo.cfg or defaulted.
type Config struct {
	// TickTime is the basic time unit in milliseconds (tickTime), default 2000.
	TickTime int
	// DataDir holds snapshots and, unless DataLogDir says otherwise, the
	// transaction log (dataDir), default "./data". A relative path is relative
	// to the process's working directory, as in ZooKeeper.
	DataDir string
	// DataLogDir holds the transaction log (dataLogDir), default DataDir.
	DataLogDir string
	// ClientPort is the TCP port clients connect to (clientPort), default
	// 2181. 0 asks the operating system for a free port (useful in tests);
	// -1 means no plain port, as when a zoo.cfg names only
	// secureClientPort (config_tls.go).
	ClientPort int
	// ClientPortAddress is the address to listen on (clientPortAddress),
	// default "" meaning all interfaces.
	ClientPortAddress string
	// MaxClientCnxns limits concurrent connections per client IP
	// (maxClientCnxns), default 60, 0 = unlimited.
	MaxClientCnxns int
	// MinSessionTimeout is the smallest session timeout granted, in ms
	// (minSessionTimeout), default 2*TickTime.
	MinSessionTimeout int
	// MaxSessionTimeout is the largest session timeout granted, in ms
	// (maxSessionTimeout), default 20*TickTime.
	MaxSessionTimeout int
	// SnapRetainCount is how many snapshots autopurge keeps
	// (autopurge.snapRetainCount), default and minimum 3.
	SnapRetainCount int
	// PurgeInterval is the autopurge period in hours
	// (autopurge.purgeInterval), 0 = autopurge off.
	PurgeInterval int
	// FourLetterWords is the set of enabled four-letter words
	// (4lw.commands.whitelist: a comma list, "*" = all known). srvr is always
	// enabled, and isro too in read-only mode, as in ZooKeeper.
	FourLetterWords map[string]bool
	// JuteMaxBuffer is the largest record accepted on the wire, in bytes
	// (jute.maxbuffer), default 0xfffff, at most proto.MaxMaxBuffer
	// (512 MiB). It sizes the other layers too: the leader refuses a request
	// whose txn exceeds proto.TxnLimit of it (BadArguments), and peer frames
	// carry at least that much.
	JuteMaxBuffer int
	// SnapshotCompression is how snapshots are compressed
	// (zookeeper.snapshot.compression.method): "gz", "snappy" or "" for
	// none, the default; other values mean none, as in ZooKeeper. Snapshots
	// are read whatever their compression.
	SnapshotCompression string
	// SnapCount is the number of transactions between snapshots (snapCount),
	// default 100000, minimum 2.
	SnapCount int
	// PreAllocSizeKB is how much, in KiB, a transaction log file grows by
	// with zeros at a time (zookeeper.preAllocSize; default 65536, 0: no
	// preallocation), as ZooKeeper's.
	PreAllocSizeKB int
	// SuperDigest is "super:<base64 sha1>" for the digest super user
	// (zookeeper.DigestAuthenticationProvider.superDigest), "" = none.
	SuperDigest string
	// ExtendedTypes enables TTL nodes (zookeeper.extendedTypesEnabled).
	ExtendedTypes bool
	// ContainerCheckInterval is how often, in ms, empty containers and
	// expired TTL nodes are deleted (znode.container.checkIntervalMs),
	// default 60000.
	ContainerCheckInterval int
	// InitLimit is how many ticks followers may take to connect and sync to
	// a leader (initLimit), default 10.
	InitLimit int
	// SyncLimit is how many ticks a follower may lag (syncLimit), default 5.
	SyncLimit int
	// PeerProtocol is what the peer links speak (zabkeeper.peerProtocol,
	// also read as peerProtocol): PeerProtocolZooKeeper, the only one,
	// Apache ZooKeeper's election and quorum ports, so ZooKeeper servers
	// and this one form one ensemble (zabkeeper's extras ride in a hello
	// between zabkeeper servers). The former "zabkeeper" is refused with
	// what to do (errPeerProtocolRemoved).
	PeerProtocol string
	// NoConnectionPoller turns the connection poller off
	// (zabkeeper.connectionPoller=false): every plain-TCP connection's
	// requests are then read by its own goroutine, as they are over TLS
	// (poller_linux.go).
	NoConnectionPoller bool
	// CommitLogCount is how many recent txns a leader keeps in memory to
	// bring a lagging learner up to date by DIFF; one further behind gets
	// a snapshot (zookeeper.commitLogCount). 0 means the engine's default
	// of 500, ZooKeeper's. Unlike ZooKeeper, smaller values are accepted.
	CommitLogCount int
	// SnapshotSizeFactor bounds the same in-memory txns by bytes: at most
	// this share of the tree's data size (at least 4 MiB), and a learner
	// whose missing txns weigh more gets a snapshot instead of a diff
	// (zookeeper.snapshotSizeFactor, at most 1). 0 means ZooKeeper's
	// default 0.33; negative turns the byte bound off (in zoo.cfg, 0 does
	// too, as ZooKeeper reads it as no limit).
	SnapshotSizeFactor float64
	// ServerID is this server's id from <DataDir>/myid, 0 when standalone.
	ServerID int
	// Servers are the ensemble members from the server.N lines, by id.
	Servers map[int]ServerSpec
	// Path is the zoo.cfg this configuration was read from (LoadConfig),
	// "" otherwise: a reconfig rewrites it as ZooKeeper does
	// (reconfig.go).
	Path string
	// Dynamic holds the dynamic configuration keys: dynamicConfigFile,
	// the configuration's version, reconfigEnabled, standaloneEnabled
	// (config_dynamic.go).
	Dynamic DynamicConfig
	// AutoJoin holds the zabkeeper.autojoin keys: joining a running
	// ensemble by reconfig at start (config_autojoin.go, server/autojoin).
	AutoJoin AutoJoinConfig
	// ReadOnlyMode lets a server cut off from its quorum serve read-only
	// clients (readonlymode.enabled; see engine/readonly.go). ZooKeeper reads
	// it only as the Java system property -Dreadonlymode.enabled=true; we
	// take it from zoo.cfg, with or without the "zookeeper." prefix.
	ReadOnlyMode bool
	// MyIDFromHostnameOrdinal takes the server id from the StatefulSet
	// ordinal at the end of the host name when <DataDir>/myid is absent
	// (myidFromHostnameOrdinal, a zabkeeper key): "zk-0" or
	// "zk-0.zk-hs.ns.svc.cluster.local" is id 1, the ordinal plus one,
	// since ZooKeeper ids usually start at 1. A myid file wins over it.
	MyIDFromHostnameOrdinal bool
	// QuorumListenOnAllIPs binds the quorum port on every interface
	// (0.0.0.0) instead of this server's own server.N address
	// (quorumListenOnAllIPs, as in ZooKeeper).
	QuorumListenOnAllIPs bool
	// AdminEnableServer turns on the admin HTTP listener: ZooKeeper's
	// AdminServer commands, the /livez and /readyz probes and /metrics
	// (admin.enableServer), default true as in ZooKeeper.
	AdminEnableServer bool
	// AdminServerAddress is the admin listener's address
	// (admin.serverAddress), default "0.0.0.0" as in ZooKeeper.
	AdminServerAddress string
	// AdminServerPort is the admin listener's port (admin.serverPort),
	// default 7181 rather than ZooKeeper's 8080 (see admin.DefaultPort). 0
	// asks the operating system for a free port (useful in tests).
	AdminServerPort int
	// TruncateCorruptTail lets recovery cut a corrupt final record of the
	// txn log (a complete record whose checksum fails) instead of refusing
	// to start, logging what it drops. Not a zoo.cfg key: the operator
	// asks for it once, with zabkeeper server --truncate-corrupt-tail,
	// after deciding the record is not needed (another replica has it).
	TruncateCorruptTail bool
	// LogFS is the file system the txn log lives on; nil means the
	// operating system's. Tests inject faults through it (disk.WithFaults).
	LogFS disk.FS
	// TLS holds the TLS keys (config_tls.go).
	TLS TLSConfig
	// Security configures cloud identities (oidc), the audit log and quotas
	// (config_security.go).
	Security SecurityConfig
	// Unknown holds the keys zabkeeper does not know with their values.
	// ZooKeeper turns them into system properties; we only warn about them.
	Unknown map[string]string
}

// ServerSpec is one server.N line of a zoo.cfg:
// server.N=host:quorumPort:electionPort[:participant|observer][;[clientAddr:]clientPort].
type ServerSpec struct {
	// ID is N, the server's id (1..255).
	ID int
	// Host is the address peers use to reach the server.
	Host string
	// QuorumPort is where followers connect to the leader.
	QuorumPort int
	// ElectionPort is where leader election runs.
	ElectionPort int
	// Observer is true for a non-voting member.
	Observer bool
	// ClientAddr is the client listen address from the ";" part, "" if none.
	ClientAddr string
	// ClientPort is the client port from the ";" part, 0 if none.
	ClientPort int
}

// String formats the spec back into zoo.cfg syntax (without the "server.N=").
func (s ServerSpec) String() string {
	role := "participant"
	if s.Observer {
		role = "observer"
	}
	out := net.JoinHostPort(s.Host, strconv.Itoa(s.QuorumPort)) + ":" + strconv.Itoa(s.ElectionPort) + ":" + role
	if s.ClientPort != 0 {
		out += ";"
		if s.ClientAddr != "" {
			out += net.JoinHostPort(s.ClientAddr, strconv.Itoa(s.ClientPort))
		} else {
			out += strconv.Itoa(s.ClientPort)
		}
	}
	return out
}

// DefaultConfig returns the configuration of a standalone server with
// ZooKeeper's defaults.
func DefaultConfig() Config {
	return Config{
		TickTime:               DefaultTickTime,
		DataDir:                DefaultDataDir,
		DataLogDir:             DefaultDataDir,
		ClientPort:             DefaultClientPort,
		MaxClientCnxns:         DefaultMaxClientCnxns,
		MinSessionTimeout:      2 * DefaultTickTime,
		MaxSessionTimeout:      20 * DefaultTickTime,
		SnapRetainCount:        DefaultSnapRetainCount,
		FourLetterWords:        map[string]bool{"srvr": true},
		JuteMaxBuffer:          DefaultJuteMaxBuffer,
		SnapCount:              DefaultSnapCount,
		PreAllocSizeKB:         64 << 10,
		ContainerCheckInterval: DefaultContainerCheckInterval,
		InitLimit:              DefaultInitLimit,
		SyncLimit:              DefaultSyncLimit,
		PeerProtocol:           PeerProtocolZooKeeper,
		Servers:                map[int]ServerSpec{},
		Dynamic:                DynamicConfig{StandaloneEnabled: true},
		AdminEnableServer:      true,
		AdminServerAddress:     admin.DefaultAddress,
		AdminServerPort:        admin.DefaultPort,
		TLS:                    defaultTLSConfig(),
		Security:               DefaultSecurityConfig(),
		Unknown:                map[string]string{},
	}
}

// PeerProtocolZooKeeper is Apache ZooKeeper's election and leader/learner
// protocol on its two ports (netstub/zktcp), the peer protocol of every
// zabkeeper server (Config.PeerProtocol).
const PeerProtocolZooKeeper = "zookeeper"

// errPeerProtocolRemoved refuses zabkeeper.peerProtocol=zabkeeper, the
// one-port protocol zabkeeper servers spoke before ZooKeeper's became the
// default, saying what to do.
var errPeerProtocolRemoved = errors.New(`"zabkeeper" (zabkeeper's former one-port peer protocol) was removed: ` +
	`remove the key; zabkeeper servers speak ZooKeeper's protocol, with their extras between them ` +
	`(servers still running the former protocol cannot talk to this one: restart them all on this version)`)

// parsePeerProtocol reads zabkeeper.peerProtocol.
func parsePeerProtocol(v string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case PeerProtocolZooKeeper:
		return PeerProtocolZooKeeper, nil
	case "zabkeeper":
		return "", errPeerProtocolRemoved
	}
	return "", fmt.Errorf("%q is not a peer protocol (want %s)", v, PeerProtocolZooKeeper)
}

// cfgProperty is one key=value pair of a properties file and the line it began on.
type cfgProperty struct {
	key, value string
	line       int
}

// ConfigError reports a bad value of a known key.
type ConfigError struct {
	// File is the file the key was read from when it is not the zoo.cfg
	// itself (the dynamicConfigFile), "" otherwise.
	File string
	// Key is the configuration key.
	Key string
	// Line is the line the key was read from, 0 if it was not read from a file.
	Line int
	// Err is what is wrong with it.
	Err error
}

// Error implements error.
func (e *ConfigError) Error() string {
	if e.File != "" {
		if e.Line > 0 {
			return fmt.Sprintf("config %s line %d: %s: %v", e.File, e.Line, e.Key, e.Err)
		}
		return fmt.Sprintf("config %s: %s: %v", e.File, e.Key, e.Err)
	}
	if e.Line > 0 {
		return fmt.Sprintf("config line %d: %s: %v", e.Line, e.Key, e.Err)
	}
	return fmt.Sprintf("config: %s: %v", e.Key, e.Err)
}

// Unwrap returns the underlying error.
func (e *ConfigError) Unwrap() error { return e.Err }

// cfgIgnoredKeys are ZooKeeper settings zabkeeper accepts without using them
// (logged at info level rather than warned about as unknown).
var cfgIgnoredKeys = map[string]bool{
	"electionAlg": true, "peerType": true, "leaderServes": true,
	"maxCnxns":             true,
	"localSessionsEnabled": true, "localSessionsUpgradingEnabled": true,
	"forceSync": true, "syncEnabled": true, "clientPortListenBacklog": true, "preAllocSize": true,
	"globalOutstandingLimit": true, "connectToLearnerMasterLimit": true, "observerMasterPort": true,
	"metricsProvider.className": true, "multiAddress.enabled": true, "serverCnxnFactory": true,
	"admin.commandURL": true, "admin.idleTimeout": true,
}

// cfgIgnoredPrefixes are key prefixes zabkeeper accepts without using them.
var cfgIgnoredPrefixes = []string{"admin.", "metricsProvider.", "ssl.", "quorum.", "authProvider."}

// cfgSysPropKey maps the keys that are ZooKeeper system properties to their
// canonical name. ZooKeeper prefixes zoo.cfg keys it does not know with
// "zookeeper." before turning them into system properties, so both spellings
// are accepted; the prefix is stripped before this lookup.
var cfgSysPropKey = map[string]string{
	"jute.maxbuffer": "jute.maxbuffer",
	"snapCount":      "snapCount",
	"preAllocSize":   "preAllocSize",
	"DigestAuthenticationProvider.superDigest": "DigestAuthenticationProvider.superDigest",
	"extendedTypesEnabled":                     "extendedTypesEnabled",
	"4lw.commands.whitelist":                   "4lw.commands.whitelist",
	"readonlymode.enabled":                     "readonlymode.enabled",
	"znode.container.checkIntervalMs":          "znode.container.checkIntervalMs",
	"commitLogCount":                           "commitLogCount",
	"admin.enableServer":                       "admin.enableServer",
	"admin.serverAddress":                      "admin.serverAddress",
	"admin.serverPort":                         "admin.serverPort",
	"snapshotSizeFactor":                       "snapshotSizeFactor",
	"snapshot.compression.method":              "snapshot.compression.method",
}

// ParseConfig reads a zoo.cfg in java.util.Properties syntax: '#' and '!'
// comment lines; "key=value", "key: value" or "key value"; surrounding blanks
// trimmed; backslash escapes and line continuation as in Java.
//
// Unknown keys are not errors: they are collected in Config.Unknown and each
// is logged with a warning (ZooKeeper turns them into system properties). Bad
// values of known keys are errors naming the key and line. When a key occurs
// twice the later line wins, as in Java.
//
// Defaults that depend on other keys (session timeouts from tickTime,
// dataLogDir from dataDir) are resolved after the whole file is read. The
// myid file is not read; see LoadConfig. A nil logger discards the warnings.
func ParseConfig(r io.Reader, logger *slog.Logger) (Config, error) {
	c, _, err := parseConfig(r, logger)
	return c, err
}

// cfgExplicit records which keys a file named, where that matters after
// parsing (useOwnClientPort).
type cfgExplicit struct {
	clientPort, clientAddr bool
}

func parseConfig(r io.Reader, logger *slog.Logger) (Config, cfgExplicit, error) {
	var explicit cfgExplicit
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	props, err := readCfgProperties(r)
	if err != nil {
		return Config{}, cfgExplicit{}, fmt.Errorf("read config: %w", err)
	}

	// Later lines win; keep the first position so processing follows the file.
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

	for i := range ordered {
		v, err := expandEnv(ordered[i].value, os.LookupEnv)
		if err != nil {
			return Config{}, cfgExplicit{}, &ConfigError{Key: ordered[i].key, Line: ordered[i].line, Err: err}
		}
		ordered[i].value = v
	}

	c := DefaultConfig()
	var (
		minSet, maxSet, logDirSet bool
		whitelist                 *cfgProperty
		dyn                       dynamicKeys
	)
	for _, p := range ordered {
		bad := func(format string, args ...any) error {
			return &ConfigError{Key: p.key, Line: p.line, Err: fmt.Errorf(format, args...)}
		}
		intVal := func(lo, hi int) (int, error) {
			n, err := strconv.Atoi(p.value)
			if err != nil {
				return 0, bad("%q is not an integer", p.value)
			}
			if n < lo || n > hi {
				return 0, bad("%d is out of range [%d, %d]", n, lo, hi)
			}
			return n, nil
		}
		boolVal := func() (bool, error) {
			// Java's Boolean.parseBoolean: "true" in any case is true, anything
			// else false. We are stricter about obvious typos.
			switch strings.ToLower(p.value) {
			case "true", "yes", "1":
				return true, nil
			case "false", "no", "0", "":
				return false, nil
			}
			return false, bad("%q is not a boolean", p.value)
		}

		key := p.key
		if canon, ok := cfgSysPropKey[strings.TrimPrefix(key, "zookeeper.")]; ok {
			key = canon
		}
		var tlsKey bool
		if tlsKey, err = c.TLS.setTLSKey(key, p.value); err != nil {
			err = &ConfigError{Key: p.key, Line: p.line, Err: err}
		}
		switch {
		case tlsKey:
		case key == "tickTime":
			c.TickTime, err = intVal(1, 1<<30)
		case key == "dataDir":
			if p.value == "" {
				err = bad("empty path")
			}
			c.DataDir = p.value
		case key == "dataLogDir":
			if p.value == "" {
				err = bad("empty path")
			}
			c.DataLogDir, logDirSet = p.value, true
		case key == "clientPort":
			c.ClientPort, err = intVal(0, 65535)
			explicit.clientPort = true
		case key == "clientPortAddress":
			c.ClientPortAddress = strings.Trim(p.value, "[]")
			explicit.clientAddr = true
		case key == "maxClientCnxns":
			c.MaxClientCnxns, err = intVal(0, 1<<30)
		case key == "minSessionTimeout":
			c.MinSessionTimeout, err = intVal(-1, 1<<30)
			minSet = c.MinSessionTimeout != -1 // -1 means "default", as in ZooKeeper
		case key == "maxSessionTimeout":
			c.MaxSessionTimeout, err = intVal(-1, 1<<30)
			maxSet = c.MaxSessionTimeout != -1
		case key == "autopurge.snapRetainCount":
			c.SnapRetainCount, err = intVal(-1<<30, 1<<30)
			if err == nil && c.SnapRetainCount < cfgMinSnapRetainCount {
				logger.Warn("autopurge.snapRetainCount below minimum, raised",
					"line", p.line, "value", c.SnapRetainCount, "minimum", cfgMinSnapRetainCount)
				c.SnapRetainCount = cfgMinSnapRetainCount
			}
		case key == "autopurge.purgeInterval":
			c.PurgeInterval, err = intVal(0, 1<<30)
		case key == "4lw.commands.whitelist":
			pc := p
			whitelist = &pc
		case key == "jute.maxbuffer":
			c.JuteMaxBuffer, err = intVal(1, 1<<31-1)
		case key == "snapCount":
			c.SnapCount, err = intVal(-1<<30, 1<<30)
			if err == nil && c.SnapCount < cfgMinSnapCount {
				logger.Warn("snapCount below minimum, raised",
					"line", p.line, "value", c.SnapCount, "minimum", cfgMinSnapCount)
				c.SnapCount = cfgMinSnapCount
			}
		case key == "DigestAuthenticationProvider.superDigest":
			if p.value != "" && !strings.Contains(p.value, ":") {
				err = bad("want user:base64digest")
			}
			c.SuperDigest = p.value
		case key == "extendedTypesEnabled":
			c.ExtendedTypes, err = boolVal()
		case key == "preAllocSize":
			c.PreAllocSizeKB, err = intVal(0, 1<<30)
		case key == "znode.container.checkIntervalMs":
			c.ContainerCheckInterval, err = intVal(1, 1<<30)
		case key == "readonlymode.enabled":
			c.ReadOnlyMode, err = boolVal()
		case key == "initLimit":
			c.InitLimit, err = intVal(1, 1<<30)
		case key == "syncLimit":
			c.SyncLimit, err = intVal(1, 1<<30)
		case key == "zabkeeper.peerProtocol" || key == "peerProtocol":
			c.PeerProtocol, err = parsePeerProtocol(p.value)
			if err != nil {
				err = bad("%v", err)
			}
		case key == "zabkeeper.connectionPoller":
			var on bool
			on, err = boolVal()
			c.NoConnectionPoller = !on
		case key == "commitLogCount":
			c.CommitLogCount, err = intVal(1, 1<<30)
		case key == "myidFromHostnameOrdinal":
			c.MyIDFromHostnameOrdinal, err = boolVal()
		case key == "quorumListenOnAllIPs":
			c.QuorumListenOnAllIPs, err = boolVal()
		case key == "admin.enableServer":
			c.AdminEnableServer, err = boolVal()
		case key == "admin.serverAddress":
			c.AdminServerAddress = strings.Trim(p.value, "[]")
			if c.AdminServerAddress == "" {
				err = bad("empty address")
			}
		case key == "admin.serverPort":
			c.AdminServerPort, err = intVal(0, 65535)
		case key == "snapshotSizeFactor":
			f, perr := strconv.ParseFloat(p.value, 64)
			switch {
			case perr != nil || math.IsNaN(f):
				err = bad("%q is not a number", p.value)
			case f > 1:
				err = bad("%g is above 1 (a share of the snapshot size)", f)
			case f == 0:
				// ZooKeeper reads 0 as "no size limit" on a diff.
				c.SnapshotSizeFactor = -1
			default:
				c.SnapshotSizeFactor = f
			}
		case key == "snapshot.compression.method":
			c.SnapshotCompression = disk.CompressionMethod(p.value)
			if c.SnapshotCompression == "" && p.value != "" {
				logger.Warn("unknown snapshot compression method; snapshots are not compressed", "value", p.value, "line", p.line)
			}
		case isAutoJoinKey(key):
			err = c.autoJoinKey(p)
		case isDynamicKey(key):
			err = dyn.take(&c, p)
		case strings.HasPrefix(key, "server."):
			dyn.staticMember(p)
			var spec ServerSpec
			spec, err = parseServerSpec(strings.TrimPrefix(key, "server."), p.value)
			if err != nil {
				err = &ConfigError{Key: p.key, Line: p.line, Err: err}
				break
			}
			c.Servers[spec.ID] = spec
		case cfgIgnoredKeys[key] || cfgHasAnyPrefix(key, cfgIgnoredPrefixes):
			logger.Info("configuration key accepted but not used by zabkeeper", "key", p.key, "line", p.line)
		default:
			if ok, serr := c.securityKey(p.key, p.value); ok {
				if serr != nil {
					err = bad("%v", serr)
				}
				break
			}
			c.Unknown[p.key] = p.value
			shown := p.value
			if cfgSecretKey(p.key) {
				shown = "(not shown)"
			}
			logger.Warn("unknown configuration key", "key", p.key, "value", shown, "line", p.line)
		}
		if err != nil {
			return Config{}, cfgExplicit{}, err
		}
	}

	if whitelist != nil {
		c.FourLetterWords = parseFourLetterWhitelist(whitelist.value, whitelist.line, logger)
	}
	c.FourLetterWords["srvr"] = true // zkServer.sh needs it; ZooKeeper always enables it
	if c.ReadOnlyMode {
		c.FourLetterWords["isro"] = true
	}
	if !minSet {
		c.MinSessionTimeout = 2 * c.TickTime
	}
	if !maxSet {
		c.MaxSessionTimeout = 20 * c.TickTime
	}
	if !logDirSet {
		c.DataLogDir = c.DataDir
	}
	if c.MinSessionTimeout > c.MaxSessionTimeout {
		key, line := "minSessionTimeout", 0
		if i, ok := last["minSessionTimeout"]; ok {
			line = ordered[i].line
		} else if i, ok := last["maxSessionTimeout"]; ok {
			key, line = "maxSessionTimeout", ordered[i].line
		}
		return Config{}, cfgExplicit{}, &ConfigError{Key: key, Line: line, Err: fmt.Errorf(
			"minSessionTimeout %d > maxSessionTimeout %d", c.MinSessionTimeout, c.MaxSessionTimeout)}
	}
	if err := dyn.finish(&c, logger); err != nil {
		return Config{}, cfgExplicit{}, err
	}
	if err := c.validateServers(); err != nil {
		return Config{}, cfgExplicit{}, err
	}
	c.tlsOnlyClientPort(explicit)
	if err := c.finishSecurity(); err != nil {
		return Config{}, cfgExplicit{}, err
	}
	return c, explicit, nil
}

// LoadConfig reads the zoo.cfg at path and, when server.N lines are
// present, the server id from <DataDir>/myid (an integer in
// 1..255, 1..254 with extended types). A relative dataDir is relative to the
// process's working directory, as in ZooKeeper. The result is validated.
func LoadConfig(path string, logger *slog.Logger) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("open config: %w", err)
	}
	defer f.Close()
	c, explicit, err := parseConfig(f, logger)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	c.Path = path
	c.warnNextDynamicConfig(path, logger)
	if err := c.readMyID(os.Hostname, logger); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	if err := c.useOwnClientPort(explicit); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	if err := c.validate(c.AutoJoin.Enabled); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// useOwnClientPort applies the ";[clientAddr:]clientPort" part of this
// server's own server.N line, as ZooKeeper 3.5+ does: it stands in for
// clientPort and clientPortAddress when the file leaves them out, and must
// agree with them when it names them.
func (c *Config) useOwnClientPort(explicit cfgExplicit) error {
	me, ok := c.Servers[c.ServerID]
	if !ok || me.ClientPort == 0 {
		return nil
	}
	key := "server." + strconv.Itoa(c.ServerID)
	if explicit.clientPort && c.ClientPort != me.ClientPort {
		return &ConfigError{Key: key, Err: fmt.Errorf("client port %d differs from clientPort=%d", me.ClientPort, c.ClientPort)}
	}
	c.ClientPort = me.ClientPort
	if me.ClientAddr != "" {
		if explicit.clientAddr && c.ClientPortAddress != me.ClientAddr {
			return &ConfigError{Key: key, Err: fmt.Errorf("client address %s differs from clientPortAddress=%s", me.ClientAddr, c.ClientPortAddress)}
		}
		c.ClientPortAddress = me.ClientAddr
	}
	return nil
}

// readMyID sets ServerID from <DataDir>/myid or, when that file is absent
// and myidFromHostnameOrdinal is set, from the host name's StatefulSet
// ordinal (see hostnameOrdinalID). A standalone configuration (no server.N
// lines, and no zabkeeper.autojoin to find them) reads neither, as in
// ZooKeeper: Debian's package, for one, ships a myid holding placeholder
// text. hostname is os.Hostname outside tests.
func (c *Config) readMyID(hostname func() (string, error), logger *slog.Logger) error {
	if len(c.Servers) == 0 && !c.AutoJoin.Enabled {
		return nil
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	fromHost := func() (int, string, error) {
		host, err := hostname()
		if err != nil {
			return 0, "", fmt.Errorf("myidFromHostnameOrdinal: host name: %w", err)
		}
		id, err := hostnameOrdinalID(host, c.maxServerID())
		return id, host, err
	}
	myid := filepath.Join(c.DataDir, "myid")
	b, err := os.ReadFile(myid)
	if errors.Is(err, fs.ErrNotExist) {
		if !c.MyIDFromHostnameOrdinal {
			return fmt.Errorf("%s missing: server.N lines need this server's id (or set myidFromHostnameOrdinal=true)", myid)
		}
		id, host, err := fromHost()
		if err != nil {
			return err
		}
		logger.Info("server id from the host name's ordinal", "host", host, "serverId", id)
		c.ServerID = id
		return nil
	}
	if err != nil {
		return fmt.Errorf("read myid: %w", err)
	}
	id, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("%s: %q is not a server id", myid, strings.TrimSpace(string(b)))
	}
	if id < 1 || id > c.maxServerID() {
		return fmt.Errorf("%s: server id %d out of range [1, %d]", myid, id, c.maxServerID())
	}
	c.ServerID = id
	if c.MyIDFromHostnameOrdinal {
		// The file wins: a data directory knows whose history it holds.
		if hid, host, err := fromHost(); err != nil {
			logger.Warn("myid file used; the host name gives no id", "myid", id, "err", err)
		} else if hid != id {
			logger.Warn("myid file disagrees with the host name's ordinal; the file wins",
				"myid", id, "host", host, "hostnameId", hid)
		}
	}
	return nil
}

// hostnameOrdinalID returns the server id a StatefulSet pod's host name
// implies: its first label ends in "-<ordinal>", and the id is ordinal+1
// because ZooKeeper ids usually start at 1 while ordinals start at 0.
func hostnameOrdinalID(host string, maxID int) (int, error) {
	label, _, _ := strings.Cut(host, ".")
	dash := strings.LastIndexByte(label, '-')
	digits := label[dash+1:]
	if dash < 0 || digits == "" || strings.Trim(digits, "0123456789") != "" {
		return 0, fmt.Errorf("myidFromHostnameOrdinal: host name %q does not end in a StatefulSet ordinal like zk-0", host)
	}
	ord, err := strconv.Atoi(digits)
	if err != nil || ord+1 > maxID {
		return 0, fmt.Errorf("myidFromHostnameOrdinal: host name %q: ordinal %s gives an id beyond %d", host, digits, maxID)
	}
	return ord + 1, nil
}

// maxServerID is the largest server id allowed: 255, or 254 with extended
// types (whose session ids reserve 0xff).
func (c Config) maxServerID() int {
	if c.ExtendedTypes {
		return 254
	}
	return 255
}

// Validate checks the configuration as a whole: ranges of every value,
// session timeouts, the server list, and that ServerID names one of the
// servers when there are any.
func (c Config) Validate() error { return c.validate(false) }

// validate is Validate; absentSelf lets ServerID be missing from the
// servers, as LoadConfig allows with zabkeeper.autojoin until autojoin has
// read the ensemble's members (UseEnsembleConfig checks it then).
func (c Config) validate(absentSelf bool) error {
	check := func(key string, ok bool, format string, args ...any) error {
		if ok {
			return nil
		}
		return &ConfigError{Key: key, Err: fmt.Errorf(format, args...)}
	}
	for _, err := range []error{
		check("tickTime", c.TickTime > 0, "%d must be positive", c.TickTime),
		check("dataDir", c.DataDir != "", "empty path"),
		check("dataLogDir", c.DataLogDir != "", "empty path"),
		check("clientPort", (c.ClientPort >= 0 || c.ClientPort == -1 && c.TLS.SecureClientPort >= 0) && c.ClientPort <= 65535,
			"%d out of range [0, 65535] (-1, no plain port, only beside a secureClientPort)", c.ClientPort),
		check("maxClientCnxns", c.MaxClientCnxns >= 0, "%d must not be negative", c.MaxClientCnxns),
		check("minSessionTimeout", c.MinSessionTimeout > 0, "%d must be positive", c.MinSessionTimeout),
		check("maxSessionTimeout", c.MaxSessionTimeout >= c.MinSessionTimeout,
			"minSessionTimeout %d > maxSessionTimeout %d", c.MinSessionTimeout, c.MaxSessionTimeout),
		check("autopurge.snapRetainCount", c.SnapRetainCount >= cfgMinSnapRetainCount,
			"%d below minimum %d", c.SnapRetainCount, cfgMinSnapRetainCount),
		check("autopurge.purgeInterval", c.PurgeInterval >= 0, "%d must not be negative", c.PurgeInterval),
		check("jute.maxbuffer", c.JuteMaxBuffer > 0, "%d must be positive", c.JuteMaxBuffer),
		check("jute.maxbuffer", c.JuteMaxBuffer <= proto.MaxMaxBuffer,
			"%d exceeds %d, the largest request whose txn the txn log, snapshots and peer links hold", c.JuteMaxBuffer, proto.MaxMaxBuffer),
		check("snapCount", c.SnapCount >= cfgMinSnapCount, "%d below minimum %d", c.SnapCount, cfgMinSnapCount),
		check("initLimit", c.InitLimit > 0, "%d must be positive", c.InitLimit),
		check("syncLimit", c.SyncLimit > 0, "%d must be positive", c.SyncLimit),
		check("zabkeeper.peerProtocol", c.PeerProtocol == "" || c.PeerProtocol == PeerProtocolZooKeeper,
			"%q is not a peer protocol (want %s)", c.PeerProtocol, PeerProtocolZooKeeper),
		check("admin.serverPort", c.AdminServerPort >= 0 && c.AdminServerPort <= 65535,
			"%d out of range [0, 65535]", c.AdminServerPort),
		check("admin.serverAddress", !c.AdminEnableServer || c.AdminServerAddress != "", "empty address"),
		c.validateServers(),
		c.TLS.validate(),
	} {
		if err != nil {
			return err
		}
	}
	if len(c.Servers) > 0 {
		if _, ok := c.Servers[c.ServerID]; !ok && !absentSelf {
			return &ConfigError{Key: "myid", Err: fmt.Errorf("my id %d not in the peer list", c.ServerID)}
		}
	} else if c.ServerID < 0 || c.ServerID > c.maxServerID() {
		return &ConfigError{Key: "myid", Err: fmt.Errorf("server id %d out of range [0, %d]", c.ServerID, c.maxServerID())}
	}
	for w := range c.FourLetterWords {
		if !isFourLetterWord(w) {
			return &ConfigError{Key: "4lw.commands.whitelist", Err: fmt.Errorf("unknown command %q", w)}
		}
	}
	return nil
}

// validateServers checks the server.N entries' ids and ports.
func (c Config) validateServers() error {
	for id, s := range c.Servers {
		key := "server." + strconv.Itoa(id)
		switch {
		case id != s.ID:
			return &ConfigError{Key: key, Err: fmt.Errorf("entry has id %d", s.ID)}
		case id < 1 || id > c.maxServerID():
			return &ConfigError{Key: key, Err: fmt.Errorf("server id %d out of range [1, %d]", id, c.maxServerID())}
		case s.Host == "":
			return &ConfigError{Key: key, Err: errors.New("empty host")}
		// Port 0 (any free port) is allowed, as for clientPort, so tests can
		// bind first and exchange addresses with Server.SetPeerAddrs.
		case s.QuorumPort < 0 || s.QuorumPort > 65535 || s.ElectionPort < 0 || s.ElectionPort > 65535:
			return &ConfigError{Key: key, Err: fmt.Errorf("ports %d:%d out of range", s.QuorumPort, s.ElectionPort)}
		case s.ClientPort < 0 || s.ClientPort > 65535:
			return &ConfigError{Key: key, Err: fmt.Errorf("client port %d out of range", s.ClientPort)}
		}
	}
	return nil
}

// parseServerSpec parses the value of a server.N line, N being idText.
func parseServerSpec(idText, value string) (ServerSpec, error) {
	const form = "want host:quorumPort:electionPort[:participant|observer][;[clientAddr:]clientPort]"
	id, err := strconv.Atoi(idText)
	if err != nil {
		return ServerSpec{}, fmt.Errorf("%q is not a server id", idText)
	}
	if id < 1 || id > 255 {
		return ServerSpec{}, fmt.Errorf("server id %d out of range [1, 255]", id)
	}
	spec := ServerSpec{ID: id}
	serverPart, clientPart, hasClient := strings.Cut(value, ";")
	serverPart = strings.TrimSpace(serverPart)
	if strings.Contains(serverPart, "|") {
		return ServerSpec{}, errors.New("multiple addresses per server are not supported")
	}

	// Host may be an IPv6 literal in brackets.
	var rest string
	if strings.HasPrefix(serverPart, "[") {
		end := strings.Index(serverPart, "]")
		if end < 0 || len(serverPart) == end+1 || serverPart[end+1] != ':' {
			return ServerSpec{}, fmt.Errorf("%q: %s", value, form)
		}
		spec.Host, rest = serverPart[1:end], serverPart[end+2:]
	} else {
		var ok bool
		spec.Host, rest, ok = strings.Cut(serverPart, ":")
		if !ok {
			return ServerSpec{}, fmt.Errorf("%q: %s", value, form)
		}
	}
	fields := strings.Split(rest, ":")
	if spec.Host == "" || len(fields) < 2 || len(fields) > 3 {
		return ServerSpec{}, fmt.Errorf("%q: %s", value, form)
	}
	port := func(s string) (int, error) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 65535 {
			return 0, fmt.Errorf("%q: bad port %q", value, s)
		}
		return n, nil
	}
	if spec.QuorumPort, err = port(fields[0]); err != nil {
		return ServerSpec{}, err
	}
	if spec.ElectionPort, err = port(fields[1]); err != nil {
		return ServerSpec{}, err
	}
	if len(fields) == 3 {
		switch strings.ToLower(fields[2]) {
		case "participant":
		case "observer":
			spec.Observer = true
		default:
			return ServerSpec{}, fmt.Errorf("%q: role %q is neither participant nor observer", value, fields[2])
		}
	}
	if hasClient {
		clientPart = strings.TrimSpace(clientPart)
		portText := clientPart
		if i := strings.LastIndex(clientPart, ":"); i >= 0 {
			spec.ClientAddr = strings.Trim(clientPart[:i], "[]")
			portText = clientPart[i+1:]
			if spec.ClientAddr == "" {
				return ServerSpec{}, fmt.Errorf("%q: empty client address", value)
			}
		}
		if spec.ClientPort, err = port(portText); err != nil {
			return ServerSpec{}, err
		}
	}
	return spec, nil
}

// parseFourLetterWhitelist parses 4lw.commands.whitelist: a comma-separated list of
// command names, blanks ignored, "*" meaning every known command. Unknown
// names are dropped with a warning.
func parseFourLetterWhitelist(value string, line int, logger *slog.Logger) map[string]bool {
	out := map[string]bool{}
	for _, w := range strings.Split(value, ",") {
		w = strings.TrimSpace(w)
		switch {
		case w == "":
		case w == "*":
			for _, k := range FourLetterWords() {
				out[k] = true
			}
		case isFourLetterWord(w):
			out[w] = true
		default:
			logger.Warn("unknown four-letter word in 4lw.commands.whitelist, ignored", "word", w, "line", line)
		}
	}
	return out
}

// cfgHasAnyPrefix reports whether s starts with one of prefixes.
func cfgHasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// Properties returns the resolved configuration as ordered key=value pairs,
// for the conf four-letter word. The keys and order follow ZooKeeper's conf
// output (directories absolute); the quorum keys appear only when server.N
// lines are configured. The sizes of the data directories are runtime values
// and are added by the conf command itself.
func (c Config) Properties() [][2]string {
	abs := func(p string) string {
		if a, err := filepath.Abs(p); err == nil {
			return a
		}
		return p
	}
	itoa := strconv.Itoa
	props := [][2]string{
		{"clientPort", itoa(c.ClientPort)},
		{"secureClientPort", itoa(c.TLS.SecureClientPort)},
		{"dataDir", abs(c.DataDir)},
		{"dataLogDir", abs(c.DataLogDir)},
		{"tickTime", itoa(c.TickTime)},
		{"maxClientCnxns", itoa(c.MaxClientCnxns)},
		{"minSessionTimeout", itoa(c.MinSessionTimeout)},
		{"maxSessionTimeout", itoa(c.MaxSessionTimeout)},
		{"clientPortListenBacklog", "-1"},
		{"serverId", itoa(c.ServerID)},
	}
	if me, ok := c.Servers[c.ServerID]; ok && len(c.Servers) > 0 {
		peerType := "0"
		if me.Observer {
			peerType = "1"
		}
		props = append(props,
			[2]string{"initLimit", itoa(c.InitLimit)},
			[2]string{"syncLimit", itoa(c.SyncLimit)},
			[2]string{"electionAlg", "3"},
			[2]string{"electionPort", itoa(me.ElectionPort)},
			[2]string{"quorumPort", itoa(me.QuorumPort)},
			[2]string{"peerType", peerType},
		)
	}
	return props
}

// Membership returns what ZooKeeper's conf prints after "membership: " on
// a quorum member (QuorumZooKeeperServer.dumpConf prints its
// QuorumVerifier): the lines /zookeeper/config holds, version included
// (ensembleConfigData); nil for a standalone server.
func (c Config) Membership() []string {
	data := c.ensembleConfigData()
	if data == "" {
		return nil
	}
	return strings.Split(data, "\n")
}

// readCfgProperties splits r into key/value pairs following the rules of
// java.util.Properties.load, with values trimmed as ZooKeeper does.
func readCfgProperties(r io.Reader) ([]cfgProperty, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	var (
		props   []cfgProperty
		lineNo  int
		logical strings.Builder
		start   int
		cont    bool
	)
	for sc.Scan() {
		lineNo++
		raw := strings.TrimRight(sc.Text(), "\r")
		line := strings.TrimLeft(raw, " \t\f")
		if !cont {
			if line == "" || line[0] == '#' || line[0] == '!' {
				continue
			}
			start = lineNo
			logical.Reset()
		}
		// A line ending in an odd number of backslashes continues on the next.
		n := 0
		for i := len(line) - 1; i >= 0 && line[i] == '\\'; i-- {
			n++
		}
		cont = n%2 == 1
		if cont {
			line = line[:len(line)-1]
		}
		logical.WriteString(line)
		if cont {
			continue
		}
		key, value, err := splitCfgProperty(logical.String())
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", start, err)
		}
		props = append(props, cfgProperty{key: key, value: value, line: start})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if cont {
		key, value, err := splitCfgProperty(logical.String())
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", start, err)
		}
		props = append(props, cfgProperty{key: key, value: value, line: start})
	}
	return props, nil
}

// splitCfgProperty splits a logical properties line into its unescaped key and
// value. The key ends at the first unescaped '=', ':' or blank.
func splitCfgProperty(s string) (key, value string, err error) {
	end := len(s)
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			i++
			continue
		}
		if s[i] == '=' || s[i] == ':' || s[i] == ' ' || s[i] == '\t' || s[i] == '\f' {
			end = i
			break
		}
	}
	rest := strings.TrimLeft(s[end:], " \t\f")
	if rest != "" && (rest[0] == '=' || rest[0] == ':') {
		rest = strings.TrimLeft(rest[1:], " \t\f")
	}
	if key, err = cfgUnescape(s[:end]); err != nil {
		return "", "", err
	}
	if value, err = cfgUnescape(rest); err != nil {
		return "", "", err
	}
	return strings.TrimSpace(key), strings.TrimSpace(value), nil
}

// cfgUnescape resolves Java properties escapes: \t \n \r \f \uXXXX, and \c = c.
func cfgUnescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			if i+5 > len(s) {
				return "", fmt.Errorf("malformed \\u escape in %q", s)
			}
			v, err := strconv.ParseUint(s[i+1:i+5], 16, 16)
			if err != nil {
				return "", fmt.Errorf("malformed \\u escape in %q", s)
			}
			b.WriteRune(rune(v))
			i += 4
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			b.WriteRune(r)
			i += size - 1
		}
	}
	return b.String(), nil
}
