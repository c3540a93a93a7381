package metrics

import (
	"slices"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// BrokerStats is what the broker reports once per scrape, through the function given to
// [Metrics.ObserveBroker]: its size, exported as gauges, and its message counters, exported as
// counters. The figures need not be taken at one instant. Arrays are indexed by this package's
// enums ([Kind], [DropReason]).
//
// The counters must only rise while one function is installed: they are the broker's totals since
// it started, not increments. Prometheus takes a fall (a new broker behind a later ObserveBroker)
// as a counter reset.
//
// The server fills it from broker.Stats; this package imports no broker code, so the mapping lives
// here in words. The broker numbers its kinds from 1 (an array of broker.KindCount whose element 0
// is unused) and this package from 0, so broker.KindTopic, KindQueue, KindReplyQueue and KindApp
// become [KindTopic], [KindQueue], [KindReplyQueue] and [KindApp]:
//
//	BrokerStats                  broker.Stats
//	Subscriptions[kind]          SubscriptionsByKind[kind]
//	Destinations[kind]           Destinations[kind]
//	ReadyMessages                QueuedMessages
//	UnackedMessages              UnackedMessages
//	Published[kind]              Published[kind]
//	Delivered[kind]              Delivered[kind]
//	Redelivered                  Redelivered
//	Dropped[DropNoRoute]         DroppedNoRoute
//	Dropped[DropSlowConsumer]    Evictions (subscriptions cut off, not messages)
//	Dropped[DropConflated]       Conflated
//	Dropped[DropDroppedOldest]   DroppedOldest
//	Dropped[DropExpired]         nothing: the broker does not expire messages; leave it 0
//	Dropped[DropDurableFull]     DroppedDurableFull
//	HeldBytes[HeldQueued]        QueuedBytes
//	HeldBytes[HeldUnacked]       UnackedBytes
//	HeldBytes[HeldLagging]       HeldBytes
//	HeldBytes[HeldRetained]      RetainedBytes + StreamBytes
//	Streams                      Streams
//	DurableSubscriptions         DurableSubscriptions
type BrokerStats struct {
	// Subscriptions counts current subscriptions, indexed by [Kind] (stompd_subscriptions_current).
	Subscriptions [numKinds]int
	// Destinations counts destinations that currently exist, indexed by [Kind]
	// (stompd_destinations_current).
	Destinations [numKinds]int
	// ReadyMessages counts messages waiting in all queues (stompd_queue_messages{state="ready"}).
	ReadyMessages int
	// UnackedMessages counts messages delivered and awaiting ACK or NACK, over all subscriptions
	// (stompd_queue_messages{state="unacked"}).
	UnackedMessages int

	// Published counts messages accepted for routing since the broker started, whether from a
	// client or a built-in publisher, indexed by [Kind] (stompd_messages_published_total).
	Published [numKinds]uint64
	// Delivered counts deliveries subscribers accepted since the broker started, indexed by [Kind];
	// a fan-out to n subscribers counts n (stompd_messages_delivered_total).
	Delivered [numKinds]uint64
	// Redelivered counts queue deliveries of messages delivered before (after a NACK, or after
	// their consumer went away); each is also in Delivered (stompd_messages_redelivered_total).
	Redelivered uint64
	// Dropped counts messages not delivered since the broker started, indexed by [DropReason]
	// (stompd_messages_dropped_total).
	Dropped [numDropReasons]uint64

	// HeldBytes is the memory held for clients, in bytes, indexed by [HeldKind]
	// (stompd_memory_held_bytes): messages by their body, destination and headers, and frames queued
	// on connections. HeldOutbound is the server's, not the broker's: the server adds it.
	HeldBytes [numHeldKinds]int64

	// Streams counts the stream destinations in use (stompd_streams_current).
	Streams int
	// DurableSubscriptions counts the durable topic subscriptions kept, with their subscriber
	// connected or not (stompd_durable_subscriptions_current).
	DurableSubscriptions int
}

// ObserveBroker makes every scrape call stats once and export the result: the gauges
// stompd_subscriptions_current, stompd_destinations_current and stompd_queue_messages, and the
// counters stompd_messages_published_total, stompd_messages_delivered_total,
// stompd_messages_redelivered_total and stompd_messages_dropped_total. Until it is called the
// gauges are absent from scrapes and the counters hold only what the Message methods recorded,
// which is 0 in a server that leaves counting to the broker. A later call replaces the function;
// nil removes it.
//
// stats runs on the scraping goroutine, concurrently with everything else, and may take locks:
// scrapes are rare and bounded by the handler's concurrency limit. It must not call back into the
// registry.
func (m *Metrics) ObserveBroker(stats func() BrokerStats) {
	if m == nil {
		return
	}
	if stats == nil {
		m.broker.source.Store(nil)
		return
	}
	m.broker.source.Store(&stats)
}

// ObserveParkedConnections exports stompd_connections_parked, read from parked at each scrape: the
// open connections waiting for their client with no goroutine of their own (transport.ParkedReaders).
// Until it is called, and after a call with nil, the gauge reads 0. parked runs on the scraping
// goroutine, concurrently with everything else.
func (m *Metrics) ObserveParkedConnections(parked func() int) {
	if m == nil {
		return
	}
	if parked == nil {
		m.parked.Store(nil)
		return
	}
	m.parked.Store(&parked)
}

// parkedConnections is the value function of stompd_connections_parked.
func (m *Metrics) parkedConnections() float64 {
	if f := m.parked.Load(); f != nil {
		return float64((*f)())
	}
	return 0
}

// ObserveMemory exports stompd_memory_live_bytes and stompd_memory_alarm, read from state at each
// scrape. Until it is called, and after a call with nil, both read 0. state runs on the scraping
// goroutine, concurrently with everything else.
func (m *Metrics) ObserveMemory(state func() (liveBytes uint64, alarm bool)) {
	if m == nil {
		return
	}
	if state == nil {
		m.memory.Store(nil)
		return
	}
	m.memory.Store(&state)
}

// memoryState is what ObserveMemory's function reports, or zeros.
func (m *Metrics) memoryState() (uint64, bool) {
	if f := m.memory.Load(); f != nil {
		return (*f)()
	}
	return 0, false
}

// ObserveQueueDepth exports stompd_queue_depth{queue, state} for each queue in queues, reading it
// from depth once per queue per scrape; a queue for which depth reports ok=false (it does not exist
// yet, or no longer) is left out of that scrape. Duplicate names are exported once. A later call
// replaces both the list and the function; an empty list or a nil depth removes them.
//
// queues must come from the operator's configuration, never from clients: each name becomes a
// label value, and the list is what bounds the number of series (two per queue). depth runs on the
// scraping goroutine, concurrently with everything else.
func (m *Metrics) ObserveQueueDepth(queues []string, depth func(queue string) (ready, unacked int, ok bool)) {
	if m == nil {
		return
	}
	if len(queues) == 0 || depth == nil {
		m.queueDepth.source.Store(nil)
		return
	}
	names := slices.Clone(queues)
	slices.Sort(names)
	m.queueDepth.source.Store(&queueDepthSource{queues: slices.Compact(names), depth: depth})
}

// messageCounts holds what the Message methods record, added at scrape time to the broker's own
// counts.
type messageCounts struct {
	published   [numKinds]atomic.Uint64
	delivered   [numKinds]atomic.Uint64
	redelivered atomic.Uint64
	dropped     [numDropReasons]atomic.Uint64
}

// brokerCollector exports [BrokerStats]: the gauges only while ObserveBroker has given it a
// source, the message counters always, every label value included, so that a rate over a reason
// that never happened is 0 rather than absent. It is registered by New and is the only owner of
// the message counter names.
type brokerCollector struct {
	source   atomic.Pointer[func() BrokerStats]
	recorded messageCounts

	subscriptions *prometheus.Desc
	destinations  *prometheus.Desc
	queueMessages *prometheus.Desc
	published     *prometheus.Desc
	delivered     *prometheus.Desc
	redelivered   *prometheus.Desc
	dropped       *prometheus.Desc
	memoryHeld    *prometheus.Desc
	streams       *prometheus.Desc
	durableSubs   *prometheus.Desc
}

func newBrokerCollector() *brokerCollector {
	return &brokerCollector{
		subscriptions: prometheus.NewDesc(namespace+"_subscriptions_current",
			"Current subscriptions, by destination kind.", []string{"kind"}, nil),
		destinations: prometheus.NewDesc(namespace+"_destinations_current",
			"Destinations that currently exist, by kind.", []string{"kind"}, nil),
		queueMessages: prometheus.NewDesc(namespace+"_queue_messages",
			"Messages held by queues: ready to deliver, or delivered and awaiting ACK/NACK. Totals over all queues.",
			[]string{"state"}, nil),
		published: prometheus.NewDesc(namespace+"_messages_published_total",
			"Messages accepted for routing, from clients and built-in publishers, by destination kind.",
			[]string{"kind"}, nil),
		delivered: prometheus.NewDesc(namespace+"_messages_delivered_total",
			"Deliveries subscribers accepted, by destination kind; a fan-out to n subscribers counts n.",
			[]string{"kind"}, nil),
		redelivered: prometheus.NewDesc(namespace+"_messages_redelivered_total",
			"Queue messages delivered again after a NACK or after their consumer went away.", nil, nil),
		dropped: prometheus.NewDesc(namespace+"_messages_dropped_total",
			"Messages not delivered, by why; slow_consumer counts subscriptions cut off.",
			[]string{"reason"}, nil),
		memoryHeld: prometheus.NewDesc(namespace+"_memory_held_bytes",
			"Memory held for clients, by kind: messages (body, destination, headers) and frames queued on connections.",
			[]string{"kind"}, nil),
		streams: prometheus.NewDesc(namespace+"_streams_current",
			"Stream destinations (topics with a stream policy) in use.", nil, nil),
		durableSubs: prometheus.NewDesc(namespace+"_durable_subscriptions_current",
			"Durable topic subscriptions kept, with their subscriber connected or not.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *brokerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.subscriptions
	ch <- c.destinations
	ch <- c.queueMessages
	ch <- c.published
	ch <- c.delivered
	ch <- c.redelivered
	ch <- c.dropped
	ch <- c.memoryHeld
	ch <- c.streams
	ch <- c.durableSubs
}

// Collect implements prometheus.Collector; it calls the source once, if there is one.
func (c *brokerCollector) Collect(ch chan<- prometheus.Metric) {
	var st BrokerStats
	if stats := c.source.Load(); stats != nil {
		st = (*stats)()
		for k, kn := range kindNames {
			ch <- prometheus.MustNewConstMetric(c.subscriptions, prometheus.GaugeValue, float64(st.Subscriptions[k]), kn)
			ch <- prometheus.MustNewConstMetric(c.destinations, prometheus.GaugeValue, float64(st.Destinations[k]), kn)
		}
		ch <- prometheus.MustNewConstMetric(c.queueMessages, prometheus.GaugeValue, float64(st.ReadyMessages), queueStateNames[stateReady])
		ch <- prometheus.MustNewConstMetric(c.queueMessages, prometheus.GaugeValue, float64(st.UnackedMessages), queueStateNames[stateUnacked])
		for k, kn := range heldKindNames {
			ch <- prometheus.MustNewConstMetric(c.memoryHeld, prometheus.GaugeValue, float64(st.HeldBytes[k]), kn)
		}
		ch <- prometheus.MustNewConstMetric(c.streams, prometheus.GaugeValue, float64(st.Streams))
		ch <- prometheus.MustNewConstMetric(c.durableSubs, prometheus.GaugeValue, float64(st.DurableSubscriptions))
	}
	rec := &c.recorded
	for k, kn := range kindNames {
		ch <- counter(c.published, st.Published[k]+rec.published[k].Load(), kn)
		ch <- counter(c.delivered, st.Delivered[k]+rec.delivered[k].Load(), kn)
	}
	ch <- counter(c.redelivered, st.Redelivered+rec.redelivered.Load())
	for r, rn := range dropReasonNames {
		ch <- counter(c.dropped, st.Dropped[r]+rec.dropped[r].Load(), rn)
	}
}

// counter is a counter sample of desc with value n.
func counter(desc *prometheus.Desc, n uint64, labelValues ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(n), labelValues...)
}

// queueDepthSource is what ObserveQueueDepth stores: the sorted, deduplicated operator list and
// the function that reads one queue.
type queueDepthSource struct {
	queues []string
	depth  func(queue string) (ready, unacked int, ok bool)
}

// queueDepthCollector exports stompd_queue_depth for the operator's list of queues.
type queueDepthCollector struct {
	source atomic.Pointer[queueDepthSource]
	depth  *prometheus.Desc
}

func newQueueDepthCollector() *queueDepthCollector {
	return &queueDepthCollector{
		depth: prometheus.NewDesc(namespace+"_queue_depth",
			"Messages held by one operator-listed queue: ready to deliver, or delivered and awaiting ACK/NACK.",
			[]string{"queue", "state"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *queueDepthCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.depth }

// Collect implements prometheus.Collector; it calls the depth function once per listed queue.
func (c *queueDepthCollector) Collect(ch chan<- prometheus.Metric) {
	src := c.source.Load()
	if src == nil {
		return
	}
	for _, q := range src.queues {
		ready, unacked, ok := src.depth(q)
		if !ok {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(ready), q, queueStateNames[stateReady])
		ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(unacked), q, queueStateNames[stateUnacked])
	}
}

// StoreStats is what the store (stompd -data-dir) reports once per scrape, through the function given
// to [Metrics.ObserveStore].
type StoreStats struct {
	// Messages and Bytes are what the store holds, indexed by [StoreKind]: queue messages (delivered
	// or not), stream messages, retained messages; Bytes as they take it in the store.
	Messages [numStoreKinds]uint64
	Bytes    [numStoreKinds]uint64
	// LimitBytes is -max-store-bytes, the bound of the queue messages; 0 when there is none.
	LimitBytes int64
}

// ObserveStore exports stompd_store_messages{kind}, stompd_store_bytes{kind} and
// stompd_store_limit_bytes, read from stats once per scrape. Until it is called, and after a call with
// nil, they read 0. stats runs on the scraping goroutine, concurrently with everything else.
func (m *Metrics) ObserveStore(stats func() StoreStats) {
	if m == nil {
		return
	}
	if stats == nil {
		m.store.Store(nil)
		return
	}
	m.store.Store(&stats)
}

// storeCollector exports StoreStats, calling the source once per scrape.
type storeCollector struct {
	m                      *Metrics
	messages, bytes, limit *prometheus.Desc
}

func newStoreCollector(m *Metrics) *storeCollector {
	return &storeCollector{
		m: m,
		messages: prometheus.NewDesc(namespace+"_store_messages",
			"Messages in the store (-data-dir), by kind: queue (delivered or not), stream, retained; 0 without a store.",
			[]string{"kind"}, nil),
		bytes: prometheus.NewDesc(namespace+"_store_bytes",
			"Bytes the stored messages take in the store, by kind; 0 without a store.", []string{"kind"}, nil),
		limit: prometheus.NewDesc(namespace+"_store_limit_bytes",
			"The -max-store-bytes bound of the stored queue messages; 0 when there is none.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.messages
	ch <- c.bytes
	ch <- c.limit
}

// Collect implements prometheus.Collector.
func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	var st StoreStats
	if f := c.m.store.Load(); f != nil {
		st = (*f)()
	}
	for k, kn := range storeKindNames {
		ch <- prometheus.MustNewConstMetric(c.messages, prometheus.GaugeValue, float64(st.Messages[k]), kn)
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(st.Bytes[k]), kn)
	}
	ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, float64(st.LimitBytes))
}
