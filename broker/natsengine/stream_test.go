package natsengine

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stompd/stompd/broker"
)

func streamPolicies(limits broker.StreamLimits) []broker.DestinationPolicy {
	return []broker.DestinationPolicy{{Pattern: "/topic/log.#", Stream: true, StreamLimits: limits}}
}

// readStream subscribes to dest from `from` and returns the offsets and bodies of the first n
// messages.
func readStream(t *testing.T, b *broker.Broker, dest string, from broker.StreamStart, n int) ([]uint64, []string) {
	t.Helper()
	c := &consumer{}
	sub, err := b.Subscribe(dest, c, broker.SubscribeOptions{From: &from})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Unsubscribe(sub)
	var offsets []uint64
	var bodies []string
	for _, d := range c.wait(t, n) {
		offsets = append(offsets, d.Message.Offset)
		bodies = append(bodies, string(d.Message.Body))
	}
	return offsets, bodies
}

func TestStreamAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	e := start(t, dir)
	b := broker.New(broker.Options{Streams: e, Policies: streamPolicies(broker.StreamLimits{})})
	const total = 1500 // more than the broker keeps in memory, so reads go to the store
	for i := 1; i <= total; i++ {
		m := &broker.Message{Destination: "/topic/log.a", Body: []byte(strconv.Itoa(i)), Sender: broker.Identity{Session: "s", User: "alice"}}
		var err error
		if i%100 == 0 {
			err = b.Publish(m) // waits for the store
		} else {
			err = b.PublishNoWait(m, func(err error) { t.Errorf("append %d refused: %v", i, err) })
		}
		if err != nil {
			t.Fatal(err)
		}
		if m.Offset != uint64(i) {
			t.Fatalf("message %d has offset %d", i, m.Offset)
		}
	}
	if err := e.Sync(); err != nil {
		t.Fatal(err)
	}
	e.Close()

	e2 := start(t, dir)
	b2 := broker.New(broker.Options{Streams: e2, Policies: streamPolicies(broker.StreamLimits{})})
	offsets, bodies := readStream(t, b2, "/topic/log.a", broker.StreamStart{Kind: broker.StartFirst}, total)
	for i := range total {
		if offsets[i] != uint64(i+1) || bodies[i] != strconv.Itoa(i+1) {
			t.Fatalf("after the restart, message %d is offset %d body %q", i+1, offsets[i], bodies[i])
		}
	}
	if m := publishOne(t, b2, "/topic/log.a", "next"); m.Offset != total+1 {
		t.Errorf("the first message after the restart has offset %d, want %d", m.Offset, total+1)
	}
	got, _ := readStream(t, b2, "/topic/log.a", broker.StreamStart{Kind: broker.StartOffset, Offset: 700}, 3)
	if fmt.Sprint(got) != "[700 701 702]" {
		t.Errorf("offset=700 read %v", got)
	}
	got, _ = readStream(t, b2, "/topic/log.a", broker.StreamStart{Kind: broker.StartLast}, 1)
	if got[0] != total+1 {
		t.Errorf("last read %v", got)
	}
	// The user who sent a message survives the store, for the user-id header.
	c := &consumer{}
	sub, err := b2.Subscribe("/topic/log.a", c, broker.SubscribeOptions{From: &broker.StreamStart{Kind: broker.StartFirst}})
	if err != nil {
		t.Fatal(err)
	}
	if d := c.wait(t, 1)[0]; d.Message.Sender.User != "alice" {
		t.Errorf("read back with sender %+v", d.Message.Sender)
	}
	b2.Unsubscribe(sub)
}

func TestStreamLimitsAndSeek(t *testing.T) {
	e := start(t, t.TempDir())
	b := broker.New(broker.Options{Streams: e, Policies: streamPolicies(broker.StreamLimits{MaxMessages: 10})})
	for i := 1; i <= 2000; i++ {
		publishOne(t, b, "/topic/log.a", strconv.Itoa(i))
	}
	got, _ := readStream(t, b, "/topic/log.a", broker.StreamStart{Kind: broker.StartFirst}, 10)
	if got[0] != 1991 || got[9] != 2000 {
		t.Errorf("with max-messages 10, first read %v", got)
	}
	got, _ = readStream(t, b, "/topic/log.a", broker.StreamStart{Kind: broker.StartOffset, Offset: 5}, 1)
	if got[0] != 1991 {
		t.Errorf("offset=5, removed by the limit, starts at %d; want the oldest kept, 1991", got[0])
	}

	b2 := broker.New(broker.Options{Streams: e, Policies: streamPolicies(broker.StreamLimits{})})
	t0 := time.Now()
	publishOne(t, b2, "/topic/log.t", "before")
	time.Sleep(1100 * time.Millisecond)
	mark := time.Now().Truncate(time.Second).Add(time.Second)
	time.Sleep(time.Until(mark) + 10*time.Millisecond)
	publishOne(t, b2, "/topic/log.t", "after")
	_, bodies := readStream(t, b2, "/topic/log.t", broker.StreamStart{Kind: broker.StartTimestamp, Time: mark}, 1)
	if bodies[0] != "after" {
		t.Errorf("timestamp=%d (published %s) read %q first", mark.Unix(), t0, bodies[0])
	}
}

func publishOne(t *testing.T, b *broker.Broker, dest, body string) *broker.Message {
	t.Helper()
	m := &broker.Message{Destination: dest, Body: []byte(body)}
	if err := b.Publish(m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDurableSubscriptionAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	e := start(t, dir)
	opts := func() broker.Options { return broker.Options{Store: e, Durables: e} }
	b := broker.New(opts())
	owner := broker.Identity{Session: "s1", User: "alice"}
	sub, err := b.Subscribe("/topic/news.*", &consumer{}, broker.SubscribeOptions{Durable: "feed", Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	b.Unsubscribe(sub)
	publishOne(t, b, "/topic/news.a", "before")
	if err := e.Sync(); err != nil {
		t.Fatal(err)
	}
	e.Close()

	e = start(t, dir)
	b = broker.New(opts())
	// Published after the restart, before the subscriber is back: kept, as the subscription was made
	// again at start.
	publishOne(t, b, "/topic/news.b", "after")
	c := &consumer{}
	sub, err = b.Subscribe("/topic/news.*", c, broker.SubscribeOptions{Durable: "feed", Owner: owner, AckMode: broker.AckClientIndividual})
	if err != nil {
		t.Fatal(err)
	}
	got := c.wait(t, 2)
	if string(got[0].Message.Body) != "before" || string(got[1].Message.Body) != "after" {
		t.Errorf("got %q, %q", got[0].Message.Body, got[1].Message.Body)
	}
	if err := b.Ack(sub, got[0].Tag, false); err != nil {
		t.Fatal(err)
	}
	e.Close()

	// The unacknowledged one comes back, marked redelivered; then deleting the subscription removes it
	// and what it kept, for good.
	e = start(t, dir)
	b = broker.New(opts())
	c = &consumer{}
	if _, err := b.Subscribe("/topic/news.*", c, broker.SubscribeOptions{Durable: "feed", Owner: owner}); err != nil {
		t.Fatal(err)
	}
	if d := c.wait(t, 1)[0]; string(d.Message.Body) != "after" || !d.Redelivered {
		t.Errorf("after the second restart: %q redelivered %v", d.Message.Body, d.Redelivered)
	}
	if err := b.DeleteDurable("alice", "feed"); err != nil {
		t.Fatal(err)
	}
	publishOne(t, b, "/topic/news.c", "deleted")
	if u, err := e.Usage(); err != nil || u.Queues.Messages != 0 {
		t.Errorf("after DeleteDurable the store holds %d queue messages (%v)", u.Queues.Messages, err)
	}
	e.Close()
	e = start(t, dir)
	b = broker.New(opts())
	if n := b.Stats().DurableSubscriptions; n != 0 {
		t.Errorf("%d durable subscriptions restored after DeleteDurable", n)
	}
}

func TestStoredQueuePurgeAndRemove(t *testing.T) {
	e := start(t, t.TempDir())
	b := broker.New(broker.Options{Store: e})
	for i := range 5 {
		publishOne(t, b, "/queue/p", strconv.Itoa(i))
	}
	n, err := b.PurgeQueue("/queue/p")
	if err != nil || n != 5 {
		t.Fatalf("PurgeQueue = %d, %v", n, err)
	}
	if u, _ := e.Usage(); u.Queues.Messages != 0 {
		t.Errorf("the store holds %d after the purge", u.Queues.Messages)
	}
	publishOne(t, b, "/queue/p", "after")
	c := &consumer{}
	if _, err := b.Subscribe("/queue/p", c, broker.SubscribeOptions{}); err != nil {
		t.Fatal(err)
	}
	if d := c.wait(t, 1)[0]; string(d.Message.Body) != "after" {
		t.Errorf("after the purge got %q", d.Message.Body)
	}
	publishOne(t, b, "/queue/r", "x")
	if err := b.RemoveQueue("/queue/r"); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.QueueInfo("/queue/r"); ok {
		t.Error("the queue is still there")
	}
	waitUntil(t, "the removed queue's message gone from the store", func() bool {
		u, _ := e.Usage()
		return u.Queues.Messages == 0
	})
}
