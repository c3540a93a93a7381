package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Config says where credentials are checked. The zero Config configures nothing: authentication is
// off and Enabled reports false. Any of UsersFile, JWT.Secret, JWT.PublicKeyFile and JWT.JWKSFile
// turns it on; several may be set together.
type Config struct {
	// UsersFile is an htpasswd-format file, one "name:hash" or "name:hash:role,role" line per user.
	// Blank lines and lines starting with '#' are skipped. Only bcrypt hashes ($2a$, $2b$, $2y$, as
	// made by `htpasswd -B`) are accepted; MD5 ($apr1$), SHA-1 ({SHA}), crypt(3) and plain-text
	// entries are refused with the line number. The file is reloaded when it changes.
	UsersFile string
	// JWT configures token verification.
	JWT JWTConfig
	// Now returns the current time, for exp, nbf and the reload check. Default time.Now.
	Now func() time.Time
	// Logger receives reload failures (error level) and JWKS keys skipped as unsupported (warn
	// level). Default: a logger that discards everything.
	Logger *slog.Logger
}

// JWTConfig configures JSON Web Token verification. Tokens are accepted only in the algorithms the
// configured keys are for: HS256 for Secret, RS256 for RSA keys, ES256 for EC P-256 keys.
type JWTConfig struct {
	// Secret is the HS256 shared secret, at least 32 bytes (RFC 7518 §3.2).
	Secret []byte
	// PublicKeyFile is a PEM file holding one RSA (at least 2048 bits, for RS256) or EC P-256 (for
	// ES256) public key, as a PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE block. It is read once, by
	// New.
	PublicKeyFile string
	// JWKSFile is a JSON Web Key Set file (RFC 7517). RSA and EC P-256 signature keys are used; a
	// token's "kid" header chooses among them, and a token without "kid" is tried against every key
	// of its algorithm. Keys for other algorithms, curves or uses are skipped with a warning; a
	// private key is an error. The file is reloaded when it changes.
	JWKSFile string
	// Audience, when set, must appear in the token's "aud" claim (a string or an array of strings).
	Audience string
	// Issuer, when set, must equal the token's "iss" claim.
	Issuer string
	// UserClaim names the claim holding the user name; it must be a non-empty string. Default "sub".
	// A name not found as such but containing dots is followed as a path into nested objects
	// ("realm_access.user").
	UserClaim string
	// RolesClaim names the claim holding the roles: an array of strings, or one string of names
	// separated by spaces or commas. A missing claim means no roles. Default "roles"; dotted paths
	// as for UserClaim ("realm_access.roles").
	RolesClaim string
	// Leeway is the clock skew allowed when checking exp and nbf. Default 0; must not be negative.
	Leeway time.Duration
}

// Default claim names.
const (
	defaultUserClaim  = "sub"
	defaultRolesClaim = "roles"

	// minSecretBytes is the HS256 key size RFC 7518 §3.2 requires: the hash output size.
	minSecretBytes = 32
	// minRSABits refuses RSA keys that are too weak to trust.
	minRSABits = 2048
)

// enabled reports whether j configures any key.
func (j *JWTConfig) enabled() bool {
	return len(j.Secret) > 0 || j.PublicKeyFile != "" || j.JWKSFile != ""
}

// check reports options that are set but cannot take effect.
func (j *JWTConfig) check() error {
	if j.Leeway < 0 {
		return errors.New("jwt: leeway must not be negative")
	}
	if len(j.Secret) > 0 && len(j.Secret) < minSecretBytes {
		return fmt.Errorf("jwt: HS256 secret is %d bytes; at least %d are required", len(j.Secret), minSecretBytes)
	}
	if !j.enabled() && (j.Audience != "" || j.Issuer != "" || j.UserClaim != "" || j.RolesClaim != "" || j.Leeway != 0) {
		return errors.New("jwt: claim options are set but no secret, public key file or JWKS file is")
	}
	return nil
}
