package server_test

import (
	"context"
	"crypto/x509/pkix"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/server/tlsconf/tlstest"
)

// kazooPython is the interpreter Debian's python3-kazoo is installed for.
const kazooPython = "/usr/bin/python3"

// kazooTLSScript connects with kazoo's TLS options, creates a node only
// its certificate's x509 id may read, and reads it back.
const kazooTLSScript = `
import sys
from kazoo.client import KazooClient
from kazoo.security import make_acl
host, key, cert, ca = sys.argv[1:5]
zk = KazooClient(hosts=host, use_ssl=True, keyfile=key, certfile=cert, ca=ca, verify_certs=True, timeout=20)
zk.start(timeout=20)
zk.create("/kazoo", b"tls", acl=[make_acl("x509", "CN=kazoo,O=Py", all=True)])
data, stat = zk.get("/kazoo")
print("GOT", data.decode())
acl, _ = zk.get_acls("/kazoo")
print("ACL", acl[0].id.scheme, acl[0].id.id)
zk.stop()
`

// TestKazooTLS drives the TLS port with kazoo (Debian's python3-kazoo)
// and its TLS options: a client certificate, the CA, verification on.
func TestKazooTLS(t *testing.T) {
	if err := exec.Command(kazooPython, "-c", "import kazoo").Run(); err != nil {
		if os.Getenv("ZABKEEPER_REQUIRE_JAVA") != "" {
			t.Fatalf("kazoo not importable by %s (apt-get install python3-kazoo): %v", kazooPython, err)
		}
		t.Skipf("kazoo not installed (apt-get install python3-kazoo)")
	}
	e := newTLSEnv(t)
	_, secure, _ := startTLSServer(t, e, nil)
	leaf := e.ca.Issue(t, tlstest.Options{Subject: pkix.Name{CommonName: "kazoo", Organization: []string{"Py"}}})
	key := tlstest.WriteFile(t, e.dir, "kazoo.key", leaf.KeyPEM)
	cert := tlstest.WriteFile(t, e.dir, "kazoo.crt", leaf.CertPEM)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, kazooPython, "-c", kazooTLSScript, secure, key, cert, e.trust).CombinedOutput()
	text := string(out)
	require.NoError(t, err, "kazoo:\n%s", text)
	require.Contains(t, text, "GOT tls\n", text)
	require.Contains(t, text, "ACL x509 CN=kazoo,O=Py\n", text)
	require.False(t, strings.Contains(text, "Traceback"), text)
}
