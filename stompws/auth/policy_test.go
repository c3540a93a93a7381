package auth

import (
	"errors"
	"strings"
	"testing"
)

func TestNewPolicyRefuses(t *testing.T) {
	cases := []struct {
		name string
		rule Rule
		want string
	}{
		{"nobody", Rule{Publish: []string{"/topic/a"}}, "names no users and no roles"},
		{"nothing", Rule{Users: []string{"*"}}, "grants neither"},
		{"empty user", Rule{Users: []string{""}, Publish: []string{"/topic/a"}}, "users: empty name"},
		{"user with space", Rule{Users: []string{"a b"}, Publish: []string{"/topic/a"}}, "users:"},
		{"star role", Rule{Roles: []string{"*"}, Publish: []string{"/topic/a"}}, `"*" is not a role`},
		{"empty role", Rule{Roles: []string{""}, Publish: []string{"/topic/a"}}, "roles: empty name"},
		{"empty pattern", Rule{Users: []string{"*"}, Subscribe: []string{""}}, "subscribe: empty name"},
		{"pattern with space", Rule{Users: []string{"*"}, Publish: []string{"/topic/a b"}}, "publish:"},
		{"pattern with control", Rule{Users: []string{"*"}, Publish: []string{"/topic/a\n"}}, "publish:"},
		{"kind without name", Rule{Users: []string{"*"}, Publish: []string{"/topic/"}}, "want /kind/name"},
		{"slash without kind", Rule{Users: []string{"*"}, Subscribe: []string{"/stocks"}}, "want /kind/name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewPolicy([]Rule{DefaultRules()[0], c.rule})
			if !errors.Is(err, ErrInvalidRule) || !strings.Contains(err.Error(), "rule 1") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want ErrInvalidRule for rule 1 with %q", err, c.want)
			}
		})
	}
	if _, err := NewPolicy(nil); err != nil {
		t.Errorf("no rules: %v", err)
	}
}

func TestPolicy(t *testing.T) {
	defaults, err := NewPolicy(DefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	custom, err := NewPolicy([]Rule{
		{Users: []string{"*"}, Subscribe: []string{"/topic/public.#"}},
		{Users: []string{"feed"}, Publish: []string{"/topic/prices.*"}},
		{Roles: []string{"admin"}, Publish: []string{"#"}, Subscribe: []string{"#"}},
		{Users: []string{"carol"}, Roles: []string{"ops"}, Subscribe: []string{"/queue/jobs", "/topic/alerts.*.critical"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	alice := Principal{User: "alice", Method: MethodPasscode}
	feed := Principal{User: "feed", Method: MethodJWT}
	admin := Principal{User: "root", Roles: []string{"staff", "admin"}}
	ops := Principal{User: "dan", Roles: []string{"ops"}}
	carol := Principal{User: "carol"}
	anonymous := Principal{}

	cases := []struct {
		name      string
		policy    *Policy
		p         Principal
		dest      string
		publish   bool
		subscribe bool
	}{
		{"default: send to chat app", defaults, alice, "/app/chat", true, false},
		{"default: subscribe to stocks", defaults, alice, "/topic/stocks", false, true},
		{"default: subscribe to one stock", defaults, alice, "/topic/stocks.ACME", false, true},
		{"default: subscribe to all stocks", defaults, alice, "/topic/stocks.*", false, true},
		{"default: not deeper than one word", defaults, alice, "/topic/stocks.ACME.bid", false, false},
		{"default: not stocks.# (matches deeper names)", defaults, alice, "/topic/stocks.#", false, false},
		{"default: subscribe to chat", defaults, alice, "/topic/chat", false, true},
		{"default: chat is server-published", defaults, alice, "/topic/chat", false, true},
		{"default: stocks are server-published", defaults, alice, "/topic/stocks.ACME", false, true},
		{"default: not other app destinations", defaults, alice, "/app/chat2", false, false},
		{"default: not a prefix lookalike", defaults, alice, "/topic/stocksX", false, false},
		{"default: not the chat app as a topic", defaults, alice, "/topic/app.chat", false, false},
		{"default: not queues", defaults, alice, "/queue/chat", false, false},
		{"default: not everything", defaults, alice, "/topic/#", false, false},
		{"default: anonymous denied", defaults, anonymous, "/topic/chat", false, false},
		{"nil policy denies", nil, alice, "/topic/chat", false, false},
		{"any user, #", custom, alice, "/topic/public.a.b", false, true},
		{"any user, # matches zero words", custom, alice, "/topic/public", false, true},
		{"any user, subscribe to the # itself", custom, alice, "/topic/public.#", false, true},
		{"any user, not another tree", custom, alice, "/topic/prices.x", false, false},
		{"named user publishes", custom, feed, "/topic/prices.ACME", true, false},
		{"named user, one word only", custom, feed, "/topic/prices.ACME.x", false, false},
		{"named user, a wildcard within the grant", custom, feed, "/topic/prices.*", true, false},
		{"named user, a wildcard beyond the grant", custom, feed, "/topic/prices.#", false, false},
		{"other user cannot publish", custom, alice, "/topic/prices.ACME", false, false},
		{"role grants everything", custom, admin, "/queue/anything", true, true},
		{"role grants every wildcard", custom, admin, "/topic/#", true, true},
		{"role without rule", custom, Principal{User: "x", Roles: []string{"staff"}}, "/queue/jobs", false, false},
		{"user in a mixed rule", custom, carol, "/queue/jobs", false, true},
		{"role in a mixed rule", custom, ops, "/queue/jobs", false, true},
		{"star in the middle", custom, ops, "/topic/alerts.db.critical", false, true},
		{"star in the middle, subscribed with *", custom, ops, "/topic/alerts.*.critical", false, true},
		{"star in the middle, not #", custom, ops, "/topic/alerts.#.critical", false, false},
		{"queue names are exact", custom, ops, "/queue/jobs.x", false, false},
		{"a user named like a role is not the role", custom, Principal{User: "admin"}, "/queue/x", false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.policy.CanPublish(c.p, c.dest); got != c.publish {
				t.Errorf("CanPublish(%+v, %q) = %v, want %v", c.p, c.dest, got, c.publish)
			}
			if got := c.policy.CanSubscribe(c.p, c.dest); got != c.subscribe {
				t.Errorf("CanSubscribe(%+v, %q) = %v, want %v", c.p, c.dest, got, c.subscribe)
			}
		})
	}
}

func TestPolicyCopiesRules(t *testing.T) {
	rules := DefaultRules()
	p, err := NewPolicy(rules)
	if err != nil {
		t.Fatal(err)
	}
	rules[0].Publish[0] = "#"
	rules[0].Users[0] = "nobody"
	if p.CanPublish(Principal{User: "alice"}, "/topic/chat") || !p.CanPublish(Principal{User: "alice"}, "/app/chat") {
		t.Error("changing the rules after NewPolicy changed the policy")
	}
}
