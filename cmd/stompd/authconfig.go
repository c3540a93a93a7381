package main

import (
	"bytes"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/stompd/stompd/stompws"
	"github.com/stompd/stompd/stompws/auth"
)

// authSettings are the authentication flags. Authentication is off unless -users or a JWT key is set.
type authSettings struct {
	UsersFile     string
	JWTSecret     string
	JWTPublicKey  string
	JWTJWKS       string
	JWTAudience   string
	JWTIssuer     string
	JWTUserClaim  string
	JWTRolesClaim string
	JWTLeeway     time.Duration
	Handshake     handshakeMode
	FailureDelay  time.Duration
}

func (a *authSettings) register(fs *flag.FlagSet) {
	fs.StringVar(&a.UsersFile, "users", "", "htpasswd `file` of users with bcrypt hashes (htpasswd -B), one name:hash[:role,role] per line, reloaded when it changes; turns authentication on")
	fs.StringVar(&a.JWTSecret, "jwt-secret", "", "HS256 shared `secret` (32 bytes at least) for JSON Web Tokens; turns authentication on. Prefer STOMPD_JWT_SECRET to a flag other users can read")
	fs.StringVar(&a.JWTPublicKey, "jwt-public-key", "", "PEM `file` with the RSA (RS256) or EC P-256 (ES256) public key that signs JSON Web Tokens; turns authentication on")
	fs.StringVar(&a.JWTJWKS, "jwt-jwks", "", "JSON Web Key Set `file` with the token signing keys, chosen by kid, reloaded when it changes; turns authentication on")
	fs.StringVar(&a.JWTAudience, "jwt-audience", "", "require this `aud` in every token")
	fs.StringVar(&a.JWTIssuer, "jwt-issuer", "", "require this `iss` in every token")
	fs.StringVar(&a.JWTUserClaim, "jwt-user-claim", "sub", "token `claim` holding the user name (a dotted path reaches into objects)")
	fs.StringVar(&a.JWTRolesClaim, "jwt-roles-claim", "roles", "token `claim` holding the user's roles, an array or a space- or comma-separated string")
	fs.DurationVar(&a.JWTLeeway, "jwt-leeway", 0, "clock skew allowed when checking a token's exp and nbf")
	fs.Var(&a.Handshake, "auth-handshake", "WebSocket upgrades: `optional` checks credentials given at the upgrade (Authorization header or access_token query) and lets others authenticate in CONNECT; required answers 401 to an upgrade without good credentials")
	fs.DurationVar(&a.FailureDelay, "auth-failure-delay", stompws.DefaultAuthFailureDelay, "wait this long before answering a CONNECT with refused credentials, to slow down guessing; 0 answers at once")
}

// on reports whether any credential source is configured.
func (a *authSettings) on() bool {
	return a.UsersFile != "" || a.JWTSecret != "" || a.JWTPublicKey != "" || a.JWTJWKS != ""
}

// authenticator loads the users file and keys. With nothing configured it returns nil: no
// authentication.
func (a *authSettings) authenticator(logger *slog.Logger) (*auth.Authenticator, error) {
	if !a.on() {
		return nil, nil
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg := auth.Config{UsersFile: a.UsersFile, Logger: logger}
	if a.JWTSecret != "" || a.JWTPublicKey != "" || a.JWTJWKS != "" {
		// The claim flags have defaults; they mean something only with a key to check tokens.
		cfg.JWT = auth.JWTConfig{
			Secret:        []byte(a.JWTSecret),
			PublicKeyFile: a.JWTPublicKey,
			JWKSFile:      a.JWTJWKS,
			Audience:      a.JWTAudience,
			Issuer:        a.JWTIssuer,
			UserClaim:     a.JWTUserClaim,
			RolesClaim:    a.JWTRolesClaim,
			Leeway:        a.JWTLeeway,
		}
	}
	return auth.New(cfg)
}

// policy builds the authorization policy from the config file's rules, or the default rules when the
// file gives none.
func policyFor(rules []auth.Rule) (*auth.Policy, error) {
	if len(rules) == 0 {
		rules = auth.DefaultRules()
	}
	return auth.NewPolicy(rules)
}

// handshakeMode is the -auth-handshake flag.
type handshakeMode stompws.HandshakeAuth

func (h *handshakeMode) String() string {
	if stompws.HandshakeAuth(*h) == stompws.HandshakeAuthRequired {
		return "required"
	}
	return "optional"
}

func (h *handshakeMode) Set(s string) error {
	switch s {
	case "optional":
		*h = handshakeMode(stompws.HandshakeAuthOptional)
	case "required":
		*h = handshakeMode(stompws.HandshakeAuthRequired)
	default:
		return fmt.Errorf("want optional or required")
	}
	return nil
}

// Keys of one entry under "rules", each a field of auth.Rule.
var ruleKeys = []string{"users", "roles", "publish", "subscribe"}

// parseRules reads the list under "rules". Each value is a list of strings or a single string.
func parseRules(path string, list *yaml.Node) ([]auth.Rule, error) {
	line := list.Line
	list = resolveAlias(list)
	if isNull(list) {
		return nil, nil
	}
	if list.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("%s:%d: %s: want a list of rules, each such as {users: [\"*\"], subscribe: [/topic/chat]}", path, line, rulesKey)
	}
	var rules []auth.Rule
	for _, item := range list.Content {
		r, err := parseRule(path, item)
		if err != nil {
			return nil, err
		}
		if _, err := auth.NewPolicy([]auth.Rule{r}); err != nil {
			return nil, fmt.Errorf("%s:%d: rule: %v", path, item.Line, strings.TrimPrefix(err.Error(), auth.ErrInvalidRule.Error()+" 0: "))
		}
		rules = append(rules, r)
	}
	return rules, nil
}

func parseRule(path string, item *yaml.Node) (auth.Rule, error) {
	var r auth.Rule
	line := item.Line
	item = resolveAlias(item)
	if item.Kind != yaml.MappingNode {
		return r, fmt.Errorf("%s:%d: %s: each rule is a mapping such as {roles: [ops], publish: [\"/topic/#\"]}", path, line, rulesKey)
	}
	seen := make(map[string]int)
	for i := 0; i+1 < len(item.Content); i += 2 {
		keyNode, valueNode := item.Content[i], item.Content[i+1]
		key, err := mappingKey(path, keyNode, seen)
		if err != nil {
			return r, err
		}
		var field *[]string
		switch key {
		case "users":
			field = &r.Users
		case "roles":
			field = &r.Roles
		case "publish":
			field = &r.Publish
		case "subscribe":
			field = &r.Subscribe
		default:
			return r, unknownKeyError(path, keyNode.Line, "rule key", key, ruleKeys)
		}
		if *field, err = stringList(path, "rule "+key, valueNode); err != nil {
			return r, err
		}
	}
	return r, nil
}

// stringList reads a list of scalars, or one scalar as a list of one.
func stringList(path, key string, n *yaml.Node) ([]string, error) {
	line := n.Line
	n = resolveAlias(n)
	if n.Kind != yaml.SequenceNode {
		s, err := scalarText(path, key, n)
		if err != nil {
			return nil, err
		}
		return []string{s}, nil
	}
	out := make([]string, 0, len(n.Content))
	for _, item := range n.Content {
		s, err := scalarText(path, key, item)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s:%d: %s: an empty list grants nothing; leave the key out", path, line, key)
	}
	return out, nil
}

// writeRules prints the authorization rules in force as config-file YAML: the file's, or the default
// rules when it gave none.
func writeRules(b *bytes.Buffer, rules []auth.Rule) {
	if len(rules) == 0 {
		b.WriteString(rulesKey + ": # none given: the default rules, in force when authentication is on\n")
		rules = auth.DefaultRules()
	} else {
		b.WriteString(rulesKey + ": # in force when authentication is on; any matching rule grants\n")
	}
	list := func(key string, values []string) {
		if len(values) == 0 {
			return
		}
		quoted := make([]string, len(values))
		for i, v := range values {
			quoted[i] = yamlString(v)
		}
		fmt.Fprintf(b, "    %s: [%s]\n", key, strings.Join(quoted, ", "))
	}
	for _, r := range rules {
		b.WriteString("  -\n")
		list("users", r.Users)
		list("roles", r.Roles)
		list("publish", r.Publish)
		list("subscribe", r.Subscribe)
	}
}
