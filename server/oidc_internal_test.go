package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/require"
)

// fuzzVerifier trusts one issuer whose key is in a JWKS file, and returns a
// valid token of it.
func fuzzVerifier(t testing.TB) (*oidcVerifier, string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k", Use: "sig"}}})
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "jwks.json")
	require.NoError(t, os.WriteFile(path, b, 0o600))
	v, err := newOIDCVerifier(OIDCConfig{Issuers: []OIDCIssuer{{Name: "f", Issuer: "https://f.example",
		Audiences: []string{"zk"}, JWKSFile: path, UsernameClaim: "sub"}}}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "k"}}, nil)
	require.NoError(t, err)
	tok, err := jwt.Signed(signer).Claims(map[string]any{"iss": "https://f.example", "aud": "zk", "sub": "s",
		"exp": time.Now().Add(time.Hour).Unix()}).Serialize()
	require.NoError(t, err)
	return v, tok
}

// FuzzOIDCVerify feeds arbitrary tokens to the verifier: it never panics,
// and anything but the one valid token is refused with errOIDCRefused.
func FuzzOIDCVerify(f *testing.F) {
	v, valid := fuzzVerifier(f)
	f.Add(valid)
	f.Add(valid[:len(valid)-2])
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, token string) {
		out, err := v.verify(context.Background(), token)
		if err != nil {
			require.True(t, errors.Is(err, errOIDCRefused), "%v", err)
			require.Nil(t, out)
			return
		}
		require.Equal(t, "s", out.IDs[0].ID)
	})
}
