package auth

import (
	"log/slog"
	"slices"
	"strconv"
	"time"
)

// Method says how a principal proved who it is. Its String form is used as a metrics label.
type Method uint8

// Authentication methods. The zero Method means not authenticated.
const (
	// MethodPasscode is a login and passcode checked against the users file.
	MethodPasscode Method = iota + 1
	// MethodJWT is a signed JSON Web Token.
	MethodJWT
)

// String returns "passcode" or "jwt", and "Method(N)" for any other value.
func (m Method) String() string {
	switch m {
	case MethodPasscode:
		return "passcode"
	case MethodJWT:
		return "jwt"
	}
	return "Method(" + strconv.Itoa(int(m)) + ")"
}

// Credentials are what a client presented. Bearer is a token from an `Authorization: Bearer`
// header (a CONNECT header or the WebSocket handshake) or from an `access_token` query parameter.
// Login and Passcode come from the CONNECT frame, or from Basic authentication at the handshake.
// Credentials format with the passcode and token redacted, so that logging them leaks nothing.
type Credentials struct {
	Login, Passcode, Bearer string
}

// String returns the login and whether a passcode and a bearer token are present, never their
// values.
func (c Credentials) String() string {
	return "Credentials{Login:" + strconv.Quote(c.Login) + " Passcode:" + redacted(c.Passcode) +
		" Bearer:" + redacted(c.Bearer) + "}"
}

// GoString is String, so that %#v redacts as well.
func (c Credentials) GoString() string { return c.String() }

// LogValue implements slog.LogValuer with the same redaction as String.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("login", c.Login),
		slog.String("passcode", redacted(c.Passcode)),
		slog.String("bearer", redacted(c.Bearer)),
	)
}

func redacted(secret string) string {
	if secret == "" {
		return "none"
	}
	return "redacted"
}

// Principal is an authenticated identity. It is a plain value, safe to copy and to share between
// goroutines; Roles may be shared with the Authenticator's tables and must not be modified.
type Principal struct {
	// User is the users-file name or the token's user claim ("sub" by default). It is never empty
	// in a Principal returned by Authenticate.
	User string
	// Roles come from the users file's third field or the token's roles claim; nil when none.
	Roles []string
	// Method is how the credential was checked.
	Method Method
	// Expires is the instant from which Authenticate refuses the credential with ErrTokenExpired:
	// the token's exp plus the configured leeway. It is zero when the credential does not expire.
	// A session holding the principal should end at Expires.
	Expires time.Time
}

// HasRole reports whether role is one of p's roles. It does not allocate.
func (p Principal) HasRole(role string) bool { return slices.Contains(p.Roles, role) }
