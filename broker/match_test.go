package broker

import "testing"

func TestMatchTopic(t *testing.T) {
	tests := []struct {
		pattern, dest string
		want          bool
	}{
		// exact
		{"/topic/a", "/topic/a", true},
		{"/topic/a.b", "/topic/a.b", true},
		{"/topic/a.b", "/topic/a.c", false},
		{"/topic/a", "/topic/ab", false},
		{"/topic/a.b", "/topic/a", false},
		{"/topic/a", "/topic/a.b", false},
		// * is exactly one word
		{"/topic/stocks.*", "/topic/stocks.eur", true},
		{"/topic/stocks.*", "/topic/stocks", false},
		{"/topic/stocks.*", "/topic/stocks.eur.usd", false},
		{"/topic/stocks.*", "/topic/stocks.", false},
		{"/topic/*", "/topic/a", true},
		{"/topic/*", "/topic/a.b", false},
		{"/topic/*", "/topic/", false},
		{"/topic/*.eur", "/topic/stocks.eur", true},
		{"/topic/*.eur", "/topic/eur", false},
		{"/topic/*.eur", "/topic/.eur", false},
		{"/topic/a.*.c", "/topic/a.b.c", true},
		{"/topic/a.*.c", "/topic/a.c", false},
		{"/topic/a.*.c", "/topic/a.b.b.c", false},
		{"/topic/*.*", "/topic/a.b", true},
		{"/topic/*.*", "/topic/a", false},
		// # is zero or more words
		{"/topic/#", "/topic/a", true},
		{"/topic/#", "/topic/a.b.c", true},
		{"/topic/stocks.#", "/topic/stocks", true},
		{"/topic/stocks.#", "/topic/stocks.eur", true},
		{"/topic/stocks.#", "/topic/stocks.eur.usd", true},
		{"/topic/stocks.#", "/topic/stock", false},
		{"/topic/stocks.#", "/topic/stocksx.eur", false},
		{"/topic/a.#", "/topic/a", true},
		{"/topic/#.b", "/topic/b", true},
		{"/topic/#.b", "/topic/a.b", true},
		{"/topic/#.b", "/topic/a.x.b", true},
		{"/topic/#.b", "/topic/a.b.c", false},
		{"/topic/a.#.b", "/topic/a.b", true},
		{"/topic/a.#.b", "/topic/a.x.y.b", true},
		{"/topic/a.#.b", "/topic/a.x.y", false},
		{"/topic/a.#.b", "/topic/b", false},
		{"/topic/#.#", "/topic/a", true},
		{"/topic/#.*.#", "/topic/a.b", true},
		{"/topic/#.*", "/topic/a", true},
		{"/topic/#.*", "/topic/", false},
		{"/topic/a.#.c.#.e", "/topic/a.c.x.c.e", true},
		{"/topic/a.#.c.#.e", "/topic/a.b.c.d.e.f", false},
		{"/topic/#.a.#.a", "/topic/a.a.b.a", true},
		{"/topic/#.a.#.a", "/topic/a.b.b", false},
		// wildcards are whole words only
		{"/topic/a*", "/topic/ab", false},
		{"/topic/a*", "/topic/a*", true},
		{"/topic/a#", "/topic/a.b", false},
		{"/topic/a.b#", "/topic/a.b", false},
		// the kind prefix is literal
		{"/topic/#", "/queue/a", false},
		{"/queue/orders.*", "/queue/orders.eu", true},
		{"/queue/orders.*", "/topic/orders.eu", false},
		{"/topic/a/b.*", "/topic/a/b.c", true},
		{"/topic/a/*", "/topic/a/b", false},
		// a pattern without a prefix sees whole destinations
		{"#", "/topic/a.b", true},
		{"#", "/queue/x", true},
		{"*", "/queue/x", true},
		{"*", "/queue/x.y", false},
		{"#.eur", "/topic/stocks.eur", true},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+" "+tt.dest, func(t *testing.T) {
			if got := MatchTopic(tt.pattern, tt.dest); got != tt.want {
				t.Fatalf("MatchTopic(%q, %q) = %v, want %v", tt.pattern, tt.dest, got, tt.want)
			}
		})
	}
}

func TestMatchTopicAllocs(t *testing.T) {
	n := testing.AllocsPerRun(100, func() {
		MatchTopic("/topic/#.stocks.*.#", "/topic/x.y.stocks.eur.usd.z")
	})
	if n != 0 {
		t.Fatalf("MatchTopic allocates %v times", n)
	}
}

// TestMatchTopicAgreesWithTrie checks that subscribing with a pattern and
// matching with MatchTopic select the same destinations.
func TestMatchTopicAgreesWithTrie(t *testing.T) {
	patterns := []string{
		"/topic/#", "/topic/*", "/topic/a.#", "/topic/#.a", "/topic/*.a", "/topic/a.*",
		"/topic/#.*.#", "/topic/a.#.#", "/topic/#.a.#", "/topic/*.#.*", "/topic/a.#.b.#",
		"/topic/#.#.a", "/topic/b.*.#",
	}
	words := []string{"a", "b"}
	var dests []string
	var gen func(prefix string, depth int)
	gen = func(prefix string, depth int) {
		if depth == 0 {
			return
		}
		for _, w := range words {
			d := prefix + "." + w
			if prefix == "" {
				d = w
			}
			dests = append(dests, "/topic/"+d)
			gen(d, depth-1)
		}
	}
	gen("", 4)
	for _, p := range patterns {
		t.Run(p, func(t *testing.T) {
			b := New(Options{})
			r := &recorder{}
			sub := subscribe(t, b, p, r, SubscribeOptions{})
			want := 0
			for _, d := range dests {
				if MatchTopic(p, d) {
					want++
				}
				before := len(r.deliveries())
				publish(t, b, d, d)
				got := len(r.deliveries()) - before
				if exp := map[bool]int{true: 1, false: 0}[MatchTopic(p, d)]; got != exp {
					t.Fatalf("%s: %d deliveries, want %d", d, got, exp)
				}
			}
			if want == 0 {
				t.Fatal("pattern matched nothing; the test proves little")
			}
			b.Unsubscribe(sub)
		})
	}
}
