package tlsconf

import (
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
)

// rfc2253Keywords are the attribute types Java's X500Principal.getName()
// (RFC 2253 format) prints by keyword; every other type is printed as its
// dotted OID with the value's DER encoding in hex (sun.security.x509's
// AVAKeyword table, the entries marked RFC 2253 compliant).
var rfc2253Keywords = map[string]string{
	"2.5.4.3":                    "CN",
	"2.5.4.6":                    "C",
	"2.5.4.7":                    "L",
	"2.5.4.8":                    "ST",
	"2.5.4.10":                   "O",
	"2.5.4.11":                   "OU",
	"2.5.4.9":                    "STREET",
	"0.9.2342.19200300.100.1.25": "DC",
	"0.9.2342.19200300.100.1.1":  "UID",
}

// ASN.1 string tags Java prints as text in RFC 2253 format.
const (
	tagUTF8String      = 12
	tagPrintableString = 19
	tagT61String       = 20
	tagIA5String       = 22
	tagGeneralString   = 27
	tagBMPString       = 30
)

// rfc2253Escapees are the characters Java escapes with a backslash.
const rfc2253Escapees = ",=+<>#;\"\\"

// SubjectDN formats a certificate's raw subject (Certificate.RawSubject) as
// ZooKeeper's X509AuthenticationProvider names a client:
// X500Principal.getName(), RFC 2253 format. The last RDN comes first, the
// RDNs are joined by ',', the values of a multi-valued RDN by '+'; CN, C,
// L, ST, O, OU, STREET, DC and UID are named by keyword, other types by
// OID with "#" and the hex DER of the value (an e-mail address too);
// the characters ,=+<>#;"\ are escaped with a backslash wherever they are,
// and so are leading and trailing blanks.
func SubjectDN(rawSubject []byte) (string, error) {
	var rdns []asn1.RawValue
	rest, err := asn1.Unmarshal(rawSubject, &rdns)
	if err != nil {
		return "", fmt.Errorf("subject: %w", err)
	}
	if len(rest) > 0 {
		return "", errors.New("subject: trailing data")
	}
	parts := make([]string, 0, len(rdns))
	for i := len(rdns) - 1; i >= 0; i-- {
		set := rdns[i]
		if set.Class != asn1.ClassUniversal || set.Tag != asn1.TagSet {
			return "", errors.New("subject: an RDN is not a SET")
		}
		var avas []string
		for b := set.Bytes; len(b) > 0; {
			var ava struct {
				Type  asn1.ObjectIdentifier
				Value asn1.RawValue
			}
			b, err = asn1.Unmarshal(b, &ava)
			if err != nil {
				return "", fmt.Errorf("subject: attribute: %w", err)
			}
			avas = append(avas, formatAVA(ava.Type.String(), ava.Value))
		}
		parts = append(parts, strings.Join(avas, "+"))
	}
	return strings.Join(parts, ","), nil
}

// formatAVA formats one type=value as Java's AVA.toRFC2253String.
func formatAVA(oid string, v asn1.RawValue) string {
	kw, known := rfc2253Keywords[oid]
	text, isString := derString(v)
	if !known || !isString {
		name := oid
		if known {
			name = kw
		}
		return name + "=#" + hex.EncodeToString(v.FullBytes)
	}
	var b strings.Builder
	for _, r := range text {
		switch {
		case strings.ContainsRune(rfc2253Escapees, r):
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == 0:
			b.WriteString("\\00")
		default:
			b.WriteRune(r)
		}
	}
	escaped := []rune(b.String())
	lead, trail := 0, len(escaped)-1
	for lead < len(escaped) && (escaped[lead] == ' ' || escaped[lead] == '\r') {
		lead++
	}
	for trail >= 0 && (escaped[trail] == ' ' || escaped[trail] == '\r') {
		trail--
	}
	var out strings.Builder
	out.WriteString(kw)
	out.WriteByte('=')
	for i, r := range escaped {
		if i < lead || i > trail {
			out.WriteByte('\\')
		}
		out.WriteRune(r)
	}
	return out.String()
}

// derString decodes the string types Java prints as text (its
// AVA.isDerString, non-canonical).
func derString(v asn1.RawValue) (string, bool) {
	if v.Class != asn1.ClassUniversal {
		return "", false
	}
	switch v.Tag {
	case tagUTF8String, tagPrintableString, tagIA5String, tagGeneralString:
		return string(v.Bytes), true
	case tagT61String:
		// Java reads a T61String as ISO-8859-1.
		r := make([]rune, len(v.Bytes))
		for i, c := range v.Bytes {
			r[i] = rune(c)
		}
		return string(r), true
	case tagBMPString:
		if len(v.Bytes)%2 != 0 {
			return "", false
		}
		u := make([]uint16, len(v.Bytes)/2)
		for i := range u {
			u[i] = uint16(v.Bytes[2*i])<<8 | uint16(v.Bytes[2*i+1])
		}
		return string(utf16.Decode(u)), true
	}
	return "", false
}
