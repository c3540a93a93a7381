package broker

import (
	"bytes"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A cursor held back because its session's shared UnackedLimit is full reads on when the owner,
// after an Ack on another subscription, follows the limit's protocol: TakeStarved, then Resume.
func TestStreamCursorResumesAfterUnackedLimit(t *testing.T) {
	b := streamBroker(StreamLimits{})
	for i := range 3 {
		publish(t, b, "/topic/log.a", strconv.Itoa(i))
	}
	limit := NewUnackedLimit(1)
	q := &recorder{}
	qs := subscribe(t, b, "/queue/q", q, SubscribeOptions{AckMode: AckClient, Prefetch: 10, UnackedLimit: limit})
	publish(t, b, "/queue/q", "q")
	if len(q.deliveries()) != 1 {
		t.Fatal("the queue subscription did not get its message")
	}
	r := &recorder{}
	cs := subscribe(t, b, "/topic/log.a", r, SubscribeOptions{AckMode: AckClient, Prefetch: 10, UnackedLimit: limit,
		From: &StreamStart{Kind: StartFirst}})
	if n := len(r.deliveries()); n != 0 {
		t.Fatalf("the cursor got %d messages with the shared limit full", n)
	}
	if err := b.Ack(qs, q.last(t).Tag, true); err != nil {
		t.Fatal(err)
	}
	if !limit.TakeStarved() {
		t.Fatal("the limit was not marked starved by the cursor")
	}
	b.Resume(qs)
	b.Resume(cs)
	if got := offsets(r.deliveries()); !slices.Equal(got, seq(1, 1)) {
		t.Fatalf("after Ack, TakeStarved and Resume the cursor got %v, want [1]", got)
	}
	if err := b.Ack(cs, r.last(t).Tag, true); err != nil {
		t.Fatal(err)
	}
	if got := offsets(r.deliveries()); !slices.Equal(got, seq(1, 2)) {
		t.Errorf("after its own Ack the cursor got %v, want [1 2]", got)
	}
}

// resumingSubscriber refuses its second message once, then calls Resume from inside the next
// Deliver, as a protocol layer's writer does when its buffer drains during a delivery.
type resumingSubscriber struct {
	recorder
	b       *Broker
	refused bool
	resumed bool
}

func (r *resumingSubscriber) Deliver(s *Subscription, d Delivery) DeliverResult {
	switch {
	case len(r.deliveries()) == 1 && !r.refused:
		r.refused = true
		return Full
	case r.refused && !r.resumed:
		r.resumed = true
		r.b.Resume(s)
	}
	return r.recorder.Deliver(s, d)
}

// After a refusal, a pump that is not a Resume's (here an Ack's) reads on; a Resume made while it
// runs must not leave the cursor marked waiting, or publishers would pass it over for good.
func TestStreamCursorReadsOnAfterResumeDuringAckPump(t *testing.T) {
	b := streamBroker(StreamLimits{})
	for i := range 3 {
		publish(t, b, "/topic/log.a", strconv.Itoa(i+1))
	}
	r := &resumingSubscriber{b: b}
	sub := subscribe(t, b, "/topic/log.a", r, SubscribeOptions{AckMode: AckClientIndividual, Prefetch: 100,
		From: &StreamStart{Kind: StartFirst}})
	if err := b.Ack(sub, r.last(t).Tag, false); err != nil {
		t.Fatal(err)
	}
	if got := offsets(r.deliveries()); !slices.Equal(got, seq(1, 3)) {
		t.Fatalf("after the Ack the cursor got %v", got)
	}
	publish(t, b, "/topic/log.a", "4")
	publish(t, b, "/topic/log.a", "5")
	if got := offsets(r.deliveries()); !slices.Equal(got, seq(1, 5)) {
		t.Errorf("after two more publishes the cursor got %v, want 1..5", got)
	}
}

// gatedStream is a fakeStream whose reads can be made to fail or come back empty, and whose Bounds
// can be held up once, after such an empty read.
type gatedStream struct {
	fakeStream
	emptyReads  atomic.Bool
	failReads   atomic.Bool
	readCalls   atomic.Int64
	holdBounds  atomic.Bool   // set by an empty read: the next Bounds waits for release
	inBounds    chan struct{} // closed when a held Bounds has started
	release     chan struct{} // closed to let a held Bounds return
	releaseOnce sync.Once
}

func newGatedStream() *gatedStream {
	return &gatedStream{fakeStream: fakeStream{first: 1}, inBounds: make(chan struct{}), release: make(chan struct{})}
}

func (g *gatedStream) OpenStream(string, StreamLimits) (StoredStream, error) { return g, nil }

func (g *gatedStream) Bounds() (uint64, uint64, error) {
	if g.holdBounds.CompareAndSwap(true, false) {
		close(g.inBounds)
		<-g.release
	}
	return g.fakeStream.Bounds()
}

func (g *gatedStream) Read(from uint64, max int) ([]*Message, error) {
	g.readCalls.Add(1)
	if g.failReads.Load() {
		return nil, errors.New("store down")
	}
	if g.emptyReads.CompareAndSwap(true, false) {
		g.holdBounds.Store(true)
		return nil, nil
	}
	return g.fakeStream.Read(from, max)
}

func (g *gatedStream) unblock() { g.releaseOnce.Do(func() { close(g.release) }) }

// A cursor's read that comes back empty asks the store for its bounds with no lock held, so that a
// slow store does not hold up the stream's publishers, which pump the cursor after each publish.
func TestStreamCursorStoreBoundsOutsideSubscriptionLock(t *testing.T) {
	store := newGatedStream()
	defer store.unblock()
	b := streamBroker(StreamLimits{}, func(o *Options) { o.Streams = store })
	for i := range streamCacheMessages + 10 {
		publish(t, b, "/topic/log.a", strconv.Itoa(i))
	}
	store.emptyReads.Store(true)
	r := &recorder{}
	sub := subscribe(t, b, "/topic/log.a", r, SubscribeOptions{From: &StreamStart{Kind: StartOffset, Offset: 1}})
	defer b.Unsubscribe(sub)
	select {
	case <-store.inBounds:
	case <-time.After(5 * time.Second):
		t.Fatal("the cursor never asked the store for its bounds")
	}
	published := make(chan struct{})
	go func() {
		defer close(published)
		publish(t, b, "/topic/log.a", "x")
	}()
	select {
	case <-published:
	case <-time.After(2 * time.Second):
		t.Error("a publish waited for a cursor's Bounds call")
	}
	store.unblock()
	<-published
	total := streamCacheMessages + 11
	deadline := time.Now().Add(10 * time.Second)
	for len(r.deliveries()) < total && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := offsets(r.deliveries()); !slices.Equal(got, seq(1, uint64(total))) {
		t.Errorf("got %d deliveries, not 1..%d in order", len(got), total)
	}
}

// A cursor whose store reads fail tries again ever less often, and logs the first failure of a run
// and the recovery, not every attempt.
func TestStreamCursorBacksOffWhileStoreFails(t *testing.T) {
	for failures, want := range map[int]time.Duration{1: 50 * time.Millisecond, 2: 100 * time.Millisecond,
		3: 200 * time.Millisecond, 6: 1600 * time.Millisecond, 7: streamReadRetryMax, 100: streamReadRetryMax} {
		if got := streamReadBackoff(failures); got != want {
			t.Errorf("streamReadBackoff(%d) = %v, want %v", failures, got, want)
		}
	}

	store := newGatedStream()
	var logs syncBuffer
	b := streamBroker(StreamLimits{}, func(o *Options) {
		o.Streams = store
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	for i := range streamCacheMessages + 10 {
		publish(t, b, "/topic/log.a", strconv.Itoa(i))
	}
	store.failReads.Store(true)
	r := &recorder{}
	sub := subscribe(t, b, "/topic/log.a", r, SubscribeOptions{From: &StreamStart{Kind: StartFirst}})
	defer b.Unsubscribe(sub)
	time.Sleep(500 * time.Millisecond)
	if n := store.readCalls.Load(); n > 5 {
		t.Errorf("%d reads in 500ms while the store failed: no backoff", n)
	}
	store.failReads.Store(false)
	total := streamCacheMessages + 10
	deadline := time.Now().Add(10 * time.Second)
	for len(r.deliveries()) < total && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := offsets(r.deliveries()); !slices.Equal(got, seq(1, uint64(total))) {
		t.Errorf("got %d deliveries after the store came back, not 1..%d in order", len(got), total)
	}
	text := logs.String()
	if n := strings.Count(text, "could not be read"); n != 1 {
		t.Errorf("%d failure lines logged, want 1:\n%s", n, text)
	}
	if n := strings.Count(text, "read from the store again"); n != 1 {
		t.Errorf("%d recovery lines logged, want 1:\n%s", n, text)
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// A cursor reads a stored stream only as far as the store has confirmed: a message the store
// refuses is never read, so the next message, which gets the refused one's offset, is not skipped.
func TestStreamCursorDoesNotSkipAfterRefusedAppend(t *testing.T) {
	store := &fakeStreams{}
	b := streamBroker(StreamLimits{}, func(o *Options) { o.Streams = store })
	publish(t, b, "/topic/log.a", "a")
	r := &recorder{}
	sub := subscribe(t, b, "/topic/log.a", r, SubscribeOptions{From: &StreamStart{Kind: StartFirst}})
	defer b.Unsubscribe(sub)
	s := store.streams["/topic/log.a"]
	s.mu.Lock()
	s.fail = errors.New("disk full")
	s.mu.Unlock()
	if err := b.Publish(&Message{Destination: "/topic/log.a", Body: []byte("refused")}); !errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("Publish with the store refusing = %v, want ErrStoreUnavailable", err)
	}
	s.mu.Lock()
	s.fail = nil
	s.mu.Unlock()
	publish(t, b, "/topic/log.a", "b")
	publish(t, b, "/topic/log.a", "c")
	if got, want := r.bodies(), []string{"a", "b", "c"}; !slices.Equal(got, want) {
		t.Errorf("the cursor read %v, want %v", got, want)
	}
	if got := offsets(r.deliveries()); !slices.Equal(got, seq(1, 3)) {
		t.Errorf("the cursor read offsets %v, want 1..3", got)
	}
}
