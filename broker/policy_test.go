package broker

import (
	"errors"
	"strconv"
	"testing"
)

func TestParseSlowConsumerPolicy(t *testing.T) {
	tests := []struct {
		in   string
		want SlowConsumerPolicy
		err  error
	}{
		{"disconnect", PolicyDisconnect, nil},
		{"conflate", PolicyConflate, nil},
		{"drop-oldest", PolicyDropOldest, nil},
		{" Conflate ", PolicyConflate, nil},
		{"", 0, ErrInvalidPolicy},
		{"drop_oldest", 0, ErrInvalidPolicy},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSlowConsumerPolicy(tt.in)
			if !errors.Is(err, tt.err) || got != tt.want {
				t.Fatalf("got %v, %v; want %v, %v", got, err, tt.want, tt.err)
			}
			if err != nil {
				return
			}
			var p SlowConsumerPolicy
			text, err := got.MarshalText()
			if err != nil {
				t.Fatal(err)
			}
			if err := p.UnmarshalText(text); err != nil || p != got {
				t.Fatalf("text round trip: %q → %v, %v", text, p, err)
			}
		})
	}
	if _, err := SlowConsumerPolicy(7).MarshalText(); !errors.Is(err, ErrInvalidPolicy) {
		t.Fatalf("MarshalText(7) err = %v", err)
	}
	if s := SlowConsumerPolicy(7).String(); s != "SlowConsumerPolicy(7)" {
		t.Fatalf("String() = %q", s)
	}
}

func TestReadOnly(t *testing.T) {
	client := Identity{Session: "s1", Name: "Mallory"}
	server := Identity{Name: "stocks feed"}
	tests := []struct {
		dest   string
		sender Identity
		err    error
	}{
		{"/topic/stocks.eur", client, ErrReadOnly},
		{"/topic/stocks.eur", server, nil},
		{"/topic/stocks.eur", Identity{}, nil},
		{"/topic/chat", client, nil},
		{"/queue/audit", client, ErrReadOnly},
		{"/queue/audit", server, nil},
		{"/app/admin", client, ErrReadOnly},
		{"/app/admin", server, nil},
	}
	for _, tt := range tests {
		t.Run(tt.dest+" from "+tt.sender.Name, func(t *testing.T) {
			b := New(Options{Policies: []DestinationPolicy{
				{Pattern: "/topic/stocks.#", ReadOnly: true, LastValue: true},
				{Pattern: "/queue/audit", ReadOnly: true},
				{Pattern: "/app/admin", ReadOnly: true},
			}})
			handled := 0
			b.HandleApp("/app/admin", func(*Message) error { handled++; return nil })
			r := &recorder{}
			if tt.dest != "/app/admin" {
				subscribe(t, b, tt.dest, r, SubscribeOptions{})
			}
			m := &Message{Destination: tt.dest, Sender: tt.sender}
			err := b.Publish(m)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			accepted := len(r.deliveries()) + handled
			if tt.err != nil {
				if want := `destination "` + tt.dest + `" is read-only`; err.Error() != want {
					t.Fatalf("error text %q, want %q", err, want)
				}
				if accepted != 0 || m.ID != "" {
					t.Fatalf("refused message was routed (%d) or stamped (id %q)", accepted, m.ID)
				}
				if st := b.Stats(); st.RetainedMessages != 0 || st.QueuedMessages != 0 {
					t.Fatalf("refused message kept: %+v", st)
				}
				return
			}
			if accepted != 1 {
				t.Fatalf("accepted message reached %d places, want 1", accepted)
			}
		})
	}
}

// TestReadOnlyQueueNotCreated checks that a refused publish to a queue that
// does not exist yet leaves no queue behind.
func TestReadOnlyQueueNotCreated(t *testing.T) {
	b := New(Options{Policies: []DestinationPolicy{{Pattern: "/queue/#", ReadOnly: true}}})
	err := b.Publish(&Message{Destination: "/queue/x", Sender: Identity{Session: "s"}})
	if !errors.Is(err, ErrReadOnly) {
		t.Fatalf("err = %v", err)
	}
	if _, _, ok := b.QueueDepth("/queue/x"); ok {
		t.Fatal("refused publish created the queue")
	}
}

func TestPolicyResolution(t *testing.T) {
	b := New(Options{
		MaxQueueDepth: 7,
		MaxQueueBytes: 70,
		Policies: []DestinationPolicy{
			{Pattern: "/topic/stocks.#", SlowConsumer: PolicyConflate, LastValue: true},
			{Pattern: "/topic/chat.*", SlowConsumer: PolicyDropOldest, MaxPending: 5, History: 20, LastValue: true},
			{Pattern: "/topic/#", History: -1, MaxPending: -3},
			{Pattern: "/queue/big", MaxQueueDepth: 9, MaxQueueBytes: 90},
		},
	})
	tests := []struct {
		dest string
		want resolvedPolicy
	}{
		{"/topic/stocks.eur", resolvedPolicy{slowConsumer: PolicyConflate, maxPending: DefaultMaxPending, retain: 1, maxQueueDepth: 7, maxQueueBytes: 70}},
		{"/topic/chat.lobby", resolvedPolicy{slowConsumer: PolicyDropOldest, maxPending: 5, retain: 20, history: true, maxQueueDepth: 7, maxQueueBytes: 70}},
		{"/topic/news", resolvedPolicy{maxPending: DefaultMaxPending, maxQueueDepth: 7, maxQueueBytes: 70}},
		{"/queue/q", resolvedPolicy{maxPending: DefaultMaxPending, maxQueueDepth: 7, maxQueueBytes: 70}},
		{"/queue/big", resolvedPolicy{maxPending: DefaultMaxPending, maxQueueDepth: 9, maxQueueBytes: 90}},
	}
	for _, tt := range tests {
		t.Run(tt.dest, func(t *testing.T) {
			if got := *b.resolvePolicy(tt.dest); got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			if k, _ := ParseDestination(tt.dest); k != KindTopic {
				return
			}
			for range 2 { // resolved and cached, then from the cache
				if got := *b.topicPolicy(tt.dest); got != tt.want {
					t.Fatalf("topic lookup got %+v, want %+v", got, tt.want)
				}
			}
		})
	}
}

// TestPolicyCacheBounded publishes to many destinations nobody subscribes to
// and checks that their cached policies stay bounded and still apply.
func TestPolicyCacheBounded(t *testing.T) {
	b := New(Options{Policies: []DestinationPolicy{{Pattern: "/topic/ro.#", ReadOnly: true}}})
	client := Identity{Session: "s"}
	for i := range 3 * shardCount * policyCacheLimit / 2 {
		dest := "/topic/rw." + strconv.Itoa(i)
		if err := b.Publish(&Message{Destination: dest, Sender: client}); err != nil {
			t.Fatal(err)
		}
	}
	cached := 0
	for i := range b.shards {
		if n := len(b.shards[i].policies); n > policyCacheLimit {
			t.Fatalf("shard %d caches %d policies", i, n)
		}
		cached += len(b.shards[i].policies)
	}
	if cached == 0 {
		t.Fatal("nothing cached")
	}
	for range 2 {
		if err := b.Publish(&Message{Destination: "/topic/ro.x", Sender: client}); !errors.Is(err, ErrReadOnly) {
			t.Fatalf("err = %v, want ErrReadOnly (from the slow path, then from the cache)", err)
		}
	}
}
