package broker

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestTopicFanout(t *testing.T) {
	b := New(Options{})
	const n = 200
	recs := make([]*recorder, n)
	for i := range recs {
		recs[i] = &recorder{}
		subscribe(t, b, "/topic/news", recs[i], SubscribeOptions{})
	}
	m1 := publish(t, b, "/topic/news", "one")
	m2 := publish(t, b, "/topic/news", "two")
	publish(t, b, "/topic/other", "not for them")
	for i, r := range recs {
		got := r.deliveries()
		if len(got) != 2 || got[0].Message != m1 || got[1].Message != m2 {
			t.Fatalf("subscriber %d got %v", i, r.bodies())
		}
		if got[0].Tag != 0 || got[0].Redelivered {
			t.Fatalf("auto-mode delivery %+v has a tag or redelivered flag", got[0])
		}
	}
	if st := b.Stats(); st.Topics != 1 || st.Subscriptions != n || st.DroppedNoRoute != 1 {
		t.Fatalf("stats %+v; want 1 topic, %d subscriptions, 1 dropped", st, n)
	}
}

func TestTopicWildcardSubscriptions(t *testing.T) {
	tests := []struct {
		pattern string
		want    []string
	}{
		{"/topic/stocks.*", []string{"stocks.eur", "stocks.usd"}},
		{"/topic/stocks.#", []string{"stocks", "stocks.eur", "stocks.usd", "stocks.eur.usd"}},
		{"/topic/#", []string{"stocks", "stocks.eur", "stocks.usd", "stocks.eur.usd", "chat", "fx.eur"}},
		{"/topic/*.eur", []string{"stocks.eur", "fx.eur"}},
		{"/topic/#.eur", []string{"stocks.eur", "fx.eur"}},
		{"/topic/*", []string{"stocks", "chat"}},
		{"/topic/stocks.*.usd", []string{"stocks.eur.usd"}},
		{"/topic/#.*.#", []string{"stocks", "stocks.eur", "stocks.usd", "stocks.eur.usd", "chat", "fx.eur"}},
		{"/topic/a.#.#", nil},
	}
	dests := []string{"stocks", "stocks.eur", "stocks.usd", "stocks.eur.usd", "chat", "fx.eur"}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			b := New(Options{})
			r := &recorder{}
			sub := subscribe(t, b, tt.pattern, r, SubscribeOptions{})
			if sub.Destination() != tt.pattern || sub.Kind() != KindTopic {
				t.Fatalf("subscription reports %q %v", sub.Destination(), sub.Kind())
			}
			for _, d := range dests {
				publish(t, b, "/topic/"+d, d)
			}
			if got := r.bodies(); !slices.Equal(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			b.Unsubscribe(sub)
			publish(t, b, "/topic/stocks.eur", "after")
			if got := r.bodies(); len(got) != len(tt.want) {
				t.Fatalf("delivery after Unsubscribe: %q", got)
			}
			if st := b.Stats(); st.Topics != 0 || st.Subscriptions != 0 {
				t.Fatalf("stats after Unsubscribe %+v", st)
			}
		})
	}
}

func TestTopicExactAndPatternBothDeliver(t *testing.T) {
	b := New(Options{})
	r := &recorder{}
	subscribe(t, b, "/topic/chat", r, SubscribeOptions{})
	subscribe(t, b, "/topic/#", r, SubscribeOptions{})
	subscribe(t, b, "/topic/*", r, SubscribeOptions{})
	publish(t, b, "/topic/chat", "hi")
	if n := len(r.deliveries()); n != 3 {
		t.Fatalf("%d deliveries, want one per matching subscription (3)", n)
	}
	if st := b.Stats(); st.Topics != 3 {
		t.Fatalf("Topics = %d, want 3 (one destination, two patterns)", st.Topics)
	}
}

func TestTopicSubscribeErrors(t *testing.T) {
	tests := []struct {
		dest string
		err  error
	}{
		{"/topic/", ErrInvalidDestination},
		{"/topic/a..b", ErrInvalidDestination},
		{"/topic/#.", ErrInvalidDestination},
		{"/nowhere/a", ErrUnknownDestination},
		{"/reply-queue/none", ErrNoRoute},
		{"/queue/", ErrInvalidDestination},
	}
	for _, tt := range tests {
		t.Run(tt.dest, func(t *testing.T) {
			b := New(Options{})
			if _, err := b.Subscribe(tt.dest, &recorder{}, SubscribeOptions{}); !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if st := b.Stats(); st.Subscriptions != 0 || st.Queues != 0 {
				t.Fatalf("failed Subscribe left %+v", st)
			}
		})
	}
	b := New(Options{})
	if _, err := b.Subscribe("/topic/a", &recorder{}, SubscribeOptions{AckMode: 7}); !errors.Is(err, ErrInvalidAckMode) {
		t.Fatalf("ack mode 7: err = %v", err)
	}
}

func TestTopicUnsubscribe(t *testing.T) {
	b := New(Options{})
	r1, r2 := &recorder{}, &recorder{}
	s1 := subscribe(t, b, "/topic/a", r1, SubscribeOptions{})
	subscribe(t, b, "/topic/a", r2, SubscribeOptions{})
	publish(t, b, "/topic/a", "1")
	b.Unsubscribe(s1)
	b.Unsubscribe(s1) // idempotent
	publish(t, b, "/topic/a", "2")
	if got := r1.bodies(); !slices.Equal(got, []string{"1"}) {
		t.Fatalf("unsubscribed got %q", got)
	}
	if got := r2.bodies(); !slices.Equal(got, []string{"1", "2"}) {
		t.Fatalf("remaining subscriber got %q", got)
	}
	if st := b.Stats(); st.Subscriptions != 1 || st.Topics != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestTopicEntriesRemoved checks that one-off destinations leave nothing
// behind once their subscribers are gone.
func TestTopicEntriesRemoved(t *testing.T) {
	b := New(Options{})
	for i := range 1000 {
		sub := subscribe(t, b, fmt.Sprintf("/topic/once.%d", i), &recorder{}, SubscribeOptions{})
		psub := subscribe(t, b, fmt.Sprintf("/topic/once.%d.#", i), &recorder{}, SubscribeOptions{})
		b.Unsubscribe(sub)
		b.Unsubscribe(psub)
	}
	entries := 0
	for i := range b.shards {
		entries += len(b.shards[i].topics)
	}
	if entries != 0 || b.patterns.root.children != nil || b.Stats().Topics != 0 {
		t.Fatalf("%d topic entries, trie children %v left", entries, b.patterns.root.children)
	}
}

func TestTopicSlowConsumerEvicted(t *testing.T) {
	tests := []struct {
		name string
		dest string
		opts SubscribeOptions
		room int
	}{
		{"auto exact", "/topic/prices.eur", SubscribeOptions{}, 3},
		{"auto pattern", "/topic/#", SubscribeOptions{}, 3},
		{"closed answer counts as gone, not slow", "/topic/prices.eur", SubscribeOptions{}, -1},
		{"client window", "/topic/prices.eur", SubscribeOptions{AckMode: AckClient, Prefetch: 3}, 0},
		{"client-individual window from MaxTopicUnacked", "/topic/prices.*", SubscribeOptions{AckMode: AckClientIndividual}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New(Options{MaxTopicUnacked: 3})
			slow, fast := &recorder{room: tt.room}, &recorder{}
			if tt.room < 0 {
				slow = &recorder{refusing: true, refuse: Closed}
			}
			subscribe(t, b, tt.dest, slow, tt.opts)
			subscribe(t, b, "/topic/prices.eur", fast, SubscribeOptions{})
			for i := range 10 {
				publish(t, b, "/topic/prices.eur", fmt.Sprint(i))
			}
			if tt.room < 0 {
				if len(slow.evictions()) != 0 || len(slow.deliveries()) != 0 {
					t.Fatalf("Closed subscriber: evictions %v, deliveries %q", slow.evictions(), slow.bodies())
				}
				return
			}
			if got := slow.bodies(); !slices.Equal(got, []string{"0", "1", "2"}) {
				t.Fatalf("slow subscriber got %q, want the first 3", got)
			}
			if ev := slow.evictions(); len(ev) != 1 || !errors.Is(ev[0], ErrSlowConsumer) {
				t.Fatalf("evictions %v, want one ErrSlowConsumer", ev)
			}
			if n := len(fast.deliveries()); n != 10 {
				t.Fatalf("fast subscriber got %d of 10", n)
			}
			if st := b.Stats(); st.Evictions != 1 {
				t.Fatalf("Evictions = %d, want 1", st.Evictions)
			}
			slow.setRoom(0) // room again: the subscription stays evicted
			publish(t, b, "/topic/prices.eur", "late")
			if len(slow.deliveries()) != 3 || len(slow.evictions()) != 1 {
				t.Fatalf("evicted subscription still served: %q, %v", slow.bodies(), slow.evictions())
			}
		})
	}
}

// blockingSubscriber's Deliver waits for release. It breaks the Subscriber
// contract on purpose, to show that Unsubscribe waits for a Deliver in
// progress.
type blockingSubscriber struct {
	entered  chan struct{}
	release  chan struct{}
	mu       sync.Mutex
	returned bool
}

func (s *blockingSubscriber) Deliver(*Subscription, Delivery) DeliverResult {
	s.entered <- struct{}{}
	<-s.release
	s.mu.Lock()
	s.returned = true
	s.mu.Unlock()
	return Delivered
}

func (s *blockingSubscriber) Evict(*Subscription, error) {}

func TestUnsubscribeWaitsForDeliver(t *testing.T) {
	for _, dest := range []string{"/topic/a", "/topic/#", "/queue/q"} {
		t.Run(dest, func(t *testing.T) {
			b := New(Options{})
			bs := &blockingSubscriber{entered: make(chan struct{}, 1), release: make(chan struct{})}
			sub := subscribe(t, b, dest, bs, SubscribeOptions{})
			published := make(chan error)
			pubDest := "/topic/a"
			if dest == "/queue/q" {
				pubDest = dest
			}
			go func() { published <- b.Publish(&Message{Destination: pubDest}) }()
			<-bs.entered

			unsubscribed := make(chan struct{})
			go func() {
				b.Unsubscribe(sub)
				close(unsubscribed)
			}()
			select {
			case <-unsubscribed:
				t.Fatal("Unsubscribe returned while Deliver was running")
			case <-time.After(50 * time.Millisecond):
			}
			close(bs.release)
			<-unsubscribed
			bs.mu.Lock()
			returned := bs.returned
			bs.mu.Unlock()
			if !returned {
				t.Fatal("Unsubscribe returned before Deliver did")
			}
			if err := <-published; err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestTopicClientAck(t *testing.T) {
	tests := []struct {
		name       string
		mode       AckMode
		ackTag     uint64
		cumulative bool
		nack       bool
		wantLeft   int
	}{
		{"client cumulative ack", AckClient, 3, true, false, 2},
		{"client-individual ack", AckClientIndividual, 3, false, false, 4},
		{"client cumulative nack discards", AckClient, 4, true, true, 1},
		{"individual nack discards", AckClientIndividual, 1, false, true, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New(Options{})
			r := &recorder{}
			sub := subscribe(t, b, "/topic/t", r, SubscribeOptions{AckMode: tt.mode})
			if sub.AckMode() != tt.mode {
				t.Fatalf("AckMode() = %v", sub.AckMode())
			}
			for i := range 5 {
				publish(t, b, "/topic/t", fmt.Sprint(i))
			}
			for i, d := range r.deliveries() {
				if d.Tag != uint64(i+1) {
					t.Fatalf("delivery %d has tag %d", i, d.Tag)
				}
			}
			settle := b.Ack
			if tt.nack {
				settle = b.Nack
			}
			if err := settle(sub, tt.ackTag, tt.cumulative); err != nil {
				t.Fatal(err)
			}
			if sub.Unacked() != tt.wantLeft {
				t.Fatalf("Unacked() = %d, want %d", sub.Unacked(), tt.wantLeft)
			}
			if err := b.Ack(sub, tt.ackTag, false); !errors.Is(err, ErrUnknownTag) {
				t.Fatalf("second settle of tag %d: err = %v", tt.ackTag, err)
			}
			if st := b.Stats(); st.UnackedMessages != tt.wantLeft || st.QueuedMessages != 0 {
				t.Fatalf("stats %+v", st)
			}
			b.Unsubscribe(sub)
			if sub.Unacked() != 0 {
				t.Fatal("unacked topic messages kept after Unsubscribe")
			}
		})
	}
}

func TestTopicAckFreesWindow(t *testing.T) {
	b := New(Options{})
	r := &recorder{}
	sub := subscribe(t, b, "/topic/t", r, SubscribeOptions{AckMode: AckClientIndividual, Prefetch: 2})
	for i := range 6 {
		publish(t, b, "/topic/t", fmt.Sprint(i))
		if err := b.Ack(sub, r.last(t).Tag, false); err != nil {
			t.Fatal(err)
		}
	}
	if len(r.deliveries()) != 6 || len(r.evictions()) != 0 {
		t.Fatalf("acking subscriber: %d deliveries, evictions %v", len(r.deliveries()), r.evictions())
	}
}

func TestTagOf(t *testing.T) {
	for _, dest := range []string{"/topic/t", "/queue/q"} {
		t.Run(dest, func(t *testing.T) {
			b := New(Options{})
			r := &recorder{}
			sub := subscribe(t, b, dest, r, SubscribeOptions{AckMode: AckClient})
			m1 := publish(t, b, dest, "1")
			m2 := publish(t, b, dest, "2")
			if tag, ok := sub.TagOf(m2.ID); !ok || tag != 2 {
				t.Fatalf("TagOf(m2) = %d, %v", tag, ok)
			}
			if _, ok := sub.TagOf("nope"); ok {
				t.Fatal("TagOf found an unknown id")
			}
			if err := b.Ack(sub, 1, true); err != nil {
				t.Fatal(err)
			}
			if _, ok := sub.TagOf(m1.ID); ok {
				t.Fatal("TagOf found an acknowledged message")
			}
		})
	}
}

func TestPolicyFirstMatchWins(t *testing.T) {
	b := New(Options{
		MaxQueueDepth: 50,
		Policies: []DestinationPolicy{
			{Pattern: "/queue/small.#", MaxQueueDepth: 1},
			{Pattern: "/queue/small.big", MaxQueueDepth: 100},
			{Pattern: "/queue/*", MaxQueueDepth: 2},
			{Pattern: "/topic/#"},
		},
	})
	tests := []struct {
		dest string
		want int
	}{
		{"/queue/small.big", 1},
		{"/queue/small", 1},
		{"/queue/x", 2},
		{"/queue/x.y", 50},
	}
	for _, tt := range tests {
		t.Run(tt.dest, func(t *testing.T) {
			if got := b.resolvePolicy(tt.dest).maxQueueDepth; got != tt.want {
				t.Fatalf("max depth %d, want %d", got, tt.want)
			}
		})
	}
}

// TestAmbiguousPatternsDeliverOnce subscribes with many patterns holding two
// '#' words, which a destination can match along several paths; each
// subscription must still get one copy.
func TestAmbiguousPatternsDeliverOnce(t *testing.T) {
	patterns := []string{
		"#.a.#", "#.*.#", "#.a.*.#", "#.*.a.#", "#.*.*.#", "#.a.a.#",
		"#.a.#.a", "#.*.#.a", "a.#.a.#", "a.#.*.#", "#.a.#.*", "#.#.a.#.#",
	}
	b := New(Options{})
	recs := make([]*recorder, len(patterns))
	for i, p := range patterns {
		recs[i] = &recorder{}
		subscribe(t, b, "/topic/"+p, recs[i], SubscribeOptions{})
	}
	publish(t, b, "/topic/a.a.a", "x")
	for i, r := range recs {
		if n := len(r.deliveries()); n != 1 {
			t.Errorf("%s: %d deliveries, want 1", patterns[i], n)
		}
	}
}
