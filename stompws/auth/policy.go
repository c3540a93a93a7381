package auth

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/stompd/stompd/broker"
)

// Rule grants the users and roles it names the right to publish (SEND) and to subscribe on
// destination patterns. Patterns use the topic wildcards of broker.MatchTopic: '*' is exactly one
// '.'-separated word, '#' zero or more, and a pattern starting with a kind prefix ("/topic/",
// "/queue/", "/app/") matches only destinations of that kind. A pattern without a prefix is matched
// against the whole destination, so "#" alone grants every destination.
type Rule struct {
	// Users are user names; "*" is any authenticated user.
	Users []string `yaml:"users"`
	// Roles are role names, from the users file or the token's roles claim.
	Roles []string `yaml:"roles"`
	// Publish are the destination patterns the rule grants SEND on.
	Publish []string `yaml:"publish"`
	// Subscribe are the destination patterns the rule grants SUBSCRIBE on.
	Subscribe []string `yaml:"subscribe"`
}

// anyUser in Rule.Users stands for every authenticated user.
const anyUser = "*"

// DefaultRules are the rules in force when authentication is on and the configuration names none:
// any user may SEND to the chat application and subscribe to the stock prices and the chat room.
// Only the server publishes to /topic/stocks* and /topic/chat. The caller owns the slice.
func DefaultRules() []Rule {
	return []Rule{{
		Users:     []string{anyUser},
		Publish:   []string{"/app/chat"},
		Subscribe: []string{"/topic/stocks", "/topic/stocks.*", "/topic/chat"},
	}}
}

// Policy answers whether a principal may publish to or subscribe on a destination. It is immutable;
// safe for concurrent use. A nil Policy denies everything.
type Policy struct {
	rules []Rule
}

// NewPolicy checks rules and copies them into a Policy. Every rule must name at least one user or
// role and grant at least one pattern; names, roles and patterns must be non-empty and free of
// spaces and control characters, and a pattern starting with '/' must have the form /kind/name.
// Errors wrap ErrInvalidRule and give the rule's index. No rules at all is valid and denies
// everything.
func NewPolicy(rules []Rule) (*Policy, error) {
	p := &Policy{rules: make([]Rule, len(rules))}
	for i, r := range rules {
		if err := checkRule(&r); err != nil {
			return nil, fmt.Errorf("%w %d: %w", ErrInvalidRule, i, err)
		}
		p.rules[i] = Rule{
			Users:     clone(r.Users),
			Roles:     clone(r.Roles),
			Publish:   clone(r.Publish),
			Subscribe: clone(r.Subscribe),
		}
	}
	return p, nil
}

func clone(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return append([]string(nil), s...)
}

func checkRule(r *Rule) error {
	if len(r.Users) == 0 && len(r.Roles) == 0 {
		return errors.New("names no users and no roles")
	}
	if len(r.Publish) == 0 && len(r.Subscribe) == 0 {
		return errors.New("grants neither publish nor subscribe")
	}
	for _, u := range r.Users {
		if err := checkRuleWord(u); err != nil {
			return fmt.Errorf("users: %w", err)
		}
	}
	for _, role := range r.Roles {
		if role == anyUser {
			return errors.New(`roles: "*" is not a role; write users: ["*"] for any user`)
		}
		if err := checkRuleWord(role); err != nil {
			return fmt.Errorf("roles: %w", err)
		}
	}
	for _, pat := range r.Publish {
		if err := checkPattern(pat); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
	}
	for _, pat := range r.Subscribe {
		if err := checkPattern(pat); err != nil {
			return fmt.Errorf("subscribe: %w", err)
		}
	}
	return nil
}

func checkRuleWord(s string) error {
	if s == "" {
		return errors.New("empty name")
	}
	if !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return fmt.Errorf("%q has spaces, control characters or invalid UTF-8", s)
	}
	return nil
}

func checkPattern(pat string) error {
	if err := checkRuleWord(pat); err != nil {
		return err
	}
	// "/kind/name": a second '/' with a name after it, as broker.MatchTopic reads a kind prefix.
	if i := strings.IndexByte(pat[1:], '/'); pat[0] == '/' && (i < 0 || i+2 == len(pat)) {
		return fmt.Errorf("pattern %q: want /kind/name, such as /topic/prices.#", pat)
	}
	return nil
}

// CanPublish reports whether some rule that names pr (by user name, "*" or one of its roles)
// grants publishing to dest. A principal with no User matches no rule. It does not allocate.
func (p *Policy) CanPublish(pr Principal, dest string) bool {
	return p.allows(pr, dest, false)
}

// CanSubscribe is CanPublish for subscriptions. dest may itself be a wildcard subscription such as
// /topic/stocks.#; it is granted only when one granted pattern covers every destination it can
// match, so "/topic/stocks.*" does not grant "/topic/stocks.#" but "/topic/#" does.
func (p *Policy) CanSubscribe(pr Principal, dest string) bool {
	return p.allows(pr, dest, true)
}

func (p *Policy) allows(pr Principal, dest string, subscribe bool) bool {
	if p == nil || pr.User == "" {
		return false
	}
	for i := range p.rules {
		r := &p.rules[i]
		patterns := r.Publish
		if subscribe {
			patterns = r.Subscribe
		}
		if len(patterns) == 0 || !r.names(pr) {
			continue
		}
		for _, pat := range patterns {
			if broker.CoversTopic(pat, dest) {
				return true
			}
		}
	}
	return false
}

// names reports whether r applies to pr.
func (r *Rule) names(pr Principal) bool {
	for _, u := range r.Users {
		if u == anyUser || u == pr.User {
			return true
		}
	}
	for _, role := range r.Roles {
		if pr.HasRole(role) {
			return true
		}
	}
	return false
}
