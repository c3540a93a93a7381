package broker

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// eventLog records observer events as "+dest" and "-dest".
type eventLog struct {
	mu  sync.Mutex
	evs []string
}

func (l *eventLog) observe(ev SubscriptionEvent) {
	sign := "-"
	if ev.Subscribed {
		sign = "+"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evs = append(l.evs, sign+ev.Subscription.Destination())
}

func (l *eventLog) events() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.evs)
}

func TestObserveEvents(t *testing.T) {
	tests := []struct {
		pattern string
		want    []string
	}{
		{"/topic/chat.#", []string{"+/topic/chat.lobby", "+/topic/chat.#", "-/topic/chat.lobby", "-/topic/chat.#"}},
		// A wildcard subscription's destination is matched word by word
		// like any other: to the observer's '*', its '#' is one word.
		{"/topic/chat.*", []string{"+/topic/chat.lobby", "+/topic/chat.#", "-/topic/chat.lobby", "-/topic/chat.#"}},
		{"/topic/chat.lobby", []string{"+/topic/chat.lobby", "-/topic/chat.lobby"}},
		{"/queue/#", []string{"+/queue/jobs", "-/queue/jobs"}},
		{"/reply-queue/*", []string{"+/reply-queue/r1", "-/reply-queue/r1"}},
		{"#", []string{"+/topic/chat.lobby", "+/topic/news", "+/queue/jobs", "+/topic/chat.#", "+/reply-queue/r1",
			"-/topic/chat.lobby", "-/topic/news", "-/queue/jobs", "-/topic/chat.#", "-/reply-queue/r1"}},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			b := New(Options{})
			var log eventLog
			stop := b.Observe(tt.pattern, log.observe)
			if err := b.DeclareReplyQueue("/reply-queue/r1", Identity{}); err != nil {
				t.Fatal(err)
			}
			var subs []*Subscription
			for _, d := range []string{"/topic/chat.lobby", "/topic/news", "/queue/jobs", "/topic/chat.#", "/reply-queue/r1"} {
				subs = append(subs, subscribe(t, b, d, &recorder{}, SubscribeOptions{}))
			}
			for _, s := range subs[:4] {
				b.Unsubscribe(s)
				b.Unsubscribe(s) // no second event
			}
			if err := b.DeleteQueue("/reply-queue/r1"); err != nil {
				t.Fatal(err)
			}
			b.Unsubscribe(subs[4]) // already ended by DeleteQueue: no second event
			if got := log.events(); !slices.Equal(got, tt.want) {
				t.Fatalf("events %q, want %q", got, tt.want)
			}
			stop()
			stop() // idempotent
			subscribe(t, b, "/topic/chat.lobby", &recorder{}, SubscribeOptions{})
			if got := log.events(); len(got) != len(tt.want) {
				t.Fatalf("event after stop: %q", got[len(tt.want):])
			}
		})
	}
}

// TestObserveAfterEviction checks that an evicted subscription is reported
// removed once, when its owner unsubscribes.
func TestObserveAfterEviction(t *testing.T) {
	b := New(Options{})
	var log eventLog
	b.Observe("#", log.observe)
	slow := &recorder{refusing: true}
	sub := subscribe(t, b, "/topic/a", slow, SubscribeOptions{})
	publish(t, b, "/topic/a", "x")
	if len(slow.evictions()) != 1 {
		t.Fatal("not evicted")
	}
	if got := log.events(); !slices.Equal(got, []string{"+/topic/a"}) {
		t.Fatalf("eviction reported as an event: %q", got)
	}
	b.Unsubscribe(sub)
	if got := log.events(); !slices.Equal(got, []string{"+/topic/a", "-/topic/a"}) {
		t.Fatalf("events %q", got)
	}
}

// TestObserveSeesLiveSubscription checks that the callback runs once the
// subscription has had its retained messages and receives live ones, and
// that it may publish and deliver without deadlock: a presence service.
func TestObserveSeesLiveSubscription(t *testing.T) {
	for _, dest := range []string{"/topic/chat.lobby", "/topic/chat.*"} {
		t.Run(dest, func(t *testing.T) {
			b := New(Options{Policies: []DestinationPolicy{{Pattern: "/topic/chat.#", History: 2}}})
			publish(t, b, "/topic/chat.lobby", "old")
			var (
				mu      sync.Mutex
				members []string
				errs    []error
			)
			b.Observe("/topic/chat.#", func(ev SubscriptionEvent) {
				name := ev.Subscription.Owner().Name
				mu.Lock()
				if ev.Subscribed {
					members = append(members, name)
				} else {
					members = slices.DeleteFunc(members, func(m string) bool { return m == name })
				}
				list := strings.Join(members, ",")
				mu.Unlock()
				if ev.Subscribed {
					// The joiner alone gets the member list.
					if err := b.DeliverTo(ev.Subscription, &Message{Destination: "/topic/chat.lobby", Body: []byte("members:" + list)}); err != nil {
						errs = append(errs, err)
					}
				}
				if err := b.Publish(&Message{Destination: "/topic/chat.lobby", Body: []byte(fmt.Sprintf("%s joined=%v", name, ev.Subscribed))}); err != nil {
					errs = append(errs, err)
				}
			})
			alice, bob := &recorder{}, &recorder{}
			subscribe(t, b, dest, alice, SubscribeOptions{Owner: Identity{Session: "1", Name: "alice"}})
			bobSub := subscribe(t, b, dest, bob, SubscribeOptions{Owner: Identity{Session: "2", Name: "bob"}})
			b.Unsubscribe(bobSub)
			if len(errs) != 0 {
				t.Fatal(errs)
			}
			// History first, then the member list (to the joiner alone, and
			// not retained), then the live announcements.
			if got, want := alice.bodies(), []string{"old", "members:alice", "alice joined=true", "bob joined=true", "bob joined=false"}; !slices.Equal(got, want) {
				t.Fatalf("alice got %q, want %q", got, want)
			}
			if got, want := bob.bodies(), []string{"old", "alice joined=true", "members:alice,bob", "bob joined=true"}; !slices.Equal(got, want) {
				t.Fatalf("bob got %q, want %q", got, want)
			}
		})
	}
}

func TestDeliverTo(t *testing.T) {
	b := New(Options{})
	r1, r2, rp := &recorder{}, &recorder{}, &recorder{}
	s1 := subscribe(t, b, "/topic/room", r1, SubscribeOptions{})
	subscribe(t, b, "/topic/room", r2, SubscribeOptions{})
	subscribe(t, b, "/topic/#", rp, SubscribeOptions{})
	m := &Message{Destination: "/topic/room", Body: []byte("just you")}
	if err := b.DeliverTo(s1, m); err != nil {
		t.Fatal(err)
	}
	if got := r1.bodies(); !slices.Equal(got, []string{"just you"}) {
		t.Fatalf("target got %q", got)
	}
	if len(r2.deliveries())+len(rp.deliveries()) != 0 {
		t.Fatalf("others got %q and %q", r2.bodies(), rp.bodies())
	}
	if m.ID == "" || m.Kind != KindTopic || m.Published.IsZero() {
		t.Fatalf("message not filled in: %+v", m)
	}
}

func TestDeliverToErrors(t *testing.T) {
	tests := []struct {
		name  string
		sub   string
		dest  string
		setup func(b *Broker, s *Subscription, r *recorder)
		err   error
	}{
		{"queue subscription", "/queue/q", "/topic/a", nil, ErrInvalidDestination},
		{"queue message", "/topic/a", "/queue/q", nil, ErrInvalidDestination},
		{"wildcard destination", "/topic/a", "/topic/*", nil, ErrInvalidDestination},
		{"unknown destination", "/topic/a", "/nowhere", nil, ErrUnknownDestination},
		{"unsubscribed", "/topic/a", "/topic/a", func(b *Broker, s *Subscription, _ *recorder) { b.Unsubscribe(s) }, ErrNoRoute},
		{"evicted by this delivery", "/topic/a", "/topic/a", func(_ *Broker, _ *Subscription, r *recorder) { r.setRefusing(true) }, ErrNoRoute},
		{"refused but closed", "/topic/a", "/topic/a", func(_ *Broker, _ *Subscription, r *recorder) {
			r.mu.Lock()
			r.refusing, r.refuse = true, Closed
			r.mu.Unlock()
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New(Options{})
			r := &recorder{}
			sub := subscribe(t, b, tt.sub, r, SubscribeOptions{})
			if tt.setup != nil {
				tt.setup(b, sub, r)
			}
			if err := b.DeliverTo(sub, &Message{Destination: tt.dest}); !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
		})
	}
}

// TestDeliverToPolicyAndAck checks that DeliverTo applies the destination's
// slow-consumer policy and tracks acknowledgements like a publish, and that
// nothing it delivers is retained.
func TestDeliverToPolicyAndAck(t *testing.T) {
	b := New(Options{Policies: []DestinationPolicy{{Pattern: "#", SlowConsumer: PolicyConflate, LastValue: true}}})
	r := &recorder{refusing: true}
	sub := subscribe(t, b, "/topic/p", r, SubscribeOptions{AckMode: AckClientIndividual})
	for _, body := range []string{"1", "2"} {
		if err := b.DeliverTo(sub, &Message{Destination: "/topic/p", Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}
	r.setRefusing(false)
	b.Resume(sub)
	got := r.deliveries()
	if len(got) != 1 || string(got[0].Message.Body) != "2" || got[0].Tag != 1 || sub.Unacked() != 1 {
		t.Fatalf("got %q (unacked %d)", r.bodies(), sub.Unacked())
	}
	if st := b.Stats(); st.Conflated != 1 || st.RetainedMessages != 0 {
		t.Fatalf("stats %+v", st)
	}
	late := &recorder{}
	subscribe(t, b, "/topic/p", late, SubscribeOptions{})
	if n := len(late.deliveries()); n != 0 {
		t.Fatalf("DeliverTo message retained: %q", late.bodies())
	}
}

// TestObserveConcurrent subscribes and unsubscribes from many goroutines
// while observers publish and deliver from their callbacks and come and go.
func TestObserveConcurrent(t *testing.T) {
	b := New(Options{Policies: []DestinationPolicy{{Pattern: "/topic/room.#", History: 3}}})
	var wg sync.WaitGroup
	done := make(chan struct{})
	for i := range 2 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				stop := b.Observe("/topic/room.*", func(ev SubscriptionEvent) {
					if ev.Subscribed {
						_ = b.DeliverTo(ev.Subscription, &Message{Destination: "/topic/room.hello"})
					}
					_ = b.Publish(&Message{Destination: fmt.Sprintf("/topic/room.%d", i)})
				})
				time.Sleep(100 * time.Microsecond)
				stop()
			}
		})
	}
	var subs sync.WaitGroup
	for i := range 4 {
		subs.Go(func() {
			for n := range 300 {
				sub, err := b.Subscribe(fmt.Sprintf("/topic/room.%d", (i+n)%3), &atomicCounter{}, SubscribeOptions{})
				if err != nil {
					panic(err)
				}
				b.Unsubscribe(sub)
			}
		})
	}
	finished := make(chan struct{})
	go func() { subs.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(60 * time.Second):
		t.Fatal("subscribers stalled: deadlock between observers and the broker")
	}
	close(done)
	wg.Wait()
	if st := b.Stats(); st.Subscriptions != 0 {
		t.Fatalf("stats %+v", st)
	}
}
