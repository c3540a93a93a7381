package broker

import (
	"strconv"
	"sync/atomic"
	"testing"
)

// countingSubscriber counts deliveries. The broker serialises deliveries to
// one subscription, so a plain counter is enough.
type countingSubscriber struct{ n uint64 }

func (c *countingSubscriber) Deliver(*Subscription, Delivery) DeliverResult {
	c.n++
	return Delivered
}

func (c *countingSubscriber) Evict(*Subscription, error) {}

func benchmarkFanout(b *testing.B, subscribeTo []string) {
	br := New(Options{})
	subs := make([]countingSubscriber, 1000)
	for i := range subs {
		if _, err := br.Subscribe(subscribeTo[i%len(subscribeTo)], &subs[i], SubscribeOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	body := make([]byte, 128)
	b.ReportAllocs()
	for b.Loop() {
		if err := br.Publish(&Message{Destination: "/topic/stocks.eur", Body: body}); err != nil {
			b.Fatal(err)
		}
	}
	var total uint64
	for i := range subs {
		total += subs[i].n
	}
	if total != uint64(b.N)*uint64(len(subs)) {
		b.Fatalf("%d deliveries for %d publishes", total, b.N)
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "deliveries/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(total), "ns/delivery")
}

// BenchmarkFanout1000 publishes to a topic with 1,000 exact subscriptions.
func BenchmarkFanout1000(b *testing.B) {
	benchmarkFanout(b, []string{"/topic/stocks.eur"})
}

// BenchmarkFanout1000Patterns publishes to a topic matched by 1,000 wildcard
// subscriptions spread over four patterns.
func BenchmarkFanout1000Patterns(b *testing.B) {
	benchmarkFanout(b, []string{"/topic/stocks.*", "/topic/#", "/topic/*.eur", "/topic/stocks.#"})
}

// BenchmarkQueueRoundTrip publishes one message to a queue, delivers it to a
// client-individual consumer and acknowledges it.
func BenchmarkQueueRoundTrip(b *testing.B) {
	br := New(Options{})
	var last lastTag
	sub, err := br.Subscribe("/queue/bench", &last, SubscribeOptions{AckMode: AckClientIndividual, Prefetch: 1})
	if err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 128)
	b.ReportAllocs()
	for b.Loop() {
		if err := br.Publish(&Message{Destination: "/queue/bench", Body: body}); err != nil {
			b.Fatal(err)
		}
		if err := br.Ack(sub, last.tag, false); err != nil {
			b.Fatal(err)
		}
	}
}

type lastTag struct{ tag uint64 }

func (l *lastTag) Deliver(_ *Subscription, d Delivery) DeliverResult {
	l.tag = d.Tag
	return Delivered
}

func (l *lastTag) Evict(*Subscription, error) {}

// BenchmarkPublishNoSubscribers publishes to a topic nobody listens to while
// wildcard subscriptions to other topics exist.
func BenchmarkPublishNoSubscribers(b *testing.B) {
	br := New(Options{})
	if _, err := br.Subscribe("/topic/other.#", &countingSubscriber{}, SubscribeOptions{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := br.Publish(&Message{Destination: "/topic/nobody.home"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPublishParallel has every CPU publish to its own topics, each
// with 10 subscribers, to show how the sharded index scales.
func BenchmarkPublishParallel(b *testing.B) {
	br := New(Options{})
	const topics = 64
	for i := range topics {
		for range 10 {
			if _, err := br.Subscribe("/topic/p."+strconv.Itoa(i), &atomicCounter{}, SubscribeOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		dest := "/topic/p." + strconv.Itoa(int(next.Add(1))%topics)
		for pb.Next() {
			if err := br.Publish(&Message{Destination: dest}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

type atomicCounter struct{ n atomic.Uint64 }

func (c *atomicCounter) Deliver(*Subscription, Delivery) DeliverResult {
	c.n.Add(1)
	return Delivered
}

func (c *atomicCounter) Evict(*Subscription, error) {}

// BenchmarkPublishLastValue publishes to a destination that retains its
// last value, with nobody subscribed (the cost of retaining) and with 1,000
// exact subscriptions.
func BenchmarkPublishLastValue(b *testing.B) {
	for _, n := range []int{0, 1000} {
		b.Run(strconv.Itoa(n)+"subs", func(b *testing.B) {
			br := New(Options{Policies: []DestinationPolicy{{Pattern: "/topic/stocks.#", LastValue: true, ReadOnly: true}}})
			subs := make([]countingSubscriber, n)
			for i := range subs {
				if _, err := br.Subscribe("/topic/stocks.eur", &subs[i], SubscribeOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			body := make([]byte, 128)
			b.ReportAllocs()
			for b.Loop() {
				if err := br.Publish(&Message{Destination: "/topic/stocks.eur", Body: body}); err != nil {
					b.Fatal(err)
				}
			}
			if st := br.Stats(); st.RetainedMessages != 1 {
				b.Fatalf("%d retained messages", st.RetainedMessages)
			}
		})
	}
}

// refusingSubscriber never has room.
type refusingSubscriber struct{}

func (refusingSubscriber) Deliver(*Subscription, Delivery) DeliverResult { return Full }
func (refusingSubscriber) Evict(*Subscription, error)                    {}

// BenchmarkPublishConflated publishes to 10 destinations whose 1,000
// wildcard subscriptions are all lagging, so that every delivery replaces a
// held message.
func BenchmarkPublishConflated(b *testing.B) {
	br := New(Options{Policies: []DestinationPolicy{{Pattern: "/topic/stocks.#", SlowConsumer: PolicyConflate}}})
	for range 1000 {
		if _, err := br.Subscribe("/topic/stocks.*", refusingSubscriber{}, SubscribeOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	var dests [10]string
	for i := range dests {
		dests[i] = "/topic/stocks." + strconv.Itoa(i)
		if err := br.Publish(&Message{Destination: dests[i]}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := br.Publish(&Message{Destination: dests[i%len(dests)]}); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/delivery")
}

func BenchmarkMatchTopic(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		MatchTopic("/topic/#.stocks.*.#", "/topic/x.y.stocks.eur.usd.z")
	}
}

// BenchmarkPublishStream publishes to a stream destination kept in memory with 100 subscriptions: 100
// live ones, or 100 reading it from an offset (cursors that keep up); "topic" is the same fan-out on a
// plain topic, for the cost of keeping and numbering the messages.
func BenchmarkPublishStream(b *testing.B) {
	for _, kind := range []string{"topic", "stream-live", "stream-cursors"} {
		b.Run(kind, func(b *testing.B) {
			br := New(Options{Policies: []DestinationPolicy{{Pattern: "/topic/log", Stream: kind != "topic",
				StreamLimits: StreamLimits{MaxMessages: 10000}}}})
			subs := make([]countingSubscriber, 100)
			for i := range subs {
				opts := SubscribeOptions{}
				if kind == "stream-cursors" {
					opts.From = &StreamStart{Kind: StartNext}
				}
				if _, err := br.Subscribe("/topic/log", &subs[i], opts); err != nil {
					b.Fatal(err)
				}
			}
			body := make([]byte, 128)
			b.ReportAllocs()
			for b.Loop() {
				if err := br.Publish(&Message{Destination: "/topic/log", Body: body}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(subs))/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}
