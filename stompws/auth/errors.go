package auth

import "errors"

// ErrNoCredentials means the client presented nothing this Authenticator can check: no bearer
// token, no login or passcode, or only a kind of credential that is not configured (a bearer token
// when no JWT key is set, a login and passcode when there is no users file). Callers treat it as an
// anonymous client: refused when authentication is required, asked for credentials at the
// handshake.
var ErrNoCredentials = errors.New("no credentials")

// ErrAuthFailed means the credentials were checked and refused: an unknown user, a wrong passcode,
// a malformed token, a bad signature, an algorithm or key that is not accepted, a wrong audience or
// issuer, a token not valid yet. Callers tell the client only "authentication failed"; the wrapped
// detail is for the server log and never contains the passcode or token.
var ErrAuthFailed = errors.New("authentication failed")

// ErrTokenExpired means a token is genuine and otherwise acceptable but its exp has passed, leeway
// included. Callers tell the client "token expired" so that it fetches a new token instead of
// retrying.
var ErrTokenExpired = errors.New("token expired")

// ErrInvalidConfig is wrapped by New for a configuration it cannot use: a users file line that does
// not parse or holds a non-bcrypt hash, a key that cannot be read or is not accepted, JWT claim
// options with no key to check tokens. The message names the file and line or the key.
var ErrInvalidConfig = errors.New("invalid auth configuration")

// ErrInvalidRule is wrapped by NewPolicy for a rule that grants nobody or nothing, or that holds an
// empty or malformed name, role or destination pattern. The message gives the rule's index.
var ErrInvalidRule = errors.New("invalid authorization rule")
