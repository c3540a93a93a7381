package broker

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// origins renders deliveries as "body:origin" with origin "r" (retained),
// "h" (history) or "l" (live).
func origins(r *recorder) []string {
	var out []string
	for _, d := range r.deliveries() {
		o := "l"
		switch {
		case d.Retained && d.History:
			o = "both"
		case d.Retained:
			o = "r"
		case d.History:
			o = "h"
		}
		out = append(out, string(d.Message.Body)+":"+o)
	}
	return out
}

func TestRetained(t *testing.T) {
	tests := []struct {
		name      string
		policy    DestinationPolicy
		publish   []string // "dest=body", dest under /topic/
		subscribe string
		live      string // published after subscribing, as "dest=body"
		want      []string
	}{
		{
			name:    "last value, exact",
			policy:  DestinationPolicy{Pattern: "/topic/stocks.#", LastValue: true},
			publish: []string{"stocks.eur=1", "stocks.eur=2", "stocks.usd=7"}, subscribe: "/topic/stocks.eur",
			live: "stocks.eur=3", want: []string{"2:r", "3:l"},
		},
		{
			name:    "last value, pattern gets every matching destination",
			policy:  DestinationPolicy{Pattern: "/topic/stocks.#", LastValue: true},
			publish: []string{"stocks.usd=1", "stocks.eur=2", "stocks.usd=4", "stocks.eur.x=9"}, subscribe: "/topic/stocks.*",
			live: "stocks.eur=5", want: []string{"2:r", "4:r", "5:l"},
		},
		{
			name:    "history, oldest first",
			policy:  DestinationPolicy{Pattern: "/topic/chat.*", History: 3},
			publish: []string{"chat.a=1", "chat.a=2", "chat.a=3", "chat.a=4", "chat.b=x"}, subscribe: "/topic/chat.a",
			live: "chat.a=5", want: []string{"2:h", "3:h", "4:h", "5:l"},
		},
		{
			name:    "history shorter than its bound",
			policy:  DestinationPolicy{Pattern: "/topic/chat.*", History: 10},
			publish: []string{"chat.a=1", "chat.a=2"}, subscribe: "/topic/#",
			live: "chat.a=3", want: []string{"1:h", "2:h", "3:l"},
		},
		{
			name:    "history supersedes last value",
			policy:  DestinationPolicy{Pattern: "#", History: 2, LastValue: true},
			publish: []string{"chat.a=1", "chat.a=2", "chat.a=3"}, subscribe: "/topic/chat.a",
			live: "chat.a=4", want: []string{"2:h", "3:h", "4:l"},
		},
		{
			name:    "no retention policy",
			policy:  DestinationPolicy{Pattern: "/topic/other", LastValue: true},
			publish: []string{"chat.a=1"}, subscribe: "/topic/chat.a",
			live: "chat.a=2", want: []string{"2:l"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New(Options{Policies: []DestinationPolicy{tt.policy}})
			for _, p := range tt.publish {
				dest, body, _ := strings.Cut(p, "=")
				publish(t, b, "/topic/"+dest, body)
			}
			r := &recorder{}
			subscribe(t, b, tt.subscribe, r, SubscribeOptions{})
			dest, body, _ := strings.Cut(tt.live, "=")
			publish(t, b, "/topic/"+dest, body)
			if got := origins(r); !slices.Equal(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestRetainedKeptWithoutSubscribers checks that retention does not depend
// on subscriptions and survives them, and how it shows in Stats.
func TestRetainedKeptWithoutSubscribers(t *testing.T) {
	b := New(Options{Policies: []DestinationPolicy{
		{Pattern: "/topic/lv.*", LastValue: true},
		{Pattern: "/topic/h.*", History: 3},
	}})
	for i := range 5 {
		publish(t, b, "/topic/lv.a", strconv.Itoa(i))
		publish(t, b, "/topic/h.a", strconv.Itoa(i))
	}
	publish(t, b, "/topic/plain", "gone")
	st := b.Stats()
	if st.Retained != 2 || st.RetainedMessages != 4 || st.Topics != 0 || st.DroppedNoRoute != 1 {
		t.Fatalf("stats %+v; want 2 retained destinations with 1+3 messages, 0 topics, 1 dropped", st)
	}
	r := &recorder{}
	sub := subscribe(t, b, "/topic/lv.a", r, SubscribeOptions{})
	b.Unsubscribe(sub)
	if st := b.Stats(); st.Retained != 2 || st.Topics != 0 {
		t.Fatalf("after unsubscribing: %+v", st)
	}
	r2 := &recorder{}
	subscribe(t, b, "/topic/lv.a", r2, SubscribeOptions{})
	if got := origins(r2); !slices.Equal(got, []string{"4:r"}) {
		t.Fatalf("second subscriber got %q", got)
	}
}

// TestRetainedEntryForgottenUntilUsed subscribes and unsubscribes on
// retaining destinations that never get a message: they must not leak.
func TestRetainedEntryForgottenUntilUsed(t *testing.T) {
	b := New(Options{Policies: []DestinationPolicy{{Pattern: "#", LastValue: true}}})
	for i := range 100 {
		sub := subscribe(t, b, "/topic/once."+strconv.Itoa(i), &recorder{}, SubscribeOptions{})
		b.Unsubscribe(sub)
	}
	for i := range b.shards {
		if n := len(b.shards[i].topics) + len(b.shards[i].retaining); n != 0 {
			t.Fatalf("shard %d keeps %d entries", i, n)
		}
	}
}

// TestRetainedClientAck checks that retained deliveries are tracked like
// any other in the client modes.
func TestRetainedClientAck(t *testing.T) {
	b := New(Options{Policies: []DestinationPolicy{{Pattern: "#", History: 2}}})
	publish(t, b, "/topic/a", "1")
	publish(t, b, "/topic/a", "2")
	r := &recorder{}
	sub := subscribe(t, b, "/topic/a", r, SubscribeOptions{AckMode: AckClient})
	got := r.deliveries()
	if len(got) != 2 || got[0].Tag != 1 || got[1].Tag != 2 || sub.Unacked() != 2 {
		t.Fatalf("deliveries %+v, unacked %d", got, sub.Unacked())
	}
	if err := b.Ack(sub, 2, true); err != nil {
		t.Fatal(err)
	}
}

// TestRetainedSubscriberFull checks that a refusal of a retained message is
// a refusal like any other: the destination's slow-consumer policy applies.
func TestRetainedSubscriberFull(t *testing.T) {
	tests := []struct {
		policy     SlowConsumerPolicy
		wantEvict  int
		wantResume []string
	}{
		{PolicyDisconnect, 1, nil},
		{PolicyConflate, 0, []string{"3:h"}},
		{PolicyDropOldest, 0, []string{"2:h", "3:h"}},
	}
	for _, tt := range tests {
		t.Run(tt.policy.String(), func(t *testing.T) {
			b := New(Options{Policies: []DestinationPolicy{{Pattern: "#", History: 3, SlowConsumer: tt.policy}}})
			for i := 1; i <= 3; i++ {
				publish(t, b, "/topic/a", strconv.Itoa(i))
			}
			r := &recorder{room: 1}
			sub := subscribe(t, b, "/topic/#", r, SubscribeOptions{})
			if n := len(r.evictions()); n != tt.wantEvict {
				t.Fatalf("%d evictions, want %d", n, tt.wantEvict)
			}
			r.setRoom(0)
			b.Resume(sub)
			if got := origins(r); !slices.Equal(got, append([]string{"1:h"}, tt.wantResume...)) {
				t.Fatalf("got %q", got)
			}
		})
	}
}

// seqChecker records, per destination, the bodies (sequence numbers) it is
// given, and checks they form a strictly increasing contiguous run with the
// retained ones first.
type seqChecker struct {
	mu           sync.Mutex
	runs         map[string][]int
	firstCatchUp map[string]bool // whether the first delivery of each destination was retained or history
	err          error
}

func (c *seqChecker) Deliver(_ *Subscription, d Delivery) DeliverResult {
	n := atoi(string(d.Message.Body))
	c.mu.Lock()
	defer c.mu.Unlock()
	run := c.runs[d.Message.Destination]
	catchUp := d.Retained || d.History
	switch {
	case c.err != nil:
	case len(run) > 0 && n != run[len(run)-1]+1:
		c.err = fmt.Errorf("%s: %d after %d (retained %v, history %v)", d.Message.Destination, n, run[len(run)-1], d.Retained, d.History)
	case catchUp && c.sawLive(d.Message.Destination):
		c.err = fmt.Errorf("%s: catch-up message %d after a live one", d.Message.Destination, n)
	}
	if !catchUp {
		c.runs["live "+d.Message.Destination] = nil
	}
	if len(run) == 0 {
		c.firstCatchUp[d.Message.Destination] = catchUp
	}
	c.runs[d.Message.Destination] = append(run, n)
	return Delivered
}

func (c *seqChecker) sawLive(dest string) bool {
	_, ok := c.runs["live "+dest]
	return ok
}

func (c *seqChecker) Evict(*Subscription, error) { panic("evicted") }

// first returns the first value delivered for dest (0 if none) and whether it was retained or history.
func (c *seqChecker) first(dest string) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	run := c.runs[dest]
	if len(run) == 0 {
		return 0, false
	}
	return run[0], c.firstCatchUp[dest]
}

func (c *seqChecker) last(dest string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	run := c.runs[dest]
	if len(run) == 0 {
		return 0
	}
	return run[len(run)-1]
}

// TestRetainedNoGapNoDuplicate publishes 1..N to retaining destinations
// while subscribers, exact and wildcard, subscribe at random moments of the
// run. Each must see a strictly increasing contiguous run per destination,
// retained messages first, ending at N, and starting where the retained
// state stood when it subscribed: the last value (or the oldest of the
// history) published by then, delivered as retained, so that a retained
// message lost in the race shows.
func TestRetainedNoGapNoDuplicate(t *testing.T) {
	const (
		n       = 3000
		joiners = 3
		joins   = 30 // per joiner
	)
	dests := []string{"/topic/lv.a", "/topic/lv.b", "/topic/h.a"}
	patterns := []string{"/topic/lv.a", "/topic/lv.*", "/topic/#", "/topic/h.a", "/topic/*.a"}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	b := New(Options{Policies: []DestinationPolicy{
		{Pattern: "/topic/lv.*", LastValue: true},
		{Pattern: "/topic/h.*", History: 5},
	}})

	type joined struct {
		c      *seqChecker
		dests  []string
		before int64 // every destination had been published up to this value when Subscribe was called
		after  int64 // ... and no further than this value plus one when it returned
	}
	var (
		progress atomic.Int64 // messages published per destination so far
		wg       sync.WaitGroup
		results  [joiners][]joined
	)
	for w := range joiners {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			targets := make([]int64, joins)
			for i := range targets {
				targets[i] = rng.Int64N(n)
			}
			slices.Sort(targets)
			for _, target := range targets {
				for progress.Load() < target {
					runtime.Gosched()
				}
				p := patterns[rng.IntN(len(patterns))]
				c := &seqChecker{runs: map[string][]int{}, firstCatchUp: map[string]bool{}}
				before := progress.Load()
				if _, err := b.Subscribe(p, c, SubscribeOptions{}); err != nil {
					panic(err)
				}
				after := progress.Load()
				var covered []string
				for _, d := range dests {
					if MatchTopic(p, d) {
						covered = append(covered, d)
					}
				}
				results[w] = append(results[w], joined{c, covered, before, after})
			}
		})
	}
	for i := 1; i <= n; i++ {
		for _, d := range dests {
			publish(t, b, d, strconv.Itoa(i))
		}
		progress.Store(int64(i))
	}
	wg.Wait()
	for w := range results {
		for i, s := range results[w] {
			if s.c.err != nil {
				t.Fatalf("joiner %d subscription %d: %v", w, i, s.c.err)
			}
			for _, d := range s.dests {
				if got := s.c.last(d); got != n {
					t.Fatalf("joiner %d subscription %d: %s ends at %d, want %d", w, i, d, got, n)
				}
				// The retained state when Subscribe took effect: the last value v, with v between
				// before and after+1; a history of 5 starts 4 earlier.
				lo, hi := s.before, s.after+1
				if strings.HasPrefix(d, "/topic/h.") {
					lo, hi = lo-4, hi-4
				}
				lo, hi = max(lo, 1), max(hi, 1)
				first, catchUp := s.c.first(d)
				if int64(first) < lo || int64(first) > hi {
					t.Fatalf("joiner %d subscription %d: %s starts at %d, want %d..%d (published up to %d..%d when it subscribed)", w, i, d, first, lo, hi, s.before, s.after+1)
				}
				if s.before >= 1 && !catchUp {
					t.Fatalf("joiner %d subscription %d: %s starts with live message %d although %d had been published: the retained state was not delivered", w, i, d, first, s.before)
				}
			}
		}
	}
}
