package auth

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestAuthenticatePasscode(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "users", []byte(
		"alice:"+hashOf(t, "wonderland")+":admin,chat\n"+
			"bob:"+hashOf(t, "builder")+"\n"))
	a := newAuth(t, Config{UsersFile: path})
	cases := []struct {
		name    string
		creds   Credentials
		user    string
		roles   []string
		wantErr error
	}{
		{"right passcode", Credentials{Login: "alice", Passcode: "wonderland"}, "alice", []string{"admin", "chat"}, nil},
		{"no roles", Credentials{Login: "bob", Passcode: "builder"}, "bob", nil, nil},
		{"right passcode again (cached)", Credentials{Login: "alice", Passcode: "wonderland"}, "alice", []string{"admin", "chat"}, nil},
		{"wrong passcode", Credentials{Login: "alice", Passcode: "builder"}, "", nil, ErrAuthFailed},
		{"other user's passcode", Credentials{Login: "bob", Passcode: "wonderland"}, "", nil, ErrAuthFailed},
		{"unknown user", Credentials{Login: "carol", Passcode: "wonderland"}, "", nil, ErrAuthFailed},
		{"login case matters", Credentials{Login: "Alice", Passcode: "wonderland"}, "", nil, ErrAuthFailed},
		{"empty passcode", Credentials{Login: "alice"}, "", nil, ErrAuthFailed},
		{"passcode without login", Credentials{Passcode: "wonderland"}, "", nil, ErrAuthFailed},
		{"nothing", Credentials{}, "", nil, ErrNoCredentials},
		{"bearer without JWT keys", Credentials{Bearer: "eyJ.eyJ.sig"}, "", nil, ErrNoCredentials},
		{"bearer ignored, passcode checked", Credentials{Login: "bob", Passcode: "builder", Bearer: "x"}, "bob", nil, nil},
		{"token-shaped passcode without JWT keys", Credentials{Login: "bob", Passcode: "eyJ.eyJ.sig"}, "", nil, ErrAuthFailed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := a.Authenticate(c.creds)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("error %v, want %v", err, c.wantErr)
				}
				wantMethod := MethodPasscode
				if errors.Is(err, ErrNoCredentials) {
					wantMethod = 0
				}
				if p.User != "" || p.Roles != nil || p.Method != wantMethod {
					t.Errorf("failed check returned principal %+v, want only method %v", p, wantMethod)
				}
				if c.creds.Passcode != "" && strings.Contains(err.Error(), c.creds.Passcode) {
					t.Errorf("error %q contains the passcode", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.User != c.user || !slices.Equal(p.Roles, c.roles) || p.Method != MethodPasscode || !p.Expires.IsZero() {
				t.Fatalf("principal %+v, want user %q roles %q method passcode, no expiry", p, c.user, c.roles)
			}
		})
	}
}

func TestPasscodeCache(t *testing.T) {
	path := writeFile(t, t.TempDir(), "users", []byte("alice:"+hashOf(t, "wonderland")+"\n"))
	a := newAuth(t, Config{UsersFile: path})
	cache := &a.users.get().cache
	size := func() int {
		cache.mu.RLock()
		defer cache.mu.RUnlock()
		return len(cache.ok)
	}

	if _, err := a.Authenticate(Credentials{Login: "alice", Passcode: "nope"}); !errors.Is(err, ErrAuthFailed) {
		t.Fatal(err)
	}
	if n := size(); n != 0 {
		t.Fatalf("a failed check was cached (%d entries)", n)
	}
	if _, err := a.Authenticate(Credentials{Login: "alice", Passcode: "wonderland"}); err != nil {
		t.Fatal(err)
	}
	if n := size(); n != 1 {
		t.Fatalf("%d cache entries after one success, want 1", n)
	}
	cache.mu.RLock()
	for k := range cache.ok {
		if k.user != "alice" || strings.Contains(string(k.mac[:]), "wonderland") {
			t.Errorf("cache key %+v", k)
		}
	}
	cache.mu.RUnlock()

	// A cached entry is found again only for the same passcode.
	k := passcodeKey{user: "alice", mac: a.mac.sum("wonderland")}
	if !cache.has(&k) {
		t.Error("the successful passcode is not cached")
	}
	k.mac = a.mac.sum("wonderland2")
	if cache.has(&k) {
		t.Error("another passcode hits the cache")
	}

	// The cache stays bounded.
	for i := range maxCachedPasscodes + 100 {
		k := passcodeKey{user: fmt.Sprint("user", i)}
		cache.add(&k)
	}
	if n := size(); n != maxCachedPasscodes {
		t.Errorf("cache holds %d entries, want the bound %d", n, maxCachedPasscodes)
	}

	// Keys are per process: another Authenticator computes different MACs.
	if a.mac.sum("wonderland") == newAuth(t, Config{UsersFile: path}).mac.sum("wonderland") {
		t.Error("two Authenticators share the passcode MAC key")
	}
}

func TestUsersFileReload(t *testing.T) {
	clock := newTestClock()
	var logs logBuffer
	path := writeFile(t, t.TempDir(), "users", []byte("alice:"+hashOf(t, "old")+"\nbob:"+hashOf(t, "bob")+"\n"))
	a := newAuth(t, Config{UsersFile: path, Now: clock.Now, Logger: logs.logger()})

	check := func(step, login, passcode string, want error) {
		t.Helper()
		_, err := a.Authenticate(Credentials{Login: login, Passcode: passcode})
		if (want == nil && err != nil) || (want != nil && !errors.Is(err, want)) {
			t.Fatalf("%s: %s/%s: error %v, want %v", step, login, passcode, err, want)
		}
	}
	check("start", "alice", "old", nil) // now cached
	check("start", "bob", "bob", nil)

	// A new file: the old passcode keeps working until the next check is due.
	replaceFile(t, path, []byte("alice:"+hashOf(t, "new")+":admin\ncarol:"+hashOf(t, "carol")+"\n"))
	check("before the check is due", "alice", "old", nil)
	clock.Advance(reloadInterval)
	check("after reload", "alice", "new", nil)
	check("after reload", "alice", "old", ErrAuthFailed)
	check("after reload", "carol", "carol", nil)
	check("removed user", "bob", "bob", ErrAuthFailed)
	if p, _ := a.Authenticate(Credentials{Login: "alice", Passcode: "new"}); !slices.Equal(p.Roles, []string{"admin"}) {
		t.Errorf("roles after reload %q, want [admin]", p.Roles)
	}

	// A broken rewrite keeps the previous users and is logged once, with its line.
	replaceFile(t, path, []byte("alice:"+hashOf(t, "broken")+"\ndave:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n"))
	clock.Advance(reloadInterval)
	check("broken rewrite", "alice", "new", nil)
	check("broken rewrite", "alice", "broken", ErrAuthFailed)
	clock.Advance(reloadInterval)
	check("broken rewrite, later", "alice", "new", nil)
	if got := strings.Count(logs.String(), "reload failed"); got != 1 {
		t.Errorf("reload failure logged %d times, want once:\n%s", got, logs.String())
	}
	if !strings.Contains(logs.String(), "line 2") {
		t.Errorf("log does not name the line:\n%s", logs.String())
	}

	// Fixed in place (same inode), with a modification time that surely differs.
	if err := os.WriteFile(path, []byte("alice:"+hashOf(t, "fixed")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, time.Time{}, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	clock.Advance(reloadInterval)
	check("fixed in place", "alice", "fixed", nil)
	check("fixed in place", "carol", "carol", ErrAuthFailed)

	// A removed file keeps the users in force.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	clock.Advance(reloadInterval)
	check("file removed", "alice", "fixed", nil)
	clock.Advance(reloadInterval)
	check("file removed", "alice", "fixed", nil)
	if got := strings.Count(logs.String(), "reload failed"); got != 2 {
		t.Errorf("%d reload failures logged, want 2:\n%s", got, logs.String())
	}
}

func TestUsersFileReloadConcurrent(t *testing.T) {
	clock := newTestClock()
	path := writeFile(t, t.TempDir(), "users", []byte("alice:"+hashOf(t, "a")+"\n"))
	a := newAuth(t, Config{UsersFile: path, Now: clock.Now})
	newFile := []byte("alice:" + hashOf(t, "a") + "\nbob:" + hashOf(t, "b") + "\n")

	done := make(chan error)
	for range 4 {
		go func() {
			var err error
			for i := 0; i < 200 && err == nil; i++ {
				_, err = a.Authenticate(Credentials{Login: "alice", Passcode: "a"})
				clock.Advance(reloadInterval / 10)
			}
			done <- err
		}()
	}
	replaceFile(t, path, newFile)
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(reloadInterval)
	if _, err := a.Authenticate(Credentials{Login: "bob", Passcode: "b"}); err != nil {
		t.Fatalf("new user after concurrent reloads: %v", err)
	}
}
