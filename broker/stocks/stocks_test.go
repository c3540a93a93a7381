package stocks

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/stompd/stompd/broker"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// recorder is a subscriber that keeps what it is given; while stuck it refuses with Full.
type recorder struct {
	mu      sync.Mutex
	got     []broker.Delivery
	stuck   bool
	evicted bool
}

func (r *recorder) Deliver(_ *broker.Subscription, d broker.Delivery) broker.DeliverResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stuck {
		return broker.Full
	}
	r.got = append(r.got, d)
	return broker.Delivered
}

func (r *recorder) Evict(*broker.Subscription, error) {
	r.mu.Lock()
	r.evicted = true
	r.mu.Unlock()
}

func (r *recorder) deliveries() []broker.Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]broker.Delivery(nil), r.got...)
}

func newFeed(t *testing.T) (*broker.Broker, *Feed) {
	t.Helper()
	b := broker.New(broker.Options{Policies: Policies("")})
	return b, New(b, Options{Rand: rand.New(rand.NewPCG(1, 2))})
}

func subscribe(t *testing.T, b *broker.Broker, dest string) (*recorder, *broker.Subscription) {
	t.Helper()
	r := &recorder{}
	sub, err := b.Subscribe(dest, r, broker.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return r, sub
}

func TestTickBounds(t *testing.T) {
	b := broker.New(broker.Options{Policies: Policies("")})
	f := New(b, Options{Symbols: []Symbol{{"LOW", 50}, {"MID", 10000}}, Rand: rand.New(rand.NewPCG(3, 4))})
	sawFloor := false
	for i := 0; i < 2000; i++ {
		before := f.Prices()
		f.Tick()
		for j, p := range f.Prices() {
			if p < MinPriceCents {
				t.Fatalf("price %d below the floor", p)
			}
			if d := p - before[j]; d < -MaxStepCents || d > MaxStepCents {
				t.Fatalf("step %d cents is outside ±%d", d, MaxStepCents)
			}
			if p == MinPriceCents {
				sawFloor = true
			}
		}
	}
	if !sawFloor {
		t.Fatal("a 0.50 price never reached the 0.01 floor in 2000 ticks: the floor is not exercised")
	}
}

func TestSnapshotAndQuotes(t *testing.T) {
	b, f := newFeed(t)
	snap, _ := subscribe(t, b, "/topic/stocks")
	quotes, _ := subscribe(t, b, "/topic/stocks.*")
	f.Tick()

	got := snap.deliveries()
	if len(got) != 1 {
		t.Fatalf("%d snapshots after one tick", len(got))
	}
	var prices map[string]float64
	if err := json.Unmarshal(got[0].Message.Body, &prices); err != nil {
		t.Fatalf("snapshot %q: %v", got[0].Message.Body, err)
	}
	now := f.Prices()
	for i, s := range DefaultSymbols {
		if prices[s.Name] != float64(now[i])/100 {
			t.Fatalf("snapshot %s = %v, want %v", s.Name, prices[s.Name], float64(now[i])/100)
		}
	}
	if len(prices) != len(DefaultSymbols) {
		t.Fatalf("snapshot has %d symbols", len(prices))
	}
	if ct := got[0].Message.Header; len(ct) != 1 || ct[0].Value != "application/json" {
		t.Fatalf("snapshot headers %v", ct)
	}

	qs := quotes.deliveries()
	if len(qs) != len(DefaultSymbols) {
		t.Fatalf("%d quotes after one tick", len(qs))
	}
	for i, d := range qs {
		var q Quote
		if err := json.Unmarshal(d.Message.Body, &q); err != nil {
			t.Fatal(err)
		}
		if d.Message.Destination != "/topic/stocks."+q.Symbol || q.Symbol != DefaultSymbols[i].Name {
			t.Fatalf("quote %+v on %s", q, d.Message.Destination)
		}
		if q.Price != float64(now[i])/100 || q.Change < -1.5 || q.Change > 1.5 {
			t.Fatalf("quote %+v", q)
		}
		if _, err := time.Parse(time.RFC3339Nano, q.Time); err != nil {
			t.Fatalf("quote time %q: %v", q.Time, err)
		}
	}
}

func TestLastValueOnSubscribe(t *testing.T) {
	b, f := newFeed(t)
	f.Tick()
	f.Tick()
	snap, _ := subscribe(t, b, "/topic/stocks")
	quotes, _ := subscribe(t, b, "/topic/stocks.*")
	one, _ := subscribe(t, b, "/topic/stocks.MSFT")
	if d := snap.deliveries(); len(d) != 1 || !d[0].Retained {
		t.Fatalf("new snapshot subscriber got %d deliveries (retained %v), want the last value at once", len(d), len(d) == 1 && d[0].Retained)
	}
	if d := quotes.deliveries(); len(d) != len(DefaultSymbols) {
		t.Fatalf("new /topic/stocks.* subscriber got %d retained quotes, want %d", len(d), len(DefaultSymbols))
	}
	d := one.deliveries()
	var q Quote
	if len(d) != 1 || json.Unmarshal(d[0].Message.Body, &q) != nil || q.Price != float64(f.Prices()[1])/100 {
		t.Fatalf("MSFT subscriber got %v", d)
	}
}

func TestConflationUnderStuckSubscriber(t *testing.T) {
	b, f := newFeed(t)
	stuck, sub := subscribe(t, b, "/topic/stocks.#")
	healthy, _ := subscribe(t, b, "/topic/stocks")
	stuck.mu.Lock()
	stuck.stuck = true
	stuck.mu.Unlock()
	const ticks = 200
	for i := 0; i < ticks; i++ {
		f.Tick()
	}
	if got := len(healthy.deliveries()); got != ticks {
		t.Fatalf("healthy subscriber got %d of %d snapshots", got, ticks)
	}
	stuck.mu.Lock()
	stuck.stuck = false
	evicted := stuck.evicted
	stuck.mu.Unlock()
	if evicted {
		t.Fatal("a lagging price subscriber was disconnected; conflate must keep it")
	}
	b.Resume(sub)
	latest := map[string][]byte{}
	for _, d := range stuck.deliveries() {
		if _, dup := latest[d.Message.Destination]; dup {
			t.Fatalf("two messages for %s after conflation", d.Message.Destination)
		}
		latest[d.Message.Destination] = d.Message.Body
	}
	if len(latest) != 1+len(DefaultSymbols) {
		t.Fatalf("resumed subscriber got %d destinations, want the snapshot and %d quotes", len(latest), len(DefaultSymbols))
	}
	var prices map[string]float64
	_ = json.Unmarshal(latest["/topic/stocks"], &prices)
	if prices["AAPL"] != float64(f.Prices()[0])/100 {
		t.Fatalf("conflated snapshot is not the newest: %v vs %v", prices["AAPL"], f.Prices()[0])
	}
	if s := b.Stats(); s.Conflated == 0 {
		t.Fatal("no conflation counted")
	}
}

func TestClientsCannotPublish(t *testing.T) {
	b, _ := newFeed(t)
	for _, dest := range []string{"/topic/stocks", "/topic/stocks.AAPL"} {
		err := b.Publish(&broker.Message{Destination: dest, Sender: broker.Identity{Session: "s1"}, Body: []byte("{}")})
		if !errors.Is(err, broker.ErrReadOnly) {
			t.Fatalf("client publish to %s: %v, want ErrReadOnly", dest, err)
		}
	}
}

func TestStartTicksUntilStop(t *testing.T) {
	b := broker.New(broker.Options{Policies: Policies("")})
	f := New(b, Options{MinInterval: 5 * time.Millisecond, MaxInterval: 10 * time.Millisecond})
	r, _ := subscribe(t, b, "/topic/stocks")
	f.Start()
	f.Start() // no second goroutine
	deadline := time.Now().Add(10 * time.Second)
	for len(r.deliveries()) < 5 {
		if time.Now().After(deadline) {
			t.Fatal("fewer than 5 ticks in 10s at 5-10ms intervals")
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.Stop()
	n := len(r.deliveries())
	time.Sleep(30 * time.Millisecond)
	if len(r.deliveries()) != n {
		t.Fatal("ticks after Stop")
	}
	f.Stop()
}

func TestParseSymbols(t *testing.T) {
	got, err := ParseSymbols("AAPL=95.00, MSFT=50")
	if err != nil || len(got) != 2 || got[0] != (Symbol{"AAPL", 9500}) || got[1] != (Symbol{"MSFT", 5000}) {
		t.Fatalf("ParseSymbols = %v, %v", got, err)
	}
	if FormatSymbols(DefaultSymbols) != "AAPL=95.00,MSFT=50.00,AMZN=300.00,GOOG=550.00,YHOO=35.00" {
		t.Fatalf("FormatSymbols = %s", FormatSymbols(DefaultSymbols))
	}
	for _, bad := range []string{"", "AAPL", "AAPL=x", "A.B=1", "AAPL=0", "AAPL=1,AAPL=2"} {
		if _, err := ParseSymbols(bad); err == nil {
			t.Errorf("ParseSymbols(%q) accepted", bad)
		}
	}
}

// A feed on a broker that already retains quotes (restored from its store after a restart) resumes
// from those prices; symbols without one start from their start prices.
func TestResumesFromRetainedQuotes(t *testing.T) {
	b, f := newFeed(t)
	for range 20 {
		f.Tick()
	}
	moved := f.Prices()
	// A new feed on the same broker stands for the feed of a restarted process.
	resumed := New(b, Options{})
	if got := resumed.Prices(); !slices.Equal(got, moved) {
		t.Fatalf("resumed at %v, want the retained %v", got, moved)
	}
	fresh := New(broker.New(broker.Options{Policies: Policies("")}), Options{})
	for i, s := range DefaultSymbols {
		if fresh.Prices()[i] != s.Cents {
			t.Fatalf("without retained quotes %s starts at %d, want %d", s.Name, fresh.Prices()[i], s.Cents)
		}
	}
}
