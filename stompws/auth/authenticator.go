package auth

import (
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"
)

// Authenticator checks credentials against a users file and JWT keys. Build it with New; a nil
// *Authenticator is valid and has authentication off. All methods are safe for concurrent use.
// It starts no goroutine: changed files are picked up by Authenticate itself.
type Authenticator struct {
	users   *watchedFile[userTable] // nil without a users file
	mac     *passcodeMAC
	tokens  *tokenVerifier // nil without JWT keys
	methods []Method
}

// New validates cfg and loads its files. The error wraps ErrInvalidConfig and names the file and
// line (users file) or the key problem. With nothing configured it returns an Authenticator whose
// Enabled reports false.
func New(cfg Config) (*Authenticator, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.JWT.check(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	a := &Authenticator{}
	if cfg.UsersFile != "" {
		users, err := newWatchedFile(cfg.UsersFile, "users file", parseUsersFile, cfg.Now, cfg.Logger)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
		a.users = users
		a.mac = newPasscodeMAC()
		a.methods = append(a.methods, MethodPasscode)
	}
	if cfg.JWT.enabled() {
		tokens, err := newTokens(&cfg.JWT, cfg.Now, cfg.Logger)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
		a.tokens = tokens
		a.methods = append(a.methods, MethodJWT)
	}
	return a, nil
}

// newTokens loads the PEM key and the JWKS file.
func newTokens(cfg *JWTConfig, now func() time.Time, logger *slog.Logger) (*tokenVerifier, error) {
	var pemKey verificationKey
	if cfg.PublicKeyFile != "" {
		data, err := os.ReadFile(cfg.PublicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("jwt public key file: %w", err)
		}
		if pemKey, err = parsePublicKeyPEM(data); err != nil {
			return nil, fmt.Errorf("jwt public key file %s: %w", cfg.PublicKeyFile, err)
		}
	}
	if cfg.JWKSFile == "" {
		static := &keySet{pemKey: pemKey}
		if pemKey.key != nil {
			static.add("", pemKey)
		}
		return newTokenVerifier(cfg, now, nil, static), nil
	}
	parse := func(data []byte, _ *keySet) (*keySet, error) { return parseJWKS(data, pemKey, logger) }
	jwks, err := newWatchedFile(cfg.JWKSFile, "JWKS file", parse, now, logger)
	if err != nil {
		return nil, err
	}
	return newTokenVerifier(cfg, now, jwks, nil), nil
}

// Enabled reports whether any credential source is configured, that is, whether clients are to be
// authenticated at all. False for a nil Authenticator.
func (a *Authenticator) Enabled() bool { return a != nil && len(a.methods) > 0 }

// Methods returns the configured methods, passcode before JWT, for a WWW-Authenticate challenge
// (Basic for MethodPasscode, Bearer for MethodJWT). The caller owns the slice.
func (a *Authenticator) Methods() []Method {
	if a == nil {
		return nil
	}
	return slices.Clone(a.methods)
}

// Authenticate checks c and returns who it proves the client to be.
//
// With JWT keys configured, a non-empty Bearer is a token and so is a Passcode shaped like a
// compact JWS (three base64url parts); otherwise, with a users file, Login and Passcode are checked
// against it. A credential of a kind that is not configured is ignored.
//
// Errors wrap ErrNoCredentials when nothing checkable was presented, ErrTokenExpired when a
// genuine, otherwise valid token has expired, and ErrAuthFailed for everything else; the wrapped
// detail is for the server log, never for the client. On ErrTokenExpired and ErrAuthFailed the
// Principal is empty but for Method, the method that was tried (a metrics label); on
// ErrNoCredentials it is the zero Principal. A nil Authenticator returns ErrNoCredentials.
//
// A passcode check costs one bcrypt comparison (tens of milliseconds at the usual cost) unless the
// same login and passcode passed since the users file last changed; failures are never cached.
func (a *Authenticator) Authenticate(c Credentials) (Principal, error) {
	if a == nil {
		return Principal{}, fmt.Errorf("%w: authentication is not configured", ErrNoCredentials)
	}
	if a.tokens != nil {
		if c.Bearer != "" {
			return a.tokens.verify(c.Bearer)
		}
		if looksLikeJWS(c.Passcode) {
			return a.tokens.verify(c.Passcode)
		}
	}
	if a.users != nil && (c.Login != "" || c.Passcode != "") {
		return a.checkPasscode(c.Login, c.Passcode)
	}
	return Principal{}, ErrNoCredentials
}
