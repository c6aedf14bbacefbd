package server

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/zabkeeper/zabkeeper/proto"
)

// captureLogger returns a logger writing text records to the returned buffer.
func captureLogger() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), &buf
}

func parse(t *testing.T, text string) Config {
	t.Helper()
	c, err := ParseConfig(strings.NewReader(text), nil)
	require.NoError(t, err)
	return c
}

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	require.Equal(t, 2000, c.TickTime)
	require.Equal(t, "./data", c.DataDir)
	require.Equal(t, "./data", c.DataLogDir)
	require.Equal(t, 2181, c.ClientPort)
	require.Equal(t, "", c.ClientPortAddress)
	require.Equal(t, 60, c.MaxClientCnxns)
	require.Equal(t, 4000, c.MinSessionTimeout)
	require.Equal(t, 40000, c.MaxSessionTimeout)
	require.Equal(t, 3, c.SnapRetainCount)
	require.Equal(t, 0, c.PurgeInterval)
	require.Equal(t, map[string]bool{"srvr": true}, c.FourLetterWords)
	require.Equal(t, 0xfffff, c.JuteMaxBuffer)
	require.Equal(t, 100000, c.SnapCount)
	require.Equal(t, 10, c.InitLimit)
	require.Equal(t, 5, c.SyncLimit)
	require.Equal(t, 0, c.ServerID)
	require.Empty(t, c.Servers)
	require.False(t, c.ReadOnlyMode)
	require.True(t, c.AdminEnableServer)
	require.Equal(t, "0.0.0.0", c.AdminServerAddress)
	require.Equal(t, 7181, c.AdminServerPort)
	require.NoError(t, c.Validate())

	// An empty file gives the defaults.
	require.Equal(t, c, parse(t, ""))
}

func TestParseConfigEveryKey(t *testing.T) {
	c := parse(t, `
tickTime=1000
dataDir=/srv/zk/data
dataLogDir=/srv/zk/log
clientPort=2281
clientPortAddress=127.0.0.1
maxClientCnxns=0
minSessionTimeout=3000
maxSessionTimeout=90000
autopurge.snapRetainCount=7
autopurge.purgeInterval=12
4lw.commands.whitelist=ruok,conf
jute.maxbuffer=4194304
snapCount=5000
zookeeper.DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=
zookeeper.extendedTypesEnabled=true
initLimit=20
syncLimit=8
readonlymode.enabled=true
zabkeeper.connectionPoller=false
server.1=zk1.example.com:2888:3888
`)
	require.Equal(t, 1000, c.TickTime)
	require.Equal(t, "/srv/zk/data", c.DataDir)
	require.Equal(t, "/srv/zk/log", c.DataLogDir)
	require.Equal(t, 2281, c.ClientPort)
	require.Equal(t, "127.0.0.1", c.ClientPortAddress)
	require.Equal(t, 0, c.MaxClientCnxns)
	require.Equal(t, 3000, c.MinSessionTimeout)
	require.Equal(t, 90000, c.MaxSessionTimeout)
	require.Equal(t, 7, c.SnapRetainCount)
	require.Equal(t, 12, c.PurgeInterval)
	require.Equal(t, map[string]bool{"ruok": true, "conf": true, "srvr": true, "isro": true}, c.FourLetterWords)
	require.Equal(t, 4194304, c.JuteMaxBuffer)
	require.Equal(t, 5000, c.SnapCount)
	require.Equal(t, "super:D/InIHSb7yEEbrWz8b9l71RjZJU=", c.SuperDigest)
	require.True(t, c.ExtendedTypes)
	require.Equal(t, 20, c.InitLimit)
	require.Equal(t, 8, c.SyncLimit)
	require.True(t, c.ReadOnlyMode)
	require.True(t, c.NoConnectionPoller)
	require.Equal(t, map[int]ServerSpec{1: {ID: 1, Host: "zk1.example.com", QuorumPort: 2888, ElectionPort: 3888}}, c.Servers)
	require.Empty(t, c.Unknown)
}

func TestParseConfigSystemPropertySpellings(t *testing.T) {
	c := parse(t, "zookeeper.jute.maxbuffer=1024\nzookeeper.snapCount=10\nDigestAuthenticationProvider.superDigest=super:x\n"+
		"extendedTypesEnabled=true\nzookeeper.4lw.commands.whitelist=*\nzookeeper.readonlymode.enabled=true\n")
	require.Equal(t, 1024, c.JuteMaxBuffer)
	require.Equal(t, 10, c.SnapCount)
	require.Equal(t, "super:x", c.SuperDigest)
	require.True(t, c.ExtendedTypes)
	require.True(t, c.ReadOnlyMode)
	require.Len(t, c.FourLetterWords, len(FourLetterWords()))
}

func TestParseConfigDerivedDefaults(t *testing.T) {
	// Session timeouts follow a tickTime given after them; dataLogDir follows dataDir.
	c := parse(t, "dataDir=/a\ntickTime=500\n")
	require.Equal(t, 1000, c.MinSessionTimeout)
	require.Equal(t, 10000, c.MaxSessionTimeout)
	require.Equal(t, "/a", c.DataLogDir)

	c = parse(t, "minSessionTimeout=100\ntickTime=500\n")
	require.Equal(t, 100, c.MinSessionTimeout)
	require.Equal(t, 10000, c.MaxSessionTimeout)

	// -1 means "default", as in ZooKeeper.
	c = parse(t, "minSessionTimeout=-1\nmaxSessionTimeout=-1\n")
	require.Equal(t, 4000, c.MinSessionTimeout)
	require.Equal(t, 40000, c.MaxSessionTimeout)
}

func TestParseConfigSyntax(t *testing.T) {
	c := parse(t, "  # comment\n! also a comment\n\n"+
		"tickTime : 1500\n"+
		"clientPort 2999\n"+
		"dataDir=/path/with\\\n    /continuation\n"+
		"maxClientCnxns\t=\t  9   \r\n"+
		"clientPortAddress=\\u0031\\u0032\\u0037.0.0.1\n"+
		"tickTime=1600\n") // the later line wins
	require.Equal(t, 1600, c.TickTime)
	require.Equal(t, 2999, c.ClientPort)
	require.Equal(t, "/path/with/continuation", c.DataDir)
	require.Equal(t, 9, c.MaxClientCnxns)
	require.Equal(t, "127.0.0.1", c.ClientPortAddress)

	// An escaped separator belongs to the key.
	props, err := readCfgProperties(strings.NewReader("a\\=b=c\\\\\nx"))
	require.NoError(t, err)
	require.Equal(t, []cfgProperty{{key: "a=b", value: `c\`, line: 1}, {key: "x", value: "", line: 2}}, props)
}

func TestParseConfigUnknownKeysWarn(t *testing.T) {
	logger, buf := captureLogger()
	c, err := ParseConfig(strings.NewReader("tickTime=2000\nfoo.bar=baz\nzookeeper.something=1\nadmin.commandURL=/x\n"), logger)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"foo.bar": "baz", "zookeeper.something": "1"}, c.Unknown)
	out := buf.String()
	require.Contains(t, out, `level=WARN msg="unknown configuration key" key=foo.bar value=baz line=2`)
	require.Contains(t, out, `key=zookeeper.something`)
	require.Contains(t, out, `level=INFO msg="configuration key accepted but not used by zabkeeper" key=admin.commandURL line=4`)
	require.Equal(t, 2, strings.Count(out, "level=WARN"))
}

func TestParseConfigRaisesMinimums(t *testing.T) {
	logger, buf := captureLogger()
	c, err := ParseConfig(strings.NewReader("autopurge.snapRetainCount=1\nsnapCount=1\n"), logger)
	require.NoError(t, err)
	require.Equal(t, 3, c.SnapRetainCount)
	require.Equal(t, 2, c.SnapCount)
	require.Contains(t, buf.String(), `level=WARN msg="autopurge.snapRetainCount below minimum, raised" line=1 value=1 minimum=3`)
	require.Contains(t, buf.String(), `msg="snapCount below minimum, raised"`)
}

// A jute.maxbuffer beyond what the log and peer links hold is a clear
// config error rather than a server that exits on the first large write
// (issue 8 item 5).
func TestJuteMaxBufferCap(t *testing.T) {
	c := DefaultConfig()
	c.JuteMaxBuffer = proto.MaxMaxBuffer
	require.NoError(t, c.Validate())
	c.JuteMaxBuffer = 1 << 30
	err := c.Validate()
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "jute.maxbuffer", ce.Key)
	require.Contains(t, err.Error(), "exceeds 536870912")
}

func TestParseConfigSnapshotSizeFactor(t *testing.T) {
	require.Equal(t, 0.5, parse(t, "zookeeper.snapshotSizeFactor=0.5\n").SnapshotSizeFactor)
	require.Equal(t, -1.0, parse(t, "snapshotSizeFactor=-1\n").SnapshotSizeFactor)
	// ZooKeeper reads 0 as no size limit on a diff: the byte bound is off.
	require.Negative(t, parse(t, "snapshotSizeFactor=0\n").SnapshotSizeFactor)
	require.Zero(t, parse(t, "tickTime=2000\n").SnapshotSizeFactor, "unset means the engine's default")
}

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		text, key string
		line      int
	}{
		{"tickTime=abc", "tickTime", 1},
		{"tickTime=0", "tickTime", 1},
		{"\nclientPort=70000", "clientPort", 2},
		{"clientPort=-1", "clientPort", 1},
		{"maxClientCnxns=-5", "maxClientCnxns", 1},
		{"minSessionTimeout=50000\n", "minSessionTimeout", 1},
		{"maxSessionTimeout=10\n", "maxSessionTimeout", 1},
		{"minSessionTimeout=9000\n\nmaxSessionTimeout=8000", "minSessionTimeout", 1},
		{"autopurge.purgeInterval=-1", "autopurge.purgeInterval", 1},
		{"jute.maxbuffer=0", "jute.maxbuffer", 1},
		{"snapshotSizeFactor=1.5", "snapshotSizeFactor", 1},
		{"snapshotSizeFactor=lots", "snapshotSizeFactor", 1},
		{"initLimit=x", "initLimit", 1},
		{"syncLimit=0", "syncLimit", 1},
		{"readonlymode.enabled=maybe", "readonlymode.enabled", 1},
		{"dataDir=", "dataDir", 1},
		{"DigestAuthenticationProvider.superDigest=nocolon", "DigestAuthenticationProvider.superDigest", 1},
		{"server.x=h:1:2", "server.x", 1},
		{"server.0=h:1:2", "server.0", 1},
		{"server.256=h:1:2", "server.256", 1},
		{"server.1=h:1", "server.1", 1},
		{"server.1=h", "server.1", 1},
		{"server.1=:1:2", "server.1", 1},
		{"server.1=h:1:2:leader", "server.1", 1},
		{"server.1=h:0:2", "server.1", 1},
		{"server.1=h:1:99999", "server.1", 1},
		{"server.1=h:1:2;", "server.1", 1},
		{"server.1=h:1:2;:2181", "server.1", 1},
		{"server.1=h:1:2|h2:1:2", "server.1", 1},
		{"server.1=[::1:1:2", "server.1", 1},
	} {
		t.Run(tc.text, func(t *testing.T) {
			_, err := ParseConfig(strings.NewReader(tc.text), nil)
			require.Error(t, err)
			var ce *ConfigError
			require.True(t, errors.As(err, &ce), "%v", err)
			require.Equal(t, tc.key, ce.Key)
			require.Equal(t, tc.line, ce.Line)
			require.Contains(t, err.Error(), tc.key)
		})
	}
}

func TestParseConfigWhitelist(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  []string
	}{
		{"*", FourLetterWords()},
		{"stat, ruok ,conf", []string{"stat", "ruok", "conf", "srvr"}},
		{"", []string{"srvr"}},
		{" , ,mntr,", []string{"mntr", "srvr"}},
		{"ruok,*", FourLetterWords()},
	} {
		t.Run(tc.value, func(t *testing.T) {
			c := parse(t, "4lw.commands.whitelist="+tc.value)
			want := map[string]bool{}
			for _, w := range tc.want {
				want[w] = true
			}
			require.Equal(t, want, c.FourLetterWords)
		})
	}

	logger, buf := captureLogger()
	c, err := ParseConfig(strings.NewReader("4lw.commands.whitelist=ruok,kill"), logger)
	require.NoError(t, err)
	require.Equal(t, map[string]bool{"ruok": true, "srvr": true}, c.FourLetterWords)
	require.Contains(t, buf.String(), "word=kill")
}

func TestParseConfigServers(t *testing.T) {
	c := parse(t, `
server.1=zk1:2888:3888
server.2=zk2:2888:3888:participant
server.3=zk3:2888:3888:observer
server.4=zk4:2888:3888;2181
server.5=zk5:2888:3888:participant;0.0.0.0:2182
server.6=[fe80::1]:2888:3888;[::1]:2183
server.7 = 10.0.0.7:2888:3888 ; 2184
`)
	require.Equal(t, map[int]ServerSpec{
		1: {ID: 1, Host: "zk1", QuorumPort: 2888, ElectionPort: 3888},
		2: {ID: 2, Host: "zk2", QuorumPort: 2888, ElectionPort: 3888},
		3: {ID: 3, Host: "zk3", QuorumPort: 2888, ElectionPort: 3888, Observer: true},
		4: {ID: 4, Host: "zk4", QuorumPort: 2888, ElectionPort: 3888, ClientPort: 2181},
		5: {ID: 5, Host: "zk5", QuorumPort: 2888, ElectionPort: 3888, ClientAddr: "0.0.0.0", ClientPort: 2182},
		6: {ID: 6, Host: "fe80::1", QuorumPort: 2888, ElectionPort: 3888, ClientAddr: "::1", ClientPort: 2183},
		7: {ID: 7, Host: "10.0.0.7", QuorumPort: 2888, ElectionPort: 3888, ClientPort: 2184},
	}, c.Servers)
	require.Equal(t, []string{
		"server.1=zk1:2888:3888:participant",
		"server.2=zk2:2888:3888:participant",
		"server.3=zk3:2888:3888:observer",
		"server.4=zk4:2888:3888:participant;0.0.0.0:2181",
		"server.5=zk5:2888:3888:participant;0.0.0.0:2182",
		"server.6=[fe80::1]:2888:3888:participant;[::1]:2183",
		"server.7=10.0.0.7:2888:3888:participant;0.0.0.0:2184",
		"version=0",
	}, c.Membership())

	// Without myid the ensemble configuration does not validate.
	err := c.Validate()
	require.ErrorContains(t, err, "my id 0 not in the peer list")
	c.ServerID = 3
	require.NoError(t, c.Validate())
}

func TestLoadConfigDebianFixture(t *testing.T) {
	logger, buf := captureLogger()
	c, err := LoadConfig(filepath.Join("testdata", "zoo.cfg"), logger)
	require.NoError(t, err)
	want := DefaultConfig()
	want.DataDir = "/var/lib/zookeeper"
	want.DataLogDir = "/var/lib/zookeeper"
	want.PurgeInterval = 24
	want.SnapRetainCount = 5
	want.FourLetterWords = map[string]bool{"stat": true, "ruok": true, "mntr": true, "srvr": true}
	want.Path = filepath.Join("testdata", "zoo.cfg")
	require.Equal(t, want, c)
	require.NotContains(t, buf.String(), "level=WARN")
}

func TestLoadConfigMyID(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
		return p
	}
	ensemble := "dataDir=" + dir + "\nserver.1=a:2888:3888\nserver.2=b:2888:3888\nserver.3=c:2888:3888\n"
	cfgPath := write("zoo.cfg", ensemble)

	_, err := LoadConfig(cfgPath, nil)
	require.ErrorContains(t, err, "myid missing")

	write("myid", "2\n")
	c, err := LoadConfig(cfgPath, nil)
	require.NoError(t, err)
	require.Equal(t, 2, c.ServerID)
	require.Equal(t, [][2]string{
		{"clientPort", "2181"}, {"secureClientPort", "-1"}, {"dataDir", dir}, {"dataLogDir", dir},
		{"tickTime", "2000"}, {"maxClientCnxns", "60"}, {"minSessionTimeout", "4000"},
		{"maxSessionTimeout", "40000"}, {"clientPortListenBacklog", "-1"}, {"serverId", "2"},
		{"initLimit", "10"}, {"syncLimit", "5"}, {"electionAlg", "3"}, {"electionPort", "3888"},
		{"quorumPort", "2888"}, {"peerType", "0"},
	}, c.Properties())

	write("myid", "9")
	_, err = LoadConfig(cfgPath, nil)
	require.ErrorContains(t, err, "my id 9 not in the peer list")

	write("myid", "256")
	_, err = LoadConfig(cfgPath, nil)
	require.ErrorContains(t, err, "out of range")

	write("myid", "two")
	_, err = LoadConfig(cfgPath, nil)
	require.ErrorContains(t, err, "not a server id")

	// Standalone: myid is not read, even when it holds placeholder text
	// (as Debian's package ships it).
	write("myid", "replace this text with the cluster-unique zookeeper's instance id (1-255)")
	c, err = LoadConfig(write("standalone.cfg", "dataDir="+dir+"\n"), nil)
	require.NoError(t, err)
	require.Equal(t, 0, c.ServerID)

	_, err = LoadConfig(filepath.Join(dir, "missing.cfg"), nil)
	require.ErrorContains(t, err, "open config")
}

func TestLoadConfigClientPortFromServerLine(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
		return p
	}
	write("myid", "2")
	servers := "server.1=a:2888:3888;2181\nserver.2=b:2888:3888:participant;127.0.0.1:2182\nserver.3=c:2888:3888\n"
	c, err := LoadConfig(write("zoo.cfg", "dataDir="+dir+"\n"+servers), nil)
	require.NoError(t, err)
	require.Equal(t, 2182, c.ClientPort, "this server's line gives the client port")
	require.Equal(t, "127.0.0.1", c.ClientPortAddress)

	c, err = LoadConfig(write("zoo.cfg", "dataDir="+dir+"\nclientPort=2182\nclientPortAddress=127.0.0.1\n"+servers), nil)
	require.NoError(t, err, "the same port in both places is fine")
	require.Equal(t, 2182, c.ClientPort)

	_, err = LoadConfig(write("zoo.cfg", "dataDir="+dir+"\nclientPort=2190\n"+servers), nil)
	require.ErrorContains(t, err, "client port 2182 differs from clientPort=2190")
	_, err = LoadConfig(write("zoo.cfg", "dataDir="+dir+"\nclientPortAddress=0.0.0.0\n"+servers), nil)
	require.ErrorContains(t, err, "client address 127.0.0.1 differs from clientPortAddress=0.0.0.0")

	write("myid", "3")
	c, err = LoadConfig(write("zoo.cfg", "dataDir="+dir+"\n"+servers), nil)
	require.NoError(t, err)
	require.Equal(t, DefaultClientPort, c.ClientPort, "a line without a client part leaves the default")
}

func TestLoadConfigRelativeDataDir(t *testing.T) {
	c, err := LoadConfig(filepath.Join("testdata", "zoo.cfg"), nil)
	require.NoError(t, err)
	c.DataDir = "rel/data"
	c.DataLogDir = "rel/log"
	cwd, err := os.Getwd()
	require.NoError(t, err)
	props := c.Properties()
	require.Equal(t, [2]string{"dataDir", filepath.Join(cwd, "rel/data")}, props[2])
	require.Equal(t, [2]string{"dataLogDir", filepath.Join(cwd, "rel/log")}, props[3])
	require.Len(t, props, 10) // no quorum keys when standalone
}

func TestValidate(t *testing.T) {
	for name, mutate := range map[string]func(*Config){
		"tickTime":           func(c *Config) { c.TickTime = 0 },
		"clientPort":         func(c *Config) { c.ClientPort = 65536 },
		"maxSessionTimeout":  func(c *Config) { c.MaxSessionTimeout = c.MinSessionTimeout - 1 },
		"minSessionTimeout":  func(c *Config) { c.MinSessionTimeout = 0 },
		"snapRetainCount":    func(c *Config) { c.SnapRetainCount = 2 },
		"jute.maxbuffer":     func(c *Config) { c.JuteMaxBuffer = 0 },
		"jute.maxbuffer cap": func(c *Config) { c.JuteMaxBuffer = proto.MaxMaxBuffer + 1 },
		"whitelist":          func(c *Config) { c.FourLetterWords = map[string]bool{"kill": true} },
		"myid":               func(c *Config) { c.ServerID = 300 },
		"server":             func(c *Config) { c.Servers = map[int]ServerSpec{1: {ID: 2, Host: "h", QuorumPort: 1, ElectionPort: 2}} },
	} {
		t.Run(name, func(t *testing.T) {
			c := DefaultConfig()
			mutate(&c)
			require.Error(t, c.Validate())
		})
	}
}

func TestParseConfigAdminKeys(t *testing.T) {
	c := parse(t, "admin.enableServer=false\nadmin.serverAddress=127.0.0.1\nadmin.serverPort=9090\n")
	require.False(t, c.AdminEnableServer)
	require.Equal(t, "127.0.0.1", c.AdminServerAddress)
	require.Equal(t, 9090, c.AdminServerPort)
	// ZooKeeper reads them as system properties too: zookeeper.admin.*.
	c = parse(t, "zookeeper.admin.serverPort=0\nzookeeper.admin.serverAddress=[::1]\n")
	require.Equal(t, 0, c.AdminServerPort)
	require.Equal(t, "::1", c.AdminServerAddress)
	require.True(t, c.AdminEnableServer)

	for _, tc := range []struct{ cfg, key string }{
		{"admin.serverPort=http\n", "admin.serverPort"},
		{"admin.serverPort=70000\n", "admin.serverPort"},
		{"admin.serverPort=-1\n", "admin.serverPort"},
		{"admin.enableServer=maybe\n", "admin.enableServer"},
		{"admin.serverAddress=\n", "admin.serverAddress"},
	} {
		_, err := ParseConfig(strings.NewReader(tc.cfg), nil)
		var ce *ConfigError
		require.ErrorAs(t, err, &ce, tc.cfg)
		require.Equal(t, tc.key, ce.Key, tc.cfg)
		require.Contains(t, err.Error(), tc.key)
	}
	bad := DefaultConfig()
	bad.AdminServerPort = 65536
	require.ErrorContains(t, bad.Validate(), "admin.serverPort")
}
