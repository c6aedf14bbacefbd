package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/internal/testserver"
	"github.com/zabkeeper/zabkeeper/server"
)

// testIssuer is an OpenID Connect issuer on loopback: a discovery document
// and a JWKS whose keys the test can rotate. Its private keys live only in
// the test's memory.
type testIssuer struct {
	srv       *httptest.Server
	mu        sync.Mutex
	published []jose.JSONWebKey
	fetches   atomic.Int64
}

func newTestIssuer(t *testing.T) *testIssuer {
	is := &testIssuer{}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": is.srv.URL, "jwks_uri": is.srv.URL + "/keys",
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("/keys", func(w http.ResponseWriter, r *http.Request) {
		is.fetches.Add(1)
		is.mu.Lock()
		defer is.mu.Unlock()
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: is.published})
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	return is
}

func (is *testIssuer) publish(kid string, pub any) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.published = append(is.published, jose.JSONWebKey{Key: pub, KeyID: kid, Use: "sig"})
}

// mint signs claims with key as alg, naming kid.
func mint(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	require.NoError(t, err)
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	require.NoError(t, err)
	return tok
}

// b64 is the unpadded base64url of JSON.
func b64(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return base64.RawURLEncoding.EncodeToString(b)
}

// teeHandler writes the server's log to the test log and a buffer.
type teeWriter struct {
	a, b interface{ Write([]byte) (int, error) }
}

func (w teeWriter) Write(p []byte) (int, error) {
	_, _ = w.a.Write(p)
	return w.b.Write(p)
}

// startServerObj runs a server whose log the test reads, until the test ends.
func startServerObj(t *testing.T, cfg server.Config) (*server.Server, *lockedBuffer) {
	t.Helper()
	buf := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(teeWriter{newTestLog(t), buf}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return testserver.StartLogged(t, cfg, logger).Srv, buf
}

type oidcFixture struct {
	srv       *server.Server
	addr      string
	log       *lockedBuffer
	k8s       *testIssuer
	k8sKey    *rsa.PrivateKey
	cloudIss  string
	cloudKey  *ecdsa.PrivateKey
	jwksFile  string
	otherKey  *rsa.PrivateKey // published nowhere
	k8sIssuer string
	// deadIssuer is trusted, but its discovery document cannot be fetched.
	deadIssuer string
}

// newOIDCFixture runs a server trusting two issuers at once: a
// Kubernetes-like one found by discovery on loopback (RSA keys) and a
// cloud-like one whose keys are in a JWKS file (ECDSA keys), plus a third
// whose JWKS URL does not answer.
func newOIDCFixture(t *testing.T, skew time.Duration) *oidcFixture {
	return newOIDCFixtureWith(t, skew, nil)
}

// newOIDCFixtureWith is newOIDCFixture with a last change to the config.
func newOIDCFixtureWith(t *testing.T, skew time.Duration, mutate func(*server.Config)) *oidcFixture {
	f, oc := newOIDCIssuers(t, skew)
	cfg := testConfig(t)
	cfg.Security.OIDC = oc
	if mutate != nil {
		mutate(&cfg)
	}
	f.srv, f.log = startServerObj(t, cfg)
	f.addr = f.srv.Addr().String()
	return f
}

// newOIDCIssuers makes the issuers of the fixture and the configuration
// that trusts them, without a server.
func newOIDCIssuers(t *testing.T, skew time.Duration) (*oidcFixture, server.OIDCConfig) {
	f := &oidcFixture{k8s: newTestIssuer(t), cloudIss: "https://cloud.example/identity"}
	var err error
	f.k8sKey, err = rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	f.otherKey, err = rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	f.cloudKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	f.k8s.publish("k1", &f.k8sKey.PublicKey)
	f.k8sIssuer = f.k8s.srv.URL

	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &f.cloudKey.PublicKey, KeyID: "c1", Use: "sig"}}}
	b, err := json.Marshal(set)
	require.NoError(t, err)
	f.jwksFile = filepath.Join(t.TempDir(), "jwks.json")
	require.NoError(t, os.WriteFile(f.jwksFile, b, 0o600))

	dead, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	deadURL := "http://" + dead.Addr().String() + "/keys"
	f.deadIssuer = "http://" + dead.Addr().String()
	require.NoError(t, dead.Close())

	return f, server.OIDCConfig{
		Issuers: []server.OIDCIssuer{
			{Name: "k8s", Issuer: f.k8sIssuer, Audiences: []string{"zabkeeper"}, UsernameClaim: "sub", GroupsClaim: "groups", GroupsPrefix: "group:"},
			{Name: "cloud", Issuer: f.cloudIss, Audiences: []string{"zk-prod", "zabkeeper"}, JWKSFile: f.jwksFile, UsernameClaim: "email", UsernamePrefix: "cloud:"},
			{Name: "down", Issuer: "https://down.example", Audiences: []string{"zabkeeper"}, JWKSURL: deadURL},
			{Name: "gone", Issuer: f.deadIssuer, Audiences: []string{"zabkeeper"}},
		},
		SuperUsers:   []string{"system:serviceaccount:ops:root"},
		ClockSkew:    skew,
		FetchTimeout: 2 * time.Second,
	}
}

func (f *oidcFixture) k8sToken(t *testing.T, sub string, ttl time.Duration, extra map[string]any) string {
	now := time.Now()
	c := map[string]any{"iss": f.k8sIssuer, "aud": []string{"zabkeeper"}, "sub": sub,
		"iat": now.Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(ttl).Unix()}
	for k, v := range extra {
		c[k] = v
	}
	return mint(t, jose.RS256, f.k8sKey, "k1", c)
}

func TestOIDCIdentitiesHeldToACLs(t *testing.T) {
	f := newOIDCFixture(t, time.Minute)
	alice := connect(t, f.addr)
	require.NoError(t, alice.AddAuth("oidc", []byte(f.k8sToken(t, "system:serviceaccount:apps:alice", time.Hour, nil))))
	acl := []zk.ACL{
		{Perms: zk.PermAll, Scheme: "oidc", ID: "system:serviceaccount:apps:alice"},
		{Perms: zk.PermRead, Scheme: "oidc", ID: "group:readers"},
		{Perms: zk.PermRead | zk.PermWrite, Scheme: "oidc", ID: "cloud:bob@example.com"},
	}
	_, err := alice.Create("/app", []byte("v1"), 0, acl)
	require.NoError(t, err)
	got, _, err := alice.GetACL("/app")
	require.NoError(t, err)
	require.ElementsMatch(t, acl, got, "oidc ids are stored as given")

	anon := connect(t, f.addr)
	_, _, err = anon.Get("/app")
	require.ErrorIs(t, err, zk.ErrNoAuth, "no token, no access")

	// A member of the readers group (another service account) reads but
	// cannot write.
	reader := connect(t, f.addr)
	require.NoError(t, reader.AddAuth("oidc", []byte(f.k8sToken(t, "system:serviceaccount:apps:carol", time.Hour,
		map[string]any{"groups": []string{"readers", "other"}}))))
	data, _, err := reader.Get("/app")
	require.NoError(t, err)
	require.Equal(t, "v1", string(data))
	_, err = reader.Set("/app", []byte("x"), -1)
	require.ErrorIs(t, err, zk.ErrNoAuth)

	// The second issuer at once: an ES256 token from the JWKS file, its
	// identity from the email claim with the issuer's prefix.
	bob := connect(t, f.addr)
	cloudTok := mint(t, jose.ES256, f.cloudKey, "c1", map[string]any{"iss": f.cloudIss, "aud": "zk-prod",
		"sub": "1234567890", "email": "bob@example.com", "exp": time.Now().Add(time.Hour).Unix()})
	require.NoError(t, bob.AddAuth("oidc", []byte(cloudTok)))
	_, err = bob.Set("/app", []byte("v2"), -1)
	require.NoError(t, err)
	_, err = bob.SetACL("/app", zk.WorldACL(zk.PermAll), -1)
	require.ErrorIs(t, err, zk.ErrNoAuth, "bob may write data, not administer the node")

	// The super identity passes every ACL.
	root := connect(t, f.addr)
	require.NoError(t, root.AddAuth("oidc", []byte(f.k8sToken(t, "system:serviceaccount:ops:root", time.Hour, nil))))
	require.NoError(t, root.Delete("/app", -1))

	// The "auth" ACL scheme expands to the token's identities.
	_, err = alice.Create("/mine", nil, 0, zk.AuthACL(zk.PermAll))
	require.NoError(t, err)
	got, _, err = alice.GetACL("/mine")
	require.NoError(t, err)
	require.Equal(t, []zk.ACL{{Perms: zk.PermAll, Scheme: "oidc", ID: "system:serviceaccount:apps:alice"}}, got)
	require.Contains(t, f.log.String(), "oidc auth accepted")
}

func TestOIDCBadTokensRefused(t *testing.T) {
	f := newOIDCFixture(t, 30*time.Second)
	// A well-behaved client before, during and after the bad ones.
	good := connect(t, f.addr)
	require.NoError(t, good.AddAuth("oidc", []byte(f.k8sToken(t, "system:serviceaccount:apps:alice", time.Hour, nil))))
	_, err := good.Create("/good", nil, 0, zk.AuthACL(zk.PermAll))
	require.NoError(t, err)

	now := time.Now()
	base := func() map[string]any {
		return map[string]any{"iss": f.k8sIssuer, "aud": "zabkeeper", "sub": "system:serviceaccount:apps:mallory",
			"exp": now.Add(time.Hour).Unix()}
	}
	with := func(k string, v any) map[string]any {
		c := base()
		c[k] = v
		if v == nil {
			delete(c, k)
		}
		return c
	}
	valid := mint(t, jose.RS256, f.k8sKey, "k1", base())
	parts := strings.Split(valid, ".")
	pubDER, err := x509.MarshalPKIXPublicKey(&f.k8sKey.PublicKey)
	require.NoError(t, err)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	hmacWith := func(secret []byte) string {
		h := b64(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": "k1"})
		p := b64(t, base())
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(h + "." + p))
		return h + "." + p + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	tampered := parts[0] + "." + b64(t, with("sub", "system:serviceaccount:ops:root")) + "." + parts[2]

	cases := []struct {
		name, token, reason string
	}{
		{"expired", mint(t, jose.RS256, f.k8sKey, "k1", with("exp", now.Add(-time.Hour).Unix())), "expired"},
		{"not yet valid", mint(t, jose.RS256, f.k8sKey, "k1", with("nbf", now.Add(time.Hour).Unix())), "not valid before"},
		{"no expiry", mint(t, jose.RS256, f.k8sKey, "k1", with("exp", nil)), "exp"},
		{"wrong audience", mint(t, jose.RS256, f.k8sKey, "k1", with("aud", "someone-else")), "audience"},
		{"wrong issuer", mint(t, jose.RS256, f.k8sKey, "k1", with("iss", "https://evil.example")), "untrusted issuer"},
		{"unknown key", mint(t, jose.RS256, f.otherKey, "k9", base()), "signature"},
		{"known kid, wrong key", mint(t, jose.RS256, f.otherKey, "k1", base()), "signature"},
		{"tampered", tampered, "signature"},
		{"alg none", b64(t, map[string]any{"alg": "none", "typ": "JWT"}) + "." + b64(t, base()) + ".", "disallowed"},
		{"HMAC with the public key (PEM)", hmacWith(pubPEM), "disallowed"},
		{"HMAC with the public key (DER)", hmacWith(pubDER), "disallowed"},
		{"malformed", "not-a-token", "malformed"},
		{"huge", strings.Repeat("A", 64<<10), "exceeds"},
		{"no username claim", mint(t, jose.RS256, f.k8sKey, "k1", with("sub", nil)), "claim"},
		{"JWKS unreachable", mint(t, jose.RS256, f.k8sKey, "k1", with("iss", "https://down.example")), "connection refused"},
		{"discovery unreachable", mint(t, jose.RS256, f.k8sKey, "k1", with("iss", f.deadIssuer)), "discovery"},
		{"discovery unreachable, again at once", mint(t, jose.RS256, f.k8sKey, "k1", with("iss", f.deadIssuer)), "discovery"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := strings.Count(f.log.String(), "oidc auth refused")
			c := connect(t, f.addr)
			err := c.AddAuth("oidc", []byte(tc.token))
			require.ErrorIs(t, err, zk.ErrAuthFailed)
			waitFor(t, "refusal logged", func() bool { return strings.Count(f.log.String(), "oidc auth refused") > before })
			logged := f.log.String()
			line := logged[strings.LastIndex(logged, "oidc auth refused"):]
			line = line[:strings.IndexByte(line, '\n')]
			require.Contains(t, line, tc.reason)
			// The refused token never reaches the log.
			require.NotContains(t, logged, tc.token[:min(len(tc.token), 40)])
			// Everyone else is unaffected.
			_, _, err = good.Get("/good")
			require.NoError(t, err)
		})
	}
	require.NotContains(t, f.log.String(), valid[:40], "no token in the log")
	require.Equal(t, float64(len(cases)), counterValue(t, f.srv, "zabkeeper_oidc_refused_total"))
}

// counterValue reads a counter from the server's registry.
func counterValue(t *testing.T, srv *server.Server, name string) float64 {
	t.Helper()
	mfs, err := srv.Registry().Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestOIDCIdentityLapsesAtExpiryUntilFreshToken(t *testing.T) {
	f := newOIDCFixture(t, 0)
	admin := connect(t, f.addr)
	require.NoError(t, admin.AddAuth("oidc", []byte(f.k8sToken(t, "system:serviceaccount:ops:root", time.Hour, nil))))
	_, err := admin.Create("/job", []byte("x"), 0, []zk.ACL{{Perms: zk.PermAll, Scheme: "oidc", ID: "system:serviceaccount:apps:job"}})
	require.NoError(t, err)

	c := connect(t, f.addr)
	// exp has second resolution: the token lapses within two seconds.
	exp := time.Now().Add(2 * time.Second).Truncate(time.Second)
	short := mint(t, jose.RS256, f.k8sKey, "k1", map[string]any{"iss": f.k8sIssuer, "aud": "zabkeeper",
		"sub": "system:serviceaccount:apps:job", "exp": exp.Unix()})
	require.NoError(t, c.AddAuth("oidc", []byte(short)))
	_, _, err = c.Get("/job")
	require.NoError(t, err)
	time.Sleep(time.Until(exp) + 50*time.Millisecond) // waiting for a token to expire is the point
	_, _, err = c.Get("/job")
	require.ErrorIs(t, err, zk.ErrNoAuth, "the identity lapsed with its token")
	require.Equal(t, zk.StateHasSession, c.State(), "the session itself lives on")

	// The projected token rotated: the client sends the fresh one.
	require.NoError(t, c.AddAuth("oidc", []byte(f.k8sToken(t, "system:serviceaccount:apps:job", time.Hour, nil))))
	_, _, err = c.Get("/job")
	require.NoError(t, err)
}

func TestOIDCKeyRotationRefetchesOnUnknownKid(t *testing.T) {
	f := newOIDCFixture(t, time.Minute)
	c := connect(t, f.addr)
	require.NoError(t, c.AddAuth("oidc", []byte(f.k8sToken(t, "system:serviceaccount:apps:a", time.Hour, nil))))
	fetched := f.k8s.fetches.Load()

	// A flood of tokens naming unknown key ids costs the issuer at most
	// one fetch a second.
	start := time.Now()
	for i := 0; i < 10; i++ {
		c := connect(t, f.addr)
		tok := mint(t, jose.RS256, f.otherKey, fmt.Sprintf("made-up-%d", i), map[string]any{"iss": f.k8sIssuer,
			"aud": "zabkeeper", "sub": "x", "exp": time.Now().Add(time.Hour).Unix()})
		require.ErrorIs(t, c.AddAuth("oidc", []byte(tok)), zk.ErrAuthFailed)
		c.Close()
	}
	require.LessOrEqual(t, f.k8s.fetches.Load()-fetched, int64(time.Since(start)/time.Second)+1)

	// The cluster rotates its signing key: a token under the new kid is
	// accepted once the JWKS is fetched again.
	k2, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	f.k8s.publish("k2", &k2.PublicKey)
	tok := mint(t, jose.RS256, k2, "k2", map[string]any{"iss": f.k8sIssuer, "aud": "zabkeeper",
		"sub": "system:serviceaccount:apps:b", "exp": time.Now().Add(time.Hour).Unix()})
	fetched = f.k8s.fetches.Load()
	waitFor(t, "rotated key fetched (at most once a second)", func() bool {
		c2 := connect(t, f.addr)
		defer c2.Close()
		return c2.AddAuth("oidc", []byte(tok)) == nil
	})
	require.Greater(t, f.k8s.fetches.Load(), fetched, "the unknown kid refreshed the key set")

	// The JWKS file is rotated too.
	e2, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &e2.PublicKey, KeyID: "c2", Use: "sig"}}}
	b, err := json.Marshal(set)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(f.jwksFile, b, 0o600))
	ctok := mint(t, jose.ES256, e2, "c2", map[string]any{"iss": f.cloudIss, "aud": "zabkeeper",
		"email": "eve@example.com", "exp": time.Now().Add(time.Hour).Unix()})
	waitFor(t, "rotated JWKS file read (at most once a second)", func() bool {
		c3 := connect(t, f.addr)
		defer c3.Close()
		return c3.AddAuth("oidc", []byte(ctok)) == nil
	})
}

func TestOIDCSchemeOffWithoutIssuers(t *testing.T) {
	addr, _ := startServer(t, nil)
	c := connect(t, addr)
	require.ErrorIs(t, c.AddAuth("oidc", []byte("x.y.z")), zk.ErrAuthFailed)
}

func TestOIDCConfigKeys(t *testing.T) {
	cfgText := `tickTime=2000
dataDir=/tmp/zk
clientPort=2181
zabkeeper.oidc.issuers=k8s, gcp
zabkeeper.oidc.k8s.issuer=https://kubernetes.default.svc.cluster.local
zabkeeper.oidc.k8s.audience=zabkeeper
zabkeeper.oidc.k8s.caFile=/var/run/secrets/kubernetes.io/serviceaccount/ca.crt
zabkeeper.oidc.k8s.bearerTokenFile=/var/run/secrets/kubernetes.io/serviceaccount/token
zabkeeper.oidc.gcp.issuer=https://accounts.google.com
zabkeeper.oidc.gcp.audience=zk-prod,zabkeeper
zabkeeper.oidc.gcp.usernameClaim=email
zabkeeper.oidc.gcp.algorithms=RS256
zabkeeper.oidc.superUser=system:serviceaccount:ops:admin
zabkeeper.oidc.clockSkewMs=30000
audit.enable=true
zabkeeper.audit.file=/var/log/zk-audit.log
zookeeper.enforceQuota=true
`
	cfg, err := server.ParseConfig(strings.NewReader(cfgText), nil)
	require.NoError(t, err)
	o := cfg.Security.OIDC
	require.Len(t, o.Issuers, 2)
	require.Equal(t, "sub", o.Issuers[0].UsernameClaim)
	require.Equal(t, []string{"zk-prod", "zabkeeper"}, o.Issuers[1].Audiences)
	require.Equal(t, []string{"RS256"}, o.Issuers[1].Algorithms)
	require.Equal(t, 30*time.Second, o.ClockSkew)
	require.Equal(t, []string{"system:serviceaccount:ops:admin"}, o.SuperUsers)
	require.True(t, cfg.Security.Audit.Enable)
	require.Equal(t, "/var/log/zk-audit.log", cfg.Security.Audit.File)
	require.True(t, cfg.Security.EnforceQuota)
	require.Empty(t, cfg.Unknown)

	for name, bad := range map[string]string{
		"HMAC":         "zabkeeper.oidc.issuers=a\nzabkeeper.oidc.a.issuer=https://a\nzabkeeper.oidc.a.audience=x\nzabkeeper.oidc.a.algorithms=HS256\n",
		"none":         "zabkeeper.oidc.issuers=a\nzabkeeper.oidc.a.issuer=https://a\nzabkeeper.oidc.a.audience=x\nzabkeeper.oidc.a.algorithms=none\n",
		"no audience":  "zabkeeper.oidc.issuers=a\nzabkeeper.oidc.a.issuer=https://a\n",
		"no issuer":    "zabkeeper.oidc.issuers=a\nzabkeeper.oidc.a.audience=x\n",
		"unlisted":     "zabkeeper.oidc.b.issuer=https://b\n",
		"typo":         "zabkeeper.oidc.issuers=a\nzabkeeper.oidc.a.issuer=https://a\nzabkeeper.oidc.a.audience=x\nzabkeeper.oidc.a.audiance=y\n",
		"skew":         "zabkeeper.oidc.clockSkewMs=forever\n",
		"audit toggle": "audit.enable=maybe\n",
	} {
		_, err := server.ParseConfig(strings.NewReader("dataDir=/tmp/zk\n"+bad), nil)
		require.Error(t, err, name)
	}
}
