// Package tlsconf turns ZooKeeper's ssl.* settings into Go TLS
// configurations: PEM key stores (private key and certificate chain in one
// file, ZooKeeper's ssl.keyStore.type=PEM) and PEM trust bundles, reloaded
// when their files change (a cert-manager rotation), the subject names of
// client certificates formatted as ZooKeeper's X509AuthenticationProvider
// names them, and the first-bytes test of ZooKeeper's port unification.
//
// The same Settings describe the client side (ssl.*) and the quorum side
// (ssl.quorum.*) of a server. Passwords are never kept: a key store that
// would need one is refused with an error saying what to do instead.
package tlsconf

import (
	"crypto/tls"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// ClientAuth is ssl.clientAuth: whether a server asks its TLS clients for a
// certificate.
type ClientAuth string

// The values of ssl.clientAuth, as ZooKeeper's X509Util.ClientAuth; an
// empty value means ClientAuthNeed, ZooKeeper's default.
const (
	// ClientAuthNone asks for no certificate.
	ClientAuthNone ClientAuth = "none"
	// ClientAuthWant asks for one and accepts a client without; a
	// certificate that is sent must verify.
	ClientAuthWant ClientAuth = "want"
	// ClientAuthNeed refuses a client without a valid certificate.
	ClientAuthNeed ClientAuth = "need"
)

// Settings are one side's TLS settings, named after ZooKeeper's keys
// (prefix "ssl." for clients, "ssl.quorum." for peers).
type Settings struct {
	// KeyStoreLocation is the PEM file holding this server's private key
	// and certificate chain (keyStore.location).
	KeyStoreLocation string
	// KeyStoreType is keyStore.type: "PEM", or empty to infer it from the
	// file name as ZooKeeper does. JKS, PKCS12 and BCFKS are refused.
	KeyStoreType string
	// KeyStorePasswordSet records that keyStore.password or
	// keyStore.passwordPath was given. The value itself is not kept.
	KeyStorePasswordSet bool
	// TrustStoreLocation is the PEM bundle of the certificate authorities
	// that peers' certificates must chain to (trustStore.location); empty
	// means the system's roots.
	TrustStoreLocation string
	// TrustStoreType is trustStore.type, as KeyStoreType.
	TrustStoreType string
	// ClientAuth is clientAuth (none, want, need); empty means need.
	ClientAuth ClientAuth
	// Protocol is protocol (TLSv1.2, TLSv1.3, or TLS for both). When
	// EnabledProtocols is empty, only this protocol is enabled, as in
	// ZooKeeper; both empty enable TLS 1.2 and 1.3.
	Protocol string
	// EnabledProtocols is enabledProtocols, a comma list.
	EnabledProtocols []string
	// CipherSuites is ciphersuites, a comma list of IANA (and Java) suite
	// names. TLS 1.3 suites are accepted and always enabled (Go does not
	// let them be chosen); empty means Go's defaults.
	CipherSuites []string
	// HostnameVerification is hostnameVerification: a peer's certificate
	// must name the host it is known by (ZooKeeper's default, true).
	HostnameVerification bool
}

// Configured reports whether a key store was named at all.
func (s Settings) Configured() bool { return s.KeyStoreLocation != "" }

// versionNames maps ZooKeeper's (Java's) protocol names to Go's versions.
var versionNames = map[string]uint16{
	"TLSv1.2": tls.VersionTLS12,
	"TLSv1.3": tls.VersionTLS13,
}

// versions returns the lowest and highest protocol version enabled.
func (s Settings) versions(prefix string) (lo, hi uint16, err error) {
	names := s.EnabledProtocols
	key := prefix + "enabledProtocols"
	if len(names) == 0 && s.Protocol != "" && s.Protocol != "TLS" {
		names, key = []string{s.Protocol}, prefix+"protocol"
	}
	if len(names) == 0 {
		return tls.VersionTLS12, tls.VersionTLS13, nil
	}
	for _, n := range names {
		v, ok := versionNames[n]
		if !ok {
			switch n {
			case "TLSv1", "TLSv1.1", "SSLv3":
				return 0, 0, fmt.Errorf("%s: %s is not supported (insecure): use TLSv1.2 or TLSv1.3", key, n)
			}
			return 0, 0, fmt.Errorf("%s: unknown protocol %q (want TLSv1.2 or TLSv1.3)", key, n)
		}
		if lo == 0 || v < lo {
			lo = v
		}
		hi = max(hi, v)
	}
	return lo, hi, nil
}

// suites returns the configured TLS 1.2 suites (nil for Go's defaults).
func (s Settings) suites(prefix string) ([]uint16, error) {
	if len(s.CipherSuites) == 0 {
		return nil, nil
	}
	byName := map[string]uint16{}
	tls13 := map[string]bool{}
	for _, cs := range slices.Concat(tls.CipherSuites(), tls.InsecureCipherSuites()) {
		if slices.Equal(cs.SupportedVersions, []uint16{tls.VersionTLS13}) {
			tls13[cs.Name] = true
			continue
		}
		byName[cs.Name] = cs.ID
	}
	var out []uint16
	for _, n := range s.CipherSuites {
		if id, ok := byName[n]; ok {
			out = append(out, id)
			continue
		}
		if !tls13[n] {
			return nil, fmt.Errorf("%sciphersuites: unknown or unsupported cipher suite %q", prefix, n)
		}
	}
	return out, nil
}

// storeType checks a key or trust store's type: only PEM is read.
func storeType(key, typ, location string) error {
	t := strings.ToUpper(typ)
	if t == "" {
		switch strings.ToLower(filepath.Ext(location)) {
		case ".jks":
			t = "JKS"
		case ".p12", ".pfx":
			t = "PKCS12"
		case ".bcfks":
			t = "BCFKS"
		default:
			t = "PEM"
		}
	}
	if t == "PEM" {
		return nil
	}
	return fmt.Errorf("%s: %s stores are not supported: zabkeeper reads PEM files only; convert the store "+
		"(e.g. openssl pkcs12 -in store.p12 -nodes -out store.pem, after keytool -importkeystore to PKCS12 for JKS) "+
		"and set %s=PEM", key, t, key)
}

// Validate checks the settings of one side; prefix is "ssl." or
// "ssl.quorum." and names the keys in errors.
func (s Settings) Validate(prefix string) error {
	var errs []error
	if s.KeyStoreLocation == "" {
		errs = append(errs, fmt.Errorf("%skeyStore.location: not set (a PEM file with the private key and the certificate chain)", prefix))
	}
	if err := storeType(prefix+"keyStore.type", s.KeyStoreType, s.KeyStoreLocation); err != nil {
		errs = append(errs, err)
	}
	if err := storeType(prefix+"trustStore.type", s.TrustStoreType, s.TrustStoreLocation); err != nil {
		errs = append(errs, err)
	}
	switch s.ClientAuth {
	case "", ClientAuthNone, ClientAuthWant, ClientAuthNeed:
	default:
		errs = append(errs, fmt.Errorf("%sclientAuth: %q is not none, want or need", prefix, s.ClientAuth))
	}
	if _, _, err := s.versions(prefix); err != nil {
		errs = append(errs, err)
	}
	if _, err := s.suites(prefix); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ParseClientAuth reads an ssl.clientAuth value, case-insensitively as
// ZooKeeper does.
func ParseClientAuth(v string) (ClientAuth, error) {
	a := ClientAuth(strings.ToLower(strings.TrimSpace(v)))
	switch a {
	case "", ClientAuthNone, ClientAuthWant, ClientAuthNeed:
		return a, nil
	}
	return "", fmt.Errorf("%q is not none, want or need", v)
}

// SplitList splits a comma list as ZooKeeper does, dropping blanks.
func SplitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
