package metrics

import (
	"runtime"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

const namespace = "stompd"

// deliveryLatencyBuckets spans 50µs (a delivery on an idle node) to 5s (a node in trouble) in
// 1-2.5-5 steps, so dashboards can read quantiles off classic buckets when native histograms are off.
var deliveryLatencyBuckets = []float64{
	0.00005, 0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
	1, 2.5, 5,
}

// storeWriteBuckets spans 25µs (an in-process write to the operating system) to 2.5s (a disk in
// trouble) in 1-2.5-5 steps.
var storeWriteBuckets = []float64{
	0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
	1, 2.5,
}

// outboundQueueBuckets spans 256 B to 16 MiB in factors of 4, which brackets the default 4 MiB
// per-connection limit with room for operators who raise it.
var outboundQueueBuckets = prometheus.ExponentialBuckets(256, 4, 9)

// BuildInfo identifies the running binary in stompd_build_info. Empty fields are exported as
// "unknown"; the Go version is taken from the runtime.
type BuildInfo struct {
	Version  string // release version, e.g. "v1.2.0"
	Revision string // VCS revision the binary was built from
}

// Metrics holds every stompd collector, with each labelled child resolved once by [New]. The
// recording methods are safe for concurrent use and cost a few nanoseconds; all of them, including
// [Metrics.ObserveBroker] and [Metrics.ObserveQueueDepth], do nothing on a nil *Metrics, which is
// how tests and embedders turn metrics off.
type Metrics struct {
	connectionsCurrent [numTransports]prometheus.Gauge
	connectionsOpened  [numTransports]prometheus.Counter
	connectionsClosed  [numTransports][numCloseReasons]prometheus.Counter
	handshakeFailures  [numHandshakeFailures]prometheus.Counter
	authAttempts       [numAuthMethods][numAuthResults]prometheus.Counter
	bytesReceived      [numTransports]prometheus.Counter
	bytesSent          [numTransports]prometheus.Counter

	framesReceived    [numCommands]prometheus.Counter
	framesSent        [numCommands]prometheus.Counter
	errorsSent        [numErrorReasons]prometheus.Counter
	heartbeatTimeouts prometheus.Counter

	slowConsumerDisconnects prometheus.Counter
	memoryLimit             prometheus.Gauge
	memoryHighWatermark     prometheus.Gauge
	publishersHeld          prometheus.Gauge
	deliveryLatency         prometheus.Histogram
	outboundQueue           prometheus.Histogram
	storeWrite              prometheus.Histogram
	storeErrors             [numStoreOps]prometheus.Counter

	broker     *brokerCollector
	queueDepth *queueDepthCollector
	parked     atomic.Pointer[func() int]            // see ObserveParkedConnections
	memory     atomic.Pointer[func() (uint64, bool)] // see ObserveMemory
	store      atomic.Pointer[func() StoreStats]     // see ObserveStore
	cluster    *clusterCollector

	backplaneLatency prometheus.Histogram
}

// New creates stompd's collectors and registers them on reg, together with the Go runtime and
// process collectors and stompd_build_info. It never touches prometheus.DefaultRegisterer, so
// separate registries give independent instances in one process. Every labelled child is created
// here, so each series is exported (at zero) from the first scrape, before anything happens.
//
// reg must not be nil: to turn metrics off, use a nil *Metrics instead. New panics if a
// registration fails, for example when reg already holds stompd's collectors or a Go or process
// collector; that is a wiring mistake, not a run-time condition.
func New(reg prometheus.Registerer, info BuildInfo) *Metrics {
	f := promauto.With(reg)
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	f.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace,
		Name:      "build_info",
		Help:      "Always 1; the labels identify the running stompd binary.",
		ConstLabels: prometheus.Labels{
			"version":   orUnknown(info.Version),
			"revision":  orUnknown(info.Revision),
			"goversion": runtime.Version(),
		},
	}).Set(1)

	m := &Metrics{
		broker:     newBrokerCollector(),
		queueDepth: newQueueDepthCollector(),
	}
	reg.MustRegister(m.broker, m.queueDepth)

	current := f.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "connections_current",
		Help: "Open client connections (after the WebSocket upgrade or TCP accept).",
	}, []string{"transport"})
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Name: "connections_parked",
		Help: "Open client connections waiting for their client without a goroutine of their own.",
	}, m.parkedConnections)
	opened := newCounterVec(f, "connections_opened_total",
		"Client connections accepted since start.", "transport")
	closed := newCounterVec(f, "connections_closed_total",
		"Client connections ended since start, by why they ended.", "transport", "reason")
	bytesIn := newCounterVec(f, "received_bytes_total",
		"STOMP bytes read from client connections (heart-beats included, WebSocket framing not).", "transport")
	bytesOut := newCounterVec(f, "sent_bytes_total",
		"STOMP bytes written to client connections (heart-beats included, WebSocket framing not).", "transport")
	for t, tn := range transportNames {
		m.connectionsCurrent[t] = current.WithLabelValues(tn)
		m.connectionsOpened[t] = opened.WithLabelValues(tn)
		m.bytesReceived[t] = bytesIn.WithLabelValues(tn)
		m.bytesSent[t] = bytesOut.WithLabelValues(tn)
		for r, rn := range closeReasonNames {
			m.connectionsClosed[t][r] = closed.WithLabelValues(tn, rn)
		}
	}
	resolve(m.handshakeFailures[:], handshakeFailureNames[:], newCounterVec(f, "handshake_failures_total",
		"Connection attempts refused before a STOMP session began.", "reason"))
	attempts := newCounterVec(f, "auth_attempts_total",
		"Authentication attempts, at the WebSocket handshake or in CONNECT, by method and result.", "method", "result")
	for a, an := range authMethodNames {
		for r, rn := range authResultNames {
			m.authAttempts[a][r] = attempts.WithLabelValues(an, rn)
		}
	}

	resolve(m.framesReceived[:], commandNames[:], newCounterVec(f, "frames_received_total",
		"STOMP frames and heart-beats read from clients.", "command"))
	resolve(m.framesSent[:], commandNames[:], newCounterVec(f, "frames_sent_total",
		"STOMP frames and heart-beats written to clients.", "command"))
	resolve(m.errorsSent[:], errorReasonNames[:], newCounterVec(f, "errors_sent_total",
		"ERROR frames sent to clients.", "reason"))
	m.heartbeatTimeouts = newCounter(f, "heartbeat_timeouts_total",
		"Connections found silent for longer than their negotiated heart-beat allows.")

	m.slowConsumerDisconnects = newCounter(f, "slow_consumer_disconnects_total",
		"Connections closed because their outbound queue went over its byte limit.")
	m.memoryLimit = newGauge(f, "memory_limit_bytes", "The -max-memory limit; 0 when there is none.")
	m.memoryHighWatermark = newGauge(f, "memory_high_watermark_bytes",
		"Live heap at which publishers are held back; 0 when there is no memory limit.")
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Name: "memory_live_bytes",
		Help: "Live heap after the last garbage collection, as the memory alarm last sampled it.",
	}, func() float64 { live, _ := m.memoryState(); return float64(live) })
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Name: "memory_alarm",
		Help: "1 while the live heap is over the high watermark and publishers are held back.",
	}, func() float64 {
		if _, alarm := m.memoryState(); alarm {
			return 1
		}
		return 0
	})
	m.publishersHeld = newGauge(f, "publishers_held",
		"Connections whose SEND is waiting for the memory alarm to clear.")

	m.deliveryLatency = f.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "delivery_latency_seconds",
		Help:                            "Time from a publish being accepted to its MESSAGE frame being queued on a subscriber's connection.",
		Buckets:                         deliveryLatencyBuckets,
		NativeHistogramBucketFactor:     1.1,
		NativeHistogramMaxBucketNumber:  160,
		NativeHistogramMinResetDuration: time.Hour,
	})
	m.outboundQueue = f.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "outbound_queue_bytes",
		Help:    "Bytes already queued on a connection when another frame is queued behind them.",
		Buckets: outboundQueueBuckets,
	})
	m.storeWrite = f.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "store_write_seconds",
		Help:    "Time to store one queue or stream message (-data-dir), from the broker handing it over to the store confirming it.",
		Buckets: storeWriteBuckets,
	})
	resolve(m.storeErrors[:], storeOpNames[:], newCounterVec(f, "store_errors_total",
		"Store operations (-data-dir) that failed, by operation.", "op"))
	reg.MustRegister(newStoreCollector(m))
	m.cluster = newClusterCollector()
	reg.MustRegister(m.cluster)
	m.backplaneLatency = f.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "backplane_latency_seconds",
		Help:    "Time from a topic message's publish on another node to its arrival on this one (stompd -nats; sampled 1 in 64).",
		Buckets: storeWriteBuckets,
	})
	return m
}

func newCounter(f promauto.Factory, name, help string) prometheus.Counter {
	return f.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help})
}

func newGauge(f promauto.Factory, name, help string) prometheus.Gauge {
	return f.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help})
}

func newCounterVec(f promauto.Factory, name, help string, labels ...string) *prometheus.CounterVec {
	return f.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
}

// resolve fills dst[i] with vec's child for the label value names[i].
func resolve(dst []prometheus.Counter, names []string, vec *prometheus.CounterVec) {
	for i, n := range names {
		dst[i] = vec.WithLabelValues(n)
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
