package server

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHostnameOrdinalID(t *testing.T) {
	for host, want := range map[string]int{
		"zk-0":                             1,
		"zk-2":                             3,
		"zk-0.zk-hs.ns.svc.cluster.local":  1,
		"my-zk-set-12.zk-hs":               13,
		"zabkeeper-254":                    255,
		"zk-007.zk-hs.default.svc.cluster": 8,
	} {
		got, err := hostnameOrdinalID(host, 255)
		require.NoError(t, err, host)
		require.Equal(t, want, got, host)
	}
	for _, host := range []string{"zk", "zk-", "zk-a", "zk0", "", "zk-1x", "zk.1-2", "zk-255"} {
		_, err := hostnameOrdinalID(host, 255)
		require.Error(t, err, host)
		require.ErrorContains(t, err, "myidFromHostnameOrdinal")
	}
	_, err := hostnameOrdinalID("zk-254", 254) // extended types reserve id 255
	require.ErrorContains(t, err, "beyond 254")
}

func TestMyIDFromHostnameOrdinal(t *testing.T) {
	dir := t.TempDir()
	cfgText := "dataDir=" + dir + "\nmyidFromHostnameOrdinal=true\n" +
		"server.1=zk-0.zk-hs:2888:3888\nserver.2=zk-1.zk-hs:2888:3888\nserver.3=zk-2.zk-hs:2888:3888\n"
	load := func(host string, hostErr error) (Config, string, error) {
		c, err := ParseConfig(strings.NewReader(cfgText), nil)
		require.NoError(t, err)
		require.True(t, c.MyIDFromHostnameOrdinal)
		logger, buf := captureLogger()
		err = c.readMyID(func() (string, error) { return host, hostErr }, logger)
		if err == nil {
			err = c.Validate()
		}
		return c, buf.String(), err
	}

	// No myid: the ordinal decides.
	c, logs, err := load("zk-1.zk-hs.default.svc.cluster.local", nil)
	require.NoError(t, err)
	require.Equal(t, 2, c.ServerID)
	require.Contains(t, logs, "server id from the host name's ordinal")

	_, _, err = load("zookeeper", nil)
	require.ErrorContains(t, err, `host name "zookeeper" does not end in a StatefulSet ordinal`)
	_, _, err = load("", errors.New("uname failed"))
	require.ErrorContains(t, err, "uname failed")
	_, _, err = load("zk-5", nil) // id 6 is not a server.N
	require.ErrorContains(t, err, "my id 6 not in the peer list")

	// A myid file wins; a disagreement is logged.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "myid"), []byte("3\n"), 0o644))
	c, logs, err = load("zk-0", nil)
	require.NoError(t, err)
	require.Equal(t, 3, c.ServerID)
	require.Contains(t, logs, "myid file disagrees with the host name's ordinal")
	c, logs, err = load("zk-2", nil)
	require.NoError(t, err)
	require.Equal(t, 3, c.ServerID)
	require.NotContains(t, logs, "disagrees")
	c, logs, err = load("laptop", nil)
	require.NoError(t, err)
	require.Equal(t, 3, c.ServerID)
	require.Contains(t, logs, "the host name gives no id")

	// Without the key a missing myid stays an error that names the key.
	require.NoError(t, os.Remove(filepath.Join(dir, "myid")))
	c, err = ParseConfig(strings.NewReader(strings.Replace(cfgText, "myidFromHostnameOrdinal=true", "", 1)), nil)
	require.NoError(t, err)
	err = c.readMyID(func() (string, error) { return "zk-0", nil }, nil)
	require.ErrorContains(t, err, "myid missing")
	require.ErrorContains(t, err, "myidFromHostnameOrdinal=true")
}

func TestExpandEnv(t *testing.T) {
	env := map[string]string{"POD": "zk-1", "EMPTY": "", "NS": "prod"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for in, want := range map[string]string{
		"plain":                     "plain",
		"${POD}":                    "zk-1",
		"${POD}.zk-hs.${NS}.svc":    "zk-1.zk-hs.prod.svc",
		"${MISSING:-2181}":          "2181",
		"${EMPTY:-fallback}":        "fallback",
		"${EMPTY}":                  "",
		"${POD:-other}":             "zk-1",
		"${MISSING:-}":              "",
		"$POD and $ and $${POD}":    "$POD and $ and $zk-1",
		"${MISSING:-a:b}:2888:3888": "a:b:2888:3888",
		"x${NS}y":                   "xprody",
		"${MISSING:-${POD}":         "${POD", // defaults are not expanded again
	} {
		got, err := expandEnv(in, lookup)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for in, msg := range map[string]string{
		"${MISSING}":  "environment variable MISSING is not set",
		"${POD":       "unterminated",
		"${}":         "bad environment variable name",
		"${1X}":       "bad environment variable name",
		"${A-B:-x}":   "bad environment variable name",
		"a ${NOPE} b": "NOPE is not set",
	} {
		_, err := expandEnv(in, lookup)
		require.ErrorContains(t, err, msg, in)
	}
}

func TestParseConfigExpandsEnv(t *testing.T) {
	t.Setenv("ZK_TEST_TICK", "1000")
	t.Setenv("ZK_TEST_HOST", "zk-0.zk-hs")
	c := parse(t, "tickTime=${ZK_TEST_TICK}\nclientPort=${ZK_TEST_UNSET_PORT:-2182}\n"+
		"server.1=${ZK_TEST_HOST}:2888:3888\nquorumListenOnAllIPs=${ZK_TEST_UNSET_ALL:-true}\n")
	require.Equal(t, 1000, c.TickTime)
	require.Equal(t, 2182, c.ClientPort)
	require.Equal(t, "zk-0.zk-hs", c.Servers[1].Host)
	require.True(t, c.QuorumListenOnAllIPs)

	_, err := ParseConfig(strings.NewReader("tickTime=2000\n\ndataDir=/data/${ZK_TEST_UNSET_DIR}\n"), nil)
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "dataDir", ce.Key)
	require.Equal(t, 3, ce.Line)
	require.ErrorContains(t, err, "ZK_TEST_UNSET_DIR is not set")
}
