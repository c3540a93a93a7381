package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkFrameSent is the per-frame cost: one resolved counter child.
func BenchmarkFrameSent(b *testing.B) {
	m, _ := newTestMetrics(b)
	b.ReportAllocs()
	for b.Loop() {
		m.FrameSent(CommandMessage)
	}
}

// BenchmarkConnectionClosed indexes a two-label array and updates a counter and a gauge.
func BenchmarkConnectionClosed(b *testing.B) {
	m, _ := newTestMetrics(b)
	b.ReportAllocs()
	for b.Loop() {
		m.ConnectionClosed(TransportWS, CloseSlowConsumer)
	}
}

// BenchmarkFrameSentNil is the cost with metrics off.
func BenchmarkFrameSentNil(b *testing.B) {
	var m *Metrics
	b.ReportAllocs()
	for b.Loop() {
		m.FrameSent(CommandMessage)
	}
}

// BenchmarkFrameSentParallel shows the cost when every core bumps the same counter.
func BenchmarkFrameSentParallel(b *testing.B) {
	m, _ := newTestMetrics(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.FrameSent(CommandMessage)
		}
	})
}

// BenchmarkWithLabelValues is what FrameSent would cost if it looked its child up per call.
func BenchmarkWithLabelValues(b *testing.B) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "frames_sent_total", Help: "Frames."}, []string{"command"})
	prometheus.NewRegistry().MustRegister(vec)
	b.ReportAllocs()
	for b.Loop() {
		vec.WithLabelValues("MESSAGE").Inc()
	}
}

// BenchmarkObserveDeliveryLatency observes the classic-plus-native latency histogram.
func BenchmarkObserveDeliveryLatency(b *testing.B) {
	m, _ := newTestMetrics(b)
	d := 730 * time.Microsecond
	b.ReportAllocs()
	for b.Loop() {
		m.ObserveDeliveryLatency(d)
	}
}

// BenchmarkObserveDeliveryLatencyParallel is the latency histogram observed from every core.
func BenchmarkObserveDeliveryLatencyParallel(b *testing.B) {
	m, _ := newTestMetrics(b)
	d := 730 * time.Microsecond
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveDeliveryLatency(d)
		}
	})
}

// BenchmarkObserveOutboundQueue observes the classic-only queue histogram.
func BenchmarkObserveOutboundQueue(b *testing.B) {
	m, _ := newTestMetrics(b)
	b.ReportAllocs()
	for b.Loop() {
		m.ObserveOutboundQueue(48 << 10)
	}
}

// BenchmarkParseCommand maps a parsed frame's command to its label, as a session does per frame.
func BenchmarkParseCommand(b *testing.B) {
	names := []string{"SEND", "ACK", "MESSAGE", "DISCONNECT"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ParseCommand(names[i&3])
		i++
	}
}

// BenchmarkCollectBroker is the scrape-time cost of the broker collector: every gauge and message
// counter built from one BrokerStats, with a stats function that costs nothing.
func BenchmarkCollectBroker(b *testing.B) {
	m, _ := newTestMetrics(b)
	var st BrokerStats
	st.Published[KindTopic] = 1 << 40
	m.ObserveBroker(func() BrokerStats { return st })
	ch := make(chan prometheus.Metric, 64)
	b.ReportAllocs()
	for b.Loop() {
		m.broker.Collect(ch)
		for len(ch) > 0 {
			<-ch
		}
	}
}

// BenchmarkMessageDelivered is a hand-recorded delivery, for messages the broker does not count.
func BenchmarkMessageDelivered(b *testing.B) {
	m, _ := newTestMetrics(b)
	b.ReportAllocs()
	for b.Loop() {
		m.MessageDelivered(KindTopic)
	}
}
