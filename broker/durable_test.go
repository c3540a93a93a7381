package broker

import (
	"errors"
	"slices"
	"strconv"
	"testing"
)

func durableOpts(name, user string) SubscribeOptions {
	return SubscribeOptions{Durable: name, Owner: Identity{Session: "s-" + user, User: user}}
}

func TestDurableKeepsWhileAway(t *testing.T) {
	b := New(Options{})
	r := &recorder{}
	sub := subscribe(t, b, "/topic/news", r, durableOpts("d1", "alice"))
	publish(t, b, "/topic/news", "1")
	b.Unsubscribe(sub)
	publish(t, b, "/topic/news", "2")
	publish(t, b, "/topic/news", "3")
	if st := b.Stats(); st.DurableSubscriptions != 1 || st.QueuedMessages != 2 {
		t.Errorf("while away: %d durable subscriptions, %d messages kept; want 1 and 2", st.DurableSubscriptions, st.QueuedMessages)
	}
	r2 := &recorder{}
	sub2 := subscribe(t, b, "/topic/news", r2, durableOpts("d1", "alice"))
	publish(t, b, "/topic/news", "4")
	if got := r2.bodies(); !slices.Equal(got, []string{"2", "3", "4"}) {
		t.Errorf("back: got %v, want [2 3 4]", got)
	}
	if got := r.bodies(); !slices.Equal(got, []string{"1"}) {
		t.Errorf("first subscription got %v", got)
	}

	// Another user's subscription of the same name is another durable subscription.
	r3 := &recorder{}
	subscribe(t, b, "/topic/news", r3, durableOpts("d1", "bob"))
	publish(t, b, "/topic/news", "5")
	if got := r3.bodies(); !slices.Equal(got, []string{"5"}) {
		t.Errorf("bob's d1 got %v", got)
	}
	if _, err := b.Subscribe("/topic/other", &recorder{}, durableOpts("d1", "alice")); !errors.Is(err, ErrDurableMismatch) {
		t.Errorf("d1 on another destination: %v, want ErrDurableMismatch", err)
	}

	if err := b.DeleteDurable("alice", "d1"); err != nil {
		t.Fatal(err)
	}
	publish(t, b, "/topic/news", "6")
	if got := r2.bodies(); len(got) != 4 || got[3] != "5" {
		t.Errorf("after DeleteDurable the subscription got %v", got)
	}
	if err := b.DeleteDurable("alice", "d1"); !errors.Is(err, ErrNoDurable) {
		t.Errorf("deleting twice: %v", err)
	}
	b.Unsubscribe(sub2) // ended already: does nothing
	r4 := &recorder{}
	subscribe(t, b, "/topic/news", r4, durableOpts("d1", "alice"))
	if got := r4.bodies(); len(got) != 0 {
		t.Errorf("a new d1 got %v, kept by the deleted one", got)
	}
	if st := b.Stats(); st.DurableSubscriptions != 2 {
		t.Errorf("%d durable subscriptions, want 2", st.DurableSubscriptions)
	}
}

func TestDurableAcksAndPattern(t *testing.T) {
	b := New(Options{})
	r := &recorder{}
	opts := durableOpts("p", "")
	opts.AckMode, opts.Prefetch = AckClientIndividual, 2
	sub := subscribe(t, b, "/topic/prices.*", r, opts)
	for i := range 5 {
		publish(t, b, "/topic/prices.x"+strconv.Itoa(i), strconv.Itoa(i))
	}
	if got := r.bodies(); !slices.Equal(got, []string{"0", "1"}) {
		t.Fatalf("with prefetch 2: %v", got)
	}
	if err := b.Nack(sub, r.deliveries()[0].Tag, false); err != nil {
		t.Fatal(err)
	}
	if d := r.last(t); string(d.Message.Body) != "0" || !d.Redelivered {
		t.Errorf("after NACK: %q redelivered %v", d.Message.Body, d.Redelivered)
	}
	b.Unsubscribe(sub) // the unacknowledged go back to the durable subscription
	r2 := &recorder{}
	subscribe(t, b, "/topic/prices.*", r2, durableOpts("p", ""))
	if got := r2.bodies(); !slices.Equal(got, []string{"1", "0", "2", "3", "4"}) {
		t.Errorf("back: %v", got)
	}
}

func TestDurableBound(t *testing.T) {
	b := New(Options{Policies: []DestinationPolicy{{Pattern: "/topic/news", MaxQueueDepth: 2}}})
	sub := subscribe(t, b, "/topic/news", &recorder{}, durableOpts("d", ""))
	b.Unsubscribe(sub)
	live := &recorder{}
	subscribe(t, b, "/topic/news", live, SubscribeOptions{})
	for i := range 5 {
		publish(t, b, "/topic/news", strconv.Itoa(i))
	}
	if n := len(live.deliveries()); n != 5 {
		t.Errorf("a plain subscriber got %d of 5 beside a full durable subscription", n)
	}
	if st := b.Stats(); st.DroppedDurableFull != 3 {
		t.Errorf("DroppedDurableFull = %d, want 3", st.DroppedDurableFull)
	}
	r := &recorder{}
	subscribe(t, b, "/topic/news", r, durableOpts("d", ""))
	if got := r.bodies(); !slices.Equal(got, []string{"0", "1"}) {
		t.Errorf("kept %v; want the first 2 (newer ones are not kept past the bound)", got)
	}
}

// The binding of a durable subscription is the broker's own: it is not a subscription observers
// hear of (chat presence) or Stats counts.
func TestDurableBindingUnseen(t *testing.T) {
	b := New(Options{})
	var events []SubscriptionEvent
	b.Observe("/topic/#", func(e SubscriptionEvent) { events = append(events, e) })
	sub := subscribe(t, b, "/topic/room", &recorder{}, durableOpts("d", "u"))
	b.Unsubscribe(sub)
	if len(events) != 2 || !events[0].Subscribed || events[1].Subscribed {
		t.Errorf("observer events %+v, want the client's subscribe and unsubscribe only", events)
	}
	if st := b.Stats(); st.Subscriptions != 0 {
		t.Errorf("%d subscriptions counted with the subscriber away", st.Subscriptions)
	}
}
