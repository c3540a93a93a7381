package broker

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestQueueRoundRobin(t *testing.T) {
	b := New(Options{})
	r1, r2 := &recorder{}, &recorder{}
	subscribe(t, b, "/queue/work", r1, SubscribeOptions{})
	subscribe(t, b, "/queue/work", r2, SubscribeOptions{})
	for i := range 6 {
		publish(t, b, "/queue/work", fmt.Sprint(i))
	}
	if got := r1.bodies(); !slices.Equal(got, []string{"0", "2", "4"}) {
		t.Fatalf("consumer 1 got %q", got)
	}
	if got := r2.bodies(); !slices.Equal(got, []string{"1", "3", "5"}) {
		t.Fatalf("consumer 2 got %q", got)
	}
	if ready, unacked, ok := b.QueueDepth("/queue/work"); !ok || ready != 0 || unacked != 0 {
		t.Fatalf("QueueDepth = %d, %d, %v", ready, unacked, ok)
	}
}

func TestQueueHoldsMessagesWithoutConsumer(t *testing.T) {
	b := New(Options{})
	for i := range 5 {
		publish(t, b, "/queue/later", fmt.Sprint(i))
	}
	if ready, _, ok := b.QueueDepth("/queue/later"); !ok || ready != 5 {
		t.Fatalf("ready %d, ok %v; want 5 held", ready, ok)
	}
	if st := b.Stats(); st.Queues != 1 || st.QueuedMessages != 5 || st.DroppedNoRoute != 0 {
		t.Fatalf("stats %+v", st)
	}
	r := &recorder{}
	sub := subscribe(t, b, "/queue/later", r, SubscribeOptions{})
	if got := r.bodies(); !slices.Equal(got, []string{"0", "1", "2", "3", "4"}) {
		t.Fatalf("new consumer got %q", got)
	}
	if sub.Kind() != KindQueue {
		t.Fatalf("Kind() = %v", sub.Kind())
	}
	if ready, _, _ := b.QueueDepth("/queue/later"); ready != 0 {
		t.Fatalf("ready %d after delivery", ready)
	}
	b.Unsubscribe(sub)
	if _, _, ok := b.QueueDepth("/queue/later"); !ok {
		t.Fatal("queue removed with its last consumer")
	}
	if _, _, ok := b.QueueDepth("/queue/never"); ok {
		t.Fatal("QueueDepth reports a queue nobody used")
	}
}

func TestQueueDepthLimit(t *testing.T) {
	tests := []struct {
		name  string
		opts  Options
		dest  string
		limit int
	}{
		{"broker limit", Options{MaxQueueDepth: 3}, "/queue/a", 3},
		{"policy override", Options{MaxQueueDepth: 3, Policies: []DestinationPolicy{{Pattern: "/queue/big.*", MaxQueueDepth: 5}}}, "/queue/big.one", 5},
		{"policy without depth uses broker limit", Options{MaxQueueDepth: 3, Policies: []DestinationPolicy{{Pattern: "/queue/#"}}}, "/queue/x", 3},
		{"reply queue", Options{MaxQueueDepth: 2}, "/reply-queue/r", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New(tt.opts)
			if err := b.DeclareReplyQueue("/reply-queue/r", Identity{}); err != nil {
				t.Fatal(err)
			}
			for i := range tt.limit {
				publish(t, b, tt.dest, fmt.Sprint(i))
			}
			err := b.Publish(&Message{Destination: tt.dest})
			if !errors.Is(err, ErrQueueFull) {
				t.Fatalf("publish beyond the limit: err = %v", err)
			}
			want := fmt.Sprintf("queue %q is full (%d messages)", tt.dest, tt.limit)
			if err.Error() != want {
				t.Fatalf("error text %q, want %q", err, want)
			}
			var qf *QueueFullError
			if !errors.As(err, &qf) || qf.Destination != tt.dest || qf.Limit != tt.limit {
				t.Fatalf("QueueFullError %+v", qf)
			}
			// A consumer drains one; there is room for exactly one more.
			r := &recorder{room: 1}
			sub := subscribe(t, b, tt.dest, r, SubscribeOptions{})
			publish(t, b, tt.dest, "fits")
			if err := b.Publish(&Message{Destination: tt.dest}); !errors.Is(err, ErrQueueFull) {
				t.Fatalf("err = %v", err)
			}
			b.Unsubscribe(sub)
		})
	}
}

// TestQueueByteLimit: a queue refuses a message that would take its ready messages' total size past
// MaxQueueBytes (or its policy's), naming the limit in bytes; delivered messages give their bytes
// back, requeued ones are never refused and take theirs again.
func TestQueueByteLimit(t *testing.T) {
	const dest = "/queue/bytes" // each message below: 12 bytes of destination and a 100-byte body
	body := strings.Repeat("x", 100)
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"broker limit", Options{MaxQueueBytes: 300}},
		{"policy override", Options{MaxQueueBytes: 10, Policies: []DestinationPolicy{{Pattern: "/queue/#", MaxQueueBytes: 300}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := New(tc.opts)
			for range 2 {
				publish(t, b, dest, body) // 224 bytes
			}
			err := b.Publish(&Message{Destination: dest, Body: []byte(body)}) // 336 > 300
			var qf *QueueFullError
			if !errors.As(err, &qf) || !errors.Is(err, ErrQueueFull) || !qf.Bytes || qf.Limit != 300 {
				t.Fatalf("publish past the byte limit: %v (%+v)", err, qf)
			}
			if want := `queue "/queue/bytes" is full (300 bytes)`; err.Error() != want {
				t.Fatalf("error text %q, want %q", err, want)
			}
			publish(t, b, dest, "small") // 17 bytes still fit: 241
			if ready, _, _ := b.QueueDepth(dest); ready != 3 {
				t.Fatalf("ready %d, want 3", ready)
			}
			// A client-ack consumer takes all three: the bytes are free for new messages...
			r := &recorder{}
			sub := subscribe(t, b, dest, r, SubscribeOptions{AckMode: AckClientIndividual})
			publish(t, b, dest, body)
			publish(t, b, dest, body)
			// ... and come back with the unacknowledged messages, over the limit: they were accepted.
			r.setRefusing(true)
			b.Unsubscribe(sub)
			if ready, _, _ := b.QueueDepth(dest); ready != 5 {
				t.Fatalf("ready %d after the consumer left, want all 5 back", ready)
			}
			if err := b.Publish(&Message{Destination: dest, Body: []byte("x")}); !errors.Is(err, ErrQueueFull) {
				t.Fatalf("publish to a queue over its byte limit: %v", err)
			}
			// Draining gives every byte back: the limit holds exactly again.
			drained := &recorder{}
			drainSub := subscribe(t, b, dest, drained, SubscribeOptions{})
			if n := len(drained.deliveries()); n != 5 {
				t.Fatalf("drained %d, want 5", n)
			}
			b.Unsubscribe(drainSub)
			for range 2 {
				publish(t, b, dest, body)
			}
			if err := b.Publish(&Message{Destination: dest, Body: []byte(body)}); !errors.Is(err, ErrQueueFull) {
				t.Fatalf("after draining, the third 112-byte message: %v, want the queue full again", err)
			}
		})
	}
}

func TestQueueFullHeldUntilResume(t *testing.T) {
	b := New(Options{})
	r := &recorder{room: 2}
	sub := subscribe(t, b, "/queue/q", r, SubscribeOptions{})
	for i := range 5 {
		publish(t, b, "/queue/q", fmt.Sprint(i))
	}
	if got := r.bodies(); !slices.Equal(got, []string{"0", "1"}) {
		t.Fatalf("got %q before Resume", got)
	}
	if ready, _, _ := b.QueueDepth("/queue/q"); ready != 3 {
		t.Fatalf("ready %d, want 3 held", ready)
	}
	b.Resume(sub) // still no room: nothing changes, nothing lost
	if got := r.bodies(); len(got) != 2 {
		t.Fatalf("got %q", got)
	}
	r.setRoom(0)
	b.Resume(sub)
	if got := r.bodies(); !slices.Equal(got, []string{"0", "1", "2", "3", "4"}) {
		t.Fatalf("after Resume got %q", got)
	}
	if len(r.evictions()) != 0 {
		t.Fatal("queue consumer evicted")
	}
	b.Resume(sub) // nothing pending: harmless
}

func TestQueueFullGoesToNextConsumer(t *testing.T) {
	for _, refuse := range []DeliverResult{Full, Closed} {
		t.Run(refuse.String(), func(t *testing.T) {
			b := New(Options{})
			busy := &recorder{refusing: true, refuse: refuse}
			idle := &recorder{}
			busySub := subscribe(t, b, "/queue/q", busy, SubscribeOptions{})
			subscribe(t, b, "/queue/q", idle, SubscribeOptions{})
			for i := range 4 {
				publish(t, b, "/queue/q", fmt.Sprint(i))
			}
			if got := idle.bodies(); !slices.Equal(got, []string{"0", "1", "2", "3"}) {
				t.Fatalf("idle consumer got %q", got)
			}
			busy.setRefusing(false)
			publish(t, b, "/queue/q", "4")
			if len(busy.deliveries()) != 0 {
				t.Fatal("blocked consumer served before Resume")
			}
			b.Resume(busySub)
			publish(t, b, "/queue/q", "5")
			publish(t, b, "/queue/q", "6")
			if len(busy.deliveries()) != 1 {
				t.Fatalf("resumed consumer got %q, want one of the two", busy.bodies())
			}
		})
	}
}

func TestQueueAck(t *testing.T) {
	tests := []struct {
		name       string
		mode       AckMode
		tag        uint64
		cumulative bool
		wantLeft   int
	}{
		{"client acks cumulatively", AckClient, 3, true, 1},
		{"client-individual acks one", AckClientIndividual, 3, false, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New(Options{})
			r := &recorder{}
			sub := subscribe(t, b, "/queue/q", r, SubscribeOptions{AckMode: tt.mode})
			for i := range 4 {
				publish(t, b, "/queue/q", fmt.Sprint(i))
			}
			for i, d := range r.deliveries() {
				if d.Tag != uint64(i+1) || d.Redelivered {
					t.Fatalf("delivery %d: %+v", i, d)
				}
			}
			if err := b.Ack(sub, tt.tag, tt.cumulative); err != nil {
				t.Fatal(err)
			}
			if sub.Unacked() != tt.wantLeft {
				t.Fatalf("Unacked() = %d, want %d", sub.Unacked(), tt.wantLeft)
			}
			if _, unacked, _ := b.QueueDepth("/queue/q"); unacked != tt.wantLeft {
				t.Fatalf("QueueDepth unacked %d", unacked)
			}
			if st := b.Stats(); st.UnackedMessages != tt.wantLeft {
				t.Fatalf("Stats.UnackedMessages %d", st.UnackedMessages)
			}
			for _, tag := range []uint64{tt.tag, 0, 99} {
				if err := b.Ack(sub, tag, false); !errors.Is(err, ErrUnknownTag) {
					t.Fatalf("Ack(%d): err = %v", tag, err)
				}
				if err := b.Nack(sub, tag, true); !errors.Is(err, ErrUnknownTag) {
					t.Fatalf("Nack(%d): err = %v", tag, err)
				}
			}
		})
	}
}

func TestQueueAutoModeHasNoTags(t *testing.T) {
	b := New(Options{})
	r := &recorder{}
	sub := subscribe(t, b, "/queue/q", r, SubscribeOptions{Prefetch: 1})
	publish(t, b, "/queue/q", "a")
	publish(t, b, "/queue/q", "b") // Prefetch is ignored in auto mode
	if d := r.deliveries(); len(d) != 2 || d[0].Tag != 0 {
		t.Fatalf("deliveries %+v", d)
	}
	if err := b.Ack(sub, 0, false); !errors.Is(err, ErrUnknownTag) {
		t.Fatalf("Ack in auto mode: %v", err)
	}
}

func TestQueueNackRequeuesToFront(t *testing.T) {
	tests := []struct {
		name       string
		mode       AckMode
		tag        uint64
		cumulative bool
		wantOther  []string
	}{
		// The second consumer already holds "3"; requeued messages follow in
		// their original order.
		{"individual", AckClientIndividual, 2, false, []string{"3", "1"}},
		{"cumulative", AckClient, 2, true, []string{"3", "0", "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New(Options{})
			first := &recorder{}
			sub := subscribe(t, b, "/queue/q", first, SubscribeOptions{AckMode: tt.mode, Prefetch: 2})
			publish(t, b, "/queue/q", "0")
			publish(t, b, "/queue/q", "1")
			publish(t, b, "/queue/q", "3") // held: prefetch is 2
			other := &recorder{}
			otherSub := subscribe(t, b, "/queue/q", other, SubscribeOptions{AckMode: AckClientIndividual})
			if got := other.bodies(); !slices.Equal(got, []string{"3"}) {
				t.Fatalf("second consumer got %q before the nack", got)
			}
			first.setRefusing(true)
			if err := b.Nack(sub, tt.tag, tt.cumulative); err != nil {
				t.Fatal(err)
			}
			got := other.deliveries()
			var bodies []string
			for _, d := range got {
				bodies = append(bodies, string(d.Message.Body))
			}
			if !slices.Equal(bodies, tt.wantOther) {
				t.Fatalf("second consumer got %q, want %q", bodies, tt.wantOther)
			}
			for _, d := range got[1:] {
				if !d.Redelivered {
					t.Fatalf("requeued %q not marked redelivered", d.Message.Body)
				}
			}
			if got[0].Redelivered {
				t.Fatal("first-time delivery marked redelivered")
			}
			b.Unsubscribe(otherSub)
		})
	}
}

func TestQueueNackBeforeOlderMessages(t *testing.T) {
	b := New(Options{})
	r := &recorder{}
	sub := subscribe(t, b, "/queue/q", r, SubscribeOptions{AckMode: AckClientIndividual, Prefetch: 1})
	publish(t, b, "/queue/q", "a")
	publish(t, b, "/queue/q", "b")
	if err := b.Nack(sub, 1, false); err != nil {
		t.Fatal(err)
	}
	d := r.last(t)
	if string(d.Message.Body) != "a" || !d.Redelivered || d.Tag != 2 {
		t.Fatalf("after nack got %+v, want a redelivered with tag 2", d)
	}
}

func TestQueueUnsubscribeRequeuesUnacked(t *testing.T) {
	b := New(Options{})
	leaving := &recorder{}
	sub := subscribe(t, b, "/queue/q", leaving, SubscribeOptions{AckMode: AckClient})
	for i := range 4 {
		publish(t, b, "/queue/q", fmt.Sprint(i))
	}
	if err := b.Ack(sub, 1, true); err != nil {
		t.Fatal(err)
	}
	b.Unsubscribe(sub)
	if ready, unacked, _ := b.QueueDepth("/queue/q"); ready != 3 || unacked != 0 {
		t.Fatalf("after Unsubscribe ready %d unacked %d; want 3, 0", ready, unacked)
	}
	if err := b.Ack(sub, 2, false); !errors.Is(err, ErrUnknownTag) {
		t.Fatalf("Ack after Unsubscribe: %v", err)
	}
	publish(t, b, "/queue/q", "4")
	next := &recorder{}
	subscribe(t, b, "/queue/q", next, SubscribeOptions{})
	got := next.deliveries()
	var bodies []string
	for _, d := range got {
		bodies = append(bodies, string(d.Message.Body))
		if d.Redelivered != (string(d.Message.Body) != "4") {
			t.Fatalf("%q redelivered = %v", d.Message.Body, d.Redelivered)
		}
	}
	if !slices.Equal(bodies, []string{"1", "2", "3", "4"}) {
		t.Fatalf("next consumer got %q", bodies)
	}
	if st := b.Stats(); st.Subscriptions != 1 {
		t.Fatalf("Subscriptions = %d", st.Subscriptions)
	}
}

func TestQueueRequeueIgnoresDepth(t *testing.T) {
	b := New(Options{MaxQueueDepth: 2})
	r := &recorder{}
	sub := subscribe(t, b, "/queue/q", r, SubscribeOptions{AckMode: AckClient, Prefetch: 3})
	for i := range 5 {
		publish(t, b, "/queue/q", fmt.Sprint(i)) // 3 in flight, 2 ready
	}
	b.Unsubscribe(sub)
	if ready, _, _ := b.QueueDepth("/queue/q"); ready != 5 {
		t.Fatalf("ready %d, want all 5 kept despite MaxQueueDepth 2", ready)
	}
	if err := b.Publish(&Message{Destination: "/queue/q"}); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("publish to an over-full queue: %v", err)
	}
}

func TestQueuePrefetch(t *testing.T) {
	tests := []struct {
		name     string
		opts     Options
		prefetch int
		want     int
	}{
		{"subscription prefetch", Options{}, 2, 2},
		{"broker default", Options{DefaultPrefetch: 3}, 0, 3},
		{"subscription overrides default", Options{DefaultPrefetch: 3}, 1, 1},
		{"unlimited", Options{}, 0, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New(tt.opts)
			r := &recorder{}
			sub := subscribe(t, b, "/queue/q", r, SubscribeOptions{AckMode: AckClientIndividual, Prefetch: tt.prefetch})
			for i := range 10 {
				publish(t, b, "/queue/q", fmt.Sprint(i))
			}
			if n := len(r.deliveries()); n != tt.want {
				t.Fatalf("%d in flight, want %d", n, tt.want)
			}
			if err := b.Ack(sub, 1, false); err != nil {
				t.Fatal(err)
			}
			want := min(tt.want+1, 10)
			if n := len(r.deliveries()); n != want {
				t.Fatalf("after one Ack %d delivered, want %d", n, want)
			}
		})
	}
}

func TestResumeCheapWhenIdle(t *testing.T) {
	b := New(Options{})
	sub := subscribe(t, b, "/queue/q", &recorder{}, SubscribeOptions{})
	tsub := subscribe(t, b, "/topic/t", &recorder{}, SubscribeOptions{})
	if n := testing.AllocsPerRun(100, func() { b.Resume(sub); b.Resume(tsub) }); n != 0 {
		t.Fatalf("Resume allocates %v times", n)
	}
}

// racingResumer answers Full once, but by the time it answers its owner has
// already made room and called Resume, as a session's writer goroutine might
// between Deliver's answer and the broker marking the subscription blocked.
// Calling Resume from Deliver is against the Subscriber contract; here it
// stands in for that concurrent call, which must not be lost.
type racingResumer struct {
	b     *Broker
	sub   *Subscription
	raced bool
	got   []string
}

func (r *racingResumer) Deliver(_ *Subscription, d Delivery) DeliverResult {
	if !r.raced {
		r.raced = true
		r.b.Resume(r.sub)
		return Full
	}
	r.got = append(r.got, string(d.Message.Body))
	return Delivered
}

func (r *racingResumer) Evict(*Subscription, error) {}

func TestResumeDuringFullAnswerNotLost(t *testing.T) {
	b := New(Options{})
	r := &racingResumer{b: b}
	r.sub = subscribe(t, b, "/queue/q", r, SubscribeOptions{})
	publish(t, b, "/queue/q", "m")
	if !r.raced || !slices.Equal(r.got, []string{"m"}) {
		t.Fatalf("got %q; the Resume that raced with Full was lost", r.got)
	}
}

// TestMaxDestinations: queues, reply queues and retaining topics count against MaxDestinations;
// creating one more is refused with the limit named and leaves nothing behind, while existing
// destinations and topics that hold nothing keep working, and a deleted reply queue frees its place.
func TestMaxDestinations(t *testing.T) {
	b := New(Options{MaxDestinations: 4, Policies: []DestinationPolicy{{Pattern: "/topic/lv.*", LastValue: true}}})
	publish(t, b, "/queue/a", "1")
	subscribe(t, b, "/queue/b", &recorder{}, SubscribeOptions{})
	publish(t, b, "/topic/lv.x", "1")
	if err := b.DeclareReplyQueue("/reply-queue/r", Identity{}); err != nil {
		t.Fatal(err)
	}
	refused := func(what string, err error) {
		t.Helper()
		var tm *TooManyDestinationsError
		if !errors.As(err, &tm) || !errors.Is(err, ErrTooManyDestinations) || tm.Limit != 4 {
			t.Fatalf("%s at the limit: %v", what, err)
		}
		if want := "too many destinations (limit 4)"; err.Error() != want {
			t.Fatalf("%s: error text %q, want %q", what, err, want)
		}
	}
	refused("publish to a new queue", b.Publish(&Message{Destination: "/queue/c"}))
	_, err := b.Subscribe("/queue/d", &recorder{}, SubscribeOptions{})
	refused("subscribe to a new queue", err)
	refused("declare a reply queue", b.DeclareReplyQueue("/reply-queue/s", Identity{}))
	refused("publish to a new retaining topic", b.Publish(&Message{Destination: "/topic/lv.y"}))
	for _, q := range []string{"/queue/c", "/queue/d", "/reply-queue/s"} {
		if _, _, ok := b.QueueDepth(q); ok {
			t.Fatalf("refused %s was created", q)
		}
	}
	if sh := b.shardFor("/topic/lv.y"); sh.topics["/topic/lv.y"] != nil {
		t.Fatal("a refused retaining publish left a topic entry behind")
	}
	if st := b.Stats(); st.Queues != 3 || st.Retained != 1 {
		t.Fatalf("stats %+v: want 3 queues and 1 retaining topic", st)
	}
	// Existing destinations, and topics that retain nothing, are not affected.
	publish(t, b, "/queue/a", "2")
	publish(t, b, "/topic/lv.x", "2")
	publish(t, b, "/topic/plain", "x")
	// A deleted reply queue gives its place back.
	if err := b.DeleteQueue("/reply-queue/r"); err != nil {
		t.Fatal(err)
	}
	publish(t, b, "/queue/c", "now")
	refused("publish to another new queue", b.Publish(&Message{Destination: "/queue/e"}))
}

// TestDestinationQuota: what one creator may create is bounded by its quota, whatever way it creates:
// publishing to a new queue or retaining topic, subscribing to a new queue, declaring a reply queue.
// Destinations that exist cost nothing, other creators are not affected, and a refusal for the
// broker-wide bound does not use up the creator's quota.
func TestDestinationQuota(t *testing.T) {
	b := New(Options{MaxDestinations: 5, Policies: []DestinationPolicy{{Pattern: "/topic/lv.*", LastValue: true}}})
	alice := Identity{Session: "a", Quota: NewDestinationQuota(3)}
	bob := Identity{Session: "b", Quota: NewDestinationQuota(3)}
	mustPublish := func(id Identity, dest string) {
		t.Helper()
		if err := b.Publish(&Message{Destination: dest, Sender: id}); err != nil {
			t.Fatalf("%s publishes to %s: %v", id.Session, dest, err)
		}
	}
	mustPublish(alice, "/queue/a1")
	if _, err := b.Subscribe("/queue/a2", &recorder{}, SubscribeOptions{Owner: alice}); err != nil {
		t.Fatal(err)
	}
	mustPublish(alice, "/topic/lv.a3")
	mustPublish(alice, "/queue/a1")    // exists: free
	mustPublish(alice, "/topic/plain") // holds nothing: free
	for what, err := range map[string]error{
		"publish": b.Publish(&Message{Destination: "/queue/a4", Sender: alice}),
		"retain":  b.Publish(&Message{Destination: "/topic/lv.a4", Sender: alice}),
		"declare": b.DeclareReplyQueue("/reply-queue/a4", alice),
		"subscribe": func() error {
			_, err := b.Subscribe("/queue/a5", &recorder{}, SubscribeOptions{Owner: alice})
			return err
		}(),
	} {
		var tm *TooManyDestinationsError
		if !errors.As(err, &tm) || !tm.PerCreator || tm.Limit != 3 || err.Error() != "too many destinations created (limit 3)" {
			t.Fatalf("alice's fourth creation by %s: %v", what, err)
		}
	}
	if got := alice.Quota.Created(); got != 3 {
		t.Fatalf("alice's quota counts %d, want 3", got)
	}
	mustPublish(bob, "/queue/b1")
	mustPublish(bob, "/queue/b2") // the broker is now at its bound of 5
	err := b.Publish(&Message{Destination: "/queue/b3", Sender: bob})
	var tm *TooManyDestinationsError
	if !errors.As(err, &tm) || tm.PerCreator || tm.Limit != 5 {
		t.Fatalf("creation past the broker-wide bound: %v", err)
	}
	if got := bob.Quota.Created(); got != 2 {
		t.Fatalf("a refusal for the broker-wide bound used bob's quota: %d, want 2", got)
	}
}

func TestMaxRetainedBytes(t *testing.T) {
	b := New(Options{MaxRetainedBytes: 3000, Policies: []DestinationPolicy{
		{Pattern: "/topic/lv.*", LastValue: true},
		{Pattern: "/topic/h.*", History: 2},
	}})
	body := strings.Repeat("x", 1000-len("/topic/lv.a"))
	publish(t, b, "/topic/lv.a", body) // 1000 bytes retained
	publish(t, b, "/topic/lv.b", body) // 2000
	sub := &recorder{}
	subscribe(t, b, "/topic/lv.c", sub, SubscribeOptions{})
	err := b.Publish(&Message{Destination: "/topic/lv.c", Body: []byte(body + body)})
	var rf *RetainedFullError
	if !errors.As(err, &rf) || !errors.Is(err, ErrRetainedFull) || rf.Limit != 3000 ||
		err.Error() != "retained messages limit reached (max-retained-bytes 3000)" {
		t.Fatalf("publish past the retained bound: %v", err)
	}
	if len(sub.deliveries()) != 0 {
		t.Fatal("a refused retaining publish was delivered")
	}
	// Replacing a retained message by one no larger always fits; so does one that fits the rest.
	publish(t, b, "/topic/lv.a", body[:10])
	publish(t, b, "/topic/lv.a", body)
	publish(t, b, "/topic/lv.c", body) // 3000
	if err := b.Publish(&Message{Destination: "/topic/h.x", Body: []byte("y")}); !errors.Is(err, ErrRetainedFull) {
		t.Fatalf("a new history past the bound: %v", err)
	}
	if st := b.Stats(); st.RetainedBytes != 3000 || b.retainedBytes.Load() != 3000 {
		t.Fatalf("retained bytes: Stats %d, counter %d; want 3000", st.RetainedBytes, b.retainedBytes.Load())
	}

	// A history frees its oldest message as it takes a new one.
	h := New(Options{MaxRetainedBytes: 100, Policies: []DestinationPolicy{{Pattern: "/topic/h.*", History: 2}}})
	for i := range 10 {
		publish(t, h, "/topic/h.x", strings.Repeat("z", 40-len("/topic/h.x")+i%2))
	}
	if st := h.Stats(); st.RetainedBytes != h.retainedBytes.Load() || st.RetainedBytes > 100 || st.RetainedMessages != 2 {
		t.Fatalf("history: Stats %d bytes in %d messages, counter %d", st.RetainedBytes, st.RetainedMessages, h.retainedBytes.Load())
	}
}
