package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestPublicKeyFile(t *testing.T) {
	rsaKey, _ := rsaKeys()
	ecKey := newECKey(t, elliptic.P256())
	weakRSA, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "issuer"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ecKey.PublicKey, ecKey)
	if err != nil {
		t.Fatal(err)
	}
	ecPrivDER, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		pem     []byte
		alg     string // accepted with this algorithm, or
		wantErr string // refused with this
	}{
		{name: "RSA PKIX", pem: publicPEM(t, &rsaKey.PublicKey), alg: algRS256},
		{name: "RSA PKCS1", pem: pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)}), alg: algRS256},
		{name: "EC P-256", pem: publicPEM(t, &ecKey.PublicKey), alg: algES256},
		{name: "certificate", pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER}), alg: algES256},
		{name: "not PEM", pem: []byte("hello"), wantErr: "no PEM block"},
		{name: "private key", pem: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecPrivDER}), wantErr: "private key"},
		{name: "other block", pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte{1}}), wantErr: "want PUBLIC KEY"},
		{name: "corrupt", pem: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}}), wantErr: `PEM block "PUBLIC KEY"`},
		{name: "weak RSA", pem: publicPEM(t, &weakRSA.PublicKey), wantErr: "1024 bits"},
		{name: "P-384", pem: publicPEM(t, &newECKey(t, elliptic.P384()).PublicKey), wantErr: "P-384"},
		{name: "Ed25519", pem: publicPEM(t, edPub), wantErr: "ed25519"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "key.pem", c.pem)
			a, err := New(Config{JWT: JWTConfig{PublicKeyFile: path}})
			if c.wantErr != "" {
				if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), c.wantErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("error %v, want ErrInvalidConfig naming %s and %q", err, path, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := a.tokens.static.pemKey.alg; got != c.alg {
				t.Errorf("key algorithm %s, want %s", got, c.alg)
			}
		})
	}
}

func TestJWKSFile(t *testing.T) {
	rsaKey, _ := rsaKeys()
	weakRSA, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ecKey := newECKey(t, elliptic.P256())
	good := ecJWK(t, "ec", &ecKey.PublicKey)
	with := func(k map[string]any, field string, v any) map[string]any {
		c := make(map[string]any, len(k))
		for f, x := range k {
			c[f] = x
		}
		if v == nil {
			delete(c, field)
		} else {
			c[field] = v
		}
		return c
	}
	cases := []struct {
		name    string
		data    []byte
		kids    []string // usable kids, or
		wantErr string
		skipped int // keys logged as skipped
	}{
		{name: "RSA and EC", data: jwksJSON(t, rsaJWK("r", &rsaKey.PublicKey), good), kids: []string{"r", "ec"}},
		{name: "no kid", data: jwksJSON(t, with(good, "kid", nil)), kids: nil},
		{name: "unsupported keys skipped", data: jwksJSON(t, good,
			with(good, "crv", "P-384"), with(good, "use", "enc"), with(good, "alg", "ES384"),
			with(rsaJWK("r", &rsaKey.PublicKey), "alg", "PS256"),
			map[string]any{"kty": "oct", "k": "c2VjcmV0"}, map[string]any{"kty": "OKP", "crv": "Ed25519", "x": "AA"},
			with(good, "key_ops", []string{"encrypt"})),
			kids: []string{"ec"}, skipped: 7},
		{name: "key_ops verify", data: jwksJSON(t, with(good, "key_ops", []string{"verify"})), kids: []string{"ec"}},
		{name: "not JSON", data: []byte("{"), wantErr: "not a JSON Web Key Set"},
		{name: "empty set", data: jwksJSON(t), wantErr: "no usable key"},
		{name: "only unsupported keys", data: jwksJSON(t, with(good, "crv", "P-521")), wantErr: "no usable key", skipped: 1},
		{name: "private key", data: jwksJSON(t, with(good, "d", "AAAA")), wantErr: `key 0 (kid "ec"): holds a private key`},
		{name: "duplicate kid", data: jwksJSON(t, good, good), wantErr: `kid "ec" appears twice`},
		{name: "no kty", data: jwksJSON(t, with(good, "kty", nil)), wantErr: "no kty"},
		{name: "EC point off the curve", data: jwksJSON(t, with(good, "y", good["x"])), wantErr: "EC key"},
		{name: "EC short coordinate", data: jwksJSON(t, with(good, "x", "AAAA")), wantErr: "32-byte"},
		{name: "RSA bad modulus", data: jwksJSON(t, with(rsaJWK("r", &rsaKey.PublicKey), "n", "!!")), wantErr: "RSA key: n"},
		{name: "RSA even exponent", data: jwksJSON(t, with(rsaJWK("r", &rsaKey.PublicKey), "e", "Ag")), wantErr: "exponent"},
		{name: "RSA weak", data: jwksJSON(t, rsaJWK("r", &weakRSA.PublicKey)), wantErr: "1024 bits"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var logs logBuffer
			path := writeFile(t, t.TempDir(), "jwks.json", c.data)
			a, err := New(Config{JWT: JWTConfig{JWKSFile: path}, Logger: logs.logger()})
			if got := strings.Count(logs.String(), "JWKS key skipped"); got != c.skipped {
				t.Errorf("%d keys logged as skipped, want %d:\n%s", got, c.skipped, logs.String())
			}
			if c.wantErr != "" {
				if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), c.wantErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("error %v, want ErrInvalidConfig naming %s and %q", err, path, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			set := a.tokens.jwks.get()
			if len(set.byKID) != len(c.kids) {
				t.Errorf("%d keys with kids, want %d", len(set.byKID), len(c.kids))
			}
			for _, kid := range c.kids {
				if _, ok := set.byKID[kid]; !ok {
					t.Errorf("kid %q missing", kid)
				}
			}
		})
	}
}

func TestJWKSReload(t *testing.T) {
	clock := newTestClock()
	var logs logBuffer
	oldKey, newKey := newECKey(t, elliptic.P256()), newECKey(t, elliptic.P256())
	path := writeFile(t, t.TempDir(), "jwks.json", jwksJSON(t, ecJWK(t, "old", &oldKey.PublicKey)))
	a := newAuth(t, Config{JWT: JWTConfig{JWKSFile: path}, Now: clock.Now, Logger: logs.logger()})
	claims := func() jwt.MapClaims { return jwt.MapClaims{"sub": "svc", "exp": clock.Now().Add(time.Hour).Unix()} }
	check := func(step string, key *ecdsa.PrivateKey, kid string, want error) {
		t.Helper()
		tok := sign(t, jwt.SigningMethodES256, key, claims(), map[string]any{"kid": kid})
		_, err := a.Authenticate(Credentials{Bearer: tok})
		if (want == nil && err != nil) || (want != nil && !errors.Is(err, want)) {
			t.Fatalf("%s: kid %s: error %v, want %v", step, kid, err, want)
		}
	}
	check("start", oldKey, "old", nil)
	check("start", newKey, "new", ErrAuthFailed)

	// Key rotation: both keys for a while, then the new one alone.
	replaceFile(t, path, jwksJSON(t, ecJWK(t, "old", &oldKey.PublicKey), ecJWK(t, "new", &newKey.PublicKey)))
	check("before the check is due", newKey, "new", ErrAuthFailed)
	clock.Advance(reloadInterval)
	check("both keys", newKey, "new", nil)
	check("both keys", oldKey, "old", nil)
	replaceFile(t, path, jwksJSON(t, ecJWK(t, "new", &newKey.PublicKey)))
	clock.Advance(reloadInterval)
	check("new key only", newKey, "new", nil)
	check("new key only", oldKey, "old", ErrAuthFailed)

	// A broken file keeps the keys in force.
	replaceFile(t, path, []byte(`{"keys": [`))
	clock.Advance(reloadInterval)
	check("broken file", newKey, "new", nil)
	if !strings.Contains(logs.String(), "reload failed") || !strings.Contains(logs.String(), "JWKS file") {
		t.Errorf("broken JWKS file not logged:\n%s", logs.String())
	}
}

func TestNewConfig(t *testing.T) {
	dir := t.TempDir()
	users := writeFile(t, dir, "users", []byte("alice:"+hashOf(t, "pw")+"\n"))
	rsaKey, _ := rsaKeys()
	pemPath := writeFile(t, dir, "key.pem", publicPEM(t, &rsaKey.PublicKey))
	cases := []struct {
		name    string
		cfg     Config
		enabled bool
		methods []Method
		wantErr string
	}{
		{name: "nothing", cfg: Config{}},
		{name: "users", cfg: Config{UsersFile: users}, enabled: true, methods: []Method{MethodPasscode}},
		{name: "secret", cfg: Config{JWT: JWTConfig{Secret: testSecret}}, enabled: true, methods: []Method{MethodJWT}},
		{name: "both", cfg: Config{UsersFile: users, JWT: JWTConfig{PublicKeyFile: pemPath, Audience: "a", Issuer: "i", Leeway: time.Second}},
			enabled: true, methods: []Method{MethodPasscode, MethodJWT}},
		{name: "short secret", cfg: Config{JWT: JWTConfig{Secret: []byte("short")}}, wantErr: "5 bytes"},
		{name: "negative leeway", cfg: Config{JWT: JWTConfig{Secret: testSecret, Leeway: -time.Second}}, wantErr: "leeway"},
		{name: "audience without keys", cfg: Config{UsersFile: users, JWT: JWTConfig{Audience: "a"}}, wantErr: "no secret"},
		{name: "roles claim without keys", cfg: Config{JWT: JWTConfig{RolesClaim: "groups"}}, wantErr: "no secret"},
		{name: "missing key file", cfg: Config{JWT: JWTConfig{PublicKeyFile: pemPath + ".missing"}}, wantErr: "no such file"},
		{name: "missing JWKS file", cfg: Config{JWT: JWTConfig{JWKSFile: pemPath + ".missing"}}, wantErr: "no such file"},
		{name: "directory as users file", cfg: Config{UsersFile: dir}, wantErr: "not a regular file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := New(c.cfg)
			if c.wantErr != "" {
				if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want ErrInvalidConfig with %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.Enabled() != c.enabled {
				t.Errorf("Enabled() = %v, want %v", a.Enabled(), c.enabled)
			}
			if got := a.Methods(); !slices.Equal(got, c.methods) {
				t.Errorf("Methods() = %v, want %v", got, c.methods)
			}
		})
	}
}

func TestNilAuthenticator(t *testing.T) {
	var a *Authenticator
	if a.Enabled() || a.Methods() != nil {
		t.Error("nil Authenticator is enabled")
	}
	if _, err := a.Authenticate(Credentials{Login: "a", Passcode: "b"}); !errors.Is(err, ErrNoCredentials) {
		t.Errorf("error %v, want ErrNoCredentials", err)
	}
}
