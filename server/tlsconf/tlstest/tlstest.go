// Package tlstest makes certificate authorities and certificates for
// tests, with keys generated on the spot (never checked in), and writes
// them as PEM files in ZooKeeper's PEM key store layout.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a test certificate authority.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	// PEM is the CA certificate in PEM, a trust bundle.
	PEM []byte
}

// Leaf is a certificate with its key.
type Leaf struct {
	Cert *x509.Certificate
	// KeyStorePEM is the PKCS#8 private key followed by the certificate
	// (and the CA certificate, as a chain), as a ZooKeeper PEM key store.
	KeyStorePEM []byte
	// CertPEM and KeyPEM are the certificate and the key alone.
	CertPEM, KeyPEM []byte
}

// Options shape a leaf certificate.
type Options struct {
	// Subject is the subject; default CN=localhost.
	Subject pkix.Name
	// RawSubject, if set, is used as the DER subject instead of Subject.
	RawSubject []byte
	// DNSNames, IPs, Emails are the SANs; default DNS localhost and IP
	// 127.0.0.1.
	DNSNames []string
	IPs      []net.IP
	Emails   []string
	// NotBefore and NotAfter default to an hour ago and a day ahead.
	NotBefore, NotAfter time.Time
}

// nextSerial draws a random 127-bit serial number.
func nextSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err)
	}
	return n
}

// NewCA makes a CA named cn.
func NewCA(t testing.TB, cn string) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"zabkeeper tests"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{Cert: cert, Key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// Issue makes a certificate for both client and server use.
func (ca *CA) Issue(t testing.TB, o Options) *Leaf {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if o.Subject.String() == "" && o.RawSubject == nil {
		o.Subject = pkix.Name{CommonName: "localhost"}
	}
	if o.DNSNames == nil && o.IPs == nil && o.Emails == nil {
		o.DNSNames, o.IPs = []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	if o.NotBefore.IsZero() {
		o.NotBefore = time.Now().Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = time.Now().Add(24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber:   nextSerial(),
		Subject:        o.Subject,
		RawSubject:     o.RawSubject,
		DNSNames:       o.DNSNames,
		IPAddresses:    o.IPs,
		EmailAddresses: o.Emails,
		NotBefore:      o.NotBefore,
		NotAfter:       o.NotAfter,
		KeyUsage:       x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	l := &Leaf{
		Cert:    cert,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}),
	}
	l.KeyStorePEM = append(append(append([]byte{}, l.KeyPEM...), l.CertPEM...), ca.PEM...)
	return l
}

// WriteFile writes data to dir/name (mode 0600) and returns the path.
func WriteFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// QuorumCfg writes into dir a PEM key store for server id (a certificate
// naming localhost and 127.0.0.1, issued by ca) and ca's bundle, and
// returns the zoo.cfg lines that turn quorum TLS on for that server with
// them. Appended to each server's zoo.cfg, it runs an ensemble on
// 127.0.0.1 (directly or through byte-forwarding proxies) over mutual TLS.
func (ca *CA) QuorumCfg(t testing.TB, dir string, id int) string {
	t.Helper()
	leaf := ca.Issue(t, Options{Subject: pkix.Name{CommonName: fmt.Sprintf("server-%d", id)}})
	ks := WriteFile(t, dir, fmt.Sprintf("quorum-%d.pem", id), leaf.KeyStorePEM)
	trust := WriteFile(t, dir, "quorum-ca.pem", ca.PEM)
	return fmt.Sprintf("sslQuorum=true\nssl.quorum.keyStore.location=%s\nssl.quorum.keyStore.type=PEM\n"+
		"ssl.quorum.trustStore.location=%s\nssl.quorum.trustStore.type=PEM\n", ks, trust)
}
