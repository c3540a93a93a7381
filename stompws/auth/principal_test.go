package auth

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestMethodString(t *testing.T) {
	for m, want := range map[Method]string{MethodPasscode: "passcode", MethodJWT: "jwt", 0: "Method(0)", 9: "Method(9)"} {
		if got := m.String(); got != want {
			t.Errorf("Method(%d).String() = %q, want %q", m, got, want)
		}
	}
}

func TestCredentialsAreRedacted(t *testing.T) {
	c := Credentials{Login: "alice", Passcode: "hunter2", Bearer: "eyJtoken"}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "creds", c)
	outputs := map[string]string{
		"%v":   fmt.Sprintf("%v", c),
		"%+v":  fmt.Sprintf("%+v", c),
		"%#v":  fmt.Sprintf("%#v", c),
		"%s":   fmt.Sprintf("%s", c),
		"slog": logged.String(),
	}
	for how, out := range outputs {
		if strings.Contains(out, "hunter2") || strings.Contains(out, "eyJtoken") {
			t.Errorf("%s leaks a secret: %s", how, out)
		}
		if !strings.Contains(out, "alice") || !strings.Contains(out, "redacted") {
			t.Errorf("%s: %s lacks the login or the redaction mark", how, out)
		}
	}
	if s := (Credentials{}).String(); strings.Contains(s, "redacted") {
		t.Errorf("empty credentials claim redacted secrets: %s", s)
	}
}

func TestPrincipalHasRole(t *testing.T) {
	p := Principal{User: "u", Roles: []string{"a", "b"}}
	for role, want := range map[string]bool{"a": true, "b": true, "c": false, "": false} {
		if got := p.HasRole(role); got != want {
			t.Errorf("HasRole(%q) = %v, want %v", role, got, want)
		}
	}
}
