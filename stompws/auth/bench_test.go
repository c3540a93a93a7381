package auth

import (
	"crypto/elliptic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func BenchmarkAuthenticatePasscodeCached(b *testing.B) {
	path := writeFile(b, b.TempDir(), "users", []byte("alice:"+hashOf(b, "wonderland")+":chat\n"))
	a := newAuth(b, Config{UsersFile: path})
	creds := Credentials{Login: "alice", Passcode: "wonderland"}
	if _, err := a.Authenticate(creds); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authenticate(creds); err != nil {
			b.Fatal(err)
		}
	}
}

func benchmarkToken(b *testing.B, cfg JWTConfig, token string) {
	a := newAuth(b, Config{JWT: cfg})
	creds := Credentials{Bearer: token}
	if _, err := a.Authenticate(creds); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authenticate(creds); err != nil {
			b.Fatal(err)
		}
	}
}

func benchClaims() jwt.MapClaims {
	return jwt.MapClaims{"sub": "alice", "roles": []string{"chat"}, "aud": "stompd", "exp": time.Now().Add(time.Hour).Unix()}
}

func BenchmarkAuthenticateHS256(b *testing.B) {
	benchmarkToken(b, JWTConfig{Secret: testSecret, Audience: "stompd"},
		sign(b, jwt.SigningMethodHS256, testSecret, benchClaims(), nil))
}

func BenchmarkAuthenticateES256(b *testing.B) {
	key := newECKey(b, elliptic.P256())
	path := writeFile(b, b.TempDir(), "jwks.json", jwksJSON(b, ecJWK(b, "ec1", &key.PublicKey)))
	benchmarkToken(b, JWTConfig{JWKSFile: path, Audience: "stompd"},
		sign(b, jwt.SigningMethodES256, key, benchClaims(), map[string]any{"kid": "ec1"}))
}

func BenchmarkAuthenticateRS256(b *testing.B) {
	key, _ := rsaKeys()
	path := writeFile(b, b.TempDir(), "key.pem", publicPEM(b, &key.PublicKey))
	benchmarkToken(b, JWTConfig{PublicKeyFile: path, Audience: "stompd"},
		sign(b, jwt.SigningMethodRS256, key, benchClaims(), nil))
}

func BenchmarkCanPublishDefaultRules(b *testing.B) {
	p, err := NewPolicy(DefaultRules())
	if err != nil {
		b.Fatal(err)
	}
	pr := Principal{User: "alice", Roles: []string{"chat"}}
	b.ReportAllocs()
	for b.Loop() {
		if !p.CanPublish(pr, "/app/chat") {
			b.Fatal("denied")
		}
	}
}

func BenchmarkCanSubscribeDefaultRules(b *testing.B) {
	p, err := NewPolicy(DefaultRules())
	if err != nil {
		b.Fatal(err)
	}
	pr := Principal{User: "alice"}
	b.ReportAllocs()
	for b.Loop() {
		if !p.CanSubscribe(pr, "/topic/chat") || p.CanSubscribe(pr, "/topic/stocks.a.b") {
			b.Fatal("wrong answer")
		}
	}
}
