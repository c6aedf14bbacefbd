package main

import (
	"bytes"
	"crypto/x509/pkix"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/internal/testserver"
	"github.com/zabkeeper/zabkeeper/loadgen"
	"github.com/zabkeeper/zabkeeper/server"
	"github.com/zabkeeper/zabkeeper/server/tlsconf/tlstest"
)

// `zabkeeper bench --tls-ca --tls-keystore` runs its sessions over TLS
// against a server's secureClientPort (clientAuth need, the default).
func TestBenchTLS(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "bench CA")
	srvLeaf := ca.Issue(t, tlstest.Options{Subject: pkix.Name{CommonName: "localhost"}})
	cliLeaf := ca.Issue(t, tlstest.Options{Subject: pkix.Name{CommonName: "bench"}})
	cfg := server.DefaultConfig()
	cfg.AdminServerAddress, cfg.AdminServerPort = "127.0.0.1", 0 // a free port: tests run side by side
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.DataLogDir = cfg.DataDir
	cfg.ClientPort = 0
	cfg.ClientPortAddress = "127.0.0.1"
	cfg.TLS.SecureClientPort = 0
	cfg.TLS.Client.KeyStoreLocation = tlstest.WriteFile(t, dir, "server.pem", srvLeaf.KeyStorePEM)
	caFile := tlstest.WriteFile(t, dir, "ca.pem", ca.PEM)
	cfg.TLS.Client.TrustStoreLocation = caFile
	srv := testserver.StartLogged(t, cfg, slog.New(slog.DiscardHandler))
	defer srv.Stop()
	secure := srv.Srv.SecureAddr().String()
	var stdout, stderr bytes.Buffer
	code := run([]string{"bench", "--servers", secure, "--workload", "mixed", "--sessions", "2", "--ops", "20",
		"--warmup", "0", "--json", "--tls-ca", caFile, "--tls-keystore",
		tlstest.WriteFile(t, dir, "client.pem", cliLeaf.KeyStorePEM)}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	var results []loadgen.Result
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &results), stdout.String())
	require.Len(t, results, 1)
	require.Equal(t, int64(20), results[0].Ops)
	require.Zero(t, results[0].ErrorCount, "%v", results[0].Errors)

	// A bad flag is a usage error before anything runs.
	stderr.Reset()
	code = run([]string{"bench", "--servers", secure, "--tls-ca", filepath.Join(dir, "missing.pem")}, &stdout, &stderr)
	require.Equal(t, 2, code)
	require.Contains(t, stderr.String(), "--tls-ca")
}
