package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// tokenEnv is a configuration with every kind of key, and keys to sign with.
type tokenEnv struct {
	clock    *testClock
	rsaKey   *rsa.PrivateKey // in the PEM file
	rsaJWKS  *rsa.PrivateKey // in the JWKS file as "rsa1"
	ecKey    *ecdsa.PrivateKey
	ecJWKS   *ecdsa.PrivateKey // in the JWKS file as "ec1"
	otherEC  *ecdsa.PrivateKey // nowhere
	pemBytes []byte
	dir      string
	jwksPath string
}

func newTokenEnv(t testing.TB) *tokenEnv {
	t.Helper()
	e := &tokenEnv{clock: newTestClock(), dir: t.TempDir()}
	e.rsaKey, e.rsaJWKS = rsaKeys()
	e.ecKey = newECKey(t, elliptic.P256())
	e.ecJWKS = newECKey(t, elliptic.P256())
	e.otherEC = newECKey(t, elliptic.P256())
	e.pemBytes = publicPEM(t, &e.rsaKey.PublicKey)
	e.jwksPath = writeFile(t, e.dir, "jwks.json", jwksJSON(t,
		rsaJWK("rsa1", &e.rsaJWKS.PublicKey), ecJWK(t, "ec1", &e.ecJWKS.PublicKey)))
	return e
}

func (e *tokenEnv) claims(extra jwt.MapClaims) jwt.MapClaims {
	c := jwt.MapClaims{"sub": "alice", "exp": e.clock.Now().Add(time.Hour).Unix()}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func TestAuthenticateTokenAccepts(t *testing.T) {
	e := newTokenEnv(t)
	ecPEM := writeFile(t, e.dir, "ec.pem", publicPEM(t, &e.ecKey.PublicKey))
	rsaPEM := writeFile(t, e.dir, "rsa.pem", e.pemBytes)
	now := e.clock.Now()
	hour := now.Add(time.Hour).Truncate(time.Second)
	cases := []struct {
		name  string
		jwt   JWTConfig
		token string
		creds func(tok string) Credentials
		user  string
		roles []string
		exp   time.Time
	}{
		{name: "HS256", jwt: JWTConfig{Secret: testSecret},
			token: sign(t, jwt.SigningMethodHS256, testSecret, e.claims(nil), nil), user: "alice", exp: hour},
		{name: "RS256 from PEM", jwt: JWTConfig{PublicKeyFile: rsaPEM},
			token: sign(t, jwt.SigningMethodRS256, e.rsaKey, e.claims(nil), nil), user: "alice", exp: hour},
		{name: "RS256 from PEM, token names a kid", jwt: JWTConfig{PublicKeyFile: rsaPEM},
			token: sign(t, jwt.SigningMethodRS256, e.rsaKey, e.claims(nil), map[string]any{"kid": "k9"}), user: "alice", exp: hour},
		{name: "ES256 from PEM", jwt: JWTConfig{PublicKeyFile: ecPEM},
			token: sign(t, jwt.SigningMethodES256, e.ecKey, e.claims(nil), nil), user: "alice", exp: hour},
		{name: "RS256 from JWKS by kid", jwt: JWTConfig{JWKSFile: e.jwksPath},
			token: sign(t, jwt.SigningMethodRS256, e.rsaJWKS, e.claims(nil), map[string]any{"kid": "rsa1"}), user: "alice", exp: hour},
		{name: "ES256 from JWKS by kid", jwt: JWTConfig{JWKSFile: e.jwksPath},
			token: sign(t, jwt.SigningMethodES256, e.ecJWKS, e.claims(nil), map[string]any{"kid": "ec1"}), user: "alice", exp: hour},
		{name: "JWKS, no kid", jwt: JWTConfig{JWKSFile: e.jwksPath},
			token: sign(t, jwt.SigningMethodES256, e.ecJWKS, e.claims(nil), nil), user: "alice", exp: hour},
		{name: "PEM and JWKS, no kid, PEM key", jwt: JWTConfig{JWKSFile: e.jwksPath, PublicKeyFile: rsaPEM},
			token: sign(t, jwt.SigningMethodRS256, e.rsaKey, e.claims(nil), nil), user: "alice", exp: hour},
		{name: "PEM and JWKS, no kid, JWKS key", jwt: JWTConfig{JWKSFile: e.jwksPath, PublicKeyFile: rsaPEM},
			token: sign(t, jwt.SigningMethodRS256, e.rsaJWKS, e.claims(nil), nil), user: "alice", exp: hour},
		{name: "PEM and JWKS, kid not in JWKS, PEM key", jwt: JWTConfig{JWKSFile: e.jwksPath, PublicKeyFile: rsaPEM},
			token: sign(t, jwt.SigningMethodRS256, e.rsaKey, e.claims(nil), map[string]any{"kid": "pem"}), user: "alice", exp: hour},
		{name: "secret and keys together", jwt: JWTConfig{Secret: testSecret, JWKSFile: e.jwksPath, PublicKeyFile: rsaPEM},
			token: sign(t, jwt.SigningMethodHS256, testSecret, e.claims(nil), nil), user: "alice", exp: hour},
		{name: "no exp", jwt: JWTConfig{Secret: testSecret},
			token: sign(t, jwt.SigningMethodHS256, testSecret, e.claims(jwt.MapClaims{"exp": nil}), nil), user: "alice"},
		{name: "expired within leeway", jwt: JWTConfig{Secret: testSecret, Leeway: time.Minute},
			token: sign(t, jwt.SigningMethodHS256, testSecret, e.claims(jwt.MapClaims{"exp": now.Add(-30 * time.Second).Unix()}), nil),
			user:  "alice", exp: now.Add(30 * time.Second).Truncate(time.Second)},
		{name: "nbf past", jwt: JWTConfig{Secret: testSecret},
			token: sign(t, jwt.SigningMethodHS256, testSecret, e.claims(jwt.MapClaims{"nbf": now.Add(-time.Minute).Unix()}), nil), user: "alice", exp: hour},
		{name: "nbf now", jwt: JWTConfig{Secret: testSecret},
			token: sign(t, jwt.SigningMethodHS256, testSecret, e.claims(jwt.MapClaims{"nbf": now.Unix()}), nil), user: "alice", exp: hour},
		{name: "nbf within leeway", jwt: JWTConfig{Secret: testSecret, Leeway: time.Minute},
			token: sign(t, jwt.SigningMethodHS256, testSecret, e.claims(jwt.MapClaims{"nbf": now.Add(30 * time.Second).Unix()}), nil), user: "alice", exp: hour.Add(time.Minute)},
		{name: "fractional exp", jwt: JWTConfig{Secret: testSecret},
			token: sign(t, jwt.SigningMethodHS256, testSecret, e.claims(jwt.MapClaims{"exp": float64(hour.Unix()) + 0.5}), nil),
			user:  "alice", exp: hour.Add(500 * time.Millisecond)},
		{name: "audience string", jwt: JWTConfig{Secret: testSecret, Audience: "stompd"},
			token: sign(t, jwt.SigningMethodHS256, testSecret, e.claims(jwt.MapClaims{"aud": "stompd"}), nil), user: "alice", exp: hour},
		{name: "audience array", jwt: JWTConfig{Secret: testSecret, Audience: "stompd"},
			token: sign(t, jwt.SigningMethodHS256, testSecret, e.claims(jwt.MapClaims{"aud": []string{"other", "stompd"}}), nil), user: "alice", exp: hour},
		{name: "issuer", jwt: JWTConfig{Secret: testSecret, Issuer: "https://id.example.com"},
			token: sign(t, jwt.SigningMethodHS256, testSecret, e.claims(jwt.MapClaims{"iss": "https://id.example.com"}), nil), user: "alice", exp: hour},
		{name: "roles array", jwt: JWTConfig{Secret: testSecret},
			token: sign(t, jwt.SigningMethodHS256, testSecret, e.claims(jwt.MapClaims{"roles": []string{"admin", "", "chat"}}), nil),
			user:  "alice", roles: []string{"admin", "chat"}, exp: hour},
		{name: "roles string", jwt: JWTConfig{Secret: testSecret},
			token: sign(t, jwt.SigningMethodHS256, testSecret, e.claims(jwt.MapClaims{"roles": "admin chat,ops, x"}), nil),
			user:  "alice", roles: []string{"admin", "chat", "ops", "x"}, exp: hour},
		{name: "custom claims", jwt: JWTConfig{Secret: testSecret, UserClaim: "preferred_username", RolesClaim: "groups"},
			token: sign(t, jwt.SigningMethodHS256, testSecret, e.claims(jwt.MapClaims{"preferred_username": "al", "groups": []string{"g"}}), nil),
			user:  "al", roles: []string{"g"}, exp: hour},
		{name: "nested roles claim", jwt: JWTConfig{Secret: testSecret, RolesClaim: "realm_access.roles"},
			token: sign(t, jwt.SigningMethodHS256, testSecret, e.claims(jwt.MapClaims{"realm_access": map[string]any{"roles": []string{"r"}}}), nil),
			user:  "alice", roles: []string{"r"}, exp: hour},
		{name: "dotted claim name taken as is", jwt: JWTConfig{Secret: testSecret, RolesClaim: "https://example.com/roles"},
			token: sign(t, jwt.SigningMethodHS256, testSecret, e.claims(jwt.MapClaims{"https://example.com/roles": []string{"r"}}), nil),
			user:  "alice", roles: []string{"r"}, exp: hour},
		{name: "token as passcode", jwt: JWTConfig{Secret: testSecret},
			token: sign(t, jwt.SigningMethodHS256, testSecret, e.claims(nil), nil),
			creds: func(tok string) Credentials { return Credentials{Login: "ignored", Passcode: tok} }, user: "alice", exp: hour},
		{name: "bearer wins over passcode", jwt: JWTConfig{Secret: testSecret},
			token: sign(t, jwt.SigningMethodHS256, testSecret, e.claims(nil), nil),
			creds: func(tok string) Credentials { return Credentials{Login: "bob", Passcode: "x", Bearer: tok} }, user: "alice", exp: hour},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := newAuth(t, Config{JWT: c.jwt, Now: e.clock.Now})
			creds := Credentials{Bearer: c.token}
			if c.creds != nil {
				creds = c.creds(c.token)
			}
			p, err := a.Authenticate(creds)
			if err != nil {
				t.Fatal(err)
			}
			if p.User != c.user || !slices.Equal(p.Roles, c.roles) || p.Method != MethodJWT || !p.Expires.Equal(c.exp) {
				t.Fatalf("principal %+v, want user %q roles %q method jwt expires %v", p, c.user, c.roles, c.exp)
			}
		})
	}
}

func TestAuthenticateTokenRefuses(t *testing.T) {
	e := newTokenEnv(t)
	rsaPEM := writeFile(t, e.dir, "rsa.pem", e.pemBytes)
	now := e.clock.Now()
	past := now.Add(-time.Minute).Unix()
	hs := func(extra jwt.MapClaims) string {
		return sign(t, jwt.SigningMethodHS256, testSecret, e.claims(extra), nil)
	}
	withSecret := JWTConfig{Secret: testSecret}
	withJWKS := JWTConfig{JWKSFile: e.jwksPath}
	withPEM := JWTConfig{PublicKeyFile: rsaPEM}

	unsigned := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, e.claims(nil), nil)
	valid := hs(nil)
	parts := strings.Split(valid, ".")
	tampered := parts[0] + "." + b64([]byte(`{"sub":"admin"}`)) + "." + parts[2]

	cases := []struct {
		name  string
		jwt   JWTConfig
		token string
		want  error
	}{
		{"wrong secret", withSecret, sign(t, jwt.SigningMethodHS256, []byte("another secret, also 32 bytes ok"), e.claims(nil), nil), ErrAuthFailed},
		{"alg none", withSecret, unsigned, ErrAuthFailed},
		{"alg none as passcode-shaped bearer", withPEM, unsigned, ErrAuthFailed},
		{"tampered payload", withSecret, tampered, ErrAuthFailed},
		{"garbage", withSecret, "not a token", ErrAuthFailed},
		{"two parts", withSecret, parts[0] + "." + parts[1], ErrAuthFailed},
		{"padded base64", withSecret, parts[0] + "=." + parts[1] + "." + parts[2], ErrAuthFailed},
		{"HS256 signed with the RSA public key (alg confusion)", withPEM,
			sign(t, jwt.SigningMethodHS256, e.pemBytes, e.claims(nil), nil), ErrAuthFailed},
		{"alg confusion with a secret configured too", JWTConfig{Secret: testSecret, PublicKeyFile: rsaPEM},
			sign(t, jwt.SigningMethodHS256, e.pemBytes, e.claims(nil), nil), ErrAuthFailed},
		{"HS256 without a secret", withJWKS, valid, ErrAuthFailed},
		{"RS256 with only a secret", withSecret, sign(t, jwt.SigningMethodRS256, e.rsaKey, e.claims(nil), nil), ErrAuthFailed},
		{"RS384 not accepted", withPEM, sign(t, jwt.SigningMethodRS384, e.rsaKey, e.claims(nil), nil), ErrAuthFailed},
		{"PS256 not accepted", withPEM, sign(t, jwt.SigningMethodPS256, e.rsaKey, e.claims(nil), nil), ErrAuthFailed},
		{"HS512 not accepted", withSecret, sign(t, jwt.SigningMethodHS512, testSecret, e.claims(nil), nil), ErrAuthFailed},
		{"ES256 with an RSA-only PEM", withPEM, sign(t, jwt.SigningMethodES256, e.ecKey, e.claims(nil), nil), ErrAuthFailed},
		{"unknown kid", withJWKS, sign(t, jwt.SigningMethodES256, e.ecJWKS, e.claims(nil), map[string]any{"kid": "ec9"}), ErrAuthFailed},
		{"kid of another algorithm", withJWKS, sign(t, jwt.SigningMethodES256, e.ecJWKS, e.claims(nil), map[string]any{"kid": "rsa1"}), ErrAuthFailed},
		{"key not in the set", withJWKS, sign(t, jwt.SigningMethodES256, e.otherEC, e.claims(nil), map[string]any{"kid": "ec1"}), ErrAuthFailed},
		{"key not in the set, no kid", withJWKS, sign(t, jwt.SigningMethodES256, e.otherEC, e.claims(nil), nil), ErrAuthFailed},
		{"RSA key of the PEM under a JWKS kid", JWTConfig{JWKSFile: e.jwksPath, PublicKeyFile: rsaPEM},
			sign(t, jwt.SigningMethodRS256, e.rsaKey, e.claims(nil), map[string]any{"kid": "rsa1"}), ErrAuthFailed},
		{"crit header", withSecret, sign(t, jwt.SigningMethodHS256, testSecret, e.claims(nil), map[string]any{"crit": []string{"x"}}), ErrAuthFailed},
		{"wrong audience", JWTConfig{Secret: testSecret, Audience: "stompd"}, hs(jwt.MapClaims{"aud": "other"}), ErrAuthFailed},
		{"audience missing", JWTConfig{Secret: testSecret, Audience: "stompd"}, hs(nil), ErrAuthFailed},
		{"audience of the wrong type", JWTConfig{Secret: testSecret, Audience: "stompd"}, hs(jwt.MapClaims{"aud": []any{"stompd", 3}}), ErrAuthFailed},
		{"wrong issuer", JWTConfig{Secret: testSecret, Issuer: "me"}, hs(jwt.MapClaims{"iss": "you"}), ErrAuthFailed},
		{"issuer missing", JWTConfig{Secret: testSecret, Issuer: "me"}, hs(nil), ErrAuthFailed},
		{"nbf in the future", withSecret, hs(jwt.MapClaims{"nbf": now.Add(time.Minute).Unix()}), ErrAuthFailed},
		{"nbf beyond leeway", JWTConfig{Secret: testSecret, Leeway: time.Second}, hs(jwt.MapClaims{"nbf": now.Add(time.Minute).Unix()}), ErrAuthFailed},
		{"nbf not a number", withSecret, hs(jwt.MapClaims{"nbf": "soon"}), ErrAuthFailed},
		{"exp not a number", withSecret, hs(jwt.MapClaims{"exp": "later"}), ErrAuthFailed},
		{"exp absurd", withSecret, hs(jwt.MapClaims{"exp": 1e300}), ErrAuthFailed},
		{"no sub", withSecret, hs(jwt.MapClaims{"sub": nil}), ErrAuthFailed},
		{"empty sub", withSecret, hs(jwt.MapClaims{"sub": ""}), ErrAuthFailed},
		{"sub not a string", withSecret, hs(jwt.MapClaims{"sub": 42}), ErrAuthFailed},
		{"roles with a number", withSecret, hs(jwt.MapClaims{"roles": []any{"a", 1}}), ErrAuthFailed},
		{"roles an object", withSecret, hs(jwt.MapClaims{"roles": map[string]any{"a": true}}), ErrAuthFailed},
		{"expired", withSecret, hs(jwt.MapClaims{"exp": past}), ErrTokenExpired},
		{"expired at this very second", withSecret, hs(jwt.MapClaims{"exp": now.Unix()}), ErrTokenExpired},
		{"expired beyond leeway", JWTConfig{Secret: testSecret, Leeway: 30 * time.Second}, hs(jwt.MapClaims{"exp": past}), ErrTokenExpired},
		{"expired ES256 from JWKS", withJWKS, sign(t, jwt.SigningMethodES256, e.ecJWKS, e.claims(jwt.MapClaims{"exp": past}), nil), ErrTokenExpired},
		{"expired with a bad signature", withSecret, sign(t, jwt.SigningMethodHS256, []byte("another secret, also 32 bytes ok"), e.claims(jwt.MapClaims{"exp": past}), nil), ErrAuthFailed},
		{"expired and wrong audience", JWTConfig{Secret: testSecret, Audience: "stompd"}, hs(jwt.MapClaims{"exp": past, "aud": "x"}), ErrAuthFailed},
		{"expired and wrong issuer", JWTConfig{Secret: testSecret, Issuer: "me"}, hs(jwt.MapClaims{"exp": past, "iss": "x"}), ErrAuthFailed},
		{"expired and not yet valid", withSecret, hs(jwt.MapClaims{"exp": past, "nbf": now.Add(time.Hour).Unix()}), ErrAuthFailed},
		{"expired and no sub", withSecret, hs(jwt.MapClaims{"exp": past, "sub": nil}), ErrAuthFailed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := newAuth(t, Config{JWT: c.jwt, Now: e.clock.Now})
			p, err := a.Authenticate(Credentials{Bearer: c.token})
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			if c.want == ErrAuthFailed && errors.Is(err, ErrTokenExpired) {
				t.Fatalf("error %v says expired", err)
			}
			if p.User != "" || p.Roles != nil || !p.Expires.IsZero() || p.Method != MethodJWT {
				t.Errorf("refused token gave principal %+v, want only method jwt", p)
			}
			if strings.Contains(err.Error(), c.token) {
				t.Errorf("error %q contains the token", err)
			}
		})
	}
}

func TestTokenExpiresWithTheClock(t *testing.T) {
	e := newTokenEnv(t)
	a := newAuth(t, Config{JWT: JWTConfig{Secret: testSecret, Leeway: 5 * time.Second}, Now: e.clock.Now})
	tok := sign(t, jwt.SigningMethodHS256, testSecret, e.claims(jwt.MapClaims{"exp": e.clock.Now().Add(time.Minute).Unix()}), nil)
	p, err := a.Authenticate(Credentials{Bearer: tok})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.ns.Store(p.Expires.Add(-time.Nanosecond).UnixNano())
	if _, err := a.Authenticate(Credentials{Bearer: tok}); err != nil {
		t.Fatalf("just before Expires: %v", err)
	}
	e.clock.ns.Store(p.Expires.UnixNano())
	if _, err := a.Authenticate(Credentials{Bearer: tok}); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("at Expires: error %v, want ErrTokenExpired", err)
	}
}

func TestPasscodeOrToken(t *testing.T) {
	e := newTokenEnv(t)
	users := writeFile(t, e.dir, "users", []byte("bob:"+hashOf(t, "a.b.c")+"\nana:"+hashOf(t, "eyJ.x")+"\n"))
	a := newAuth(t, Config{UsersFile: users, JWT: JWTConfig{Secret: testSecret}, Now: e.clock.Now})
	tok := sign(t, jwt.SigningMethodHS256, testSecret, e.claims(nil), nil)
	cases := []struct {
		name   string
		creds  Credentials
		user   string
		method Method
		want   error
	}{
		{"token as passcode", Credentials{Login: "bob", Passcode: tok}, "alice", MethodJWT, nil},
		{"passcode with two dots", Credentials{Login: "bob", Passcode: "a.b.c"}, "bob", MethodPasscode, nil},
		{"passcode starting like a token", Credentials{Login: "ana", Passcode: "eyJ.x"}, "ana", MethodPasscode, nil},
		{"bad token as passcode", Credentials{Login: "bob", Passcode: tok + "x"}, "", 0, ErrAuthFailed},
		{"bad bearer with good passcode", Credentials{Login: "bob", Passcode: "a.b.c", Bearer: "nope"}, "", 0, ErrAuthFailed},
		{"nothing", Credentials{}, "", 0, ErrNoCredentials},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := a.Authenticate(c.creds)
			if c.want != nil {
				if !errors.Is(err, c.want) {
					t.Fatalf("error %v, want %v", err, c.want)
				}
				return
			}
			if err != nil || p.User != c.user || p.Method != c.method {
				t.Fatalf("got %+v, %v; want user %q by %v", p, err, c.user, c.method)
			}
		})
	}
}

func TestLooksLikeJWS(t *testing.T) {
	cases := []struct {
		s    string
		want bool
	}{
		{"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln", true},
		{"eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.", true}, // unsigned: a token, to be refused
		{"eyJ-_.e30.a-_b", true},
		{"", false},
		{"password", false},
		{"a.b.c", false},
		{"eyJ.b", false},
		{"eyJ..c", false},
		{"eyJ.b.c.d", false},
		{"eyJ.b+/.c", false},
		{"eyJ.b.c=", false},
		{"eyJ a.b.c", false},
		{".eyJ.b.c", false},
	}
	for _, c := range cases {
		if got := looksLikeJWS(c.s); got != c.want {
			t.Errorf("looksLikeJWS(%q) = %v, want %v", c.s, got, c.want)
		}
	}
}
