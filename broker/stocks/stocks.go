// Package stocks is the built-in stock-price feed: a random walk of a few symbols published on
// /topic/stocks (one JSON snapshot per tick) and /topic/stocks.SYMBOL (one JSON quote per symbol per
// tick). It uses only the broker's public API; its destinations are configured by Policies, through the
// same per-destination policy mechanism operators use: last-value cache (a new subscriber gets the
// latest prices at once), conflation for lagging subscribers, and server-only publishing.
package stocks

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stompd/stompd/broker"
)

// Defaults for Options fields left at their zero value.
const (
	DefaultTopic       = "/topic/stocks"
	DefaultMinInterval = 500 * time.Millisecond
	DefaultMaxInterval = 2500 * time.Millisecond
	// MaxStepCents bounds one tick's move of a price: a uniform step in [-1.50, +1.50].
	MaxStepCents = 150
	// MinPriceCents is the floor no price goes below.
	MinPriceCents = 1
)

// Symbol is one ticker symbol and its start price in cents.
type Symbol struct {
	Name  string
	Cents int64
}

// DefaultSymbols are the classic demo's symbols and start prices.
var DefaultSymbols = []Symbol{{"AAPL", 9500}, {"MSFT", 5000}, {"AMZN", 30000}, {"GOOG", 55000}, {"YHOO", 3500}}

// Options configures a Feed. The zero value publishes DefaultSymbols on DefaultTopic.
type Options struct {
	Topic       string   // snapshot destination; per-symbol quotes go to Topic + "." + symbol
	Symbols     []Symbol // in display order
	MinInterval time.Duration
	MaxInterval time.Duration // ticks come at uniformly random intervals in [MinInterval, MaxInterval]
	// Rand is the random source; default: a randomly seeded PCG. Tests pass a seeded one.
	Rand *rand.Rand
	// Now is the clock for quote times; default time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Topic == "" {
		o.Topic = DefaultTopic
	}
	if len(o.Symbols) == 0 {
		o.Symbols = DefaultSymbols
	}
	if o.MinInterval <= 0 {
		o.MinInterval = DefaultMinInterval
	}
	if o.MaxInterval <= 0 {
		o.MaxInterval = DefaultMaxInterval
	}
	if o.MaxInterval < o.MinInterval {
		o.MaxInterval = o.MinInterval
	}
	if o.Rand == nil {
		o.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Policies returns the destination policies the feed needs on topic (DefaultTopic if empty): the
// snapshot and every per-symbol topic keep their last value, conflate for lagging subscribers, and are
// read-only for clients. Pass them to broker.New ahead of operator policies.
func Policies(topic string) []broker.DestinationPolicy {
	if topic == "" {
		topic = DefaultTopic
	}
	p := broker.DestinationPolicy{SlowConsumer: broker.PolicyConflate, LastValue: true, ReadOnly: true}
	snapshot, quotes := p, p
	snapshot.Pattern, quotes.Pattern = topic, topic+".*"
	return []broker.DestinationPolicy{snapshot, quotes}
}

// Quote is the JSON body published on Topic.SYMBOL each tick.
type Quote struct {
	Symbol string  `json:"symbol"`
	Price  float64 `json:"price"`
	Change float64 `json:"change"` // since the previous tick
	Time   string  `json:"time"`   // RFC 3339 with milliseconds, UTC
}

// Feed publishes the prices. Start and Stop may be called from any goroutine; Tick is for tests and
// must not run concurrently with a started feed.
type Feed struct {
	b      *broker.Broker
	opts   Options
	prices []int64 // cents, indexed like opts.Symbols

	mu      sync.Mutex
	stop    chan struct{}
	stopped chan struct{}
}

// New returns a stopped feed publishing on b. A symbol whose quote topic already retains a quote (the
// broker restored it from its store after a restart) resumes from that price; the others start from
// their start prices.
func New(b *broker.Broker, opts Options) *Feed {
	opts = opts.withDefaults()
	f := &Feed{b: b, opts: opts, prices: make([]int64, len(opts.Symbols))}
	for i, s := range opts.Symbols {
		f.prices[i] = max(s.Cents, MinPriceCents)
	}
	f.resumePrices()
	return f
}

// resumePrices takes, for each symbol whose quote topic retains a quote, that price: the one the
// broker restored after a restart, or the one another node's feed published last in a cluster.
func (f *Feed) resumePrices() {
	for i, s := range f.opts.Symbols {
		if msgs := f.b.RetainedMessages(f.opts.Topic + "." + s.Name); len(msgs) > 0 {
			var q Quote
			if err := json.Unmarshal(msgs[len(msgs)-1].Body, &q); err == nil && q.Symbol == s.Name {
				f.prices[i] = max(int64(math.Round(q.Price*100)), MinPriceCents)
			}
		}
	}
}

// Start publishes the prices at once, then a tick at every random interval, on a goroutine owned by
// the feed until Stop. It goes on from the quotes the broker retains, if any (a feed started again, or
// taking over from another node's). Starting a started feed does nothing.
func (f *Feed) Start() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stop != nil {
		return
	}
	f.resumePrices()
	f.stop, f.stopped = make(chan struct{}), make(chan struct{})
	f.publish(make([]int64, len(f.prices)))
	go f.run(f.stop, f.stopped)
}

// Stop ends the ticks and waits for the feed's goroutine to exit. Safe to call more than once.
func (f *Feed) Stop() {
	f.mu.Lock()
	stop, stopped := f.stop, f.stopped
	f.stop = nil
	f.mu.Unlock()
	if stop != nil {
		close(stop)
		<-stopped
	}
}

func (f *Feed) run(stop <-chan struct{}, stopped chan<- struct{}) {
	defer close(stopped)
	timer := time.NewTimer(f.nextInterval())
	defer timer.Stop()
	for {
		select {
		case <-stop:
			return
		case <-timer.C:
			f.Tick()
			timer.Reset(f.nextInterval())
		}
	}
}

func (f *Feed) nextInterval() time.Duration {
	span := f.opts.MaxInterval - f.opts.MinInterval
	if span <= 0 {
		return f.opts.MinInterval
	}
	return f.opts.MinInterval + time.Duration(f.opts.Rand.Int64N(int64(span)+1))
}

// Tick moves every price by a random step of at most MaxStepCents (never below MinPriceCents) and
// publishes the snapshot and the per-symbol quotes.
func (f *Feed) Tick() {
	changes := make([]int64, len(f.prices))
	for i, p := range f.prices {
		step := f.opts.Rand.Int64N(2*MaxStepCents+1) - MaxStepCents
		next := max(p+step, MinPriceCents)
		changes[i] = next - p
		f.prices[i] = next
	}
	f.publish(changes)
}

// Prices returns the current prices in cents, in symbol order.
func (f *Feed) Prices() []int64 { return append([]int64(nil), f.prices...) }

// publish sends the snapshot, then one quote per symbol. Publishing as the server (zero Sender) is what
// lets the feed write to its read-only destinations.
func (f *Feed) publish(changes []int64) {
	now := f.opts.Now().UTC().Format("2006-01-02T15:04:05.000Z07:00")
	contentType := []broker.Header{{Name: "content-type", Value: "application/json"}}
	f.send(&broker.Message{Destination: f.opts.Topic, Header: contentType, Body: f.snapshot()})
	for i, s := range f.opts.Symbols {
		body, _ := json.Marshal(Quote{Symbol: s.Name, Price: dollars(f.prices[i]), Change: dollars(changes[i]), Time: now})
		f.send(&broker.Message{Destination: f.opts.Topic + "." + s.Name, Header: contentType, Body: body})
	}
}

func (f *Feed) send(m *broker.Message) {
	// Topics never refuse the server: the only failure would be a misconfigured topic name.
	if err := f.b.Publish(m); err != nil && !errors.Is(err, broker.ErrNoRoute) {
		panic(fmt.Sprintf("stocks: publish to %s: %v", m.Destination, err))
	}
}

// snapshot encodes {"AAPL":95.12,...} in symbol order.
func (f *Feed) snapshot() []byte {
	b := make([]byte, 0, 16*len(f.prices)+2)
	b = append(b, '{')
	for i, s := range f.opts.Symbols {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, s.Name)
		b = append(b, ':')
		b = appendCents(b, f.prices[i])
	}
	return append(b, '}')
}

// appendCents writes cents as a JSON number with two decimals (95.00 → 95.00 is written 95.00).
func appendCents(b []byte, cents int64) []byte {
	return strconv.AppendFloat(b, dollars(cents), 'f', 2, 64)
}

func dollars(cents int64) float64 { return float64(cents) / 100 }

// ParseSymbols parses "AAPL=95.00,MSFT=50" into symbols, for the command line.
func ParseSymbols(s string) ([]Symbol, error) {
	var out []Symbol
	seen := map[string]bool{}
	for _, item := range strings.Split(s, ",") {
		name, price, ok := strings.Cut(strings.TrimSpace(item), "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, ".*#/ ") {
			return nil, fmt.Errorf("symbol %q: want NAME=PRICE, NAME without . * # / or spaces", item)
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(price), 64)
		if err != nil || v < 0.01 || v > 1e9 {
			return nil, fmt.Errorf("symbol %q: price must be between 0.01 and 1e9", item)
		}
		if seen[name] {
			return nil, fmt.Errorf("symbol %q listed twice", name)
		}
		seen[name] = true
		out = append(out, Symbol{Name: name, Cents: int64(v*100 + 0.5)})
	}
	return out, nil
}

// FormatSymbols is ParseSymbols' inverse.
func FormatSymbols(symbols []Symbol) string {
	parts := make([]string, len(symbols))
	for i, s := range symbols {
		parts[i] = s.Name + "=" + strconv.FormatFloat(dollars(s.Cents), 'f', 2, 64)
	}
	return strings.Join(parts, ",")
}
