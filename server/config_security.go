package server

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Configuration keys for cloud identities, the audit log and quotas. They
// are collected while the file is read (securityKey) and checked once it is
// complete (finishSecurity), since per-issuer keys may come before the list
// naming the issuers.
//
//	zabkeeper.oidc.issuers=k8s,gcp             names of the trusted issuers
//	zabkeeper.oidc.<name>.issuer=URL           the iss claim and discovery base (required)
//	zabkeeper.oidc.<name>.audience=a,b         accepted aud values (required)
//	zabkeeper.oidc.<name>.jwksFile=PATH        a JWKS file instead of discovery (re-read on an unknown kid)
//	zabkeeper.oidc.<name>.jwksUrl=URL          a JWKS URL instead of discovery
//	zabkeeper.oidc.<name>.caFile=PATH          PEM bundle trusted for HTTPS to the issuer (default: system roots)
//	zabkeeper.oidc.<name>.bearerTokenFile=PATH token sent to the issuer when fetching (Kubernetes API server)
//	zabkeeper.oidc.<name>.usernameClaim=sub    the claim naming the identity
//	zabkeeper.oidc.<name>.usernamePrefix=      prepended to the identity
//	zabkeeper.oidc.<name>.groupsClaim=         a claim holding group names (string or list), "" = none
//	zabkeeper.oidc.<name>.groupsPrefix=group:  prepended to each group
//	zabkeeper.oidc.<name>.algorithms=RS256,... allowed signature algorithms (never none or HMAC)
//	zabkeeper.oidc.superUser=ID,ID             identities that are super users
//	zabkeeper.oidc.clockSkewMs=60000           leeway on exp and nbf
//	zabkeeper.oidc.maxTokenBytes=16384         longer tokens are refused unread
//	zabkeeper.oidc.fetchTimeoutMs=5000         bound on one discovery or JWKS fetch
//	audit.enable=false (zookeeper.audit.enable)
//	zabkeeper.audit.file=stderr                a path, or stderr
//	zabkeeper.audit.bufferSize=4096            lines queued before drops are counted
//	enforceQuota=false (zookeeper.enforceQuota)
const oidcKeyPrefix = "zabkeeper.oidc."

// Defaults of the oidc keys.
const (
	DefaultOIDCClockSkew     = 60 * time.Second
	DefaultOIDCMaxTokenBytes = 16 << 10
	DefaultOIDCFetchTimeout  = 5 * time.Second
	DefaultAuditBufferSize   = 4096
)

// DefaultOIDCAlgorithms are the asymmetric JWS algorithms accepted when an
// issuer names none. HMAC algorithms and "none" are never accepted: a
// verifier holding only public keys must not let a token choose a shared
// secret (the public key itself) or no signature at all.
var DefaultOIDCAlgorithms = []string{"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA"}

// OIDCIssuer is one trusted token issuer.
type OIDCIssuer struct {
	// Name is the issuer's name in the configuration keys.
	Name string
	// Issuer is the exact iss claim; without JWKSFile or JWKSURL, keys come
	// from Issuer + "/.well-known/openid-configuration".
	Issuer string
	// Audiences are the aud values accepted; a token must carry one.
	Audiences []string
	// JWKSFile is a JSON Web Key Set file, re-read when a token names a key
	// id it does not hold.
	JWKSFile string
	// JWKSURL is a JSON Web Key Set URL, fetched again on an unknown key id.
	JWKSURL string
	// CAFile is a PEM bundle trusted for HTTPS to the issuer.
	CAFile string
	// BearerTokenFile holds a token sent as Authorization: Bearer when
	// fetching discovery and keys (read at each fetch, never logged).
	BearerTokenFile string
	// UsernameClaim is the claim naming the identity (default "sub").
	UsernameClaim string
	// UsernamePrefix is prepended to the identity.
	UsernamePrefix string
	// GroupsClaim names a claim with group names, "" for none.
	GroupsClaim string
	// GroupsPrefix is prepended to each group name (default "group:").
	GroupsPrefix string
	// Algorithms are the JWS algorithms accepted.
	Algorithms []string
}

// OIDCConfig configures the oidc auth scheme; no issuers means the scheme is
// off and every oidc auth fails.
type OIDCConfig struct {
	Issuers       []OIDCIssuer
	SuperUsers    []string
	ClockSkew     time.Duration
	MaxTokenBytes int
	FetchTimeout  time.Duration
}

// AuditConfig configures the audit log (audit.enable).
type AuditConfig struct {
	// Enable turns the audit log on.
	Enable bool
	// File is where lines go: a path or "stderr".
	File string
	// BufferSize is how many lines may wait for the writer; more are
	// dropped and counted.
	BufferSize int
}

// SecurityConfig holds the keys of this file.
type SecurityConfig struct {
	OIDC  OIDCConfig
	Audit AuditConfig
	// EnforceQuota turns hard quota limits into QuotaExceeded errors
	// (zookeeper.enforceQuota).
	EnforceQuota bool

	raw map[string]string // zabkeeper.oidc.* keys until finishSecurity
}

// DefaultSecurityConfig returns the defaults of this file's keys.
func DefaultSecurityConfig() SecurityConfig {
	return SecurityConfig{
		OIDC:  OIDCConfig{ClockSkew: DefaultOIDCClockSkew, MaxTokenBytes: DefaultOIDCMaxTokenBytes, FetchTimeout: DefaultOIDCFetchTimeout},
		Audit: AuditConfig{File: "stderr", BufferSize: DefaultAuditBufferSize},
	}
}

// securityKey takes one configuration key of this file; false when the key
// is not one.
func (c *Config) securityKey(key, value string) (bool, error) {
	key = strings.TrimPrefix(key, "zookeeper.")
	boolVal := func() (bool, error) {
		switch strings.ToLower(value) {
		case "true", "yes", "1":
			return true, nil
		case "false", "no", "0", "":
			return false, nil
		}
		return false, fmt.Errorf("%q is not a boolean", value)
	}
	intVal := func(lo, hi int) (int, error) {
		n, err := strconv.Atoi(value)
		if err != nil || n < lo || n > hi {
			return 0, fmt.Errorf("%q is not an integer in [%d, %d]", value, lo, hi)
		}
		return n, nil
	}
	var err error
	switch {
	case key == "audit.enable":
		c.Security.Audit.Enable, err = boolVal()
	case key == "zabkeeper.audit.file":
		if value == "" {
			return true, fmt.Errorf("empty path")
		}
		c.Security.Audit.File = value
	case key == "zabkeeper.audit.bufferSize":
		c.Security.Audit.BufferSize, err = intVal(1, 1<<24)
	case key == "enforceQuota":
		c.Security.EnforceQuota, err = boolVal()
	case strings.HasPrefix(key, oidcKeyPrefix):
		if c.Security.raw == nil {
			c.Security.raw = map[string]string{}
		}
		c.Security.raw[strings.TrimPrefix(key, oidcKeyPrefix)] = value
	default:
		return false, nil
	}
	return true, err
}

// finishSecurity builds the oidc configuration from the collected keys and
// checks it.
func (c *Config) finishSecurity() error {
	s := &c.Security
	o := &s.OIDC
	raw := s.raw
	s.raw = nil
	bad := func(key string, format string, args ...any) error {
		return &ConfigError{Key: oidcKeyPrefix + key, Err: fmt.Errorf(format, args...)}
	}
	ms := func(key string, lo, hi int) (int, error) {
		n, err := strconv.Atoi(raw[key])
		if err != nil || n < lo || n > hi {
			return 0, bad(key, "%q is not an integer in [%d, %d]", raw[key], lo, hi)
		}
		return n, nil
	}
	used := map[string]bool{}
	for _, k := range []string{"clockSkewMs", "maxTokenBytes", "fetchTimeoutMs"} {
		if _, ok := raw[k]; !ok {
			continue
		}
		used[k] = true
		switch k {
		case "clockSkewMs":
			n, err := ms(k, 0, 600_000)
			if err != nil {
				return err
			}
			o.ClockSkew = time.Duration(n) * time.Millisecond
		case "maxTokenBytes":
			n, err := ms(k, 64, 1<<20)
			if err != nil {
				return err
			}
			o.MaxTokenBytes = n
		case "fetchTimeoutMs":
			n, err := ms(k, 1, 600_000)
			if err != nil {
				return err
			}
			o.FetchTimeout = time.Duration(n) * time.Millisecond
		}
	}
	if v, ok := raw["superUser"]; ok {
		used["superUser"] = true
		o.SuperUsers = splitList(v)
	}
	if v, ok := raw["issuers"]; ok {
		used["issuers"] = true
		for _, name := range splitList(v) {
			if strings.Contains(name, ".") {
				return bad("issuers", "issuer name %q contains a dot", name)
			}
			get := func(field string) string {
				used[name+"."+field] = true
				return raw[name+"."+field]
			}
			is := OIDCIssuer{
				Name: name, Issuer: get("issuer"), Audiences: splitList(get("audience")),
				JWKSFile: get("jwksFile"), JWKSURL: get("jwksUrl"), CAFile: get("caFile"),
				BearerTokenFile: get("bearerTokenFile"), UsernameClaim: get("usernameClaim"),
				UsernamePrefix: get("usernamePrefix"), GroupsClaim: get("groupsClaim"),
				Algorithms: splitList(get("algorithms")),
			}
			is.GroupsPrefix = "group:"
			if _, ok := raw[name+".groupsPrefix"]; ok {
				is.GroupsPrefix = get("groupsPrefix")
			}
			if is.UsernameClaim == "" {
				is.UsernameClaim = "sub"
			}
			if len(is.Algorithms) == 0 {
				is.Algorithms = slices.Clone(DefaultOIDCAlgorithms)
			}
			if is.Issuer == "" {
				return bad(name+".issuer", "issuer %q has no issuer URL", name)
			}
			if len(is.Audiences) == 0 {
				return bad(name+".audience", "issuer %q has no audience: tokens minted for any other service would be accepted", name)
			}
			if is.JWKSFile != "" && is.JWKSURL != "" {
				return bad(name+".jwksFile", "issuer %q has both jwksFile and jwksUrl", name)
			}
			for _, a := range is.Algorithms {
				if !slices.Contains(DefaultOIDCAlgorithms, a) {
					return bad(name+".algorithms", "algorithm %q is not allowed (asymmetric algorithms only: %s)", a, strings.Join(DefaultOIDCAlgorithms, ","))
				}
			}
			for _, other := range o.Issuers {
				if other.Issuer == is.Issuer {
					return bad(name+".issuer", "issuers %q and %q name the same issuer %q", other.Name, name, is.Issuer)
				}
			}
			o.Issuers = append(o.Issuers, is)
		}
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		if !used[k] {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if len(keys) > 0 {
		return bad(keys[0], "unknown key (or an issuer not listed in %sissuers)", oidcKeyPrefix)
	}
	return nil
}

// splitList splits a comma list, trimming blanks and dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
