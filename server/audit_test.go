package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/proto"
	"github.com/zabkeeper/zabkeeper/server"
)

type auditLine struct {
	Time      string `json:"time"`
	Session   string `json:"session"`
	IP        string `json:"ip"`
	User      string `json:"user"`
	Operation string `json:"operation"`
	Znode     string `json:"znode"`
	ZnodeType string `json:"znode_type"`
	ACL       string `json:"acl"`
	Scheme    string `json:"scheme"`
	Result    string `json:"result"`
	Error     string `json:"error"`
}

func readAudit(t *testing.T, path string) []auditLine {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []auditLine
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var l auditLine
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l), "every line is one JSON object: %s", sc.Text())
		out = append(out, l)
	}
	return out
}

func TestAuditLogRecordsWritesAndAuth(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	cfg := testConfig(t)
	cfg.Security.Audit.Enable, cfg.Security.Audit.File = true, path
	srv, _ := startServerObj(t, cfg)
	addr := srv.Addr().String()

	c := connect(t, addr)
	require.NoError(t, c.AddAuth("digest", []byte("alice:secret-password")))
	_, err := c.Create("/a", []byte("x"), 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
	_, err = c.Create("/a/e", nil, zk.FlagEphemeral|zk.FlagSequence, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
	_, err = c.Set("/a", []byte("y"), -1)
	require.NoError(t, err)
	_, err = c.SetACL("/a", zk.DigestACL(zk.PermAll, "alice", "secret-password"), -1)
	require.NoError(t, err)
	_, err = c.Create("/missing/child", nil, 0, zk.WorldACL(zk.PermAll))
	require.ErrorIs(t, err, zk.ErrNoNode)
	_, err = c.Multi(&zk.CreateRequest{Path: "/m1", Acl: zk.WorldACL(zk.PermAll)}, &zk.CreateRequest{Path: "/m2", Acl: zk.WorldACL(zk.PermAll)})
	require.NoError(t, err)
	_, _, err = c.Get("/a") // reads are not audited
	require.NoError(t, err)
	other := connect(t, addr)
	err = other.Delete("/m1", -1)
	require.NoError(t, err)
	require.ErrorIs(t, other.AddAuth("oidc", []byte("not-a-token")), zk.ErrAuthFailed)

	var lines []auditLine
	waitFor(t, "audit lines written", func() bool {
		lines = readAudit(t, path)
		return len(lines) >= 10
	})
	session := fmt.Sprintf("0x%x", c.SessionID())
	type key struct{ op, znode, result string }
	var got []key
	for _, l := range lines {
		got = append(got, key{l.Operation, l.Znode, l.Result})
		require.Equal(t, "127.0.0.1", l.IP)
		_, err := time.Parse(time.RFC3339Nano, l.Time)
		require.NoError(t, err)
		require.NotContains(t, l.User, "secret-password")
		require.NotContains(t, l.ACL, "=", "no digest hash in the log")
	}
	require.Equal(t, []key{
		{"addAuth", "", "success"},
		{"create", "/a", "success"},
		{"create", "/a/e", "success"},
		{"setData", "/a", "success"},
		{"setAcl", "/a", "success"},
		{"create", "/missing/child", "failure"},
		{"create", "/m1", "success"},
		{"create", "/m2", "success"},
		{"delete", "/m1", "success"},
		{"addAuth", "", "failure"},
	}, got)
	require.Equal(t, session, lines[1].Session)
	require.Equal(t, "ip:127.0.0.1,digest:alice", lines[1].User)
	require.Equal(t, "digest", lines[0].Scheme)
	require.Equal(t, "EPHEMERAL_SEQUENTIAL", lines[2].ZnodeType)
	require.Equal(t, "digest:alice:x:cdrwa", lines[4].ACL)
	require.Equal(t, "NoNode", lines[5].Error)
	require.Equal(t, "oidc", lines[9].Scheme)
	require.Equal(t, "ip:127.0.0.1", lines[8].User)

	require.Zero(t, counterValue(t, srv, "zabkeeper_audit_dropped_total"))
	require.GreaterOrEqual(t, counterValue(t, srv, "zabkeeper_audit_written_total"), 10.0)
}

// TestAuditLogNamesOIDCIdentities shows a token's identity in the user
// field of the writes made with it, and never the token.
func TestAuditLogNamesOIDCIdentities(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	f := newOIDCFixtureWith(t, time.Minute, func(cfg *server.Config) {
		cfg.Security.Audit.Enable, cfg.Security.Audit.File = true, path
	})
	tok := f.k8sToken(t, "system:serviceaccount:apps:web", time.Hour, nil)
	c := connect(t, f.addr)
	require.NoError(t, c.AddAuth("oidc", []byte(tok)))
	_, err := c.Create("/web", nil, 0, zk.AuthACL(zk.PermAll))
	require.NoError(t, err)
	var lines []auditLine
	waitFor(t, "audit lines written", func() bool {
		lines = readAudit(t, path)
		return len(lines) >= 2
	})
	require.Equal(t, "addAuth", lines[0].Operation)
	require.Equal(t, "success", lines[0].Result)
	require.Equal(t, "ip:127.0.0.1,oidc:system:serviceaccount:apps:web", lines[0].User)
	require.Equal(t, "create", lines[1].Operation)
	require.Equal(t, "ip:127.0.0.1,oidc:system:serviceaccount:apps:web", lines[1].User)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NotContains(t, string(b), tok[:40])
}

// TestAuditLogKeepsWritesOfVanishedClients sends writes and hangs up
// without waiting: each still gets its line, "success" when the reply was
// produced before the connection went, "unknown" otherwise.
func TestAuditLogKeepsWritesOfVanishedClients(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	cfg := testConfig(t)
	cfg.Security.Audit.Enable, cfg.Security.Audit.File = true, path
	srv, _ := startServerObj(t, cfg)
	c := newSession(t, srv.Addr().String(), 10000)
	for i := 0; i < 20; i++ {
		c.send(proto.OpCreate, &proto.CreateRequest{Path: fmt.Sprintf("/gone%d", i), ACL: proto.OpenACLUnsafe})
	}
	c.close()
	var lines []auditLine
	waitFor(t, "a line for every write", func() bool {
		lines = readAudit(t, path)
		return len(lines) >= 20
	})
	require.Len(t, lines, 20)
	for i, l := range lines {
		require.Equal(t, "create", l.Operation)
		require.Equal(t, fmt.Sprintf("/gone%d", i), l.Znode)
		require.Contains(t, []string{"success", "unknown"}, l.Result)
		require.Equal(t, fmt.Sprintf("0x%x", c.sessionID), l.Session)
	}
}
