package auth_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/stompd/stompd/stompws/auth"
)

func ExampleAuthenticator_Authenticate() {
	dir, err := os.MkdirTemp("", "users")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	hash, _ := bcrypt.GenerateFromPassword([]byte("wonderland"), bcrypt.MinCost)
	users := filepath.Join(dir, "users")
	if err := os.WriteFile(users, []byte("alice:"+string(hash)+":admin\n"), 0o600); err != nil {
		panic(err)
	}
	secret := []byte("a shared secret of at least 32 bytes")

	a, err := auth.New(auth.Config{UsersFile: users, JWT: auth.JWTConfig{Secret: secret, Audience: "stompd"}})
	if err != nil {
		panic(err)
	}
	fmt.Println(a.Methods())

	p, err := a.Authenticate(auth.Credentials{Login: "alice", Passcode: "wonderland"})
	fmt.Println(p.User, p.Roles, p.Method, err)

	_, err = a.Authenticate(auth.Credentials{Login: "alice", Passcode: "guess"})
	fmt.Println(errors.Is(err, auth.ErrAuthFailed))

	token, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "svc", "aud": "stompd", "roles": "feed", "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString(secret)
	p, err = a.Authenticate(auth.Credentials{Bearer: token})
	fmt.Println(p.User, p.Roles, p.Method, err)
	// Output:
	// [passcode jwt]
	// alice [admin] passcode <nil>
	// true
	// svc [feed] jwt <nil>
}

func ExamplePolicy() {
	policy, err := auth.NewPolicy(append(auth.DefaultRules(),
		auth.Rule{Roles: []string{"feed"}, Publish: []string{"/topic/stocks.*"}}))
	if err != nil {
		panic(err)
	}
	user := auth.Principal{User: "alice"}
	feed := auth.Principal{User: "svc", Roles: []string{"feed"}}
	fmt.Println(policy.CanPublish(user, "/app/chat"), policy.CanPublish(user, "/topic/stocks.ACME"))
	fmt.Println(policy.CanPublish(feed, "/topic/stocks.ACME"))
	fmt.Println(policy.CanSubscribe(user, "/topic/stocks.*"), policy.CanSubscribe(user, "/topic/#"))
	// Output:
	// true false
	// true
	// true false
}
