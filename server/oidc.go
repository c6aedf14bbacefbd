package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/zabkeeper/zabkeeper/engine"
	"github.com/zabkeeper/zabkeeper/proto"
)

// The oidc auth scheme: a client sends a JSON Web Token with the ordinary
// addauth (scheme "oidc", the token as the auth data). The connection's
// reader verifies it here, off the event loop and outside the pure engine,
// with go-oidc and go-jose (signature, issuer, audience, expiry and
// not-before, an allowlist of asymmetric algorithms), and hands the engine
// the identities it proves and the time they lapse (engine.VerifiedAuth).
// A token is never logged, stored or shown: only the reason it was refused.

// oidcVerifier checks tokens against the configured issuers. It is safe for
// concurrent use by every connection's reader.
type oidcVerifier struct {
	log      *slog.Logger
	issuers  map[string]*oidcIssuer // by iss claim
	algs     []jose.SignatureAlgorithm
	super    map[string]bool
	skew     time.Duration
	maxBytes int
	timeout  time.Duration
	// now is the wall clock; tests move it.
	now func() time.Time
}

// oidcIssuer is one trusted issuer and its keys, found lazily: an issuer
// whose discovery fails is tried again at its next token.
type oidcIssuer struct {
	cfg    OIDCIssuer
	algs   []string
	client *http.Client

	mu   sync.Mutex
	keys oidc.KeySet // nil until discovered
	// lastTry and lastErr pace discovery after a failure: tokens arriving
	// within minKeyFetchInterval of it fail with the same error.
	lastTry time.Time
	lastErr error
}

// newOIDCVerifier builds the verifier of cfg; nil when no issuer is
// configured (every oidc auth then fails).
func newOIDCVerifier(cfg OIDCConfig, logger *slog.Logger) (*oidcVerifier, error) {
	if len(cfg.Issuers) == 0 {
		return nil, nil
	}
	v := &oidcVerifier{
		log: logger, issuers: map[string]*oidcIssuer{}, super: map[string]bool{},
		skew: cfg.ClockSkew, maxBytes: cfg.MaxTokenBytes, timeout: cfg.FetchTimeout, now: time.Now,
	}
	if v.maxBytes <= 0 {
		v.maxBytes = DefaultOIDCMaxTokenBytes
	}
	if v.timeout <= 0 {
		v.timeout = DefaultOIDCFetchTimeout
	}
	for _, s := range cfg.SuperUsers {
		v.super[s] = true
	}
	for _, ic := range cfg.Issuers {
		is := &oidcIssuer{cfg: ic, algs: ic.Algorithms}
		if len(is.algs) == 0 {
			is.algs = DefaultOIDCAlgorithms
		}
		for _, a := range is.algs {
			if !slices.Contains(DefaultOIDCAlgorithms, a) {
				return nil, fmt.Errorf("oidc: issuer %s: algorithm %q is not allowed", ic.Name, a)
			}
			if !slices.Contains(v.algs, jose.SignatureAlgorithm(a)) {
				v.algs = append(v.algs, jose.SignatureAlgorithm(a))
			}
		}
		client, err := issuerClient(ic, v.timeout)
		if err != nil {
			return nil, err
		}
		is.client = client
		switch {
		case ic.JWKSFile != "":
			ks := newKeySet(ic.JWKSFile, is.algs, fileLoader(ic.JWKSFile))
			ks.refresh(context.Background())
			if ks.lastErr != nil {
				return nil, fmt.Errorf("oidc: issuer %s: %w", ic.Name, ks.lastErr)
			}
			is.keys = ks
		case ic.JWKSURL != "":
			is.keys = newKeySet(ic.JWKSURL, is.algs, urlLoader(client, ic.JWKSURL))
		}
		v.issuers[ic.Issuer] = is
	}
	return v, nil
}

// issuerClient is the HTTP client for an issuer's discovery and keys: a
// bounded timeout, the configured CA bundle, and the bearer token if any.
func issuerClient(ic OIDCIssuer, timeout time.Duration) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if ic.CAFile != "" {
		pem, err := os.ReadFile(ic.CAFile)
		if err != nil {
			return nil, fmt.Errorf("oidc: issuer %s: read caFile: %w", ic.Name, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("oidc: issuer %s: caFile %s holds no PEM certificate", ic.Name, ic.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	var rt http.RoundTripper = tr
	if ic.BearerTokenFile != "" {
		rt = &bearerTransport{file: ic.BearerTokenFile, next: tr}
	}
	return &http.Client{Timeout: timeout, Transport: rt}, nil
}

// bearerTransport adds the token in a file (re-read at each request, as
// Kubernetes rotates it) as Authorization: Bearer.
type bearerTransport struct {
	file string
	next http.RoundTripper
}

func (b *bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	tok, err := os.ReadFile(b.file)
	if err != nil {
		return nil, fmt.Errorf("read bearerTokenFile: %w", err)
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	return b.next.RoundTrip(r)
}

// keySet returns the issuer's keys, running discovery on first use.
func (is *oidcIssuer) keySet(ctx context.Context) (oidc.KeySet, error) {
	is.mu.Lock()
	defer is.mu.Unlock()
	if is.keys != nil {
		return is.keys, nil
	}
	if is.lastErr != nil && time.Since(is.lastTry) < minKeyFetchInterval {
		return nil, is.lastErr
	}
	is.lastTry = time.Now()
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, is.client), is.cfg.Issuer)
	if err != nil {
		is.lastErr = fmt.Errorf("discovery at %s: %w", is.cfg.Issuer, err)
		return nil, is.lastErr
	}
	var doc struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := p.Claims(&doc); err != nil || doc.JWKSURI == "" {
		is.lastErr = fmt.Errorf("discovery at %s: no jwks_uri", is.cfg.Issuer)
		return nil, is.lastErr
	}
	is.keys = newKeySet(doc.JWKSURI, is.algs, urlLoader(is.client, doc.JWKSURI))
	return is.keys, nil
}

// errOIDCRefused wraps every reason a token is refused.
var errOIDCRefused = errors.New("oidc token refused")

// verify checks a token and returns the identities it proves. The error
// says why it was refused, never quoting the token.
func (v *oidcVerifier) verify(ctx context.Context, token string) (*engine.VerifiedAuth, error) {
	refuse := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", errOIDCRefused, fmt.Sprintf(format, args...))
	}
	if len(token) > v.maxBytes {
		return nil, refuse("token of %d bytes exceeds zabkeeper.oidc.maxTokenBytes %d", len(token), v.maxBytes)
	}
	token = strings.TrimSpace(token)
	// Which issuer's keys to check against: read iss from the parsed,
	// not yet verified token (go-jose refuses algorithms outside the
	// allowlist, "none" and HMAC included, before anything else).
	parsed, err := jwt.ParseSigned(token, v.algs)
	if err != nil {
		return nil, refuse("malformed or disallowed token: %v", err)
	}
	var unverified struct {
		Issuer string `json:"iss"`
	}
	if err := parsed.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, refuse("malformed claims: %v", err)
	}
	is := v.issuers[unverified.Issuer]
	if is == nil {
		return nil, refuse("untrusted issuer %q", unverified.Issuer)
	}
	if len(parsed.Headers) != 1 || !slices.Contains(is.algs, parsed.Headers[0].Algorithm) {
		return nil, refuse("algorithm not allowed for issuer %s", is.cfg.Name)
	}
	keys, err := is.keySet(ctx)
	if err != nil {
		return nil, refuse("issuer %s: %v", is.cfg.Name, err)
	}
	idt, err := oidc.NewVerifier(is.cfg.Issuer, keys, &oidc.Config{
		SkipClientIDCheck:    true, // several audiences: checked below
		SkipExpiryCheck:      true, // exp and nbf with our own skew: below
		SupportedSigningAlgs: is.algs,
	}).Verify(ctx, token)
	if err != nil {
		return nil, refuse("issuer %s: %v", is.cfg.Name, err)
	}
	if !slices.ContainsFunc(idt.Audience, func(a string) bool { return slices.Contains(is.cfg.Audiences, a) }) {
		return nil, refuse("issuer %s: audience %q is not one of %q", is.cfg.Name, idt.Audience, is.cfg.Audiences)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return nil, refuse("issuer %s: claims: %v", is.cfg.Name, err)
	}
	now := v.now()
	if idt.Expiry.IsZero() {
		return nil, refuse("issuer %s: token has no exp", is.cfg.Name)
	}
	if !now.Before(idt.Expiry.Add(v.skew)) {
		return nil, refuse("issuer %s: token expired at %s", is.cfg.Name, idt.Expiry.UTC().Format(time.RFC3339))
	}
	if nbf, ok := claims["nbf"].(float64); ok {
		t := time.Unix(int64(nbf), 0)
		if now.Add(v.skew).Before(t) {
			return nil, refuse("issuer %s: token not valid before %s", is.cfg.Name, t.UTC().Format(time.RFC3339))
		}
	}
	name, _ := claims[is.cfg.UsernameClaim].(string)
	if name == "" {
		return nil, refuse("issuer %s: no string claim %q", is.cfg.Name, is.cfg.UsernameClaim)
	}
	identity := is.cfg.UsernamePrefix + name
	out := &engine.VerifiedAuth{
		IDs:       []proto.Id{{Scheme: engine.SchemeOIDC, ID: identity}},
		ExpiresMs: idt.Expiry.Add(v.skew).UnixMilli(),
	}
	if is.cfg.GroupsClaim != "" {
		for _, g := range claimStrings(claims[is.cfg.GroupsClaim]) {
			id := proto.Id{Scheme: engine.SchemeOIDC, ID: is.cfg.GroupsPrefix + g}
			if !slices.Contains(out.IDs, id) {
				out.IDs = append(out.IDs, id)
			}
		}
	}
	if v.super[identity] {
		// As ZooKeeper's X509AuthenticationProvider: a super identity also
		// holds a super id, which every ACL check lets through.
		out.IDs = append(out.IDs, proto.Id{Scheme: "super", ID: identity})
	}
	return out, nil
}

// claimStrings reads a claim that is a string or a list of strings.
func claimStrings(c any) []string {
	switch c := c.(type) {
	case string:
		if c != "" {
			return []string{c}
		}
	case []any:
		var out []string
		for _, e := range c {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// verifyAuth is the reader's hook for an auth packet: for the oidc scheme
// it verifies the token and returns the verdict to attach to the request
// (a refused token gets an empty verdict: AuthFailed, logged here); other
// schemes are the engine's and get nil.
func (c *clientConn) verifyAuth(rec proto.Record) *engine.VerifiedAuth {
	ap, ok := rec.(*proto.AuthPacket)
	if !ok || ap.Scheme != engine.SchemeOIDC {
		return nil
	}
	v := c.srv.oidc
	if v == nil {
		c.log.Warn("oidc auth refused: no issuer configured (zabkeeper.oidc.issuers)")
		c.srv.oidcRefused.Add(1)
		return &engine.VerifiedAuth{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), v.timeout)
	defer cancel()
	verdict, err := v.verify(ctx, string(ap.Auth))
	if err != nil {
		c.log.Warn("oidc auth refused", "session", fmt.Sprintf("0x%x", c.sessionID.Load()), "reason", err.Error())
		c.srv.oidcRefused.Add(1)
		return &engine.VerifiedAuth{}
	}
	ids := make([]string, len(verdict.IDs))
	for i, id := range verdict.IDs {
		ids[i] = id.Scheme + ":" + id.ID
	}
	c.log.Info("oidc auth accepted", "session", fmt.Sprintf("0x%x", c.sessionID.Load()), "ids", ids,
		"expires", time.UnixMilli(verdict.ExpiresMs).UTC().Format(time.RFC3339))
	return verdict
}

// keySet is an oidc.KeySet over a JSON Web Key Set from a file or a URL,
// loaded again when a token names a key id it does not hold (a rotated
// key), at most once per minInterval, so a flood of tokens with made-up key
// ids costs the issuer one fetch per interval, not one per token. Only
// public asymmetric keys are kept: a symmetric key in the set could never
// verify a token here. The signature itself is go-jose's.
type keySet struct {
	source      string // the file or URL, for errors
	load        func(ctx context.Context) ([]byte, error)
	algs        []jose.SignatureAlgorithm
	minInterval time.Duration

	mu      sync.Mutex
	keys    []jose.JSONWebKey
	lastTry time.Time
	lastErr error
}

// minKeyFetchInterval bounds how often an unknown key id reloads a key set.
const minKeyFetchInterval = time.Second

func newKeySet(source string, algs []string, load func(ctx context.Context) ([]byte, error)) *keySet {
	ks := &keySet{source: source, load: load, minInterval: minKeyFetchInterval}
	for _, a := range algs {
		ks.algs = append(ks.algs, jose.SignatureAlgorithm(a))
	}
	return ks
}

// fileLoader reads a JWKS file.
func fileLoader(path string) func(context.Context) ([]byte, error) {
	return func(context.Context) ([]byte, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read jwksFile: %w", err)
		}
		return b, nil
	}
}

// maxJWKSBytes bounds a fetched key set.
const maxJWKSBytes = 1 << 20

// urlLoader fetches a JWKS over HTTP(S) with the issuer's client.
func urlLoader(client *http.Client, url string) func(context.Context) ([]byte, error) {
	return func(ctx context.Context) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, fmt.Errorf("keys at %s: %w", url, err)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("keys at %s: %w", url, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
		if err != nil {
			return nil, fmt.Errorf("keys at %s: %w", url, err)
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("keys at %s: %s", url, resp.Status)
		}
		if len(b) > maxJWKSBytes {
			return nil, fmt.Errorf("keys at %s: more than %d bytes", url, maxJWKSBytes)
		}
		return b, nil
	}
}

// parseJWKS decodes a key set, keeping the public asymmetric keys and
// skipping keys of types go-jose does not know.
func parseJWKS(b []byte) ([]jose.JSONWebKey, error) {
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("decode JWKS: %w", err)
	}
	var keys []jose.JSONWebKey
	for _, r := range raw.Keys {
		var k jose.JSONWebKey
		if err := json.Unmarshal(r, &k); err != nil {
			continue
		}
		if k.IsPublic() && k.Valid() {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// refresh loads the set now unless it was tried within minInterval.
// Called with mu held.
func (ks *keySet) refresh(ctx context.Context) {
	if !ks.lastTry.IsZero() && time.Since(ks.lastTry) < ks.minInterval {
		return
	}
	ks.lastTry = time.Now()
	b, err := ks.load(ctx)
	if err == nil {
		var keys []jose.JSONWebKey
		if keys, err = parseJWKS(b); err == nil {
			ks.keys = keys
		}
	}
	ks.lastErr = err
}

// VerifySignature checks a token's signature with the key its kid names (or
// any key when it names none) and returns the payload.
func (ks *keySet) VerifySignature(ctx context.Context, token string) ([]byte, error) {
	jws, err := jose.ParseSigned(token, ks.algs)
	if err != nil {
		return nil, fmt.Errorf("malformed jwt: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("want exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	ks.mu.Lock()
	if ks.lastTry.IsZero() || (kid != "" && !slices.ContainsFunc(ks.keys, func(k jose.JSONWebKey) bool { return k.KeyID == kid })) {
		ks.refresh(ctx)
	}
	keys, lastErr := ks.keys, ks.lastErr
	ks.mu.Unlock()
	for i := range keys {
		if kid != "" && keys[i].KeyID != kid {
			continue
		}
		if payload, err := jws.Verify(&keys[i]); err == nil {
			return payload, nil
		}
	}
	if lastErr != nil {
		return nil, fmt.Errorf("no key verifies the signature; loading keys from %s failed: %w", ks.source, lastErr)
	}
	return nil, fmt.Errorf("no key from %s verifies the signature", ks.source)
}
