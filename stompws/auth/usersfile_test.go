package auth

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestParseUsersFileAccepts(t *testing.T) {
	h := hashOf(t, "pw")
	cases := []struct {
		name  string
		file  string
		users map[string][]string // name → roles
	}{
		{"empty", "", map[string][]string{}},
		{"one user", "alice:" + h + "\n", map[string][]string{"alice": nil}},
		{"no final newline", "alice:" + h, map[string][]string{"alice": nil}},
		{"roles", "alice:" + h + ":admin, ops,,\nbob:" + h + ":\n",
			map[string][]string{"alice": {"admin", "ops"}, "bob": nil}},
		{"comments, blanks and CRLF", "# users\r\n\r\n   \nalice:" + h + "\r\n  # bob:x\n",
			map[string][]string{"alice": nil}},
		{"2a and 2y prefixes", "a:$2a$" + h[4:] + "\ny:$2y$" + h[4:] + "\n",
			map[string][]string{"a": nil, "y": nil}},
		{"unicode name", "zoë:" + h + "\n", map[string][]string{"zoë": nil}},
		{"byte order mark", "\ufeffalice:" + h + "\n", map[string][]string{"alice": nil}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			table, err := parseUsersFile([]byte(c.file), nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(table.users) != len(c.users) {
				t.Fatalf("got %d users, want %d", len(table.users), len(c.users))
			}
			for name, roles := range c.users {
				e := table.users[name]
				if e == nil {
					t.Fatalf("user %q missing", name)
				}
				if !slices.Equal(e.roles, roles) {
					t.Errorf("user %q roles %q, want %q", name, e.roles, roles)
				}
			}
		})
	}
}

func TestParseUsersFileRefuses(t *testing.T) {
	h := hashOf(t, "pw")
	cases := []struct {
		name, file, want string
	}{
		{"apr1", "alice:" + h + "\nbob:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/\n", `line 2: user "bob": MD5`},
		{"md5 crypt", "bob:$1$abc$def\n", "line 1: user \"bob\": MD5"},
		{"sha1", "# c\nbob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n", "line 2: user \"bob\": SHA-1"},
		{"sha512 crypt", "bob:$6$salt$hash\n", "SHA-crypt"},
		{"sha256 crypt", "bob:$5$salt$hash\n", "SHA-crypt"},
		{"des crypt", "bob:abJnggxhB/yWI\n", "not a bcrypt hash"},
		{"plain text", "bob:secret\n", "not a bcrypt hash"},
		{"empty hash", "bob:\n", "empty password hash"},
		{"no colon", "bob\n", "line 1: want"},
		{"empty name", ":" + h + "\n", "line 1: user name: empty"},
		{"space in name", "bo b:" + h + "\n", "contains ' '"},
		{"duplicate", "bob:" + h + "\n\nbob:" + h + "\n", `line 3: user "bob" is already defined on line 1`},
		{"too many fields", "bob:" + h + ":admin:x\n", "too many ':' fields"},
		{"bad cost", "bob:$2b$99$" + h[7:] + "\n", "malformed bcrypt hash"},
		{"truncated bcrypt", "bob:" + h[:50] + "\n", "malformed bcrypt hash"},
		{"2x prefix", "bob:$2x$" + h[4:] + "\n", "not a bcrypt hash"},
		{"bad role", "bob:" + h + ":ad\tmin\n", "role"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseUsersFile([]byte(c.file), nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			if strings.Contains(err.Error(), h) {
				t.Errorf("error quotes the hash: %v", err)
			}
		})
	}
}

func TestNewUsersFileErrorNamesFileAndLine(t *testing.T) {
	path := writeFile(t, t.TempDir(), "users", []byte("alice:"+hashOf(t, "pw")+"\nbob:$apr1$x$y\n"))
	_, err := New(Config{UsersFile: path})
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("error %v does not wrap ErrInvalidConfig", err)
	}
	for _, want := range []string{path, "line 2", "bob"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if _, err := New(Config{UsersFile: path + ".missing"}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("missing file: error %v does not wrap ErrInvalidConfig", err)
	}
}

func TestDummyHashUsesCommonestCost(t *testing.T) {
	h4 := hashOf(t, "pw")
	h5, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost+1)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		file string
		want int
	}{
		{"all min cost", "a:" + h4 + "\nb:" + h4 + "\n", bcrypt.MinCost},
		{"majority wins", "a:" + h4 + "\nb:" + string(h5) + "\nc:" + h4 + "\n", bcrypt.MinCost},
		{"tie takes the higher", "a:" + h4 + "\nb:" + string(h5) + "\n", bcrypt.MinCost + 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			table, err := parseUsersFile([]byte(c.file), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := bcrypt.Cost(table.dummyHash); err != nil || got != c.want || table.dummyCost != c.want {
				t.Fatalf("dummy hash cost %d (%v), recorded %d; want %d", got, err, table.dummyCost, c.want)
			}
			// A reload at the same cost keeps the dummy hash instead of making another.
			again, err := parseUsersFile([]byte(c.file), table)
			if err != nil {
				t.Fatal(err)
			}
			if &again.dummyHash[0] != &table.dummyHash[0] {
				t.Error("reload at the same cost made a new dummy hash")
			}
		})
	}
	if got := commonestCost(nil); got != bcrypt.DefaultCost {
		t.Errorf("empty file: cost %d, want bcrypt.DefaultCost", got)
	}
}
