package tlsconf

import (
	"crypto/x509"
	"fmt"
	"regexp"
	"strings"
)

// Subject alternative name types, numbered as Java's GeneralName (and
// ssl.clientCertIdSanMatchType) numbers them.
const (
	SANEmail = 1 // rfc822Name
	SANDNS   = 2 // dNSName
	SANURI   = 6 // uniformResourceIdentifier
	SANIP    = 7 // iPAddress
)

// IDSettings choose the x509 identity of a TLS client.
type IDSettings struct {
	// Type is ssl.clientCertIdType: "" or "SUBJECT_DN" for the subject
	// DN (ZooKeeper's X509AuthenticationProvider), "SAN" for a subject
	// alternative name.
	Type string
	// SANMatchType is ssl.clientCertIdSanMatchType, the SAN type to use
	// (SANEmail, SANDNS, SANURI, SANIP).
	SANMatchType int
	// SANMatch is ssl.clientCertIdSanMatchRegex: exactly one SAN of that
	// type must match it (anywhere in the name), as in ZooKeeper; nil
	// matches every SAN of the type.
	SANMatch *regexp.Regexp
	// SANExtract is ssl.clientCertIdSanExtractRegex: when set, the id is
	// the SANExtractGroup'th group of its match in the SAN.
	SANExtract *regexp.Regexp
	// SANExtractGroup is ssl.clientCertIdSanExtractMatcherGroupIndex.
	SANExtractGroup int
}

// Validate checks the settings.
func (s IDSettings) Validate() error {
	switch strings.ToUpper(s.Type) {
	case "", "SUBJECT_DN":
		return nil
	case "SAN":
	default:
		return fmt.Errorf("ssl.clientCertIdType: %q is not SUBJECT_DN or SAN", s.Type)
	}
	switch s.SANMatchType {
	case SANEmail, SANDNS, SANURI, SANIP:
	default:
		return fmt.Errorf("ssl.clientCertIdSanMatchType: %d is not 1 (e-mail), 2 (DNS), 6 (URI) or 7 (IP)", s.SANMatchType)
	}
	if s.SANExtract != nil && (s.SANExtractGroup < 0 || s.SANExtractGroup > s.SANExtract.NumSubexp()) {
		return fmt.Errorf("ssl.clientCertIdSanExtractMatcherGroupIndex: %d, but the regex has %d groups",
			s.SANExtractGroup, s.SANExtract.NumSubexp())
	}
	return nil
}

// ClientID returns the x509 identity of a client certificate.
func (s IDSettings) ClientID(cert *x509.Certificate) (string, error) {
	if !strings.EqualFold(s.Type, "SAN") {
		return SubjectDN(cert.RawSubject)
	}
	var names []string
	switch s.SANMatchType {
	case SANEmail:
		names = cert.EmailAddresses
	case SANDNS:
		names = cert.DNSNames
	case SANURI:
		for _, u := range cert.URIs {
			names = append(names, u.String())
		}
	case SANIP:
		for _, ip := range cert.IPAddresses {
			names = append(names, ip.String())
		}
	}
	var matched []string
	for _, n := range names {
		if s.SANMatch == nil || s.SANMatch.MatchString(n) {
			matched = append(matched, n)
		}
	}
	// As ZooKeeper's X509AuthenticationUtil: exactly one SAN must match.
	if len(matched) != 1 {
		return "", fmt.Errorf("%d subject alternative names of type %d match ssl.clientCertIdSanMatchRegex, want exactly one",
			len(matched), s.SANMatchType)
	}
	if s.SANExtract == nil {
		return matched[0], nil
	}
	m := s.SANExtract.FindStringSubmatch(matched[0])
	if m == nil {
		return "", fmt.Errorf("subject alternative name %q does not match ssl.clientCertIdSanExtractRegex", matched[0])
	}
	return m[s.SANExtractGroup], nil
}

// IsTLSHandshake reports whether the first bytes of a connection are a TLS
// handshake record, as ZooKeeper's port unification tells them apart
// (its DualModeSslHandler: a first byte other than 22, the handshake
// record type, is plain text): content type 22, then major version 3 when
// a second byte is given. A ZooKeeper client's first bytes are the length
// of its ConnectRequest (first byte 0) and a four-letter word is ASCII
// letters, so neither starts with 22.
func IsTLSHandshake(first []byte) bool {
	return len(first) >= 1 && first[0] == 22 && (len(first) < 2 || first[1] == 3)
}
