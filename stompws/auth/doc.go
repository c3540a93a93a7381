// Package auth decides who a client is and what it may do: it checks STOMP login/passcode pairs
// against an htpasswd-style users file and verifies JSON Web Tokens (Authenticator), and it grants
// publish and subscribe rights on destination patterns to users and roles (Policy). It knows nothing
// of STOMP frames, WebSocket or the broker's routing; the protocol layer hands it credentials and
// destinations and acts on the answer.
//
// # Threat model
//
// The network is hostile; the server's own files are trusted. This package defends against a
// client guessing or replaying credentials, forging or tampering with tokens (unsigned "none"
// tokens, algorithm confusion such as an RS256 public key used as an HS256 secret, tokens for
// another audience or issuer, tokens used before nbf or after exp), learning which part of a
// credential was wrong, and telling known from unknown user names by response time. It does not
// throttle guessing (the caller delays failed attempts), revoke tokens before exp, or protect
// credentials in transit (that is TLS).
//
// # Invariants
//
//   - Every failure wraps exactly one of ErrNoCredentials, ErrAuthFailed or ErrTokenExpired. Only a
//     token whose signature, audience, issuer and nbf all check out can give ErrTokenExpired; every
//     other problem is ErrAuthFailed, whatever the detail, so a client never learns which check
//     failed.
//   - A passcode is never stored: the cache of successful bcrypt checks is keyed by an HMAC of the
//     passcode under a random per-process key, lives with one version of the users file, and is
//     bounded.
//   - An unknown user costs one bcrypt comparison at the cost most hashes in the users file use, as a
//     known user does.
//   - A token is verified only with a key of its own algorithm: HS256 with the shared secret, RS256
//     with RSA public keys, ES256 with EC P-256 public keys. Keys are never shared across algorithms.
//   - Reloading starts no goroutine. Authenticate stats the users and JWKS files at most once per
//     second; a file that fails to load leaves the previous contents in force and is logged once.
//   - Policy checks never allocate, and a subscription pattern is granted only when every
//     destination it can match is granted.
package auth
