package broker

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// counters is the part of Stats that counts messages, so that a test can
// state all of it and compare it in one go.
type counters struct {
	Published     [KindCount]uint64
	Delivered     [KindCount]uint64
	Redelivered   uint64
	NoRoute       uint64
	Conflated     uint64
	DroppedOldest uint64
	Evictions     uint64
}

// perKind is a counter array of Stats, indexed by Kind.
type perKind = [KindCount]uint64

func countersOf(b *Broker) counters {
	st := b.Stats()
	return counters{
		Published:     st.Published,
		Delivered:     st.Delivered,
		Redelivered:   st.Redelivered,
		NoRoute:       st.DroppedNoRoute,
		Conflated:     st.Conflated,
		DroppedOldest: st.DroppedOldest,
		Evictions:     st.Evictions,
	}
}

func TestMessageCounters(t *testing.T) {
	conflate := Options{Policies: []DestinationPolicy{{Pattern: "#", SlowConsumer: PolicyConflate}}}
	tests := []struct {
		name string
		opts Options
		run  func(t *testing.T, b *Broker)
		want counters
	}{
		{
			name: "topic fan-out counts each subscriber that took it",
			run: func(t *testing.T, b *Broker) {
				for _, dest := range []string{"/topic/a.b", "/topic/a.b", "/topic/a.b", "/topic/a.*", "/topic/#"} {
					subscribe(t, b, dest, &recorder{}, SubscribeOptions{})
				}
				subscribe(t, b, "/topic/a.b", &recorder{refusing: true, refuse: Closed}, SubscribeOptions{})
				for range 4 {
					publish(t, b, "/topic/a.b", "x")
				}
			},
			want: counters{Published: perKind{KindTopic: 4}, Delivered: perKind{KindTopic: 20}},
		},
		{
			name: "topic without subscribers is dropped",
			run: func(t *testing.T, b *Broker) {
				subscribe(t, b, "/topic/other.#", &recorder{}, SubscribeOptions{})
				publish(t, b, "/topic/nobody", "x")
				publish(t, b, "/topic/nobody.home", "x")
			},
			want: counters{Published: perKind{KindTopic: 2}, NoRoute: 2},
		},
		{
			name: "topic whose only subscriber is closing is dropped",
			run: func(t *testing.T, b *Broker) {
				subscribe(t, b, "/topic/a", &recorder{refusing: true, refuse: Closed}, SubscribeOptions{})
				publish(t, b, "/topic/a", "x")
			},
			want: counters{Published: perKind{KindTopic: 1}, NoRoute: 1},
		},
		{
			name: "retained messages are not dropped and count when a subscription gets them",
			opts: Options{Policies: []DestinationPolicy{{Pattern: "/topic/last.#", LastValue: true}}},
			run: func(t *testing.T, b *Broker) {
				publish(t, b, "/topic/last.a", "1")
				publish(t, b, "/topic/last.a", "2")
				subscribe(t, b, "/topic/last.a", &recorder{}, SubscribeOptions{}) // gets "2"
				subscribe(t, b, "/topic/last.*", &recorder{}, SubscribeOptions{}) // gets "2"
				publish(t, b, "/topic/last.a", "3")                               // both get it
			},
			want: counters{Published: perKind{KindTopic: 3}, Delivered: perKind{KindTopic: 4}},
		},
		{
			name: "DeliverTo delivers without publishing",
			run: func(t *testing.T, b *Broker) {
				sub := subscribe(t, b, "/topic/a", &recorder{}, SubscribeOptions{})
				if err := b.DeliverTo(sub, &Message{Destination: "/topic/welcome"}); err != nil {
					t.Fatal(err)
				}
			},
			want: counters{Delivered: perKind{KindTopic: 1}},
		},
		{
			name: "queue counts when a consumer takes the message",
			run: func(t *testing.T, b *Broker) {
				for range 3 {
					publish(t, b, "/queue/q", "x")
				}
				subscribe(t, b, "/queue/q", &recorder{}, SubscribeOptions{})
				publish(t, b, "/queue/q", "x")
			},
			want: counters{Published: perKind{KindQueue: 4}, Delivered: perKind{KindQueue: 4}},
		},
		{
			name: "queue redelivery after Nack and after the consumer leaves",
			run: func(t *testing.T, b *Broker) {
				a := subscribe(t, b, "/queue/q", &recorder{}, SubscribeOptions{AckMode: AckClientIndividual})
				publish(t, b, "/queue/q", "1")
				publish(t, b, "/queue/q", "2")
				if err := b.Nack(a, 1, false); err != nil { // "1" comes straight back to a
					t.Fatal(err)
				}
				subscribe(t, b, "/queue/q", &recorder{}, SubscribeOptions{})
				b.Unsubscribe(a) // "2" and "1" go to the second consumer
			},
			want: counters{Published: perKind{KindQueue: 2}, Delivered: perKind{KindQueue: 5}, Redelivered: 3},
		},
		{
			name: "reply queue, then no route once it is gone",
			run: func(t *testing.T, b *Broker) {
				if err := b.DeclareReplyQueue("/reply-queue/r", Identity{}); err != nil {
					t.Fatal(err)
				}
				subscribe(t, b, "/reply-queue/r", &recorder{}, SubscribeOptions{})
				publish(t, b, "/reply-queue/r", "x")
				if err := b.DeleteQueue("/reply-queue/r"); err != nil {
					t.Fatal(err)
				}
				for _, dest := range []string{"/reply-queue/r", "/reply-queue/never"} {
					if err := b.Publish(&Message{Destination: dest}); !errors.Is(err, ErrNoRoute) {
						t.Fatalf("Publish(%q) = %v, want ErrNoRoute", dest, err)
					}
				}
			},
			want: counters{Published: perKind{KindReplyQueue: 1}, Delivered: perKind{KindReplyQueue: 1}, NoRoute: 2},
		},
		{
			name: "reply queue deleted while a publisher holds it",
			run: func(t *testing.T, b *Broker) {
				if err := b.DeclareReplyQueue("/reply-queue/r", Identity{}); err != nil {
					t.Fatal(err)
				}
				q, _ := b.queueFor("/reply-queue/r", false, Identity{})
				if err := b.DeleteQueue("/reply-queue/r"); err != nil {
					t.Fatal(err)
				}
				if err := q.publish(&Message{Destination: "/reply-queue/r"}, nil); !errors.Is(err, ErrNoRoute) {
					t.Fatalf("publish to a deleted queue = %v, want ErrNoRoute", err)
				}
			},
			want: counters{NoRoute: 1},
		},
		{
			name: "app messages count once their handler accepts them",
			run: func(t *testing.T, b *Broker) {
				refuse := errors.New("refused")
				b.HandleApp("/app/ok", func(*Message) error { return nil })
				b.HandleApp("/app/refuse", func(*Message) error { return refuse })
				publish(t, b, "/app/ok", "x")
				publish(t, b, "/app/ok", "x")
				if err := b.Publish(&Message{Destination: "/app/refuse"}); !errors.Is(err, refuse) {
					t.Fatalf("Publish = %v, want the handler's error", err)
				}
			},
			want: counters{Published: perKind{KindApp: 2}},
		},
		{
			name: "refused publishes count nothing",
			opts: Options{MaxQueueDepth: 1, Policies: []DestinationPolicy{{Pattern: "/topic/ro", ReadOnly: true}}},
			run: func(t *testing.T, b *Broker) {
				publish(t, b, "/queue/q", "fills it")
				client := Identity{Session: "s1"}
				for _, m := range []*Message{
					{Destination: "/queue/q"},
					{Destination: "/topic/ro", Sender: client},
					{Destination: "/topic/a.*"},
					{Destination: "/nowhere"},
					{Destination: "/app/unhandled"},
				} {
					if err := b.Publish(m); err == nil {
						t.Fatalf("Publish(%q) accepted", m.Destination)
					}
				}
			},
			want: counters{Published: perKind{KindQueue: 1}},
		},
		{
			name: "conflated messages count when the subscriber takes the survivor",
			opts: conflate,
			run: func(t *testing.T, b *Broker) {
				r := &recorder{refusing: true}
				sub := subscribe(t, b, "/topic/prices.*", r, SubscribeOptions{})
				pubPrices(t, b, "eur=1", "eur=2", "eur=3", "usd=1")
				r.setRefusing(false)
				b.Resume(sub) // eur=3, usd=1
			},
			want: counters{Published: perKind{KindTopic: 4}, Delivered: perKind{KindTopic: 2}, Conflated: 2},
		},
		{
			name: "dropped oldest",
			opts: Options{Policies: []DestinationPolicy{{Pattern: "#", SlowConsumer: PolicyDropOldest, MaxPending: 2}}},
			run: func(t *testing.T, b *Broker) {
				r := &recorder{refusing: true}
				sub := subscribe(t, b, "/topic/log", r, SubscribeOptions{})
				for i := range 5 {
					publish(t, b, "/topic/log", strconv.Itoa(i))
				}
				r.setRefusing(false)
				b.Resume(sub)
			},
			want: counters{Published: perKind{KindTopic: 5}, Delivered: perKind{KindTopic: 2}, DroppedOldest: 3},
		},
		{
			name: "held messages drained by an Ack",
			opts: conflate,
			run: func(t *testing.T, b *Broker) {
				sub := subscribe(t, b, "/topic/prices.eur", &recorder{}, SubscribeOptions{AckMode: AckClientIndividual, Prefetch: 1})
				pubPrices(t, b, "eur=1", "eur=2", "eur=3")
				if err := b.Ack(sub, 1, false); err != nil {
					t.Fatal(err)
				}
			},
			want: counters{Published: perKind{KindTopic: 3}, Delivered: perKind{KindTopic: 2}, Conflated: 1},
		},
		{
			name: "held messages drained by a Resume made from Deliver",
			opts: conflate,
			run: func(t *testing.T, b *Broker) {
				r := &reentrantResumer{b: b, refusals: 3}
				subscribe(t, b, "/topic/a", r, SubscribeOptions{})
				publish(t, b, "/topic/a", "1")
				publish(t, b, "/topic/a", "2")
				if len(r.got) != 2 {
					t.Fatalf("got %q", r.got)
				}
			},
			want: counters{Published: perKind{KindTopic: 2}, Delivered: perKind{KindTopic: 2}},
		},
		{
			name: "held messages drained behind a message that goes straight through",
			opts: Options{Policies: []DestinationPolicy{{Pattern: "/topic/px.#", SlowConsumer: PolicyConflate}}},
			run: func(t *testing.T, b *Broker) {
				r := &resumingTaker{b: b, refusals: 1}
				subscribe(t, b, "/topic/#", r, SubscribeOptions{})
				publish(t, b, "/topic/px.a", "held")
				publish(t, b, "/topic/news", "straight through, then the held one")
				if len(r.got) != 2 {
					t.Fatalf("got %q", r.got)
				}
			},
			want: counters{Published: perKind{KindTopic: 2}, Delivered: perKind{KindTopic: 2}},
		},
		{
			name: "slow consumer evicted",
			run: func(t *testing.T, b *Broker) {
				subscribe(t, b, "/topic/a", &recorder{refusing: true}, SubscribeOptions{})
				subscribe(t, b, "/topic/a", &recorder{}, SubscribeOptions{})
				publish(t, b, "/topic/a", "1")
				publish(t, b, "/topic/a", "2")
			},
			want: counters{Published: perKind{KindTopic: 2}, Delivered: perKind{KindTopic: 2}, Evictions: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New(tt.opts)
			tt.run(t, b)
			if got := countersOf(b); got != tt.want {
				t.Errorf("counters\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// resumingTaker refuses its first refusals deliveries and then takes every
// one, calling Resume from Deliver as a session does once it has room.
type resumingTaker struct {
	b        *Broker
	refusals int
	got      []string
}

func (r *resumingTaker) Deliver(s *Subscription, d Delivery) DeliverResult {
	if r.refusals > 0 {
		r.refusals--
		return Full
	}
	r.got = append(r.got, string(d.Message.Body))
	r.b.Resume(s)
	return Delivered
}

func (r *resumingTaker) Evict(*Subscription, error) {}

// TestDeliveredMatchesSubscribers publishes from many goroutines to topics
// and a queue at once and checks the counters against what the subscribers
// actually took.
func TestDeliveredMatchesSubscribers(t *testing.T) {
	b := New(Options{})
	const (
		publishers = 8
		perPub     = 500
		topicSubs  = 3
	)
	var subs []*atomicCounter
	for i := range publishers {
		for range topicSubs {
			c := &atomicCounter{}
			subs = append(subs, c)
			if _, err := b.Subscribe("/topic/t."+strconv.Itoa(i), c, SubscribeOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	wild := &atomicCounter{}
	subs = append(subs, wild)
	if _, err := b.Subscribe("/topic/t.*", wild, SubscribeOptions{}); err != nil {
		t.Fatal(err)
	}
	consumers := []*atomicCounter{{}, {}}
	for _, c := range consumers {
		if _, err := b.Subscribe("/queue/work", c, SubscribeOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	var wg sync.WaitGroup
	for i := range publishers {
		wg.Go(func() {
			dest := "/topic/t." + strconv.Itoa(i)
			for range perPub {
				if err := b.Publish(&Message{Destination: dest}); err != nil {
					t.Error(err)
					return
				}
				if err := b.Publish(&Message{Destination: "/queue/work"}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			b.Stats() // scrapes run concurrently with publishers
		}
	})
	wg.Wait()

	var topicTaken, queueTaken uint64
	for _, c := range subs {
		topicTaken += c.n.Load()
	}
	for _, c := range consumers {
		queueTaken += c.n.Load()
	}
	const total = publishers * perPub
	want := counters{
		Published: perKind{KindTopic: total, KindQueue: total},
		Delivered: perKind{KindTopic: total * (topicSubs + 1), KindQueue: total},
	}
	if got := countersOf(b); got != want {
		t.Fatalf("counters\n got %+v\nwant %+v", got, want)
	}
	if topicTaken != want.Delivered[KindTopic] || queueTaken != want.Delivered[KindQueue] {
		t.Fatalf("subscribers took %d topic and %d queue messages; counters say %v", topicTaken, queueTaken, want.Delivered)
	}
}

func TestSubscriptionsAndDestinationsByKind(t *testing.T) {
	b := New(Options{Policies: []DestinationPolicy{{Pattern: "/topic/kept", LastValue: true}}})
	b.HandleApp("/app/echo", func(*Message) error { return nil })
	if err := b.DeclareReplyQueue("/reply-queue/r", Identity{}); err != nil {
		t.Fatal(err)
	}
	publish(t, b, "/topic/kept", "retained, nobody subscribed")
	exact := subscribe(t, b, "/topic/a", &recorder{}, SubscribeOptions{})
	subscribe(t, b, "/topic/a", &recorder{}, SubscribeOptions{})
	subscribe(t, b, "/topic/b.#", &recorder{}, SubscribeOptions{})
	subscribe(t, b, "/queue/q1", &recorder{}, SubscribeOptions{})
	publish(t, b, "/queue/q2", "creates it")
	subscribe(t, b, "/reply-queue/r", &recorder{}, SubscribeOptions{})
	subscribe(t, b, "/reply-queue/r", &recorder{}, SubscribeOptions{})

	tests := []struct {
		name             string
		change           func()
		subs, dests      [KindCount]int
		totalSubs, queue int
	}{
		{
			name:      "populated",
			change:    func() {},
			subs:      [KindCount]int{KindTopic: 3, KindQueue: 1, KindReplyQueue: 2},
			dests:     [KindCount]int{KindTopic: 2, KindQueue: 2, KindReplyQueue: 1, KindApp: 1},
			totalSubs: 6,
		},
		{
			name:      "after Unsubscribe",
			change:    func() { b.Unsubscribe(exact) },
			subs:      [KindCount]int{KindTopic: 2, KindQueue: 1, KindReplyQueue: 2},
			dests:     [KindCount]int{KindTopic: 2, KindQueue: 2, KindReplyQueue: 1, KindApp: 1},
			totalSubs: 5,
		},
		{
			name: "after DeleteQueue and removing the handler",
			change: func() {
				if err := b.DeleteQueue("/reply-queue/r"); err != nil {
					t.Fatal(err)
				}
				b.HandleApp("/app/echo", nil)
			},
			subs:      [KindCount]int{KindTopic: 2, KindQueue: 1},
			dests:     [KindCount]int{KindTopic: 2, KindQueue: 2},
			totalSubs: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.change()
			if got := b.SubscriptionsByKind(); got != tt.subs {
				t.Errorf("SubscriptionsByKind() = %v, want %v", got, tt.subs)
			}
			st := b.Stats()
			if st.SubscriptionsByKind != tt.subs || st.Subscriptions != tt.totalSubs {
				t.Errorf("Stats subscriptions %v (total %d), want %v (total %d)",
					st.SubscriptionsByKind, st.Subscriptions, tt.subs, tt.totalSubs)
			}
			if st.Destinations != tt.dests {
				t.Errorf("Stats.Destinations = %v, want %v", st.Destinations, tt.dests)
			}
		})
	}
}

// TestCountingDoesNotAllocate guards invariant 9 on the paths that count:
// a topic fan-out, a queue delivery with its Ack, and a drop.
func TestCountingDoesNotAllocate(t *testing.T) {
	b := New(Options{})
	for range 10 {
		subscribe(t, b, "/topic/a", &countingSubscriber{}, SubscribeOptions{})
	}
	var last lastTag
	sub := subscribe(t, b, "/queue/q", &last, SubscribeOptions{AckMode: AckClientIndividual, Prefetch: 1})
	// Messages carry their ID and time, so Publish allocates nothing itself.
	now := time.Now()
	msgs := map[string]*Message{
		"topic fan-out": {Destination: "/topic/a", ID: "m", Published: now},
		"no route":      {Destination: "/topic/nobody", ID: "m", Published: now},
		"queue":         {Destination: "/queue/q", ID: "m", Published: now},
	}
	for name, m := range msgs {
		t.Run(name, func(t *testing.T) {
			n := testing.AllocsPerRun(100, func() {
				if err := b.Publish(m); err != nil {
					t.Fatal(err)
				}
				if m.Kind == KindQueue {
					if err := b.Ack(sub, last.tag, false); err != nil {
						t.Fatal(err)
					}
				}
			})
			if n != 0 {
				t.Errorf("%v allocations per publish, want 0", n)
			}
		})
	}
}

// TestLateRetainedWalkNotCounted replays the tail of a Publish that
// retained a message before a wildcard subscription took its snapshot but
// reached the trie after: the subscription already had the message as a
// retained one, so the walk must neither deliver nor count it again.
func TestLateRetainedWalkNotCounted(t *testing.T) {
	b := New(Options{Policies: []DestinationPolicy{{Pattern: "/topic/last.#", LastValue: true}}})
	m := publish(t, b, "/topic/last.a", "1")
	r := &recorder{}
	subscribe(t, b, "/topic/last.*", r, SubscribeOptions{})

	st := topicPublish{b: b, msg: m, policy: b.topicPolicy(m.Destination), seq: 1}
	b.patterns.match(m.Destination[len(topicPrefix):], &st)
	if st.delivered != 1 || st.taken() != 0 {
		t.Errorf("late walk: %d subscriptions have it, %d took it now; want 1 and 0", st.delivered, st.taken())
	}
	if n := len(r.deliveries()); n != 1 {
		t.Errorf("subscriber got the message %d times, want once", n)
	}
}

// TestStatsBytes: the bytes the broker holds for clients, by kind, rise and fall with the messages.
func TestStatsBytes(t *testing.T) {
	b := New(Options{Policies: []DestinationPolicy{
		{Pattern: "/topic/lv", LastValue: true},
		{Pattern: "/topic/lag", SlowConsumer: PolicyDropOldest},
	}})
	body := strings.Repeat("b", 88) // 100 bytes with the 12-byte destinations below
	want := func(what string, queued, unacked, held, retained int64) {
		t.Helper()
		st := b.Stats()
		if st.QueuedBytes != queued || st.UnackedBytes != unacked || st.HeldBytes != held || st.RetainedBytes != retained {
			t.Fatalf("%s: queued %d unacked %d held %d retained %d; want %d %d %d %d", what,
				st.QueuedBytes, st.UnackedBytes, st.HeldBytes, st.RetainedBytes, queued, unacked, held, retained)
		}
	}
	publish(t, b, "/queue/qq.qq", body)
	publish(t, b, "/queue/qq.qq", body)
	want("two queued", 200, 0, 0, 0)
	r := &recorder{}
	sub := subscribe(t, b, "/queue/qq.qq", r, SubscribeOptions{AckMode: AckClientIndividual})
	want("delivered, not acknowledged", 0, 200, 0, 0)
	if err := b.Ack(sub, r.last(t).Tag, false); err != nil {
		t.Fatal(err)
	}
	want("one acknowledged", 0, 100, 0, 0)
	b.Unsubscribe(sub)
	want("the other back in the queue", 100, 0, 0, 0)

	publish(t, b, "/topic/lv.aa", body[:len(body)-2]) // 12-byte destination: /topic/lv.aa is not /topic/lv
	publish(t, b, "/topic/lv", body+"xxx")            // 9-byte destination + 91 = 100
	publish(t, b, "/topic/lv", body+"xxx")            // replaces the last value
	want("one last value", 100, 0, 0, 100)

	slow := &recorder{}
	lagging := subscribe(t, b, "/topic/lag", slow, SubscribeOptions{})
	slow.setRefusing(true)
	for range 3 {
		publish(t, b, "/topic/lag", body[:78]+"xxxxxxxxxxxx") // 10 + 90 = 100
	}
	want("three held for a lagging subscription", 100, 0, 300, 100)
	slow.setRefusing(false)
	b.Resume(lagging)
	want("caught up", 100, 0, 0, 100)
}
