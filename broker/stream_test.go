package broker

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func streamBroker(limits StreamLimits, opts ...func(*Options)) *Broker {
	o := Options{Policies: []DestinationPolicy{{Pattern: "/topic/log.#", Stream: true, StreamLimits: limits}}}
	for _, f := range opts {
		f(&o)
	}
	return New(o)
}

func offsets(ds []Delivery) []uint64 {
	var out []uint64
	for _, d := range ds {
		out = append(out, d.Message.Offset)
	}
	return out
}

func seq(from, to uint64) []uint64 {
	var out []uint64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func TestParseStreamStart(t *testing.T) {
	good := map[string]StreamStart{
		"first":                  StreamStart{Kind: StartFirst},
		"last":                   StreamStart{Kind: StartLast},
		"next":                   StreamStart{Kind: StartNext},
		"offset=0":               StreamStart{Kind: StartOffset},
		"offset=42":              StreamStart{Kind: StartOffset, Offset: 42},
		"timestamp=1700000000":   StreamStart{Kind: StartTimestamp, Time: time.Unix(1700000000, 0)},
		"timestamp=253402300799": StreamStart{Kind: StartTimestamp, Time: time.Unix(253402300799, 0)}, // 9999-12-31T23:59:59Z
	}
	for text, want := range good {
		got, err := ParseStreamStart(text)
		if err != nil || got.Kind != want.Kind || got.Offset != want.Offset || !got.Time.Equal(want.Time) {
			t.Errorf("ParseStreamStart(%q) = %+v, %v; want %+v", text, got, err, want)
		}
		if got.String() != text {
			t.Errorf("%q: String() = %q", text, got.String())
		}
	}
	for _, text := range []string{"", "First", "offset=", "offset=-1", "offset=x", "timestamp=-5", "timestamp=1.5",
		"timestamp=253402300800", "timestamp=9223372036854775807", "timestamp=99999999999999999999", "offset", "42", "next=1"} {
		if _, err := ParseStreamStart(text); !errors.Is(err, ErrInvalidStreamOffset) {
			t.Errorf("ParseStreamStart(%q) = %v, want ErrInvalidStreamOffset", text, err)
		}
	}
}

func TestStreamOffsetsAndStartingPoints(t *testing.T) {
	b := streamBroker(StreamLimits{})
	live := &recorder{}
	subscribe(t, b, "/topic/log.a", live, SubscribeOptions{})
	for i := range 5 {
		m := publish(t, b, "/topic/log.a", "m"+strconv.Itoa(i+1))
		if m.Offset != uint64(i+1) {
			t.Fatalf("message %d has offset %d", i+1, m.Offset)
		}
	}
	if got := offsets(live.deliveries()); !slices.Equal(got, seq(1, 5)) {
		t.Fatalf("live subscriber got offsets %v", got)
	}
	if m := publish(t, b, "/topic/other", "x"); m.Offset != 0 {
		t.Errorf("a message to a plain topic has offset %d", m.Offset)
	}

	cases := []struct {
		from StreamStart
		want []uint64
	}{
		{StreamStart{Kind: StartFirst}, seq(1, 6)},
		{StreamStart{Kind: StartLast}, seq(5, 6)},
		{StreamStart{Kind: StartNext}, seq(6, 6)},
		{StreamStart{Kind: StartOffset, Offset: 3}, seq(3, 6)},
		{StreamStart{Kind: StartOffset, Offset: 0}, seq(1, 6)},
		{StreamStart{Kind: StartOffset, Offset: 99}, seq(6, 6)},
		{StreamStart{Kind: StartTimestamp, Time: time.Now().Add(-time.Hour)}, seq(1, 6)},
		{StreamStart{Kind: StartTimestamp, Time: time.Now().Add(time.Hour)}, seq(6, 6)},
	}
	var recs []*recorder
	for _, c := range cases {
		r := &recorder{}
		recs = append(recs, r)
		from := c.from
		subscribe(t, b, "/topic/log.a", r, SubscribeOptions{From: &from})
	}
	publish(t, b, "/topic/log.a", "m6")
	for i, c := range cases {
		if got := offsets(recs[i].deliveries()); !slices.Equal(got, c.want) {
			t.Errorf("from %v: got offsets %v, want %v", c.from, got, c.want)
		}
	}
}

func TestStreamSubscribeErrors(t *testing.T) {
	b := streamBroker(StreamLimits{})
	first := &StreamStart{Kind: StartFirst}
	for _, dest := range []string{"/topic/plain", "/topic/log.*", "/topic/log.#", "/queue/log.a"} {
		if _, err := b.Subscribe(dest, &recorder{}, SubscribeOptions{From: first}); !errors.Is(err, ErrNotStream) {
			t.Errorf("Subscribe(%q, From first) = %v, want ErrNotStream", dest, err)
		}
	}
	if n := b.Stats().Subscriptions; n != 0 {
		t.Errorf("refused subscriptions left %d behind", n)
	}
}

// A stream subscription is paced by its subscriber's room: it is never evicted, and on Resume it
// reads on from where it stopped, with no gap and no duplicate, while publishing goes on.
func TestStreamPacedByRoom(t *testing.T) {
	b := streamBroker(StreamLimits{})
	r := &recorder{room: 3}
	from := StreamStart{Kind: StartFirst}
	sub := subscribe(t, b, "/topic/log.a", r, SubscribeOptions{From: &from})
	for i := range 10 {
		publish(t, b, "/topic/log.a", strconv.Itoa(i))
	}
	if got := offsets(r.deliveries()); !slices.Equal(got, seq(1, 3)) {
		t.Fatalf("got %v before Resume", got)
	}
	r.setRoom(7)
	b.Resume(sub)
	if got := offsets(r.deliveries()); !slices.Equal(got, seq(1, 7)) {
		t.Fatalf("got %v after the first Resume", got)
	}
	r.setRoom(0)
	b.Resume(sub)
	publish(t, b, "/topic/log.a", "10")
	if got := offsets(r.deliveries()); !slices.Equal(got, seq(1, 11)) {
		t.Fatalf("got %v at the end", got)
	}
	if len(r.evictions()) != 0 {
		t.Errorf("evicted: %v", r.evictions())
	}
	if next, ok := sub.StreamOffset(); !ok || next != 12 {
		t.Errorf("StreamOffset = %d, %v", next, ok)
	}
	b.Unsubscribe(sub)
	publish(t, b, "/topic/log.a", "after")
	if n := len(r.deliveries()); n != 11 {
		t.Errorf("delivered %d after Unsubscribe", n)
	}
}

func TestStreamClientAckWindow(t *testing.T) {
	b := streamBroker(StreamLimits{})
	for i := range 6 {
		publish(t, b, "/topic/log.a", strconv.Itoa(i))
	}
	r := &recorder{}
	from := StreamStart{Kind: StartFirst}
	sub := subscribe(t, b, "/topic/log.a", r, SubscribeOptions{From: &from, AckMode: AckClientIndividual, Prefetch: 2})
	if got := offsets(r.deliveries()); !slices.Equal(got, seq(1, 2)) {
		t.Fatalf("got %v with a window of 2", got)
	}
	if err := b.Ack(sub, r.deliveries()[0].Tag, false); err != nil {
		t.Fatal(err)
	}
	if got := offsets(r.deliveries()); !slices.Equal(got, seq(1, 3)) {
		t.Fatalf("got %v after one Ack", got)
	}
}

func TestStreamLimits(t *testing.T) {
	t.Run("messages", func(t *testing.T) {
		b := streamBroker(StreamLimits{MaxMessages: 3})
		for i := range 10 {
			publish(t, b, "/topic/log.a", strconv.Itoa(i))
		}
		r := &recorder{}
		subscribe(t, b, "/topic/log.a", r, SubscribeOptions{From: &StreamStart{Kind: StartOffset, Offset: 2}})
		if got := offsets(r.deliveries()); !slices.Equal(got, seq(8, 10)) {
			t.Errorf("got %v, want the 3 kept", got)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		b := streamBroker(StreamLimits{MaxBytes: 100})
		for i := range 10 {
			publish(t, b, "/topic/log.a", fmt.Sprintf("%020d", i)) // 20 + 12 bytes each
		}
		r := &recorder{}
		subscribe(t, b, "/topic/log.a", r, SubscribeOptions{From: &StreamStart{Kind: StartFirst}})
		if got := offsets(r.deliveries()); !slices.Equal(got, seq(8, 10)) {
			t.Errorf("got %v, want the 3 that fit in 100 bytes", got)
		}
	})
	t.Run("age", func(t *testing.T) {
		b := streamBroker(StreamLimits{MaxAge: time.Hour})
		old := &Message{Destination: "/topic/log.a", Body: []byte("old"), Published: time.Now().Add(-2 * time.Hour)}
		if err := b.Publish(old); err != nil {
			t.Fatal(err)
		}
		publish(t, b, "/topic/log.a", "new")
		r := &recorder{}
		subscribe(t, b, "/topic/log.a", r, SubscribeOptions{From: &StreamStart{Kind: StartFirst}})
		if got := r.bodies(); !slices.Equal(got, []string{"new"}) {
			t.Errorf("got %v, want only the message younger than max-age", got)
		}
	})
	t.Run("retained bytes", func(t *testing.T) {
		b := streamBroker(StreamLimits{}, func(o *Options) { o.MaxRetainedBytes = 100 })
		for i := range 10 {
			publish(t, b, "/topic/log.a", fmt.Sprintf("%020d", i))
		}
		if got := b.retainedBytes.Load(); got > 100 {
			t.Errorf("streams hold %d bytes, over the bound of 100", got)
		}
		big := &Message{Destination: "/topic/log.b", Body: make([]byte, 200)}
		if err := b.Publish(big); !errors.Is(err, ErrRetainedFull) {
			t.Errorf("a message larger than the bound: %v, want ErrRetainedFull", err)
		}
	})
}

// Concurrent publishers and a reader that keeps refusing: the reader gets every offset once, in order,
// in memory and with a store (whose confirmations pump the cursor from another goroutine).
func TestStreamConcurrentPublishAndResume(t *testing.T) {
	for _, mode := range []struct {
		name string
		each uint64
		opts []func(*Options)
	}{
		{"memory", 500, nil},
		{"stored", 300, []func(*Options){func(o *Options) { o.Streams = &fakeStreams{} }}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			concurrentPublishAndResume(t, mode.each, mode.opts...)
		})
	}
}

// concurrentPublishAndResume publishes each messages from each of 4 goroutines while a reader with
// little room is resumed over and over, and checks the reader got offsets 1..4×each in order.
func concurrentPublishAndResume(t *testing.T, each uint64, opts ...func(*Options)) {
	b := streamBroker(StreamLimits{}, opts...)
	r := &recorder{room: 1}
	sub := subscribe(t, b, "/topic/log.a", r, SubscribeOptions{From: &StreamStart{Kind: StartNext}})
	const publishers = 4
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for i := range each {
				publish(t, b, "/topic/log.a", fmt.Sprintf("%d-%d", p, i))
			}
		})
	}
	stop := make(chan struct{})
	resumed := make(chan struct{})
	go func() {
		defer close(resumed)
		room := 1
		for {
			select {
			case <-stop:
				return
			default:
			}
			room += 7
			r.setRoom(room)
			b.Resume(sub)
		}
	}()
	wg.Wait()
	close(stop)
	<-resumed
	r.setRoom(0)
	b.Resume(sub)
	if got := offsets(r.deliveries()); !slices.Equal(got, seq(1, publishers*each)) {
		t.Fatalf("got %d deliveries, not offsets 1..%d in order", len(got), publishers*each)
	}
}

// fakeStream is a StoredStream in memory, so that the broker's stored path (a small in-memory cache,
// reads of older messages from the store) is tested without a real store.
type fakeStream struct {
	mu    sync.Mutex
	msgs  []*Message
	first uint64
	fail  error
	reads int
	asked []int // what each Read asked for
}

type fakeStreams struct {
	mu      sync.Mutex
	streams map[string]*fakeStream
	// gate, when set, holds OpenStream of gated until it is closed; entered hears of each such
	// OpenStream as it starts waiting.
	gate    chan struct{}
	gated   string
	entered chan struct{}
}

func (f *fakeStreams) OpenStream(dest string, _ StreamLimits) (StoredStream, error) {
	if f.gate != nil && dest == f.gated {
		f.entered <- struct{}{}
		<-f.gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.streams == nil {
		f.streams = map[string]*fakeStream{}
	}
	s := f.streams[dest]
	if s == nil {
		s = &fakeStream{first: 1}
		f.streams[dest] = s
	}
	return s, nil
}

func (s *fakeStream) Bounds() (uint64, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.first, s.first + uint64(len(s.msgs)) - 1, nil
}

func (s *fakeStream) Append(m *Message, done func(error)) {
	s.mu.Lock()
	err := s.fail
	if err == nil {
		if want := s.first + uint64(len(s.msgs)); m.Offset != want {
			err = fmt.Errorf("offset %d appended where %d was expected", m.Offset, want)
		} else {
			s.msgs = append(s.msgs, &Message{ID: m.ID, Destination: m.Destination, Body: m.Body, Published: m.Published, Offset: m.Offset})
		}
	}
	s.mu.Unlock()
	go done(err)
}

func (s *fakeStream) Read(from uint64, max int) ([]*Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	s.asked = append(s.asked, max)
	if from < s.first {
		from = s.first
	}
	i := int(from - s.first)
	if i >= len(s.msgs) {
		return nil, nil
	}
	return slices.Clone(s.msgs[i:min(len(s.msgs), i+max)]), nil
}

func (s *fakeStream) Numbered() bool { return false }

func (s *fakeStream) AppendNumbered(*Message) (uint64, error) {
	return 0, errors.New("the fake store does not number")
}

func (s *fakeStream) Seek(t time.Time) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.msgs {
		if !m.Published.Before(t) {
			return m.Offset, nil
		}
	}
	return s.first + uint64(len(s.msgs)), nil
}

// TestStreamOpeningHoldsUpOnlyItsDestination: while the store takes its time opening one stream,
// publishes to streams already open go on, and a second publish to the stream being opened waits
// for that opening rather than opening it again.
func TestStreamOpeningHoldsUpOnlyItsDestination(t *testing.T) {
	store := &fakeStreams{gate: make(chan struct{}), gated: "/topic/log.slow", entered: make(chan struct{}, 2)}
	b := streamBroker(StreamLimits{}, func(o *Options) { o.Streams = store })
	publish(t, b, "/topic/log.a", "warm")
	slowDone := make(chan error, 2)
	for range 2 {
		go func() { slowDone <- b.Publish(&Message{Destination: "/topic/log.slow", Body: []byte("s")}) }()
	}
	<-store.entered // the store is opening the slow stream
	otherDone := make(chan error, 1)
	go func() { otherDone <- b.Publish(&Message{Destination: "/topic/log.a", Body: []byte("x")}) }()
	select {
	case err := <-otherDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a publish to an open stream waited for another stream's opening")
	}
	close(store.gate)
	for range 2 {
		if err := <-slowDone; err != nil {
			t.Fatal(err)
		}
	}
	if first, last, _ := store.streams["/topic/log.slow"].Bounds(); first != 1 || last != 2 {
		t.Errorf("the slow stream holds offsets %d..%d, want 1..2 (opened once)", first, last)
	}
}

// TestStoredStreamReadAheadBoundedByBytes: a cursor replaying large stored messages reads a few at a
// time (about streamReadBytes), not streamReadBatch of them; small messages are read in full batches.
func TestStoredStreamReadAheadBoundedByBytes(t *testing.T) {
	if n := readSize([]*Message{{Body: make([]byte, 100)}}); n != streamReadBatch {
		t.Errorf("after small messages, read %d, want %d", n, streamReadBatch)
	}
	store := &fakeStreams{}
	b := streamBroker(StreamLimits{}, func(o *Options) { o.Streams = store })
	big := strings.Repeat("x", 256<<10)
	const total = 120 // more than the cache keeps of 256 KiB messages
	for range total {
		publish(t, b, "/topic/log.big", big)
	}
	r := &recorder{}
	subscribe(t, b, "/topic/log.big", r, SubscribeOptions{From: &StreamStart{Kind: StartFirst}})
	deadline := time.Now().Add(10 * time.Second)
	for len(r.deliveries()) < total && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := len(r.deliveries()); got != total {
		t.Fatalf("replayed %d of %d", got, total)
	}
	st := store.streams["/topic/log.big"]
	st.mu.Lock()
	asked := slices.Clone(st.asked)
	st.mu.Unlock()
	if len(asked) < 2 || asked[0] != streamReadFirst {
		t.Fatalf("reads asked for %v, want %d first", asked, streamReadFirst)
	}
	for _, n := range asked[1:] {
		if n > streamReadBytes/(256<<10) {
			t.Errorf("reads asked for %v: more than %d of 256 KiB messages at once", asked, streamReadBytes/(256<<10))
			break
		}
	}
}

func TestStoredStreamReadsBeyondTheCache(t *testing.T) {
	store := &fakeStreams{}
	b := streamBroker(StreamLimits{}, func(o *Options) { o.Streams = store })
	const total = streamCacheMessages + 700
	for i := range total {
		publish(t, b, "/topic/log.a", strconv.Itoa(i))
	}
	r := &recorder{}
	sub := subscribe(t, b, "/topic/log.a", r, SubscribeOptions{From: &StreamStart{Kind: StartFirst}})
	deadline := time.Now().Add(10 * time.Second)
	for len(r.deliveries()) < total && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := offsets(r.deliveries()); !slices.Equal(got, seq(1, total)) {
		t.Fatalf("got %d deliveries, not 1..%d in order", len(got), total)
	}
	if s := store.streams["/topic/log.a"]; s.reads == 0 {
		t.Error("the store was never read, though the cache cannot hold every message")
	}
	b.Unsubscribe(sub)

	// A second broker on the same store numbers on from the last stored offset.
	b2 := streamBroker(StreamLimits{}, func(o *Options) { o.Streams = store })
	if m := publish(t, b2, "/topic/log.a", "again"); m.Offset != total+1 {
		t.Errorf("after a restart the next message has offset %d, want %d", m.Offset, total+1)
	}
}

func TestStoredStreamRefusal(t *testing.T) {
	store := &fakeStreams{}
	b := streamBroker(StreamLimits{}, func(o *Options) { o.Streams = store })
	publish(t, b, "/topic/log.a", "1")
	s := store.streams["/topic/log.a"]
	s.mu.Lock()
	s.fail = errors.New("disk full")
	s.mu.Unlock()
	if err := b.Publish(&Message{Destination: "/topic/log.a", Body: []byte("2")}); !errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("Publish with the store refusing = %v, want ErrStoreUnavailable", err)
	}
	s.mu.Lock()
	s.fail = nil
	s.mu.Unlock()
	if m := publish(t, b, "/topic/log.a", "3"); m.Offset != 2 {
		t.Errorf("after a refusal the next message has offset %d, want 2 (the refused one was not stored)", m.Offset)
	}
	r := &recorder{}
	subscribe(t, b, "/topic/log.a", r, SubscribeOptions{From: &StreamStart{Kind: StartFirst}})
	if got := r.bodies(); !slices.Equal(got, []string{"1", "3"}) {
		t.Errorf("read back %v, want [1 3]", got)
	}
}
