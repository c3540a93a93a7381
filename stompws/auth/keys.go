package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// Signature algorithms, as they appear in a token's "alg" header.
const (
	algHS256 = "HS256"
	algRS256 = "RS256"
	algES256 = "ES256"
)

// keySet is one version of the public keys tokens are checked with: the PEM key file's key and the
// JWKS file's keys. It is immutable.
type keySet struct {
	// byKID holds the JWKS keys that have a "kid", each with the one algorithm it verifies.
	byKID map[string]verificationKey
	// byAlg holds every key of each algorithm, for tokens without a "kid".
	byAlg map[string][]jwt.VerificationKey
	// pemKey is the PEM file's key, or nil; it has no kid, so it also checks tokens whose kid is not
	// in the key set.
	pemKey verificationKey
}

type verificationKey struct {
	alg string
	key crypto.PublicKey // *rsa.PublicKey or *ecdsa.PublicKey
}

// lookup returns the key or keys to verify a token of algorithm alg with "kid" header kid.
func (s *keySet) lookup(alg, kid string) (any, error) {
	if kid != "" {
		if k, ok := s.byKID[kid]; ok {
			if k.alg != alg {
				return nil, fmt.Errorf("key %q is for %s, the token is %s", kid, k.alg, alg)
			}
			return k.key, nil
		}
		if s.pemKey.alg == alg {
			return s.pemKey.key, nil
		}
		return nil, fmt.Errorf("unknown key id %q", kid)
	}
	switch keys := s.byAlg[alg]; len(keys) {
	case 0:
		return nil, fmt.Errorf("no %s key", alg)
	case 1:
		return keys[0], nil
	default:
		return jwt.VerificationKeySet{Keys: keys}, nil
	}
}

// add puts k in byAlg and, when kid is not empty, in byKID.
func (s *keySet) add(kid string, k verificationKey) {
	if s.byAlg == nil {
		s.byAlg = make(map[string][]jwt.VerificationKey)
	}
	s.byAlg[k.alg] = append(s.byAlg[k.alg], k.key)
	if kid != "" {
		if s.byKID == nil {
			s.byKID = make(map[string]verificationKey)
		}
		s.byKID[kid] = k
	}
}

// parsePublicKeyPEM reads the first PEM block of data: a PKIX or PKCS #1 public key or a
// certificate.
func parsePublicKeyPEM(data []byte) (verificationKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return verificationKey{}, errors.New("no PEM block found")
	}
	var pub any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = cert.PublicKey
		}
	default:
		if strings.Contains(block.Type, "PRIVATE KEY") {
			return verificationKey{}, fmt.Errorf("PEM block %q holds a private key; give the public key only", block.Type)
		}
		return verificationKey{}, fmt.Errorf("PEM block %q: want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE", block.Type)
	}
	if err != nil {
		return verificationKey{}, fmt.Errorf("PEM block %q: %w", block.Type, err)
	}
	return acceptPublicKey(pub)
}

// acceptPublicKey returns the algorithm pub verifies, refusing weak RSA keys and curves other than
// P-256.
func acceptPublicKey(pub any) (verificationKey, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < minRSABits {
			return verificationKey{}, fmt.Errorf("RSA key is %d bits; at least %d are required", n, minRSABits)
		}
		return verificationKey{alg: algRS256, key: k}, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return verificationKey{}, fmt.Errorf("EC key on curve %s; only P-256 (ES256) is accepted", k.Curve.Params().Name)
		}
		return verificationKey{alg: algES256, key: k}, nil
	}
	return verificationKey{}, fmt.Errorf("%T keys are not accepted; want RSA (RS256) or EC P-256 (ES256)", pub)
}

// jsonWebKey is the part of an RFC 7517 key this package reads.
type jsonWebKey struct {
	Kty    string   `json:"kty"`
	Kid    string   `json:"kid"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
	Alg    string   `json:"alg"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	Crv    string   `json:"crv"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
	D      string   `json:"d"` // private: refused
}

// errUnsupportedKey marks a well-formed key this package does not use (another algorithm, curve,
// use or type); it is skipped, not fatal.
var errUnsupportedKey = errors.New("unsupported key")

// parseJWKS parses a JSON Web Key Set. pem, the PEM file's key (zero when there is none), joins
// every version of the set so that lookups need one place. Unsupported keys are logged and
// skipped; malformed keys, private keys and duplicate kids are errors, and so is a set with no
// usable key.
func parseJWKS(data []byte, pemKey verificationKey, logger *slog.Logger) (*keySet, error) {
	var doc struct {
		Keys []jsonWebKey `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("not a JSON Web Key Set: %w", err)
	}
	set := &keySet{pemKey: pemKey}
	usable := 0
	for i, jk := range doc.Keys {
		k, err := jk.verificationKey()
		if errors.Is(err, errUnsupportedKey) {
			logger.Warn("auth: JWKS key skipped", "index", i, "kid", jk.Kid, "reason", err)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("key %d (kid %q): %w", i, jk.Kid, err)
		}
		if _, dup := set.byKID[jk.Kid]; dup && jk.Kid != "" {
			return nil, fmt.Errorf("key %d: kid %q appears twice", i, jk.Kid)
		}
		set.add(jk.Kid, k)
		usable++
	}
	if usable == 0 {
		return nil, errors.New("no usable key: want RSA (RS256) or EC P-256 (ES256) signature keys")
	}
	if pemKey.key != nil {
		set.byAlg[pemKey.alg] = append(set.byAlg[pemKey.alg], pemKey.key)
	}
	return set, nil
}

func (jk *jsonWebKey) verificationKey() (verificationKey, error) {
	if jk.D != "" {
		return verificationKey{}, errors.New("holds a private key; publish the public key only")
	}
	if jk.Use != "" && jk.Use != "sig" {
		return verificationKey{}, fmt.Errorf("%w: use %q", errUnsupportedKey, jk.Use)
	}
	if len(jk.KeyOps) > 0 && !slices.Contains(jk.KeyOps, "verify") {
		return verificationKey{}, fmt.Errorf("%w: key_ops without \"verify\"", errUnsupportedKey)
	}
	switch jk.Kty {
	case "RSA":
		if jk.Alg != "" && jk.Alg != algRS256 {
			return verificationKey{}, fmt.Errorf("%w: alg %q", errUnsupportedKey, jk.Alg)
		}
		n, err := decodeKeyInt("n", jk.N)
		if err != nil {
			return verificationKey{}, err
		}
		e, err := decodeKeyInt("e", jk.E)
		if err != nil {
			return verificationKey{}, err
		}
		if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
			return verificationKey{}, errors.New("RSA exponent e is out of range")
		}
		return acceptPublicKey(&rsa.PublicKey{N: n, E: int(e.Int64())})
	case "EC":
		if jk.Crv != "P-256" {
			return verificationKey{}, fmt.Errorf("%w: curve %q", errUnsupportedKey, jk.Crv)
		}
		if jk.Alg != "" && jk.Alg != algES256 {
			return verificationKey{}, fmt.Errorf("%w: alg %q", errUnsupportedKey, jk.Alg)
		}
		x, errX := base64.RawURLEncoding.DecodeString(jk.X)
		y, errY := base64.RawURLEncoding.DecodeString(jk.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return verificationKey{}, errors.New("EC key: x and y must be 32-byte base64url values")
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return verificationKey{}, fmt.Errorf("EC key: %w", err)
		}
		return acceptPublicKey(pub)
	case "":
		return verificationKey{}, errors.New("no kty")
	}
	return verificationKey{}, fmt.Errorf("%w: kty %q", errUnsupportedKey, jk.Kty)
}

// decodeKeyInt decodes a base64url big-endian unsigned integer member of a key.
func decodeKeyInt(member, s string) (*big.Int, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("RSA key: %s must be a non-empty base64url value", member)
	}
	return new(big.Int).SetBytes(b), nil
}
