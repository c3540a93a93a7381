package broker

import (
	"strings"
	"testing"
)

func TestCoversTopic(t *testing.T) {
	cases := []struct {
		pattern, dest string
		want          bool
	}{
		{"/topic/a", "/topic/a", true},
		{"/topic/a", "/topic/b", false},
		{"/topic/a", "/queue/a", false},
		{"/topic/a.*", "/topic/a.b", true},
		{"/topic/a.*", "/topic/a.*", true},
		{"/topic/a.*", "/topic/a", false},
		{"/topic/a.*", "/topic/a.#", false},
		{"/topic/a.#", "/topic/a.#", true},
		{"/topic/a.#", "/topic/a.*", true},
		{"/topic/a.#", "/topic/a.*.#", true},
		{"/topic/a.#", "/topic/a", true},
		{"/topic/a.#", "/topic/#", false},
		{"/topic/#", "/topic/#", true},
		{"/topic/#.b", "/topic/x.*.b", true},
		{"/topic/#.b", "/topic/x.#", false},
		{"/topic/*.*", "/topic/*.x", true},
		{"/topic/*.*", "/topic/#", false},
		{"/topic/x", "/topic/*", false},
		{"#", "/topic/a.#", true},
		{"#", "/anything/at/all", true},
		{"/app/chat", "/app/chat", true},
		{"#.*", "*.#", false}, // equal languages, but the words do not line up: refused
	}
	for _, c := range cases {
		if got := CoversTopic(c.pattern, c.dest); got != c.want {
			t.Errorf("CoversTopic(%q, %q) = %v, want %v", c.pattern, c.dest, got, c.want)
		}
	}
}

// TestCoversTopicExhaustive checks every short pattern against every short subscription and
// destination: coverage agrees with MatchTopic on plain destinations, and a covered
// subscription never matches a destination the pattern does not.
func TestCoversTopicExhaustive(t *testing.T) {
	words := func(alphabet []string, maxLen int) []string {
		var out, level []string
		level = []string{""}
		for range maxLen {
			var next []string
			for _, prefix := range level {
				for _, w := range alphabet {
					if prefix == "" {
						next = append(next, w)
					} else {
						next = append(next, prefix+"."+w)
					}
				}
			}
			out = append(out, next...)
			level = next
		}
		return out
	}
	withKinds := func(names []string) []string {
		var out []string
		for _, n := range names {
			out = append(out, n, "/topic/"+n)
		}
		return out
	}
	patterns := withKinds(words([]string{"a", "*", "#"}, 4))
	dests := withKinds(words([]string{"a", "b"}, 4))
	covered := 0
	for _, p := range patterns {
		for _, d := range dests {
			if got, want := CoversTopic(p, d), MatchTopic(p, d); got != want {
				t.Fatalf("CoversTopic(%q, %q) = %v, MatchTopic = %v", p, d, got, want)
			}
		}
		for _, sub := range patterns {
			if !CoversTopic(p, sub) {
				continue
			}
			covered++
			for _, d := range dests {
				if MatchTopic(sub, d) && !MatchTopic(p, d) {
					t.Fatalf("%q covers %q, which matches %q, but %q does not match it", p, sub, d, p)
				}
			}
		}
	}
	if covered < len(patterns) {
		t.Fatalf("only %d covered pairs among %d patterns: every pattern covers itself", covered, len(patterns))
	}
}

// For destinations without wildcard words, coverage is exactly MatchTopic.
func FuzzCoversTopicMatchesMatchTopic(f *testing.F) {
	for _, s := range [][2]string{
		{"/topic/a.#", "/topic/a.b.c"}, {"/topic/*.b", "/topic/a.b"}, {"#", "/queue/x"},
		{"/topic/#.#.a", "/topic/a.a"}, {"/topic/a..b", "/topic/a..b"}, {"/topic/", "/topic/"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, dest string) {
		_, name := splitKindPrefix(dest)
		for _, w := range strings.Split(name, ".") {
			if w == "*" || w == "#" {
				return
			}
		}
		if got, want := CoversTopic(pattern, dest), MatchTopic(pattern, dest); got != want {
			t.Fatalf("CoversTopic(%q, %q) = %v, MatchTopic = %v", pattern, dest, got, want)
		}
	})
}

// A pattern that covers a subscription matches every destination the subscription matches.
func FuzzCoversTopicIsSound(f *testing.F) {
	for _, s := range [][3]string{
		{"/topic/a.#", "/topic/a.*.b", "/topic/a.x.b"}, {"/topic/*.b", "/topic/*.b", "/topic/a.b"},
		{"#.b", "/topic/#.b", "/topic/b"}, {"/topic/#.x.#", "/topic/*.x.#", "/topic/a.x"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, pattern, sub, dest string) {
		_, name := splitKindPrefix(dest)
		for _, w := range strings.Split(name, ".") {
			if w == "*" || w == "#" {
				return
			}
		}
		if CoversTopic(pattern, sub) && MatchTopic(sub, dest) && !MatchTopic(pattern, dest) {
			t.Fatalf("%q covers %q, which matches %q, but %q does not match it", pattern, sub, dest, pattern)
		}
	})
}
