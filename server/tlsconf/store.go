package tlsconf

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultReloadInterval is how often a Store looks at its files.
const DefaultReloadInterval = 2 * time.Second

// Store holds one side's key pair and trust bundle, read from PEM files,
// and the TLS configurations built from them. Watch rereads the files when
// they change: connections made afterwards use the new material, those
// already up are not touched. All methods are safe for concurrent use.
type Store struct {
	name     string // "client" or "quorum", for logs
	prefix   string // "ssl." or "ssl.quorum.", for errors
	settings Settings
	log      *slog.Logger
	minV     uint16
	maxV     uint16
	suites   []uint16

	cur atomic.Pointer[material]
	// reloadMu serializes Reload (Watch and callers).
	reloadMu sync.Mutex
	// seen is the hash of the files' contents last tried (loaded or
	// refused), so a bad file is reported once, not at every poll.
	seen [sha256.Size]byte

	stopOnce sync.Once
	watched  atomic.Bool
	stop     chan struct{}
	done     chan struct{}
}

// material is one generation of what the files held.
type material struct {
	cert   tls.Certificate
	leaf   *x509.Certificate
	roots  *x509.CertPool // nil: the system's roots
	server *tls.Config
	loaded time.Time
}

// Open validates s, reads its files and returns the Store. name ("client",
// "quorum") labels its log lines, prefix ("ssl.", "ssl.quorum.") its errors.
func Open(name, prefix string, s Settings, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := s.Validate(prefix); err != nil {
		return nil, fmt.Errorf("tlsconf: %s TLS: %w", name, err)
	}
	lo, hi, _ := s.versions(prefix)
	suites, _ := s.suites(prefix)
	st := &Store{name: name, prefix: prefix, settings: s, log: logger.With("tls", name),
		minV: lo, maxV: hi, suites: suites, stop: make(chan struct{}), done: make(chan struct{})}
	key, trust, sum, err := st.readFiles()
	if err != nil {
		return nil, err
	}
	m, err := st.build(key, trust)
	if err != nil {
		return nil, err
	}
	st.seen = sum
	st.cur.Store(m)
	st.log.Info("TLS key store loaded", "keyStore", s.KeyStoreLocation, "trustStore", s.TrustStoreLocation,
		"subject", m.leaf.Subject.String(), "notAfter", m.leaf.NotAfter.UTC().Format(time.RFC3339))
	st.warnValidity(m.leaf)
	return st, nil
}

// readFiles reads the key store and trust bundle and hashes them together.
func (st *Store) readFiles() (key, trust []byte, sum [sha256.Size]byte, err error) {
	key, err = os.ReadFile(st.settings.KeyStoreLocation)
	if err != nil {
		return nil, nil, sum, fmt.Errorf("tlsconf: %skeyStore.location: %w", st.prefix, err)
	}
	if st.settings.TrustStoreLocation != "" {
		trust, err = os.ReadFile(st.settings.TrustStoreLocation)
		if err != nil {
			return nil, nil, sum, fmt.Errorf("tlsconf: %strustStore.location: %w", st.prefix, err)
		}
	}
	h := sha256.New()
	h.Write(key)
	h.Write([]byte{0})
	h.Write(trust)
	copy(sum[:], h.Sum(nil))
	return key, trust, sum, nil
}

// build parses the files' contents into a new generation.
func (st *Store) build(key, trust []byte) (*material, error) {
	cert, leaf, err := parseKeyStore(key)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: %skeyStore.location %s: %w", st.prefix, st.settings.KeyStoreLocation, err)
	}
	var roots *x509.CertPool
	if st.settings.TrustStoreLocation != "" {
		roots, err = parseTrustBundle(trust)
		if err != nil {
			return nil, fmt.Errorf("tlsconf: %strustStore.location %s: %w", st.prefix, st.settings.TrustStoreLocation, err)
		}
	}
	m := &material{cert: cert, leaf: leaf, roots: roots, loaded: time.Now()}
	m.server = &tls.Config{
		MinVersion:   st.minV,
		MaxVersion:   st.maxV,
		CipherSuites: st.suites,
		Certificates: []tls.Certificate{cert},
		ClientCAs:    roots,
		// A resumed session would skip verifying the client against the
		// trust bundle as it is now.
		SessionTicketsDisabled: true,
	}
	switch st.settings.ClientAuth {
	case ClientAuthNone:
		m.server.ClientAuth = tls.NoClientCert
	case ClientAuthWant:
		m.server.ClientAuth = tls.VerifyClientCertIfGiven
	default:
		m.server.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return m, nil
}

// parseKeyStore reads a PEM key store: one private key (PKCS#8, PKCS#1 or
// SEC 1) and the certificate chain, leaf first, in any order.
func parseKeyStore(data []byte) (tls.Certificate, *x509.Certificate, error) {
	if !bytes.Contains(data, []byte("-----BEGIN")) {
		return tls.Certificate{}, nil, errors.New("not a PEM file (only PEM key stores are read; set keyStore.type=PEM)")
	}
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "ENCRYPTED PRIVATE KEY" || b.Headers["Proc-Type"] == "4,ENCRYPTED" {
			return tls.Certificate{}, nil, errors.New("the private key is encrypted: zabkeeper reads unencrypted PEM keys " +
				"only (protect the file with its permissions, e.g. mode 0400, or a Kubernetes secret; " +
				"openssl pkcs8 -topk8 -nocrypt decrypts it)")
		}
	}
	cert, err := tls.X509KeyPair(data, data)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("want a private key and its certificate chain in PEM: %w", err)
	}
	return cert, cert.Leaf, nil
}

// parseTrustBundle reads a PEM bundle of one or more CA certificates.
func parseTrustBundle(data []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, errors.New("no PEM certificate in the trust bundle")
	}
	return pool, nil
}

// warnValidity logs a certificate outside its validity period: the files
// are used anyway (peers decide), but the operator should know why
// handshakes fail.
func (st *Store) warnValidity(leaf *x509.Certificate) {
	now := time.Now()
	if now.After(leaf.NotAfter) {
		st.log.Error("TLS certificate has expired", "keyStore", st.settings.KeyStoreLocation,
			"notAfter", leaf.NotAfter.UTC().Format(time.RFC3339))
	} else if now.Before(leaf.NotBefore) {
		st.log.Warn("TLS certificate is not valid yet", "keyStore", st.settings.KeyStoreLocation,
			"notBefore", leaf.NotBefore.UTC().Format(time.RFC3339))
	}
}

// Reload rereads the files and, when their contents changed and parse,
// makes them current. It reports whether new material was installed. A
// change that does not parse (a half-written file) is logged once and the
// old material stays.
func (st *Store) Reload() bool {
	st.reloadMu.Lock()
	defer st.reloadMu.Unlock()
	key, trust, sum, err := st.readFiles()
	if err != nil {
		if sum != st.seen {
			st.log.Warn("TLS files unreadable; keeping the previous ones", "err", err)
		}
		st.seen = sum
		return false
	}
	if sum == st.seen {
		return false
	}
	st.seen = sum
	m, err := st.build(key, trust)
	if err != nil {
		st.log.Warn("TLS files changed but do not load; keeping the previous ones", "err", err)
		return false
	}
	st.cur.Store(m)
	st.log.Info("TLS key store reloaded", "subject", m.leaf.Subject.String(),
		"notAfter", m.leaf.NotAfter.UTC().Format(time.RFC3339))
	st.warnValidity(m.leaf)
	return true
}

// Watch polls the files every interval (DefaultReloadInterval if <= 0)
// until Close. Polling reads through symbolic links, so the link swap by
// which Kubernetes updates a mounted secret is seen like an edit in place.
func (st *Store) Watch(interval time.Duration) {
	if interval <= 0 {
		interval = DefaultReloadInterval
	}
	if st.watched.Swap(true) {
		return
	}
	go func() {
		defer close(st.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-st.stop:
				return
			case <-t.C:
				st.Reload()
			}
		}
	}()
}

// Close stops Watch and waits for it.
func (st *Store) Close() {
	st.stopOnce.Do(func() { close(st.stop) })
	if st.watched.Load() {
		<-st.done
	}
}

// Leaf returns the current certificate.
func (st *Store) Leaf() *x509.Certificate { return st.cur.Load().leaf }

// Roots returns the current trust bundle; nil means the system's roots.
func (st *Store) Roots() *x509.CertPool { return st.cur.Load().roots }

// ServerConfig returns a configuration for accepting connections that
// always uses the current material.
func (st *Store) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: st.minV,
		MaxVersion: st.maxV,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return st.cur.Load().server, nil
		},
	}
}

// ClientConfig returns a configuration for dialing serverName (a host name
// or an IP) with the current material: this side's certificate, the trust
// bundle, and the server's name checked against its certificate unless
// hostname verification is off, in which case only the chain is checked.
func (st *Store) ClientConfig(serverName string) *tls.Config {
	m := st.cur.Load()
	c := &tls.Config{
		MinVersion:   st.minV,
		MaxVersion:   st.maxV,
		CipherSuites: st.suites,
		Certificates: []tls.Certificate{m.cert},
		RootCAs:      m.roots,
		ServerName:   serverName,
	}
	if !st.settings.HostnameVerification {
		roots := m.roots
		c.InsecureSkipVerify = true // the chain is checked just below, the name is not
		c.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			_, err := VerifyChain(raw, roots, x509.ExtKeyUsageServerAuth)
			return err
		}
	}
	return c
}

// VerifyChain checks that the DER certificates raw (leaf first) chain to
// roots (nil: the system's) for usage, and returns the leaf.
func VerifyChain(raw [][]byte, roots *x509.CertPool, usage x509.ExtKeyUsage) (*x509.Certificate, error) {
	if len(raw) == 0 {
		return nil, errors.New("no certificate")
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, r := range raw {
		c, err := x509.ParseCertificate(r)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", i, err)
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}})
	return certs[0], err
}

// LoadKeyStore reads a PEM key store (private key and certificate chain),
// for clients such as zabkeeper bench.
func LoadKeyStore(path string) (tls.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlsconf: %w", err)
	}
	cert, _, err := parseKeyStore(data)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlsconf: %s: %w", path, err)
	}
	return cert, nil
}

// LoadTrustBundle reads a PEM bundle of CA certificates.
func LoadTrustBundle(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: %w", err)
	}
	pool, err := parseTrustBundle(data)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: %s: %w", path, err)
	}
	return pool, nil
}
