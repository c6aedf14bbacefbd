package tlsconf_test

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/server/tlsconf"
	"github.com/zabkeeper/zabkeeper/server/tlsconf/tlstest"
)

// TestSubjectDNAgainstJava asks Java itself: for certificates with
// awkward subjects, SubjectDN must print exactly what
// X509Certificate.getSubjectX500Principal().getName() prints, the id
// ZooKeeper's X509AuthenticationProvider gives the client.
func TestSubjectDNAgainstJava(t *testing.T) {
	if _, err := exec.LookPath("javac"); err != nil {
		if os.Getenv("ZABKEEPER_REQUIRE_JAVA") != "" {
			t.Fatalf("javac not found: %v", err)
		}
		t.Skip("javac not installed")
	}
	dir := t.TempDir()
	out, err := exec.Command("javac", "-d", dir, "testdata/PrintSubject.java").CombinedOutput()
	require.NoError(t, err, "javac:\n%s", out)
	oid := func(s ...int) asn1.ObjectIdentifier { return asn1.ObjectIdentifier(s) }
	subjects := []pkix.Name{
		{CommonName: "client", OrganizationalUnit: []string{"eng", "ops"}, Organization: []string{"Acme, Inc."}, Country: []string{"US"}},
		{CommonName: `a=b#c+d;e<f>"g\h`},
		{CommonName: " lead and trail ", Locality: []string{"Saint-Étienne"}, Province: []string{"Loire"}},
		{CommonName: "#hash first", SerialNumber: "42", StreetAddress: []string{"1 Main St"}, PostalCode: []string{"75001"}},
		{CommonName: "zoé ✓", ExtraNames: []pkix.AttributeTypeAndValue{
			{Type: oid(1, 2, 840, 113549, 1, 9, 1), Value: "a@b.example"},
			{Type: oid(0, 9, 2342, 19200300, 100, 1, 25), Value: "example"},
			{Type: oid(0, 9, 2342, 19200300, 100, 1, 1), Value: "jdoe"},
			{Type: oid(2, 5, 4, 12), Value: "Title"},
		}},
	}
	ca := tlstest.NewCA(t, "CA")
	var paths, want []string
	for i, s := range subjects {
		leaf := ca.Issue(t, tlstest.Options{Subject: s})
		paths = append(paths, tlstest.WriteFile(t, dir, "c"+strconv.Itoa(i)+".der", leaf.Cert.Raw))
		dn, err := tlsconf.SubjectDN(leaf.Cert.RawSubject)
		require.NoError(t, err)
		want = append(want, dn)
	}
	// A multi-valued RDN, which pkix.Name cannot express.
	raw, err := asn1.Marshal(pkix.RDNSequence{
		{{Type: oid(2, 5, 4, 6), Value: "FR"}},
		{{Type: oid(2, 5, 4, 3), Value: "multi"}, {Type: oid(2, 5, 4, 11), Value: "unit"}},
	})
	require.NoError(t, err)
	leaf := ca.Issue(t, tlstest.Options{RawSubject: raw})
	paths = append(paths, tlstest.WriteFile(t, dir, "multi.der", leaf.Cert.Raw))
	dn, err := tlsconf.SubjectDN(leaf.Cert.RawSubject)
	require.NoError(t, err)
	want = append(want, dn)

	cmd := exec.Command("java", append([]string{"-cp", dir, "-Dfile.encoding=UTF-8", "-Dstdout.encoding=UTF-8", "PrintSubject"}, paths...)...)
	got, err := cmd.Output()
	require.NoError(t, err)
	lines := strings.Split(strings.TrimRight(string(got), "\n"), "\n")
	t.Logf("Java prints:\n%s", got)
	require.Len(t, lines, len(subjects)+1)
	require.Equal(t, want, lines, "Java's X500Principal.getName() and SubjectDN differ")
}
