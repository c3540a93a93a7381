package broker

import (
	"errors"
	"slices"
	"strconv"
	"testing"
)

func TestAdminViews(t *testing.T) {
	b := New(Options{Policies: []DestinationPolicy{{Pattern: "/topic/prices.*", LastValue: true}}})
	for i := range 3 {
		publish(t, b, "/queue/work", strconv.Itoa(i))
	}
	r := &recorder{}
	sub := subscribe(t, b, "/queue/work", r, SubscribeOptions{AckMode: AckClientIndividual, Prefetch: 1})
	subscribe(t, b, "/topic/news", &recorder{}, SubscribeOptions{})
	subscribe(t, b, "/topic/news", &recorder{}, SubscribeOptions{})
	publish(t, b, "/topic/prices.eur", "1.08")

	qs := b.Queues()
	if len(qs) != 1 {
		t.Fatalf("queues %+v", qs)
	}
	q := qs[0]
	if q.Destination != "/queue/work" || q.Kind != KindQueue || q.Ready != 2 || q.Unacked != 1 || q.Consumers != 1 ||
		q.Published != 3 || q.Delivered != 1 {
		t.Errorf("queue %+v", q)
	}
	if _, ok := b.QueueInfo("/queue/none"); ok {
		t.Error("a queue that does not exist")
	}
	topics := b.Topics()
	want := []TopicInfo{{Destination: "/topic/news", Subscribers: 2}, {Destination: "/topic/prices.eur", Retained: 1}}
	if !slices.Equal(topics, want) {
		t.Errorf("topics %+v, want %+v", topics, want)
	}

	n, err := b.PurgeQueue("/queue/work")
	if err != nil || n != 2 {
		t.Fatalf("PurgeQueue = %d, %v", n, err)
	}
	if q, _ := b.QueueInfo("/queue/work"); q.Ready != 0 || q.Unacked != 1 {
		t.Errorf("after the purge %+v: the unacknowledged one stays", q)
	}
	if err := b.Ack(sub, r.last(t).Tag, false); err != nil {
		t.Fatal(err)
	}
	if len(r.deliveries()) != 1 {
		t.Errorf("a purged message was delivered: %v", r.bodies())
	}
	if _, err := b.PurgeQueue("/queue/none"); !errors.Is(err, ErrNoRoute) {
		t.Errorf("purging nothing: %v", err)
	}

	publish(t, b, "/queue/work", "again")
	var events []SubscriptionEvent
	b.Observe("/queue/#", func(e SubscriptionEvent) { events = append(events, e) })
	if err := b.RemoveQueue("/queue/work"); err != nil {
		t.Fatal(err)
	}
	if len(b.Queues()) != 0 || len(events) != 1 || events[0].Subscribed {
		t.Errorf("after RemoveQueue: %+v, events %+v", b.Queues(), events)
	}
	if st := b.Stats(); st.Subscriptions != 2 {
		t.Errorf("%d subscriptions, want the 2 topic ones", st.Subscriptions)
	}
	b.Unsubscribe(sub) // ended already: nothing happens
	publish(t, b, "/queue/work", "a new queue")
	if q, ok := b.QueueInfo("/queue/work"); !ok || q.Ready != 1 || q.Published != 1 {
		t.Errorf("the queue made again: %+v %v", q, ok)
	}
	if err := b.RemoveQueue("/queue/none"); !errors.Is(err, ErrNoRoute) {
		t.Errorf("removing nothing: %v", err)
	}
}

func TestPublishReported(t *testing.T) {
	b := New(Options{Policies: []DestinationPolicy{{Pattern: "/topic/kept", LastValue: true}}})
	subscribe(t, b, "/topic/a.*", &recorder{}, SubscribeOptions{})
	subscribe(t, b, "/topic/a.b", &recorder{}, SubscribeOptions{})
	cases := []struct {
		dest string
		want PublishReport
	}{
		{"/topic/a.b", PublishReport{Deliveries: 2}},
		{"/topic/nobody", PublishReport{}},
		{"/topic/kept", PublishReport{Kept: true}},
		{"/queue/q", PublishReport{Queued: true}},
	}
	for _, c := range cases {
		got, err := b.PublishReported(&Message{Destination: c.dest, Body: []byte("x")})
		if err != nil || got != c.want || got.Routed() != (c.dest != "/topic/nobody") {
			t.Errorf("%s: %+v, %v; want %+v", c.dest, got, err, c.want)
		}
	}
	if _, err := b.PublishReported(&Message{Destination: "/nowhere"}); !errors.Is(err, ErrUnknownDestination) {
		t.Errorf("bad destination: %v", err)
	}
}
