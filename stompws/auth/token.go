package auth

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// tokenVerifier checks JSON Web Tokens. It is immutable after New except for the reloaded key set;
// safe for concurrent use.
type tokenVerifier struct {
	parser  *jwt.Parser
	keyfunc jwt.Keyfunc // v.keyFor, bound once so that a check does not allocate a closure

	secret []byte
	// static is the key set when there is no JWKS file (only the PEM key, or nothing).
	static *keySet
	jwks   *watchedFile[keySet]

	audience, issuer      string
	userClaim, rolesClaim string
	leeway                time.Duration
	now                   func() time.Time
}

func newTokenVerifier(cfg *JWTConfig, now func() time.Time, jwks *watchedFile[keySet], static *keySet) *tokenVerifier {
	v := &tokenVerifier{
		secret:     cfg.Secret,
		static:     static,
		jwks:       jwks,
		audience:   cfg.Audience,
		issuer:     cfg.Issuer,
		userClaim:  cmp.Or(cfg.UserClaim, defaultUserClaim),
		rolesClaim: cmp.Or(cfg.RolesClaim, defaultRolesClaim),
		leeway:     cfg.Leeway,
		now:        now,
	}
	var algs []string
	if len(v.secret) > 0 {
		algs = append(algs, algHS256)
	}
	if jwks != nil {
		// A reload may bring keys of either kind.
		algs = append(algs, algRS256, algES256)
	} else if static != nil && static.pemKey.key != nil {
		algs = append(algs, static.pemKey.alg)
	}
	// Claims are checked by verify itself, so that an expired token is reported as expired only
	// when nothing else is wrong with it.
	v.parser = jwt.NewParser(jwt.WithValidMethods(algs), jwt.WithoutClaimsValidation(), jwt.WithStrictDecoding())
	v.keyfunc = v.keyFor
	return v
}

// keyFor returns the key that verifies t. Each algorithm has its own keys, so that no key is ever
// used with an algorithm it was not made for.
func (v *tokenVerifier) keyFor(t *jwt.Token) (any, error) {
	if _, ok := t.Header["crit"]; ok {
		// RFC 7515 §4.1.11: extensions this verifier does not understand must be refused.
		return nil, errors.New(`"crit" header not supported`)
	}
	alg := t.Method.Alg()
	if alg == algHS256 {
		if len(v.secret) == 0 {
			return nil, errors.New("no HS256 secret")
		}
		return v.secret, nil
	}
	kid, _ := t.Header["kid"].(string)
	set := v.static
	if v.jwks != nil {
		set = v.jwks.get()
	}
	return set.lookup(alg, kid)
}

// verify checks a compact JWS token and its claims. A refusal still reports MethodJWT.
func (v *tokenVerifier) verify(raw string) (Principal, error) {
	p, err := v.check(raw)
	if err != nil {
		return Principal{Method: MethodJWT}, err
	}
	return p, nil
}

func (v *tokenVerifier) check(raw string) (Principal, error) {
	claims := jwt.MapClaims{}
	if _, err := v.parser.ParseWithClaims(raw, claims, v.keyfunc); err != nil {
		return Principal{}, fmt.Errorf("%w: token: %w", ErrAuthFailed, err)
	}
	now := v.now()
	if v.audience != "" {
		aud, err := claims.GetAudience()
		if err != nil || !slices.Contains(aud, v.audience) {
			return Principal{}, fmt.Errorf("%w: token audience is not %q", ErrAuthFailed, v.audience)
		}
	}
	if v.issuer != "" {
		if iss, ok := claims["iss"].(string); !ok || iss != v.issuer {
			return Principal{}, fmt.Errorf("%w: token issuer is not %q", ErrAuthFailed, v.issuer)
		}
	}
	nbf, err := numericDate(claims, "nbf")
	if err != nil {
		return Principal{}, fmt.Errorf("%w: token: %w", ErrAuthFailed, err)
	}
	if !nbf.IsZero() && now.Add(v.leeway).Before(nbf) {
		return Principal{}, fmt.Errorf("%w: token not valid before %s", ErrAuthFailed, nbf.UTC().Format(time.RFC3339))
	}
	exp, err := numericDate(claims, "exp")
	if err != nil {
		return Principal{}, fmt.Errorf("%w: token: %w", ErrAuthFailed, err)
	}
	user, _ := claimValue(claims, v.userClaim).(string)
	if user == "" {
		return Principal{}, fmt.Errorf("%w: token has no string %q claim", ErrAuthFailed, v.userClaim)
	}
	roles, err := rolesFrom(claimValue(claims, v.rolesClaim))
	if err != nil {
		return Principal{}, fmt.Errorf("%w: token claim %q: %w", ErrAuthFailed, v.rolesClaim, err)
	}
	p := Principal{User: user, Roles: roles, Method: MethodJWT}
	if !exp.IsZero() {
		p.Expires = exp.Add(v.leeway)
		if !now.Before(p.Expires) {
			return Principal{}, fmt.Errorf("%w at %s", ErrTokenExpired, exp.UTC().Format(time.RFC3339))
		}
	}
	return p, nil
}

// maxNumericDate bounds exp and nbf to dates time.Time can hold with room for the leeway (about the
// year 36800); larger values are malformed rather than "never".
const maxNumericDate = 1 << 40

// numericDate reads an RFC 7519 NumericDate claim: seconds since the epoch, possibly fractional.
// A missing claim gives the zero time.
func numericDate(claims jwt.MapClaims, name string) (time.Time, error) {
	raw, ok := claims[name]
	if !ok {
		return time.Time{}, nil
	}
	f, ok := raw.(float64)
	if !ok || math.Abs(f) > maxNumericDate {
		return time.Time{}, fmt.Errorf("claim %q is not a valid date", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}

// claimValue returns the claim called name or, when there is none and name has dots, the value at
// that path through nested objects. Exact names come first because some issuers use URLs, dots
// included, as claim names.
func claimValue(claims map[string]any, name string) any {
	if v, ok := claims[name]; ok || !strings.Contains(name, ".") {
		return v
	}
	var cur any = claims
	for part := range strings.SplitSeq(name, ".") {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = obj[part]
	}
	return cur
}

// rolesFrom reads a roles claim: absent, an array of strings, or one string of names separated by
// spaces or commas.
func rolesFrom(v any) ([]string, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }), nil
	case []any:
		roles := make([]string, 0, len(v))
		for _, r := range v {
			s, ok := r.(string)
			if !ok {
				return nil, errors.New("roles must be strings")
			}
			if s != "" {
				roles = append(roles, s)
			}
		}
		return roles, nil
	}
	return nil, errors.New("want an array of strings or a string")
}

// looksLikeJWS reports whether s has the shape of a compact JWS: three dot-separated base64url
// parts, the first starting with "ey" (base64 of a JSON object's opening) and the second not
// empty. A passcode is very unlikely to have that shape by chance.
func looksLikeJWS(s string) bool {
	header, rest, ok := strings.Cut(s, ".")
	if !ok || !strings.HasPrefix(header, "ey") {
		return false
	}
	payload, sig, ok := strings.Cut(rest, ".")
	return ok && payload != "" && isBase64URL(header) && isBase64URL(payload) && isBase64URL(sig)
}

// isBase64URL reports whether s holds only characters of the unpadded base64url alphabet.
func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}
