package metrics

import (
	"slices"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// BrokerStats is a snapshot of the broker's size, read once per scrape through the function given
// to [Metrics.ObserveBroker]. The figures need not be taken at one instant; each becomes a gauge.
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
}

// ObserveBroker makes every scrape call stats once and export the result as
// stompd_subscriptions_current, stompd_destinations_current and stompd_queue_messages. Until it is
// called those gauges are absent from scrapes. A later call replaces the function; nil removes it.
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

// brokerCollector exports the gauges of [BrokerStats]. It is registered by New and reports
// nothing until ObserveBroker gives it a source.
type brokerCollector struct {
	source        atomic.Pointer[func() BrokerStats]
	subscriptions *prometheus.Desc
	destinations  *prometheus.Desc
	queueMessages *prometheus.Desc
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
	}
}

// Describe implements prometheus.Collector.
func (c *brokerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.subscriptions
	ch <- c.destinations
	ch <- c.queueMessages
}

// Collect implements prometheus.Collector; it calls the source once.
func (c *brokerCollector) Collect(ch chan<- prometheus.Metric) {
	stats := c.source.Load()
	if stats == nil {
		return
	}
	st := (*stats)()
	for k, kn := range kindNames {
		ch <- prometheus.MustNewConstMetric(c.subscriptions, prometheus.GaugeValue, float64(st.Subscriptions[k]), kn)
		ch <- prometheus.MustNewConstMetric(c.destinations, prometheus.GaugeValue, float64(st.Destinations[k]), kn)
	}
	ch <- prometheus.MustNewConstMetric(c.queueMessages, prometheus.GaugeValue, float64(st.ReadyMessages), queueStateNames[stateReady])
	ch <- prometheus.MustNewConstMetric(c.queueMessages, prometheus.GaugeValue, float64(st.UnackedMessages), queueStateNames[stateUnacked])
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
