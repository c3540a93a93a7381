package natsengine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/stompd/stompd/broker"
)

func TestMain(m *testing.M) {
	// The server's access-time ticker is process-wide and ends a moment after the last file store
	// closes, which Shutdown does not wait for.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server/ats.Register.func1"),
		// TestTransactionIsAtomic leaves a batch uncommitted when it stops the server, as a process that
		// dies in the middle of a COMMIT does; the server keeps the batch's staging store, and its two
		// goroutines, past its shutdown.
		goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server.(*msgBlock).flushLoop"),
		goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server.(*fileStore).flushStreamStateLoop"))
}

// consumer is a queue subscriber that records what it gets and never refuses.
type consumer struct {
	mu  sync.Mutex
	got []broker.Delivery
}

func (c *consumer) Deliver(_ *broker.Subscription, d broker.Delivery) broker.DeliverResult {
	c.mu.Lock()
	c.got = append(c.got, d)
	c.mu.Unlock()
	return broker.Delivered
}

func (c *consumer) Evict(*broker.Subscription, error) {}

// wait returns the first n deliveries, failing the test if they do not come within 10 s.
func (c *consumer) wait(t testing.TB, n int) []broker.Delivery {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		if len(c.got) >= n {
			got := append([]broker.Delivery(nil), c.got[:n]...)
			c.mu.Unlock()
			return got
		}
		c.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t.Fatalf("%d deliveries within 10 s, want %d", len(c.got), n)
	return nil
}

func (c *consumer) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got)
}

func start(t *testing.T, dir string) *Engine {
	t.Helper()
	e, err := Start(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func publish(t *testing.T, b *broker.Broker, dest string, bodies ...string) {
	t.Helper()
	for _, body := range bodies {
		m := &broker.Message{Destination: dest, Body: []byte(body), Header: []broker.Header{{Name: "x-n", Value: body}}}
		if err := b.Publish(m); err != nil {
			t.Fatalf("publish %q: %v", body, err)
		}
	}
}

func bodies(ds []broker.Delivery) string {
	var s []string
	for _, d := range ds {
		b := string(d.Message.Body)
		if d.Redelivered {
			b += "*"
		}
		s = append(s, b)
	}
	return strings.Join(s, " ")
}

func TestDirectoryOwnership(t *testing.T) {
	dir := t.TempDir()
	start(t, dir)
	_, err := Start(Config{Dir: dir})
	if !errors.Is(err, ErrDirInUse) || !strings.Contains(err.Error(), fmt.Sprintf("process %d", os.Getpid())) {
		t.Fatalf("second Start on %s: %v, want ErrDirInUse naming this process", dir, err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Start(Config{Dir: filepath.Join(file, "data")}); err == nil || !strings.Contains(err.Error(), "cannot be created") {
		t.Fatalf("Start under a file: %v", err)
	}
}

// TestQueueAcrossRestarts: what was acknowledged is gone after a restart; what was delivered and not
// acknowledged comes back marked redelivered; what was never delivered comes back unmarked; in order.
func TestQueueAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	e := start(t, dir)
	b := broker.New(broker.Options{Store: e})
	publish(t, b, "/queue/jobs", "1", "2", "3", "4", "5")
	c := &consumer{}
	sub, err := b.Subscribe("/queue/jobs", c, broker.SubscribeOptions{AckMode: broker.AckClientIndividual, Prefetch: 2})
	if err != nil {
		t.Fatal(err)
	}
	got := c.wait(t, 2)
	if bodies(got) != "1 2" || got[0].Message.Header[0] != (broker.Header{Name: "x-n", Value: "1"}) {
		t.Fatalf("first deliveries %q, headers %v", bodies(got), got[0].Message.Header)
	}
	if err := b.Ack(sub, got[0].Tag, false); err != nil {
		t.Fatal(err)
	}
	got = c.wait(t, 3) // the ACK made room for message 3
	if ready, unacked, _ := b.QueueDepth("/queue/jobs"); ready != 2 || unacked != 2 {
		t.Fatalf("depth %d ready, %d unacked; want 2, 2", ready, unacked)
	}
	// The process ends without acknowledging 2 and 3.
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	e2 := start(t, dir)
	b2 := broker.New(broker.Options{Store: e2})
	c2 := &consumer{}
	if _, err := b2.Subscribe("/queue/jobs", c2, broker.SubscribeOptions{AckMode: broker.AckAuto}); err != nil {
		t.Fatal(err)
	}
	if got := bodies(c2.wait(t, 4)); got != "2* 3* 4 5" {
		t.Fatalf("after the restart: %q, want 2* 3* 4 5 (* = redelivered)", got)
	}
	time.Sleep(50 * time.Millisecond)
	if n := c2.count(); n != 4 {
		t.Fatalf("%d deliveries after the restart, want 4", n)
	}
	// Auto-ack took them for good.
	e2.Close()
	e3 := start(t, dir)
	b3 := broker.New(broker.Options{Store: e3})
	if ready, _, _ := b3.QueueDepth("/queue/jobs"); ready != 0 {
		c3 := &consumer{}
		b3.Subscribe("/queue/jobs", c3, broker.SubscribeOptions{})
		time.Sleep(100 * time.Millisecond)
		t.Fatalf("%d ready after everything was taken: %q", ready, bodies(c3.got))
	}
}

func TestQueueDepthBoundCountsTheStore(t *testing.T) {
	e := start(t, t.TempDir())
	b := broker.New(broker.Options{Store: e, MaxQueueDepth: 3})
	publish(t, b, "/queue/small", "a", "b", "c")
	err := b.Publish(&broker.Message{Destination: "/queue/small", Body: []byte("d")})
	var full *broker.QueueFullError
	if !errors.As(err, &full) || full.Limit != 3 {
		t.Fatalf("fourth publish: %v, want the queue full at 3", err)
	}
}

func TestCodecRoundTrip(t *testing.T) {
	m := &broker.Message{ID: "n-1", Destination: "/queue/x", Body: []byte{0, 1, 2, 0xff},
		Header: []broker.Header{{Name: "a", Value: "1"}, {Name: "a", Value: "2"}, {Name: "content-type", Value: "text/plain"}}, Published: time.Unix(1, 2)}
	back, err := decodeMessage(encodeMessage(m))
	if err != nil {
		t.Fatal(err)
	}
	if back.ID != m.ID || back.Destination != m.Destination || string(back.Body) != string(m.Body) ||
		!back.Published.Equal(m.Published) || len(back.Header) != 3 || back.Header[1] != m.Header[1] {
		t.Fatalf("decoded %+v", back)
	}
	for _, bad := range [][]byte{nil, {2}, {1, 200}, encodeMessage(m)[:5]} {
		if _, err := decodeMessage(bad); err == nil {
			t.Errorf("%x decoded", bad)
		}
	}
}

func TestNames(t *testing.T) {
	for dest, want := range map[string]string{
		"/queue/jobs":       "q.jobs",
		"/queue/a.b":        "q.a%2Eb",
		"/queue/x y*>":      "q.x%20y%2A%3E",
		"/queue/ünï":        "q.%C3%BCn%C3%AF",
		"/queue/with-dash_": "q.with-dash_",
	} {
		if got := queueSubject(dest); got != want {
			t.Errorf("queueSubject(%q) = %q, want %q", dest, got, want)
		}
	}
	if a, b := queueConsumer("/queue/a.b"), queueConsumer("/queue/a%2Eb"); a == b || len(a) != 34 || strings.ContainsAny(a, ".*> /") {
		t.Errorf("consumer names %q %q", a, b)
	}
}

// TestTransactionIsAtomic: a transaction's messages to stored queues are stored together or not at all:
// a refusal refuses the whole batch, and a batch whose commit never came (the process died half-way)
// is not stored.
func TestTransactionIsAtomic(t *testing.T) {
	dir := t.TempDir()
	e := start(t, dir)
	b := broker.New(broker.Options{Store: e, MaxQueueDepth: 3})
	msg := func(dest, body string) *broker.Message {
		return &broker.Message{Destination: dest, Body: []byte(body)}
	}
	if i, err := b.PublishAll([]*broker.Message{msg("/queue/a", "a1"), msg("/topic/t", "t1"), msg("/queue/b", "b1"), msg("/queue/a", "a2")}); err != nil {
		t.Fatalf("PublishAll: message %d: %v", i, err)
	}
	// The third message to /queue/a would pass its depth of 3: none of the batch is stored.
	i, err := b.PublishAll([]*broker.Message{msg("/queue/b", "b2"), msg("/queue/a", "a3"), msg("/queue/a", "a4")})
	var full *broker.QueueFullError
	if !errors.As(err, &full) || i != 2 {
		t.Fatalf("PublishAll past a bound: message %d: %v", i, err)
	}
	for dest, want := range map[string]int{"/queue/a": 2, "/queue/b": 1} {
		if ready, _, _ := b.QueueDepth(dest); ready != want {
			t.Errorf("%s holds %d, want %d: a refused transaction stored part of itself", dest, ready, want)
		}
	}
	// A batch that never commits, as from a process killed half-way, stores nothing.
	for seq := 1; seq <= 2; seq++ {
		nm := nats.NewMsg(queueSubject("/queue/a"))
		nm.Data = encodeMessage(msg("/queue/a", "half"))
		nm.Header.Set(batchIDHeader, "never-committed")
		nm.Header.Set(batchSeqHeader, strconv.Itoa(seq))
		if err := e.nc.PublishMsg(nm); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	e.Close()

	e2 := start(t, dir)
	b2 := broker.New(broker.Options{Store: e2})
	c := &consumer{}
	for _, dest := range []string{"/queue/a", "/queue/b"} {
		if _, err := b2.Subscribe(dest, c, broker.SubscribeOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	c.wait(t, 3)
	time.Sleep(100 * time.Millisecond)
	got := map[string]bool{}
	for _, d := range c.got {
		got[string(d.Message.Body)] = true
	}
	if len(c.got) != 3 || !got["a1"] || !got["a2"] || !got["b1"] {
		t.Fatalf("after a restart: %q, want a1 a2 b1 only", bodies(c.got))
	}
}

// TestRetainedAcrossRestarts: last values and histories kept by the store come back in a new broker,
// as its policies say.
func TestRetainedAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	policies := []broker.DestinationPolicy{{Pattern: "/topic/lv.*", LastValue: true}, {Pattern: "/topic/h.*", History: 3}}
	e, err := Start(Config{Dir: dir, RetainedPerDestination: 3})
	if err != nil {
		t.Fatal(err)
	}
	b := broker.New(broker.Options{Store: e, Retained: e, Policies: policies})
	publish(t, b, "/topic/lv.a", "a1", "a2")
	publish(t, b, "/topic/h.x", "x1", "x2", "x3", "x4")
	publish(t, b, "/topic/plain", "not retained")
	e.Close()

	e2, err := Start(Config{Dir: dir, RetainedPerDestination: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	b2 := broker.New(broker.Options{Store: e2, Retained: e2, Policies: policies})
	for dest, want := range map[string]string{"/topic/lv.a": "a2", "/topic/h.x": "x2 x3 x4", "/topic/plain": ""} {
		var got []string
		for _, m := range b2.RetainedMessages(dest) {
			got = append(got, string(m.Body))
		}
		if strings.Join(got, " ") != want {
			t.Errorf("%s retains %q after the restart, want %q", dest, got, want)
		}
	}
	// Policies decide again: a destination that retains less now keeps the newest.
	e2.Close()
	e3, err := Start(Config{Dir: dir, RetainedPerDestination: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer e3.Close()
	b3 := broker.New(broker.Options{Retained: e3, Policies: []broker.DestinationPolicy{{Pattern: "/topic/h.*", LastValue: true}}})
	if got := b3.RetainedMessages("/topic/h.x"); len(got) != 1 || string(got[0].Body) != "x4" {
		t.Errorf("with a last-value policy: %d retained", len(got))
	}
	if got := b3.RetainedMessages("/topic/lv.a"); got != nil {
		t.Errorf("a destination no policy retains any more retains %d", len(got))
	}
}
