package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// writeDynamicSetup writes dir/zoo.cfg (with the given extra lines and a
// dataDir holding myid 1) and, when dynName is not "", dir/dynName with
// dynBody. It returns the zoo.cfg path.
func writeDynamicSetup(t *testing.T, dir, extra, dynName, dynBody string) string {
	t.Helper()
	data := filepath.Join(dir, "data")
	require.NoError(t, os.MkdirAll(data, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(data, "myid"), []byte("1\n"), 0o644))
	cfg := "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=" + data + "\n" + extra
	if dynName != "" {
		require.NoError(t, os.WriteFile(filepath.Join(dir, dynName), []byte(dynBody), 0o644))
	}
	path := filepath.Join(dir, "zoo.cfg")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o644))
	return path
}

// TestDynamicConfigFileEnsemble: zoo.cfg names a dynamicConfigFile in the
// form ZooKeeper's documentation and its Docker image use; the ensemble
// (participants, an observer, client ports in the lines) comes from that
// file and the version from its name.
func TestDynamicConfigFileEnsemble(t *testing.T) {
	dir := t.TempDir()
	dyn := filepath.Join(dir, "zoo.cfg.dynamic.100000000")
	path := writeDynamicSetup(t, dir, "dynamicConfigFile="+dyn+"\n", "zoo.cfg.dynamic.100000000",
		"server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\n"+
			"server.2=zk-2:2888:3888;2182\n"+
			"server.3=zk-3:2888:3888:observer;0.0.0.0:2183")
	c, err := LoadConfig(path, nil)
	require.NoError(t, err)
	require.Equal(t, map[int]ServerSpec{
		1: {ID: 1, Host: "127.0.0.1", QuorumPort: 2888, ElectionPort: 3888, ClientAddr: "127.0.0.1", ClientPort: 2181},
		2: {ID: 2, Host: "zk-2", QuorumPort: 2888, ElectionPort: 3888, ClientPort: 2182},
		3: {ID: 3, Host: "zk-3", QuorumPort: 2888, ElectionPort: 3888, Observer: true, ClientAddr: "0.0.0.0", ClientPort: 2183},
	}, c.Servers)
	require.Equal(t, DynamicConfig{File: dyn, Version: 0x100000000, StandaloneEnabled: true}, c.Dynamic)
	require.Equal(t, 1, c.ServerID)
	require.Equal(t, 2181, c.ClientPort, "the client port of the server's own line")
	require.Equal(t, "127.0.0.1", c.ClientPortAddress)
	require.Equal(t, "server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\n"+
		"server.2=zk-2:2888:3888:participant;0.0.0.0:2182\n"+
		"server.3=zk-3:2888:3888:observer;0.0.0.0:2183\n"+
		"version=100000000", c.ensembleConfigData())
}

// TestDynamicConfigFileRelative: a relative dynamicConfigFile is relative to
// the working directory, as Java's FileInputStream opens it, not to
// zoo.cfg's directory; a missing one says so.
func TestDynamicConfigFileRelative(t *testing.T) {
	dir := t.TempDir()
	path := writeDynamicSetup(t, dir, "dynamicConfigFile=conf/zoo.cfg.dynamic\n", "", "")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "conf"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "conf", "zoo.cfg.dynamic"), []byte(
		"server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\nserver.3=127.0.0.1:2890:3890\n"), 0o644))
	t.Chdir(dir)
	c, err := LoadConfig(path, nil)
	require.NoError(t, err)
	require.Len(t, c.Servers, 3)
	require.Equal(t, int64(0), c.Dynamic.Version, "no hex version after the name's last dot")

	t.Chdir(filepath.Join(dir, "conf"))
	_, err = LoadConfig(path, nil)
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "dynamicConfigFile", ce.Key)
	require.Equal(t, 5, ce.Line)
	require.ErrorIs(t, err, os.ErrNotExist)
	require.Contains(t, err.Error(), "relative to the working directory "+filepath.Join(dir, "conf"))
}

// TestDynamicConfigFileErrors: what ZooKeeper refuses, and a file naming no
// participant, fail with a ConfigError naming the file and line.
func TestDynamicConfigFileErrors(t *testing.T) {
	const three = "server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\nserver.3=127.0.0.1:2890:3890\n"
	for _, tc := range []struct {
		name, extra, dyn string
		key              string
		inDyn            bool // the error names the dynamic file
		line             int
		want             string
	}{
		{name: "server line in both files", extra: "server.1=127.0.0.1:2888:3888\n", dyn: three,
			key: "server.1", line: 6, want: "must be in the dynamic config file"},
		{name: "version line", dyn: three + "version=100000000\n", key: "version", inDyn: true, line: 4,
			want: "holds no version"},
		{name: "other key", dyn: three + "clientPort=2181\n", key: "clientPort", inDyn: true, line: 4,
			want: "unrecognised parameter"},
		{name: "malformed line", dyn: "server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:notaport:3889\n",
			key: "server.2", inDyn: true, line: 2, want: "bad port"},
		{name: "bad id", dyn: "server.x=127.0.0.1:2888:3888\n", key: "server.x", inDyn: true, line: 1,
			want: "not a server id"},
		{name: "group", dyn: three + "group.1=1:2:3\n", key: "group.1", inDyn: true, line: 4,
			want: "hierarchical quorums"},
		{name: "empty", dyn: "# nothing\n", key: "server.N", inDyn: true, want: "refusing to start as a standalone server"},
		{name: "observers only", dyn: "server.1=127.0.0.1:2888:3888:observer\n", key: "server.N", inDyn: true,
			want: "observers without participants"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			dyn := filepath.Join(dir, "zoo.cfg.dynamic.1")
			path := writeDynamicSetup(t, dir, "dynamicConfigFile="+dyn+"\n"+tc.extra, "zoo.cfg.dynamic.1", tc.dyn)
			_, err := LoadConfig(path, nil)
			var ce *ConfigError
			require.ErrorAs(t, err, &ce, "%v", err)
			require.Equal(t, tc.key, ce.Key, "%v", err)
			require.Equal(t, tc.line, ce.Line, "%v", err)
			require.Contains(t, err.Error(), tc.want)
			if tc.inDyn {
				require.Equal(t, dyn, ce.File)
				require.Contains(t, err.Error(), dyn)
			}
		})
	}

	// group and weight lines in zoo.cfg itself are refused too.
	dir := t.TempDir()
	path := writeDynamicSetup(t, dir, three+"weight.1=2\n", "", "")
	_, err := LoadConfig(path, nil)
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "weight.1", ce.Key)
	require.Contains(t, err.Error(), "hierarchical quorums")

	// An unreadable file.
	var dyn string
	if os.Geteuid() != 0 { // root reads any file
		dir = t.TempDir()
		dyn = filepath.Join(dir, "zoo.cfg.dynamic.1")
		path = writeDynamicSetup(t, dir, "dynamicConfigFile="+dyn+"\n", "zoo.cfg.dynamic.1", three)
		require.NoError(t, os.Chmod(dyn, 0))
		_, err = LoadConfig(path, nil)
		require.ErrorIs(t, err, os.ErrPermission)
	}
	// A malformed escape: the syntax error names the file and line.
	dir = t.TempDir()
	dyn = filepath.Join(dir, "zoo.cfg.dynamic.1")
	path = writeDynamicSetup(t, dir, "dynamicConfigFile="+dyn+"\n", "zoo.cfg.dynamic.1", three+"server.4=h\\u12:1:2\n")
	_, err = LoadConfig(path, nil)
	require.ErrorAs(t, err, &ce)
	require.Equal(t, dyn, ce.File)
	require.Contains(t, err.Error(), dyn)
	require.Contains(t, err.Error(), "line 4")

	// A directory in its place.
	dir = t.TempDir()
	path = writeDynamicSetup(t, dir, "dynamicConfigFile="+dir+"\n", "", "")
	_, err = LoadConfig(path, nil)
	require.ErrorAs(t, err, &ce)
	require.Contains(t, err.Error(), dir)
}

// TestDynamicConfigVersionFromFilename follows
// QuorumPeerConfig.getVersionFromFilename: hex after the last '.', else 0.
func TestDynamicConfigVersionFromFilename(t *testing.T) {
	for name, want := range map[string]int64{
		"/conf/zoo.cfg.dynamic.100000000": 0x100000000,
		"zoo.cfg.dynamic.0":               0,
		"zoo.cfg.dynamic.1001":            0x1001,
		"zoo.cfg.dynamic.a":               0xa,
		"zoo.cfg.dynamic":                 0,
		"/conf/zoo.dynamic.cfg":           0,
		"dynamic":                         0,
	} {
		require.Equal(t, want, versionFromFilename(name), name)
	}
}

// TestReconfigEnabledConfig: reconfigEnabled and standaloneEnabled are read,
// not ignored; zoo.cfg's own version line counts with server lines in it
// (ZooKeeper's backward-compatible mode reads it there); a single
// participant with standaloneEnabled is a standalone server to ZooKeeper,
// with an empty config node.
func TestReconfigEnabledConfig(t *testing.T) {
	three := "server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\nserver.3=127.0.0.1:2890:3890\n"
	dir := t.TempDir()
	path := writeDynamicSetup(t, dir, three+"reconfigEnabled=true\nversion=200000000\n", "", "")
	logger, log := captureLogger()
	c, err := LoadConfig(path, logger)
	require.NoError(t, err)
	require.True(t, c.Dynamic.ReconfigEnabled)
	require.Equal(t, int64(0x200000000), c.Dynamic.Version)
	require.NotContains(t, log.String(), "level=WARN", "reconfig is implemented: nothing to warn about")
	require.NotContains(t, log.String(), "unknown configuration key")
	require.True(t, strings.HasSuffix(c.ensembleConfigData(), "\nversion=200000000"))

	dir = t.TempDir()
	path = writeDynamicSetup(t, dir, "server.1=127.0.0.1:2888:3888\nstandaloneEnabled=false\nreconfigEnabled=no\n", "", "")
	c, err = LoadConfig(path, nil)
	require.NoError(t, err)
	require.Equal(t, DynamicConfig{StandaloneEnabled: false}, c.Dynamic)
	require.Equal(t, "server.1=127.0.0.1:2888:3888:participant\nversion=0", c.ensembleConfigData())
	c.Dynamic.StandaloneEnabled = true
	require.Empty(t, c.ensembleConfigData())

	_, err = ParseConfig(strings.NewReader("reconfigEnabled=maybe\n"), nil)
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "reconfigEnabled", ce.Key)
	require.Equal(t, 1, ce.Line)
}

// TestDynamicConfigNextFileWarned: the proposed configuration an unfinished
// ZooKeeper reconfig leaves (zoo.cfg.dynamic.next) is not acted on, but
// said.
func TestDynamicConfigNextFileWarned(t *testing.T) {
	dir := t.TempDir()
	dyn := filepath.Join(dir, "zoo.cfg.dynamic.1")
	path := writeDynamicSetup(t, dir, "dynamicConfigFile="+dyn+"\n", "zoo.cfg.dynamic.1",
		"server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\n")
	require.NoError(t, os.WriteFile(path+".dynamic.next", []byte("server.1=127.0.0.1:2888:3888\nversion=2\n"), 0o644))
	logger, log := captureLogger()
	_, err := LoadConfig(path, logger)
	require.NoError(t, err)
	require.Contains(t, log.String(), "unfinished ZooKeeper reconfig")
}
