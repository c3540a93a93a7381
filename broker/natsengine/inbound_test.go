package natsengine

import (
	"bytes"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/stompd/stompd/broker"
)

// remoteBatchOf is a batch of msgs as node origin sends it, with sequence number seq.
func remoteBatchOf(origin string, seq uint64, msgs ...*broker.Message) []byte {
	p := []byte{backplaneWire}
	p = appendString(p, origin)
	p = binary.AppendUvarint(p, seq)
	p = binary.AppendUvarint(p, uint64(len(msgs)))
	for _, m := range msgs {
		p = binary.AppendUvarint(p, m.Offset)
		p = appendMessageLen(p, m)
	}
	return p
}

// What waits for delivery is bounded by bytes: while the receiver is stuck, batches of about 1 MiB
// (the server's max_payload) are held up to the inbound byte budget, and the rest are dropped and
// counted, not held by the thousand.
func TestClusterInboundBoundedByBytes(t *testing.T) {
	url := startNATS(t)
	c := joinCluster(t, url, "b")
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	defer unblock() // before Close, which waits for the receiving goroutine
	var delivered atomic.Int64
	c.SetReceiver(func(*broker.Message) error {
		<-release
		delivered.Add(1)
		return nil
	})
	if err := c.Watch("/topic/big"); err != nil {
		t.Fatal(err)
	}
	pub, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	const sent = 64
	body := make([]byte, 1000<<10) // with its batch's header, within the server's 1 MiB
	for i := range sent {
		m := &broker.Message{ID: "m", Destination: "/topic/big", Published: time.Now(), Body: body}
		if err := pub.Publish("t.big", remoteBatchOf("other/1", uint64(i+1), m)); err != nil {
			t.Fatal(err)
		}
		if err := pub.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "every batch at the node", func() bool { return c.nc.Stats().InMsgs >= sent })
	waitUntil(t, "batches dropped while the receiver is stuck", func() bool { return c.Stats().Dropped > 0 })
	unblock()
	waitUntil(t, "every batch delivered or dropped", func() bool {
		return uint64(delivered.Load())+c.Stats().Dropped == sent
	})
	// 32 MiB of batches of 1000 KiB, the one being delivered, and what NATS handed over meanwhile.
	if n := delivered.Load(); n > 40 {
		t.Errorf("%d batches of 1000 KiB held for delivery", n)
	}
}

// A message of a batch of several does not keep the batch's payload alive: its body is its own.
// A batch of one may keep its payload (the message's size anyway).
func TestClusterBatchBodiesAreCopied(t *testing.T) {
	url := startNATS(t)
	c := joinCluster(t, url, "b")
	var mu sync.Mutex
	var got []*broker.Message
	c.SetReceiver(func(m *broker.Message) error {
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
		return nil
	})
	if err := c.Watch("/topic/m"); err != nil {
		t.Fatal(err)
	}
	pub, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	const size = 64 << 10
	var msgs []*broker.Message
	for i := range 3 {
		msgs = append(msgs, &broker.Message{ID: string(rune('a' + i)), Destination: "/topic/m", Published: time.Now(),
			Header: []broker.Header{{Name: "k", Value: "v"}}, Body: bytes.Repeat([]byte{byte('a' + i)}, size)})
	}
	if err := pub.Publish("t.m", remoteBatchOf("other/1", 1, msgs...)); err != nil {
		t.Fatal(err)
	}
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "three messages", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 3 })
	mu.Lock()
	defer mu.Unlock()
	for i, m := range got {
		if !bytes.Equal(m.Body, msgs[i].Body) || m.ID != msgs[i].ID || len(m.Header) != 1 || m.Header[0].Value != "v" {
			t.Errorf("message %d: %q, %d bytes, headers %v", i, m.ID, len(m.Body), m.Header)
		}
		// A body sliced from the payload reaches to its end, through the messages after it.
		if cap(m.Body) >= len(m.Body)+size/2 {
			t.Errorf("message %d: a body of %d bytes in %d: it shares the batch", i, len(m.Body), cap(m.Body))
		}
	}
}

// Dropped is the sum over the node's subscriptions of what NATS dropped for each, including
// subscriptions that have since ended.
func TestClusterDroppedSumsSubscriptions(t *testing.T) {
	url := startNATS(t)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// A node whose receiving goroutines do not run, and whose channel takes one message: NATS
	// drops the rest.
	c := &Cluster{nc: nc, in: make(chan *nats.Msg, 1), watched: make(map[string]*watchedSubject)}
	for _, dest := range []string{"/topic/a", "/topic/b"} {
		if err := c.Watch(dest); err != nil {
			t.Fatal(err)
		}
	}
	pub, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	publish := func(subject string, n int) {
		for range n {
			if err := pub.Publish(subject, []byte{backplaneWire}); err != nil {
				t.Fatal(err)
			}
		}
		if err := pub.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	c.mu.Lock()
	subA, subB := c.watched["t.a"].sub, c.watched["t.b"].sub
	c.mu.Unlock()
	droppedBy := func(sub *nats.Subscription) int {
		n, _ := sub.Dropped()
		return n
	}
	publish("t.a", 20)
	publish("t.b", 30)
	waitUntil(t, "49 dropped", func() bool { return droppedBy(subA)+droppedBy(subB) == 49 })
	if a, b := droppedBy(subA), droppedBy(subB); a != 19 || b != 30 {
		t.Fatalf("dropped %d and %d, want 19 and 30", a, b)
	}
	if got := c.Stats().Dropped; got != 49 {
		t.Errorf("Dropped %d, want 49", got)
	}
	c.Unwatch("/topic/a")
	waitUntil(t, "t.a unsubscribed", func() bool { return c.Stats().Subjects == 1 })
	publish("t.b", 5)
	waitUntil(t, "5 more dropped", func() bool { return droppedBy(subB) == 35 })
	if got := c.Stats().Dropped; got != 54 {
		t.Errorf("Dropped %d after t.a ended and 5 more on t.b, want 54", got)
	}
}
