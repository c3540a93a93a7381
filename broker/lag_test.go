package broker

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// pub publishes "dest=body" pairs given as "eur=1"; the destination is
// /topic/prices.<name>.
func pubPrices(t *testing.T, b *Broker, pairs ...string) {
	t.Helper()
	for _, p := range pairs {
		name, body, _ := strings.Cut(p, "=")
		publish(t, b, "/topic/prices."+name, body)
	}
}

// priceLog renders deliveries as "eur=1" pairs.
func priceLog(r *recorder) []string {
	var out []string
	for _, d := range r.deliveries() {
		out = append(out, strings.TrimPrefix(d.Message.Destination, "/topic/prices.")+"="+string(d.Message.Body))
	}
	return out
}

func TestConflate(t *testing.T) {
	tests := []struct {
		name          string
		subscribeTo   string
		maxPending    int
		publish       []string
		want          []string // delivered on Resume, in order
		wantConflated uint64
		wantDropped   uint64
	}{
		{
			name:        "newest per destination, in first-pending order",
			subscribeTo: "/topic/prices.*",
			publish:     []string{"eur=1", "usd=1", "eur=2", "gbp=1", "eur=3", "usd=2"},
			want:        []string{"eur=3", "usd=2", "gbp=1"}, wantConflated: 3,
		},
		{
			name:        "exact subscription",
			subscribeTo: "/topic/prices.eur",
			publish:     []string{"eur=1", "eur=2", "eur=3", "usd=9"},
			want:        []string{"eur=3"}, wantConflated: 2,
		},
		{
			name:        "MaxPending destinations, oldest dropped",
			subscribeTo: "/topic/prices.#",
			maxPending:  2,
			publish:     []string{"eur=1", "usd=1", "gbp=1", "usd=2", "jpy=1"},
			// eur dropped for gbp; usd=2 replaces usd=1; usd dropped for jpy.
			want: []string{"gbp=1", "jpy=1"}, wantConflated: 1, wantDropped: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New(Options{Policies: []DestinationPolicy{
				{Pattern: "/topic/prices.#", SlowConsumer: PolicyConflate, MaxPending: tt.maxPending},
			}})
			stuck := &recorder{refusing: true}
			sub := subscribe(t, b, tt.subscribeTo, stuck, SubscribeOptions{})
			pubPrices(t, b, tt.publish...)
			if got := priceLog(stuck); len(got) != 0 {
				t.Fatalf("stuck subscriber got %q", got)
			}
			st := b.Stats()
			if st.Conflated != tt.wantConflated || st.DroppedOldest != tt.wantDropped || st.Evictions != 0 {
				t.Fatalf("stats %+v; want conflated %d, dropped %d, no evictions", st, tt.wantConflated, tt.wantDropped)
			}
			if st.HeldMessages != len(tt.want) {
				t.Fatalf("HeldMessages = %d, want %d", st.HeldMessages, len(tt.want))
			}
			b.Resume(sub) // still refusing: nothing moves, nothing is lost
			stuck.setRefusing(false)
			b.Resume(sub)
			if got := priceLog(stuck); !slices.Equal(got, tt.want) {
				t.Fatalf("after Resume got %q, want %q", got, tt.want)
			}
			if len(stuck.evictions()) != 0 {
				t.Fatalf("evicted: %v", stuck.evictions())
			}
			pubPrices(t, b, "eur=live")
			if got := priceLog(stuck); tt.subscribeTo != "/topic/prices.usd" && got[len(got)-1] != "eur=live" {
				t.Fatalf("live message after catching up: %q", got)
			}
			if st := b.Stats(); st.HeldMessages != 0 {
				t.Fatalf("HeldMessages = %d after catching up", st.HeldMessages)
			}
			if sub.lag != nil || sub.lagging.Load() {
				t.Fatal("lag state kept after catching up")
			}
		})
	}
}

// TestConflateResumeStopsAtFull resumes a subscriber that has room for one
// message at a time, and publishes between resumes: per-destination order
// must hold, and a held destination must never be overtaken.
func TestConflateResumeStopsAtFull(t *testing.T) {
	b := New(Options{Policies: []DestinationPolicy{{Pattern: "/topic/prices.#", SlowConsumer: PolicyConflate}}})
	r := &recorder{refusing: true}
	sub := subscribe(t, b, "/topic/prices.*", r, SubscribeOptions{})
	pubPrices(t, b, "eur=1", "usd=1", "gbp=1")
	r.setRefusing(false)
	r.setRoom(1)
	b.Resume(sub)
	pubPrices(t, b, "usd=2", "chf=1") // usd is held: usd=2 replaces usd=1, chf queues behind
	r.setRoom(2)
	b.Resume(sub)
	pubPrices(t, b, "gbp=2") // gbp is still held: replaced, keeps its turn
	r.setRoom(0)
	b.Resume(sub)
	want := []string{"eur=1", "usd=2", "gbp=2", "chf=1"}
	if got := priceLog(r); !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestDropOldest(t *testing.T) {
	tests := []struct {
		name        string
		maxPending  int
		n           int
		want        []string
		wantDropped uint64
	}{
		{"within bound", 10, 4, []string{"1", "2", "3", "4"}, 0},
		{"bound reached", 3, 6, []string{"4", "5", "6"}, 3},
		{"default bound", 0, DefaultMaxPending + 5, nil, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New(Options{Policies: []DestinationPolicy{
				{Pattern: "/topic/log.#", SlowConsumer: PolicyDropOldest, MaxPending: tt.maxPending},
			}})
			r := &recorder{refusing: true}
			sub := subscribe(t, b, "/topic/log.#", r, SubscribeOptions{})
			for i := 1; i <= tt.n; i++ {
				dest := "/topic/log.a"
				if i%2 == 0 {
					dest = "/topic/log.b" // FIFO across destinations: no conflation
				}
				publish(t, b, dest, strconv.Itoa(i))
			}
			if st := b.Stats(); st.DroppedOldest != tt.wantDropped || st.Conflated != 0 || st.Evictions != 0 {
				t.Fatalf("stats %+v, want %d dropped", st, tt.wantDropped)
			}
			r.setRefusing(false)
			b.Resume(sub)
			got := r.bodies()
			want := tt.want
			if want == nil {
				for i := tt.n - DefaultMaxPending + 1; i <= tt.n; i++ {
					want = append(want, strconv.Itoa(i))
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("got %q, want %q", got, want)
			}
		})
	}
}

// TestConflateClientAckWindow has a client-ack subscription fill its window:
// later messages are conflated, and an Ack, not a Resume, lets them through.
func TestConflateClientAckWindow(t *testing.T) {
	b := New(Options{Policies: []DestinationPolicy{{Pattern: "#", SlowConsumer: PolicyConflate}}})
	r := &recorder{}
	sub := subscribe(t, b, "/topic/prices.eur", r, SubscribeOptions{AckMode: AckClientIndividual, Prefetch: 2})
	pubPrices(t, b, "eur=1", "eur=2", "eur=3", "eur=4", "eur=5")
	if got := priceLog(r); !slices.Equal(got, []string{"eur=1", "eur=2"}) {
		t.Fatalf("before Ack got %q", got)
	}
	b.Resume(sub) // the window, not the subscriber, is full
	if n := len(r.deliveries()); n != 2 {
		t.Fatalf("Resume with a full window delivered: %d", n)
	}
	if err := b.Ack(sub, 1, false); err != nil {
		t.Fatal(err)
	}
	got := r.deliveries()
	if len(got) != 3 || string(got[2].Message.Body) != "5" || got[2].Tag != 3 {
		t.Fatalf("after Ack got %q (last tag %d), want eur=5 with tag 3", priceLog(r), got[len(got)-1].Tag)
	}
	if st := b.Stats(); st.Conflated != 2 || st.Evictions != 0 || st.UnackedMessages != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// TestLaggingMixedPolicies covers a wildcard subscription that spans a
// conflated destination and a disconnect one: while it holds conflated
// messages, the other destination's messages still go straight through, and
// refusing one of those disconnects it.
func TestLaggingMixedPolicies(t *testing.T) {
	b := New(Options{Policies: []DestinationPolicy{{Pattern: "/topic/prices.#", SlowConsumer: PolicyConflate}}})
	r := &recorder{room: 1}
	sub := subscribe(t, b, "/topic/#", r, SubscribeOptions{})
	publish(t, b, "/topic/prices.eur", "1") // delivered
	publish(t, b, "/topic/prices.eur", "2") // refused: held
	r.setRoom(2)
	publish(t, b, "/topic/news", "n1") // not held by policy: goes straight through
	publish(t, b, "/topic/news", "n2") // refused: disconnect
	if got := r.bodies(); !slices.Equal(got, []string{"1", "n1"}) {
		t.Fatalf("got %q", got)
	}
	if ev := r.evictions(); len(ev) != 1 || !errors.Is(ev[0], ErrSlowConsumer) {
		t.Fatalf("evictions %v", ev)
	}
	if sub.lag != nil {
		t.Fatal("evicted subscription kept its held messages")
	}
	r.setRoom(0)
	b.Resume(sub)
	if n := len(r.deliveries()); n != 2 {
		t.Fatalf("evicted subscription served on Resume: %q", r.bodies())
	}
}

// TestUnsubscribeDropsHeld checks that held messages go with the
// subscription and that Resume afterwards does nothing.
func TestUnsubscribeDropsHeld(t *testing.T) {
	b := New(Options{Policies: []DestinationPolicy{{Pattern: "#", SlowConsumer: PolicyDropOldest}}})
	r := &recorder{refusing: true}
	sub := subscribe(t, b, "/topic/a", r, SubscribeOptions{})
	publish(t, b, "/topic/a", "1")
	publish(t, b, "/topic/a", "2")
	b.Unsubscribe(sub)
	r.setRefusing(false)
	b.Resume(sub)
	if n := len(r.deliveries()); n != 0 {
		t.Fatalf("%d deliveries after Unsubscribe", n)
	}
	if st := b.Stats(); st.HeldMessages != 0 || st.Subscriptions != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// reentrantResumer refuses the first refusals deliveries, and like a
// session whose outbound queue drains at once, calls Resume from inside
// Deliver each time it refuses. That must neither deadlock nor lose the
// message.
type reentrantResumer struct {
	b        *Broker
	sub      atomic.Pointer[Subscription]
	refusals int
	got      []string
}

func (r *reentrantResumer) Deliver(s *Subscription, d Delivery) DeliverResult {
	if r.refusals > 0 {
		r.refusals--
		r.b.Resume(s)
		return Full
	}
	r.got = append(r.got, string(d.Message.Body))
	return Delivered
}

func (r *reentrantResumer) Evict(*Subscription, error) {}

func TestResumeFromDeliver(t *testing.T) {
	for _, policy := range []SlowConsumerPolicy{PolicyConflate, PolicyDropOldest} {
		t.Run(policy.String(), func(t *testing.T) {
			b := New(Options{Policies: []DestinationPolicy{{Pattern: "#", SlowConsumer: policy}}})
			r := &reentrantResumer{b: b, refusals: 3}
			subscribe(t, b, "/topic/a", r, SubscribeOptions{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				publish(t, b, "/topic/a", "1")
				publish(t, b, "/topic/a", "2")
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Publish deadlocked on a Resume made from Deliver")
			}
			if !slices.Equal(r.got, []string{"1", "2"}) {
				t.Fatalf("got %q", r.got)
			}
		})
	}
}

// sessionLike behaves like a protocol session: deliveries go to a small
// inbox drained by another goroutine; a refusal marks it full, and whoever
// sees room again (the drainer, or Deliver itself if the inbox emptied in
// the meantime) calls Resume.
type sessionLike struct {
	b       *Broker
	inbox   chan *Message
	full    atomic.Bool
	refused atomic.Int64 // deliveries answered Full: the subscription fell behind

	contiguous bool // every message must arrive

	mu   sync.Mutex
	last map[string]int // destination → last seq seen
	err  error
}

func (s *sessionLike) Deliver(sub *Subscription, d Delivery) DeliverResult {
	select {
	case s.inbox <- d.Message:
		return Delivered
	default:
	}
	s.full.Store(true)
	s.refused.Add(1)
	if len(s.inbox) == 0 && s.full.Swap(false) {
		s.b.Resume(sub)
	}
	return Full
}

func (s *sessionLike) Evict(*Subscription, error) { panic("evicted under a lagging policy") }

// consume takes deliveries until stop is closed, checking that each
// destination's sequence numbers rise, and resumes sub when it was refused.
func (s *sessionLike) consume(sub *Subscription, slow bool, stop <-chan struct{}) {
	for {
		select {
		case m := <-s.inbox:
			seq := atoi(string(m.Body))
			s.mu.Lock()
			prev := s.last[m.Destination]
			if (seq <= prev || s.contiguous && seq != prev+1) && s.err == nil {
				s.err = fmt.Errorf("%s: %d after %d", m.Destination, seq, prev)
			}
			s.last[m.Destination] = seq
			s.mu.Unlock()
			if slow {
				time.Sleep(time.Microsecond)
			}
			if s.full.Swap(false) {
				s.b.Resume(sub)
			}
		case <-stop:
			return
		}
	}
}

// caughtUp reports whether s has seen seq last on every destination.
func (s *sessionLike) caughtUp(dests []string, last int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range dests {
		if s.last[d] != last {
			return false
		}
	}
	return true
}

// TestLaggingStress has publishers send rising numbers to their own
// destinations while sessions with tiny inboxes consume them, one slowly, so
// that subscriptions keep falling behind and catching up, with Resume called
// from the consumers and from inside Deliver. Every session must see rising
// numbers per destination and finally the last one of each: under conflate
// with room for every destination, the newest is never lost; under
// drop-oldest with a bound never reached, nothing is lost at all.
func TestLaggingStress(t *testing.T) {
	const (
		publishers = 3
		perDest    = 2000
		sessions   = 4
	)
	var dests []string
	for p := range publishers {
		for _, w := range []string{"a", "b"} {
			dests = append(dests, fmt.Sprintf("/topic/px.%d.%s", p, w))
		}
	}
	tests := []struct {
		policy     SlowConsumerPolicy
		maxPending int
		contiguous bool
	}{
		{PolicyConflate, len(dests), false},
		{PolicyDropOldest, publishers * perDest * len(dests), true},
	}
	for _, tt := range tests {
		t.Run(tt.policy.String(), func(t *testing.T) {
			b := New(Options{Policies: []DestinationPolicy{{Pattern: "/topic/px.#", SlowConsumer: tt.policy, MaxPending: tt.maxPending}}})
			stop := make(chan struct{})
			var consumers sync.WaitGroup
			sess := make([]*sessionLike, sessions)
			for i := range sess {
				s := &sessionLike{b: b, inbox: make(chan *Message, 1+i), contiguous: tt.contiguous, last: map[string]int{}}
				sess[i] = s
				pattern := "/topic/px.#"
				if i%2 == 1 {
					pattern = "/topic/#"
				}
				sub := subscribe(t, b, pattern, s, SubscribeOptions{})
				consumers.Go(func() { s.consume(sub, i == 0, stop) })
			}
			// What the lagging subscriptions hold, sampled while publishing: proof that the test
			// exercised holding and draining, not only direct delivery.
			var maxHeld atomic.Int64
			sampled := make(chan struct{})
			go func() {
				defer close(sampled)
				for {
					select {
					case <-stop:
						return
					default:
					}
					if h := int64(b.Stats().HeldMessages); h > maxHeld.Load() {
						maxHeld.Store(h)
					}
					time.Sleep(100 * time.Microsecond)
				}
			}()
			var pubs sync.WaitGroup
			for p := range publishers {
				pubs.Go(func() {
					for seq := 1; seq <= perDest; seq++ {
						for _, d := range dests[2*p : 2*p+2] {
							if err := b.Publish(&Message{Destination: d, Body: []byte(strconv.Itoa(seq))}); err != nil {
								panic(err)
							}
						}
					}
				})
			}
			pubs.Wait()
			deadline := time.Now().Add(30 * time.Second)
			for i, s := range sess {
				for !s.caughtUp(dests, perDest) {
					if time.Now().After(deadline) {
						close(stop)
						consumers.Wait()
						t.Fatalf("session %d stuck (%v): last %v, stats %+v", i, s.err, s.last, b.Stats())
					}
					time.Sleep(time.Millisecond)
				}
			}
			close(stop)
			consumers.Wait()
			<-sampled
			for i, s := range sess {
				if s.err != nil {
					t.Fatalf("session %d: %v", i, s.err)
				}
			}
			st := b.Stats()
			if st.Evictions != 0 || st.HeldMessages != 0 || st.DroppedOldest != 0 {
				t.Fatalf("stats %+v", st)
			}
			if refused := sess[0].refused.Load(); refused == 0 || maxHeld.Load() == 0 {
				t.Fatalf("the slow session was refused %d deliveries and at most %d messages were held: nothing lagged", refused, maxHeld.Load())
			}
			if tt.policy == PolicyConflate && st.Conflated == 0 {
				t.Fatal("nothing conflated: the slow sessions never lagged behind a destination")
			}
			t.Logf("slow session refused %d deliveries; up to %d messages held; conflated %d", sess[0].refused.Load(), maxHeld.Load(), st.Conflated)
		})
	}
}
