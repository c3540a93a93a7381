package metrics

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ClusterStats is what the node's link to the cluster (stompd -nats) reports once per scrape, through
// the function given to [Metrics.ObserveCluster]. The counters are totals since the link started.
type ClusterStats struct {
	Connected  bool   // stompd_cluster_connected
	Reconnects uint64 // stompd_cluster_reconnects_total
	Nodes      int    // stompd_cluster_nodes: nodes heard from, this one included
	// MessagesIn and MessagesOut are topic messages received from and sent to other nodes
	// (stompd_backplane_messages_total{direction}); Failed those that could not be sent (NATS
	// unreachable and its reconnect buffer full), which reached this node's subscribers only; Dropped
	// the batches from other nodes (NATS messages, each of one or more topic messages) not delivered
	// because this node received them too slowly (stompd_backplane_dropped_total).
	MessagesIn, MessagesOut uint64
	Failed, Dropped         uint64
}

// clusterCollector exports ClusterStats; nothing until ObserveCluster gives it a source, so that a
// node on its own exports no cluster series.
type clusterCollector struct {
	source                                 atomic.Pointer[func() ClusterStats]
	connected, reconnects, nodes, messages *prometheus.Desc
	failed, dropped                        *prometheus.Desc
}

func newClusterCollector() *clusterCollector {
	return &clusterCollector{
		connected: prometheus.NewDesc(namespace+"_cluster_connected",
			"1 while the node is connected to NATS (stompd -nats), 0 while it reconnects.", nil, nil),
		reconnects: prometheus.NewDesc(namespace+"_cluster_reconnects_total",
			"Times the node reconnected to NATS after losing its connection.", nil, nil),
		nodes: prometheus.NewDesc(namespace+"_cluster_nodes",
			"stompd nodes this node hears from (heart-beats within 7 s), itself included.", nil, nil),
		messages: prometheus.NewDesc(namespace+"_backplane_messages_total",
			"Topic messages sent to other nodes (out) and received from them (in) over NATS.", []string{"direction"}, nil),
		failed: prometheus.NewDesc(namespace+"_backplane_failed_total",
			"Topic messages that could not be sent to other nodes (NATS unreachable, its buffer full); they reached this node's subscribers only.", nil, nil),
		dropped: prometheus.NewDesc(namespace+"_backplane_dropped_total",
			"Batches of topic messages from other nodes dropped because this node received them too slowly.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.connected, c.reconnects, c.nodes, c.messages, c.failed, c.dropped} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	f := c.source.Load()
	if f == nil {
		return
	}
	st := (*f)()
	connected := 0.0
	if st.Connected {
		connected = 1
	}
	ch <- prometheus.MustNewConstMetric(c.connected, prometheus.GaugeValue, connected)
	ch <- counter(c.reconnects, st.Reconnects)
	ch <- prometheus.MustNewConstMetric(c.nodes, prometheus.GaugeValue, float64(st.Nodes))
	ch <- counter(c.messages, st.MessagesIn, "in")
	ch <- counter(c.messages, st.MessagesOut, "out")
	ch <- counter(c.failed, st.Failed)
	ch <- counter(c.dropped, st.Dropped)
}

// ObserveCluster exports the cluster series (stompd_cluster_*, stompd_backplane_*), read from stats
// once per scrape. Until it is called they are absent. stats runs on the scraping goroutine.
func (m *Metrics) ObserveCluster(stats func() ClusterStats) {
	if m == nil {
		return
	}
	if stats == nil {
		m.cluster.source.Store(nil)
		return
	}
	m.cluster.source.Store(&stats)
}

// BackplaneLatency records the time from a message's publish on another node to its arrival here
// (stompd_backplane_latency_seconds); the caller samples.
func (m *Metrics) BackplaneLatency(d time.Duration) {
	if m == nil {
		return
	}
	m.backplaneLatency.Observe(d.Seconds())
}
