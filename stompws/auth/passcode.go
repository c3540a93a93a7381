package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"hash"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// maxCachedPasscodes bounds the cache of successful checks per users-file version. Past it, an
// arbitrary entry makes room; that user pays one more bcrypt comparison on their next login.
const maxCachedPasscodes = 4096

// passcodeKey identifies one successful check without holding the passcode: mac is an HMAC-SHA256
// of it under the Authenticator's random key, which never leaves the process.
type passcodeKey struct {
	user string
	mac  [sha256.Size]byte
}

// passcodeCache remembers logins that passed bcrypt, because bcrypt is meant to be slow (tens of
// milliseconds) and clients reconnect often. Failures are never cached. Safe for concurrent use.
type passcodeCache struct {
	mu sync.RWMutex
	ok map[passcodeKey]struct{}
}

func (c *passcodeCache) has(k *passcodeKey) bool {
	c.mu.RLock()
	_, ok := c.ok[*k]
	c.mu.RUnlock()
	return ok
}

func (c *passcodeCache) add(k *passcodeKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ok == nil {
		c.ok = make(map[passcodeKey]struct{})
	}
	if len(c.ok) >= maxCachedPasscodes {
		for old := range c.ok {
			delete(c.ok, old)
			break
		}
	}
	c.ok[*k] = struct{}{}
}

// passcodeMAC computes cache keys. Its HMAC states are pooled so that a cached login does not
// allocate.
type passcodeMAC struct {
	pool sync.Pool // of *macState
}

type macState struct {
	h   hash.Hash
	buf []byte
	out [sha256.Size]byte // Sum writes here: a caller's array would escape through hash.Hash
}

func newPasscodeMAC() *passcodeMAC {
	key := make([]byte, sha256.Size)
	rand.Read(key) // never fails; see crypto/rand.Read
	m := &passcodeMAC{}
	m.pool.New = func() any { return &macState{h: hmac.New(sha256.New, key)} }
	return m
}

// sum returns the HMAC of passcode.
func (m *passcodeMAC) sum(passcode string) [sha256.Size]byte {
	s := m.pool.Get().(*macState)
	s.h.Reset()
	s.buf = append(s.buf[:0], passcode...)
	s.h.Write(s.buf)
	clear(s.buf)
	s.h.Sum(s.out[:0])
	mac := s.out
	m.pool.Put(s)
	return mac
}

// checkPasscode checks login and passcode against the current users file. A refusal still reports
// MethodPasscode.
func (a *Authenticator) checkPasscode(login, passcode string) (Principal, error) {
	t := a.users.get()
	e := t.users[login]
	if e == nil {
		// Spend what a known user costs, so that response time does not tell which names exist.
		_ = bcrypt.CompareHashAndPassword(t.dummyHash, []byte(passcode))
		return Principal{Method: MethodPasscode}, fmt.Errorf("%w: unknown user %q", ErrAuthFailed, login)
	}
	key := passcodeKey{user: e.name, mac: a.mac.sum(passcode)}
	if !t.cache.has(&key) {
		if err := bcrypt.CompareHashAndPassword(e.hash, []byte(passcode)); err != nil {
			return Principal{Method: MethodPasscode}, fmt.Errorf("%w: user %q: wrong passcode", ErrAuthFailed, login)
		}
		t.cache.add(&key)
	}
	return Principal{User: e.name, Roles: e.roles, Method: MethodPasscode}, nil
}
