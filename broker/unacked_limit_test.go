package broker

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// resumeAll is what a session does after settling: when the shared limit
// starved anyone, every subscription is resumed.
func resumeAll(b *Broker, l *UnackedLimit, subs ...*Subscription) {
	if l.TakeStarved() {
		for _, s := range subs {
			b.Resume(s)
		}
	}
}

func TestUnackedLimitAcrossQueues(t *testing.T) {
	b := New(Options{})
	limit := NewUnackedLimit(2)
	ra, rb := &recorder{}, &recorder{}
	opts := SubscribeOptions{AckMode: AckClientIndividual, UnackedLimit: limit}
	a := subscribe(t, b, "/queue/a", ra, opts)
	bs := subscribe(t, b, "/queue/b", rb, opts)
	publish(t, b, "/queue/a", "a0")
	publish(t, b, "/queue/a", "a1")
	publish(t, b, "/queue/b", "b0")
	publish(t, b, "/queue/a", "a2")
	if got := ra.bodies(); !slices.Equal(got, []string{"a0", "a1"}) {
		t.Fatalf("a got %q, want the first two", got)
	}
	if got := rb.bodies(); len(got) != 0 {
		t.Fatalf("b got %q over the shared limit", got)
	}
	if limit.Unacked() != 2 {
		t.Fatalf("Unacked() = %d", limit.Unacked())
	}
	if err := b.Ack(a, ra.deliveries()[0].Tag, false); err != nil {
		t.Fatal(err)
	}
	resumeAll(b, limit, a, bs)
	// One slot freed: exactly one more delivery, to whichever queue gets it first.
	if n := len(ra.bodies()) + len(rb.bodies()); n != 3 {
		t.Fatalf("%d deliveries after one ack, want 3", n)
	}
	b.Unsubscribe(a) // returns a's unacked messages to /queue/a
	resumeAll(b, limit, bs)
	if got := rb.bodies(); !slices.Equal(got, []string{"b0"}) {
		t.Fatalf("b got %q after a left", got)
	}
	if ready, unacked, _ := b.QueueDepth("/queue/a"); ready+unacked != 2 {
		t.Fatalf("/queue/a holds %d ready + %d unacked, want 2 left", ready, unacked)
	}
	if limit.Unacked() != 1 {
		t.Fatalf("Unacked() = %d after unsubscribe, want 1", limit.Unacked())
	}
	b.Unsubscribe(bs)
	if limit.Unacked() != 0 {
		t.Fatalf("Unacked() = %d with no subscriptions", limit.Unacked())
	}
}

func TestUnackedLimitCumulativeAckAndNack(t *testing.T) {
	b := New(Options{})
	limit := NewUnackedLimit(3)
	r := &recorder{}
	sub := subscribe(t, b, "/queue/c", r, SubscribeOptions{AckMode: AckClient, UnackedLimit: limit})
	for i := range 5 {
		publish(t, b, "/queue/c", fmt.Sprint(i))
	}
	if limit.Unacked() != 3 || len(r.bodies()) != 3 {
		t.Fatalf("unacked %d, delivered %d; want 3, 3", limit.Unacked(), len(r.bodies()))
	}
	if err := b.Ack(sub, r.deliveries()[1].Tag, true); err != nil { // acks 0 and 1
		t.Fatal(err)
	}
	if got := r.bodies(); !slices.Equal(got, []string{"0", "1", "2", "3", "4"}) {
		t.Fatalf("after a cumulative ack got %q", got)
	}
	if err := b.Nack(sub, r.last(t).Tag, true); err != nil {
		t.Fatal(err)
	}
	// The three nacked messages come straight back, redelivered.
	if limit.Unacked() != 3 {
		t.Fatalf("Unacked() = %d after nack and redelivery", limit.Unacked())
	}
}

func TestUnackedLimitOnTopicCountsAsFallingBehind(t *testing.T) {
	b := New(Options{})
	limit := NewUnackedLimit(2)
	rq, rt := &recorder{}, &recorder{}
	subscribe(t, b, "/queue/q", rq, SubscribeOptions{AckMode: AckClientIndividual, UnackedLimit: limit})
	subscribe(t, b, "/topic/t", rt, SubscribeOptions{AckMode: AckClient, UnackedLimit: limit})
	publish(t, b, "/queue/q", "q0")
	publish(t, b, "/topic/t", "t0")
	publish(t, b, "/topic/t", "t1")
	if got := rt.bodies(); !slices.Equal(got, []string{"t0"}) {
		t.Fatalf("topic got %q", got)
	}
	if ev := rt.evictions(); len(ev) != 1 || !errors.Is(ev[0], ErrSlowConsumer) {
		t.Fatalf("evictions %v, want one slow consumer", ev)
	}
}

func TestUnackedLimitIgnoredForAutoAck(t *testing.T) {
	b := New(Options{})
	limit := NewUnackedLimit(1)
	r := &recorder{}
	subscribe(t, b, "/queue/auto", r, SubscribeOptions{UnackedLimit: limit})
	for i := range 3 {
		publish(t, b, "/queue/auto", fmt.Sprint(i))
	}
	if len(r.bodies()) != 3 || limit.Unacked() != 0 {
		t.Fatalf("auto-ack delivered %d, unacked %d", len(r.bodies()), limit.Unacked())
	}
	if NewUnackedLimit(0) != nil {
		t.Fatal("NewUnackedLimit(0) is not nil")
	}
}

// Consumers acknowledge from several goroutines while a producer publishes
// to two queues; every message must arrive once, and the limit must never be
// exceeded or left stuck.
func TestUnackedLimitConcurrentAcks(t *testing.T) {
	b := New(Options{})
	const limitN, perQueue = 4, 2000
	limit := NewUnackedLimit(limitN)
	type consumer struct {
		sub  *Subscription
		acks chan uint64
	}
	var (
		mu       sync.Mutex
		got      = map[string]int{} // deliveries of each message, by destination and body
		maxSeen  int
		subs     []*Subscription
		cons     []*consumer
		finished = make(chan struct{})
	)
	for _, q := range []string{"/queue/x", "/queue/y"} {
		c := &consumer{acks: make(chan uint64, perQueue*2)}
		s := &chanSubscriber{deliver: func(d Delivery) {
			mu.Lock()
			key := d.Message.Destination + " " + string(d.Message.Body)
			got[key]++
			maxSeen = max(maxSeen, limit.Unacked()) // room for d is already reserved
			if got[key] == 1 && len(got) == 2*perQueue {
				close(finished)
			}
			mu.Unlock()
			c.acks <- d.Tag
		}}
		c.sub = subscribe(t, b, q, s, SubscribeOptions{AckMode: AckClientIndividual, UnackedLimit: limit})
		subs = append(subs, c.sub)
		cons = append(cons, c)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for _, c := range cons {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case tag := <-c.acks:
					if err := b.Ack(c.sub, tag, false); err != nil {
						t.Error(err)
						return
					}
					resumeAll(b, limit, subs...)
				case <-stop:
					return
				}
			}
		}()
	}
	for i := range perQueue {
		publish(t, b, "/queue/x", fmt.Sprint(i))
		publish(t, b, "/queue/y", fmt.Sprint(i))
	}
	select {
	case <-finished:
	case <-time.After(30 * time.Second):
		mu.Lock()
		t.Errorf("stuck after %d of %d messages delivered, %d unacked", len(got), 2*perQueue, limit.Unacked())
		mu.Unlock()
	}
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for _, q := range []string{"/queue/x", "/queue/y"} {
		for i := range perQueue {
			if n := got[q+" "+fmt.Sprint(i)]; n != 1 {
				t.Errorf("%s message %d delivered %d times, want once", q, i, n)
			}
		}
	}
	if maxSeen > limitN {
		t.Fatalf("saw %d unacked, over the limit of %d", maxSeen, limitN)
	}
}

// chanSubscriber hands each delivery to a function; it always accepts.
type chanSubscriber struct{ deliver func(Delivery) }

func (c *chanSubscriber) Deliver(_ *Subscription, d Delivery) DeliverResult {
	c.deliver(d)
	return Delivered
}

func (c *chanSubscriber) Evict(*Subscription, error) {}
