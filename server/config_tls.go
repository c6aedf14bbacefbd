package server

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/zabkeeper/zabkeeper/server/tlsconf"
)

// TLSConfig is the TLS part of the configuration (issue 10): ZooKeeper's
// keys, PEM files only. See server/tls.go for how it is used.
type TLSConfig struct {
	// SecureClientPort is the TLS client port (secureClientPort); -1 (the
	// default) means none, 0 asks the operating system for a free port.
	SecureClientPort int
	// SecureClientPortAddress is its listen address
	// (secureClientPortAddress); "" means clientPortAddress.
	SecureClientPortAddress string
	// PortUnification lets the plain client port take TLS clients too,
	// told apart by their first bytes (client.portUnification), as
	// ZooKeeper's port unification does.
	PortUnification bool
	// Client are the ssl.* settings of the client ports.
	Client tlsconf.Settings
	// Quorum turns on mutual TLS between servers (sslQuorum).
	Quorum bool
	// QuorumSettings are the ssl.quorum.* settings.
	QuorumSettings tlsconf.Settings
	// QuorumPortUnification lets the quorum port accept plain-text and TLS
	// peers alike (portUnification, as ZooKeeper's), the middle step of a
	// rolling move of an ensemble to quorum TLS; Quorum says how this
	// server dials.
	QuorumPortUnification bool
	// ClientID chooses the x509 identity of a TLS client with a
	// certificate (ssl.clientCertIdType and the SAN match keys).
	ClientID tlsconf.IDSettings
	// SuperUser is the x509 identity that is super user
	// (zookeeper.X509AuthenticationProvider.superUser).
	SuperUser string
	// ReloadInterval is how often the PEM files are checked for changes
	// (ssl.reloadIntervalMs, a zabkeeper key; default 2 s).
	ReloadInterval time.Duration
	// OutstandingHandshakeLimit caps the TLS handshakes in progress on the
	// client ports that speak TLS: a connection accepted past it is closed
	// at once and counted (mntr zk_tls_handshake_exceeded), as ZooKeeper's
	// zookeeper.netty.server.outstandingHandshake.limit; 0 or less (the
	// default, -1, ZooKeeper's) means no cap.
	OutstandingHandshakeLimit int
	// HandshakeTimeout is how long a connection to a client port that
	// speaks TLS may take to send its first byte and finish the TLS
	// handshake (ssl.handshakeDetectionTimeoutMillis, ZooKeeper's key and
	// default, 5 s); past it the connection is closed.
	HandshakeTimeout time.Duration
}

// DefaultHandshakeTimeout is HandshakeTimeout's default, ZooKeeper's
// X509Util.DEFAULT_HANDSHAKE_DETECTION_TIMEOUT_MILLIS.
const DefaultHandshakeTimeout = 5 * time.Second

// defaultTLSConfig is TLSConfig's defaults: no TLS port, hostname
// verification on (ZooKeeper's default).
func defaultTLSConfig() TLSConfig {
	return TLSConfig{
		SecureClientPort: -1,
		Client:           tlsconf.Settings{HostnameVerification: true},
		QuorumSettings:   tlsconf.Settings{HostnameVerification: true},
		ReloadInterval:   tlsconf.DefaultReloadInterval,

		OutstandingHandshakeLimit: -1,
		HandshakeTimeout:          DefaultHandshakeTimeout,
	}
}

// QuorumTLS reports whether the quorum port speaks TLS (sslQuorum, or
// portUnification on the way to it).
func (t TLSConfig) QuorumTLS() bool { return t.Quorum || t.QuorumPortUnification }

// ClientTLS reports whether any client port speaks TLS.
func (t TLSConfig) ClientTLS() bool { return t.SecureClientPort >= 0 || t.PortUnification }

// setTLSKey applies one TLS key (with or without the "zookeeper." prefix
// ZooKeeper's system properties carry); handled is false for keys that are
// not TLS keys this server reads. Secrets (passwords) are never kept.
func (t *TLSConfig) setTLSKey(key, value string) (handled bool, err error) {
	k := strings.TrimPrefix(key, "zookeeper.")
	// ZooKeeper's x509 settings are spelled ssl.clientCertId... by its
	// X509Util and ssl.x509.clientCertId... by X509AuthenticationConfig.
	if r, ok := strings.CutPrefix(k, "ssl.x509.clientCertId"); ok {
		k = "ssl.clientCertId" + r
	}
	boolVal := func() (bool, error) {
		switch strings.ToLower(value) {
		case "true", "yes", "1":
			return true, nil
		case "false", "no", "0", "":
			return false, nil
		}
		return false, fmt.Errorf("%q is not a boolean", value)
	}
	s := &t.Client
	rest, isSSL := strings.CutPrefix(k, "ssl.")
	if q, ok := strings.CutPrefix(k, "ssl.quorum."); ok {
		s, rest = &t.QuorumSettings, q
	}
	switch {
	case k == "secureClientPort":
		n, err := strconv.Atoi(value)
		if err != nil || n < 0 || n > 65535 {
			return true, fmt.Errorf("%q is not a port in [0, 65535]", value)
		}
		t.SecureClientPort = n
	case k == "secureClientPortAddress":
		t.SecureClientPortAddress = strings.Trim(value, "[]")
	case k == "client.portUnification":
		t.PortUnification, err = boolVal()
	case k == "sslQuorum":
		t.Quorum, err = boolVal()
	case k == "portUnification":
		t.QuorumPortUnification, err = boolVal()
	case k == "X509AuthenticationProvider.superUser":
		t.SuperUser = value
	case k == "netty.server.outstandingHandshake.limit":
		// Integer.getInteger in ZooKeeper: any int, <= 0 is no cap.
		t.OutstandingHandshakeLimit, err = strconv.Atoi(value)
	case k == "ssl.handshakeDetectionTimeoutMillis":
		var ms int
		ms, err = strconv.Atoi(value)
		if err == nil && ms <= 0 {
			err = fmt.Errorf("%d must be positive", ms)
		}
		t.HandshakeTimeout = time.Duration(ms) * time.Millisecond
	case k == "sslQuorumReloadCertFiles", k == "client.certReload":
		// Both are always on here; the keys are accepted for ZooKeeper's
		// configurations.
		_, err = boolVal()
	case !isSSL:
		return false, nil
	case rest == "keyStore.location":
		s.KeyStoreLocation = value
	case rest == "keyStore.type":
		s.KeyStoreType = value
	case rest == "keyStore.password", rest == "keyStore.passwordPath":
		s.KeyStorePasswordSet = value != ""
	case rest == "trustStore.location":
		s.TrustStoreLocation = value
	case rest == "trustStore.type":
		s.TrustStoreType = value
	case rest == "trustStore.password", rest == "trustStore.passwordPath":
		// A PEM bundle needs no password.
	case rest == "clientAuth":
		s.ClientAuth, err = tlsconf.ParseClientAuth(value)
	case rest == "protocol":
		s.Protocol = value
	case rest == "enabledProtocols":
		s.EnabledProtocols = tlsconf.SplitList(value)
	case rest == "ciphersuites":
		s.CipherSuites = tlsconf.SplitList(value)
	case rest == "hostnameVerification":
		s.HostnameVerification, err = boolVal()
	case k == "ssl.clientCertIdType":
		t.ClientID.Type = value
	case k == "ssl.clientCertIdSanMatchType":
		t.ClientID.SANMatchType, err = strconv.Atoi(value)
	case k == "ssl.clientCertIdSanMatchRegex":
		t.ClientID.SANMatch, err = regexp.Compile(value)
	case k == "ssl.clientCertIdSanExtractRegex":
		t.ClientID.SANExtract, err = regexp.Compile(value)
	case k == "ssl.clientCertIdSanExtractMatcherGroupIndex":
		t.ClientID.SANExtractGroup, err = strconv.Atoi(value)
	case k == "ssl.reloadIntervalMs":
		var ms int
		ms, err = strconv.Atoi(value)
		if err == nil && ms <= 0 {
			err = fmt.Errorf("%d must be positive", ms)
		}
		t.ReloadInterval = time.Duration(ms) * time.Millisecond
	default:
		return false, nil
	}
	return true, err
}

// validate checks the TLS settings that are in use.
func (t TLSConfig) validate() error {
	if t.ClientTLS() {
		if err := t.Client.Validate("ssl."); err != nil {
			return &ConfigError{Key: "ssl.*", Err: err}
		}
	}
	if t.QuorumTLS() {
		if err := t.QuorumSettings.Validate("ssl.quorum."); err != nil {
			return &ConfigError{Key: "ssl.quorum.*", Err: err}
		}
	}
	if err := t.ClientID.Validate(); err != nil {
		return &ConfigError{Key: "ssl.clientCertIdType", Err: err}
	}
	if t.ClientTLS() && t.HandshakeTimeout <= 0 {
		return &ConfigError{Key: "ssl.handshakeDetectionTimeoutMillis", Err: fmt.Errorf("%v must be positive", t.HandshakeTimeout)}
	}
	if t.SecureClientPort < -1 || t.SecureClientPort > 65535 {
		return &ConfigError{Key: "secureClientPort", Err: fmt.Errorf("%d out of range [0, 65535]", t.SecureClientPort)}
	}
	return nil
}

// cfgSecretKey reports whether a key's value may be a secret, so that it
// is never logged.
func cfgSecretKey(key string) bool {
	k := strings.ToLower(key)
	for _, s := range []string{"password", "secret", "token", "digest", "credential"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// tlsOnlyClientPort leaves out the plain client port when a zoo.cfg names
// secureClientPort but not clientPort, as ZooKeeper does: a server meant
// to take TLS clients only must not open 2181 in plain text as well. The
// ";clientPort" of the server's own server.N line still applies
// (useOwnClientPort).
func (c *Config) tlsOnlyClientPort(explicit cfgExplicit) {
	if !explicit.clientPort && c.TLS.SecureClientPort >= 0 {
		c.ClientPort = -1
	}
}
