package tlsconf_test

import (
	"crypto/x509"
	"testing"

	"github.com/zabkeeper/zabkeeper/server/tlsconf/tlstest"
)

func x509Pool(t *testing.T, ca *tlstest.CA) *x509.CertPool {
	t.Helper()
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}
