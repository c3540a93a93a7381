package natsengine

import (
	"sync"
	"testing"
	"time"

	"github.com/stompd/stompd/broker"
)

// A node that deletes a durable subscription and makes it again at once (UNSUBSCRIBE durable:true,
// then SUBSCRIBE with the same id) keeps the new one when the bucket's watch tells it of its own
// deletion afterwards, as it does in a cluster: the notices carry revisions, and the deletion is older
// than the new record. The notices are held back here until the subscription is made again, as a busy
// node's watch goroutine may be.
func TestWatchDurablesLateDeletionKeepsNewDurable(t *testing.T) {
	e := start(t, t.TempDir())
	b := broker.New(broker.Options{Store: e, Durables: e})
	var (
		mu      sync.Mutex
		notices []func()
	)
	err := e.WatchDurables(func(d broker.DurableSubscription, revision uint64) {
		mu.Lock()
		defer mu.Unlock()
		notices = append(notices, func() {
			if err := b.EnsureDurable(d, revision); err != nil {
				t.Errorf("EnsureDurable(%v, %d): %v", d, revision, err)
			}
		})
	}, func(user, name string, revision uint64) {
		mu.Lock()
		defer mu.Unlock()
		notices = append(notices, func() { b.ForgetDurable(user, name, revision) })
	})
	if err != nil {
		t.Fatal(err)
	}
	// The bucket keeps one change per key, so a watch that lags behind changes to a key is told only
	// the last: each change is waited for before the next is made.
	waitNotices := func(want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			n := len(notices)
			mu.Unlock()
			if n >= want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d notices from the watch within 10 s, want %d", n, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	owner := broker.Identity{Session: "s1", User: "alice"}
	opts := broker.SubscribeOptions{Durable: "feed", Owner: owner}
	if _, err := b.Subscribe("/topic/news", &consumer{}, opts); err != nil {
		t.Fatal(err)
	}
	waitNotices(1)
	if err := b.DeleteDurable("alice", "feed"); err != nil {
		t.Fatal(err)
	}
	waitNotices(2)
	c := &consumer{}
	if _, err := b.Subscribe("/topic/news", c, opts); err != nil {
		t.Fatal(err)
	}
	waitNotices(3)
	mu.Lock()
	for _, apply := range notices {
		apply()
	}
	mu.Unlock()
	if n := b.Stats().DurableSubscriptions; n != 1 {
		t.Fatalf("%d durable subscriptions after the late notices, want 1", n)
	}
	publishOne(t, b, "/topic/news", "kept")
	if got := c.wait(t, 1); string(got[0].Message.Body) != "kept" {
		t.Errorf("got %q, want kept", got[0].Message.Body)
	}
}

// A durable subscription to a stream destination keeps the offsets of the messages it keeps in the
// store, across a restart too: every MESSAGE of a stream destination carries x-stream-offset.
func TestDurableSubscriptionOnStreamKeepsOffsets(t *testing.T) {
	dir := t.TempDir()
	e := start(t, dir)
	opts := func() broker.Options {
		return broker.Options{Store: e, Durables: e, Streams: e, Policies: streamPolicies(broker.StreamLimits{})}
	}
	b := broker.New(opts())
	owner := broker.Identity{Session: "s1", User: "alice"}
	sub, err := b.Subscribe("/topic/log.a", &consumer{}, broker.SubscribeOptions{Durable: "feed", Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	b.Unsubscribe(sub)
	publishOne(t, b, "/topic/log.a", "one")
	publishOne(t, b, "/topic/log.a", "two")
	c := &consumer{}
	sub, err = b.Subscribe("/topic/log.a", c, broker.SubscribeOptions{Durable: "feed", Owner: owner, AckMode: broker.AckClientIndividual})
	if err != nil {
		t.Fatal(err)
	}
	got := c.wait(t, 2)
	if got[0].Message.Offset != 1 || got[1].Message.Offset != 2 {
		t.Errorf("kept while away: offsets %d, %d, want 1, 2", got[0].Message.Offset, got[1].Message.Offset)
	}
	b.Unsubscribe(sub) // unacknowledged: kept
	if err := e.Sync(); err != nil {
		t.Fatal(err)
	}
	e.Close()

	e = start(t, dir)
	b = broker.New(opts())
	c = &consumer{}
	if _, err := b.Subscribe("/topic/log.a", c, broker.SubscribeOptions{Durable: "feed", Owner: owner}); err != nil {
		t.Fatal(err)
	}
	got = c.wait(t, 2)
	if got[0].Message.Offset != 1 || got[1].Message.Offset != 2 {
		t.Errorf("after a restart: offsets %d, %d, want 1, 2", got[0].Message.Offset, got[1].Message.Offset)
	}
}
