package auth

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// userTable is one version of the users file. It is immutable once built, except for its cache of
// successful checks, which lives and dies with it: a reload starts with an empty cache, so that a
// changed or removed password stops working at once.
type userTable struct {
	users map[string]*userEntry

	// dummyHash is compared against when the login is unknown, at dummyCost, the cost most users'
	// hashes have, so that unknown and known users take the same time.
	dummyHash []byte
	dummyCost int

	cache passcodeCache
}

type userEntry struct {
	name  string
	hash  []byte
	roles []string
}

// parseUsersFile parses htpasswd-format data. prev, the table being replaced (or nil), lends its
// dummy hash when the cost is unchanged, since making one costs as much as a login.
func parseUsersFile(data []byte, prev *userTable) (*userTable, error) {
	t := &userTable{users: make(map[string]*userEntry)}
	definedOn := make(map[string]int)
	costs := make(map[int]int)
	lineNo := 0
	// Editors on some systems start a text file with a byte order mark; it is not part of a name.
	for line := range strings.Lines(strings.TrimPrefix(string(data), "\ufeff")) {
		lineNo++
		line = strings.TrimRight(line, "\r\n")
		if trimmed := strings.TrimSpace(line); trimmed == "" || trimmed[0] == '#' {
			continue
		}
		e, cost, err := parseUserLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", lineNo, err)
		}
		if first, dup := definedOn[e.name]; dup {
			return nil, fmt.Errorf("line %d: user %q is already defined on line %d", lineNo, e.name, first)
		}
		definedOn[e.name] = lineNo
		t.users[e.name] = e
		costs[cost]++
	}
	t.dummyCost = commonestCost(costs)
	if prev != nil && prev.dummyCost == t.dummyCost {
		t.dummyHash = prev.dummyHash
	} else {
		hash, err := bcrypt.GenerateFromPassword([]byte(rand.Text()), t.dummyCost)
		if err != nil {
			return nil, fmt.Errorf("making the comparison hash: %w", err)
		}
		t.dummyHash = hash
	}
	return t, nil
}

// parseUserLine parses "name:hash" or "name:hash:roles" and returns the hash's bcrypt cost. Errors
// never quote the hash.
func parseUserLine(line string) (*userEntry, int, error) {
	name, rest, ok := strings.Cut(line, ":")
	if !ok {
		return nil, 0, errors.New(`want "name:bcrypt-hash" or "name:bcrypt-hash:role,role"`)
	}
	if err := checkName(name); err != nil {
		return nil, 0, fmt.Errorf("user name: %w", err)
	}
	hash, roleList, _ := strings.Cut(rest, ":")
	cost, err := checkHash(hash)
	if err != nil {
		return nil, 0, fmt.Errorf("user %q: %w", name, err)
	}
	if strings.Contains(roleList, ":") {
		return nil, 0, fmt.Errorf("user %q: too many ':' fields; roles are separated by commas", name)
	}
	var roles []string
	for r := range strings.SplitSeq(roleList, ",") {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		if err := checkName(r); err != nil {
			return nil, 0, fmt.Errorf("user %q: role: %w", name, err)
		}
		roles = append(roles, r)
	}
	return &userEntry{name: name, hash: []byte(hash), roles: roles}, cost, nil
}

// checkHash accepts bcrypt hashes only, and names what it refuses, so that an operator who ran
// htpasswd without -B knows what to change.
func checkHash(hash string) (int, error) {
	switch {
	case hash == "":
		return 0, errors.New("empty password hash")
	case strings.HasPrefix(hash, "$apr1$"), strings.HasPrefix(hash, "$1$"):
		return 0, errors.New("MD5 password hashes are not accepted; use bcrypt (htpasswd -B)")
	case strings.HasPrefix(hash, "{SHA}"):
		return 0, errors.New("SHA-1 ({SHA}) password hashes are not accepted; use bcrypt (htpasswd -B)")
	case strings.HasPrefix(hash, "$5$"), strings.HasPrefix(hash, "$6$"):
		return 0, errors.New("SHA-crypt password hashes are not accepted; use bcrypt (htpasswd -B)")
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		cost, err := bcrypt.Cost([]byte(hash))
		if err != nil {
			return 0, fmt.Errorf("malformed bcrypt hash: %w", err)
		}
		if len(hash) != bcryptHashLen {
			return 0, fmt.Errorf("malformed bcrypt hash: %d characters, want %d", len(hash), bcryptHashLen)
		}
		return cost, nil
	}
	return 0, errors.New("not a bcrypt hash (crypt(3) DES or plain text?); use bcrypt (htpasswd -B)")
}

// bcryptHashLen is the length of a bcrypt hash in modular crypt format: "$2b$10$" followed by a
// 22-character salt and a 31-character hash.
const bcryptHashLen = 60

// checkName accepts user and role names: non-empty UTF-8 with no spaces, control characters,
// colons or commas, which the file format and role lists could not carry.
func checkName(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%q is not valid UTF-8", s)
	}
	if i := strings.IndexFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || r == ':' || r == ','
	}); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		return fmt.Errorf("%q contains %q", s, r)
	}
	return nil
}

// commonestCost returns the bcrypt cost most hashes use (the higher on a tie), or
// bcrypt.DefaultCost for an empty file.
func commonestCost(costs map[int]int) int {
	best, bestN := bcrypt.DefaultCost, 0
	for cost, n := range costs {
		if n > bestN || (n == bestN && cost > best) {
			best, bestN = cost, n
		}
	}
	return best
}
