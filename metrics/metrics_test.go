package metrics

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// newTestMetrics returns a Metrics on a fresh registry, and the registry.
func newTestMetrics(t testing.TB) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	return New(reg, BuildInfo{Version: "v0.1.0", Revision: "abc123"}), reg
}

// sample gathers g and returns the metric of family name whose labels are exactly labelPairs
// (name, value, name, value...). It fails the test if there is no such metric.
func sample(t testing.TB, g prometheus.Gatherer, name string, labelPairs ...string) *dto.Metric {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labelPairs); i += 2 {
		want[labelPairs[i]] = labelPairs[i+1]
	}
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			if fmt.Sprint(got) == fmt.Sprint(want) {
				return m
			}
		}
		t.Fatalf("%s has no series with labels %v", name, want)
	}
	t.Fatalf("no family %s", name)
	return nil
}

// value returns the counter or gauge value of one series.
func value(t testing.TB, g prometheus.Gatherer, name string, labelPairs ...string) float64 {
	t.Helper()
	m := sample(t, g, name, labelPairs...)
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatalf("%s%v is neither a counter nor a gauge", name, labelPairs)
	return 0
}

func TestRecordingMethods(t *testing.T) {
	type want struct {
		name   string
		labels []string
		value  float64
	}
	tests := []struct {
		name   string
		record func(m *Metrics)
		want   []want
	}{
		{
			name:   "connection opened",
			record: func(m *Metrics) { m.ConnectionOpened(TransportWS); m.ConnectionOpened(TransportWS) },
			want: []want{
				{"stompd_connections_opened_total", []string{"transport", "ws"}, 2},
				{"stompd_connections_current", []string{"transport", "ws"}, 2},
				{"stompd_connections_current", []string{"transport", "tcp"}, 0},
			},
		},
		{
			name: "connection closed",
			record: func(m *Metrics) {
				m.ConnectionOpened(TransportTCP)
				m.ConnectionOpened(TransportTCP)
				m.ConnectionClosed(TransportTCP, CloseHeartbeatTimeout)
			},
			want: []want{
				{"stompd_connections_closed_total", []string{"transport", "tcp", "reason", "heartbeat_timeout"}, 1},
				{"stompd_connections_closed_total", []string{"transport", "ws", "reason", "heartbeat_timeout"}, 0},
				{"stompd_connections_current", []string{"transport", "tcp"}, 1},
			},
		},
		{
			name:   "handshake failed",
			record: func(m *Metrics) { m.HandshakeFailed(HandshakeOrigin); m.HandshakeFailed(HandshakeShuttingDown) },
			want: []want{
				{"stompd_handshake_failures_total", []string{"reason", "origin"}, 1},
				{"stompd_handshake_failures_total", []string{"reason", "shutting_down"}, 1},
				{"stompd_handshake_failures_total", []string{"reason", "auth"}, 0},
			},
		},
		{
			name: "bytes",
			record: func(m *Metrics) {
				m.BytesReceived(TransportWS, 100)
				m.BytesReceived(TransportWS, 0)
				m.BytesReceived(TransportWS, -5)
				m.BytesSent(TransportTCP, 1<<40)
			},
			want: []want{
				{"stompd_received_bytes_total", []string{"transport", "ws"}, 100},
				{"stompd_sent_bytes_total", []string{"transport", "tcp"}, 1 << 40},
				{"stompd_sent_bytes_total", []string{"transport", "ws"}, 0},
			},
		},
		{
			name: "frames",
			record: func(m *Metrics) {
				m.FrameReceived(CommandSend)
				m.FrameReceived(CommandHeartbeat)
				m.FrameSent(CommandMessage)
				m.FrameSent(CommandMessage)
			},
			want: []want{
				{"stompd_frames_received_total", []string{"command", "SEND"}, 1},
				{"stompd_frames_received_total", []string{"command", "HEARTBEAT"}, 1},
				{"stompd_frames_sent_total", []string{"command", "MESSAGE"}, 2},
				{"stompd_frames_sent_total", []string{"command", "SEND"}, 0},
			},
		},
		{
			name:   "errors sent",
			record: func(m *Metrics) { m.ErrorSent(ErrorQueueFull); m.ErrorSent(ErrorRateLimited) },
			want: []want{
				{"stompd_errors_sent_total", []string{"reason", "queue_full"}, 1},
				{"stompd_errors_sent_total", []string{"reason", "rate_limited"}, 1},
				{"stompd_errors_sent_total", []string{"reason", "protocol"}, 0},
			},
		},
		{
			name:   "heartbeat timeouts",
			record: func(m *Metrics) { m.HeartbeatTimedOut() },
			want:   []want{{"stompd_heartbeat_timeouts_total", nil, 1}},
		},
		{
			name: "messages",
			record: func(m *Metrics) {
				m.MessagePublished(KindTopic)
				m.MessagePublished(KindApp)
				m.MessageDelivered(KindReplyQueue)
				m.MessageDelivered(KindReplyQueue)
				m.MessageRedelivered()
				m.MessageDropped(DropConflated)
				m.SlowConsumerDisconnected()
			},
			want: []want{
				{"stompd_messages_published_total", []string{"kind", "topic"}, 1},
				{"stompd_messages_published_total", []string{"kind", "app"}, 1},
				{"stompd_messages_published_total", []string{"kind", "queue"}, 0},
				{"stompd_messages_delivered_total", []string{"kind", "reply_queue"}, 2},
				{"stompd_messages_redelivered_total", nil, 1},
				{"stompd_messages_dropped_total", []string{"reason", "conflated"}, 1},
				{"stompd_messages_dropped_total", []string{"reason", "no_route"}, 0},
				{"stompd_slow_consumer_disconnects_total", nil, 1},
			},
		},
		{
			name: "out-of-range enums are ignored",
			record: func(m *Metrics) {
				m.ConnectionOpened(numTransports)
				m.ConnectionClosed(TransportWS, numCloseReasons)
				m.FrameSent(Command(200))
				m.MessageDropped(numDropReasons)
			},
			want: []want{
				{"stompd_connections_current", []string{"transport", "ws"}, 0},
				{"stompd_connections_closed_total", []string{"transport", "ws", "reason", "client_disconnect"}, 0},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, reg := newTestMetrics(t)
			tt.record(m)
			for _, w := range tt.want {
				if got := value(t, reg, w.name, w.labels...); got != w.value {
					t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.value)
				}
			}
		})
	}
}

func TestHistograms(t *testing.T) {
	m, reg := newTestMetrics(t)
	m.ObserveDeliveryLatency(30 * time.Microsecond)
	m.ObserveDeliveryLatency(2 * time.Millisecond)
	m.ObserveDeliveryLatency(-time.Second) // a clock step: counted as 0
	m.ObserveOutboundQueue(3000)
	m.ObserveOutboundQueue(-1)

	tests := []struct {
		name      string
		count     uint64
		sum       float64
		le        float64 // an upper bound whose cumulative count is checked
		leCount   uint64
		hasNative bool
	}{
		{name: "stompd_delivery_latency_seconds", count: 3, sum: 0.00203, le: 0.00005, leCount: 2, hasNative: true},
		{name: "stompd_outbound_queue_bytes", count: 2, sum: 3000, le: 4096, leCount: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := sample(t, reg, tt.name).GetHistogram()
			if h.GetSampleCount() != tt.count {
				t.Errorf("count = %d, want %d", h.GetSampleCount(), tt.count)
			}
			if diff := h.GetSampleSum() - tt.sum; diff > 1e-9 || diff < -1e-9 {
				t.Errorf("sum = %v, want %v", h.GetSampleSum(), tt.sum)
			}
			i := slices.IndexFunc(h.GetBucket(), func(b *dto.Bucket) bool { return b.GetUpperBound() == tt.le })
			if i < 0 {
				t.Fatalf("no bucket le=%v in %v", tt.le, h.GetBucket())
			}
			if got := h.GetBucket()[i].GetCumulativeCount(); got != tt.leCount {
				t.Errorf("bucket le=%v = %d, want %d", tt.le, got, tt.leCount)
			}
			if native := h.Schema != nil; native != tt.hasNative {
				t.Errorf("native histogram = %v, want %v", native, tt.hasNative)
			}
		})
	}
}

func TestDeliveryLatencyBucketsSpan50usTo5s(t *testing.T) {
	b := deliveryLatencyBuckets
	if b[0] != 50e-6 || b[len(b)-1] != 5 || !slices.IsSorted(b) {
		t.Fatalf("buckets %v: want sorted, 50µs to 5s", b)
	}
}

// TestEverySeriesExistsFromStart checks that New resolves every label value, so a rate() over a
// reason that has never happened is 0 rather than absent.
func TestEverySeriesExistsFromStart(t *testing.T) {
	_, reg := newTestMetrics(t)
	tests := []struct {
		name string
		want int
	}{
		{"stompd_connections_current", int(numTransports)},
		{"stompd_connections_opened_total", int(numTransports)},
		{"stompd_connections_closed_total", int(numTransports) * int(numCloseReasons)},
		{"stompd_handshake_failures_total", int(numHandshakeFailures)},
		{"stompd_frames_received_total", 16},
		{"stompd_frames_sent_total", 16},
		{"stompd_received_bytes_total", int(numTransports)},
		{"stompd_sent_bytes_total", int(numTransports)},
		{"stompd_messages_published_total", 4},
		{"stompd_messages_delivered_total", 4},
		{"stompd_messages_redelivered_total", 1},
		{"stompd_messages_dropped_total", int(numDropReasons)},
		{"stompd_slow_consumer_disconnects_total", 1},
		{"stompd_errors_sent_total", int(numErrorReasons)},
		{"stompd_auth_attempts_total", int(numAuthMethods) * int(numAuthResults)},
		{"stompd_heartbeat_timeouts_total", 1},
		{"stompd_delivery_latency_seconds", 1},
		{"stompd_outbound_queue_bytes", 1},
		{"stompd_build_info", 1},
		{"stompd_store_write_seconds", 1},
		{"stompd_store_errors_total", int(numStoreOps)},
		{"stompd_store_messages", int(numStoreKinds)},
		{"stompd_store_bytes", int(numStoreKinds)},
		{"stompd_store_limit_bytes", 1},
		{"stompd_backplane_latency_seconds", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := testutil.GatherAndCount(reg, tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if n != tt.want {
				t.Errorf("%d series, want %d", n, tt.want)
			}
		})
	}
}

func TestBuildInfo(t *testing.T) {
	tests := []struct {
		name          string
		info          BuildInfo
		version, revn string
	}{
		{"set", BuildInfo{Version: "v1.2.3", Revision: "deadbeef"}, "v1.2.3", "deadbeef"},
		{"empty", BuildInfo{}, "unknown", "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewPedanticRegistry()
			New(reg, tt.info)
			want := fmt.Sprintf(`
# HELP stompd_build_info Always 1; the labels identify the running stompd binary.
# TYPE stompd_build_info gauge
stompd_build_info{goversion=%q,revision=%q,version=%q} 1
`, runtime.Version(), tt.revn, tt.version)
			if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "stompd_build_info"); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestRuntimeCollectorsRegistered(t *testing.T) {
	_, reg := newTestMetrics(t)
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total", "process_resident_memory_bytes"} {
		t.Run(name, func(t *testing.T) {
			n, err := testutil.GatherAndCount(reg, name)
			if err != nil {
				t.Fatal(err)
			}
			if n != 1 {
				t.Errorf("%d series, want 1", n)
			}
		})
	}
}

// TestTwoInstances checks that instances on separate registries are independent.
func TestTwoInstances(t *testing.T) {
	a, regA := newTestMetrics(t)
	b, regB := newTestMetrics(t)
	a.FrameReceived(CommandSend)
	a.FrameReceived(CommandSend)
	b.FrameReceived(CommandSend)
	if got := testutil.ToFloat64(a.framesReceived[CommandSend]); got != 2 {
		t.Errorf("a: SEND received = %v, want 2", got)
	}
	if got := value(t, regA, "stompd_frames_received_total", "command", "SEND"); got != 2 {
		t.Errorf("registry a: SEND received = %v, want 2", got)
	}
	if got := value(t, regB, "stompd_frames_received_total", "command", "SEND"); got != 1 {
		t.Errorf("registry b: SEND received = %v, want 1", got)
	}
}

func TestNewTwiceOnOneRegistryPanics(t *testing.T) {
	reg := prometheus.NewRegistry()
	New(reg, BuildInfo{})
	defer func() {
		if recover() == nil {
			t.Error("second New on the same registry did not panic")
		}
	}()
	New(reg, BuildInfo{})
}

func TestNilMetricsIsOff(t *testing.T) {
	var m *Metrics
	calls := []struct {
		name string
		call func()
	}{
		{"ConnectionOpened", func() { m.ConnectionOpened(TransportWS) }},
		{"ConnectionClosed", func() { m.ConnectionClosed(TransportWS, CloseIOError) }},
		{"HandshakeFailed", func() { m.HandshakeFailed(HandshakeAuth) }},
		{"BytesReceived", func() { m.BytesReceived(TransportTCP, 10) }},
		{"BytesSent", func() { m.BytesSent(TransportTCP, 10) }},
		{"FrameReceived", func() { m.FrameReceived(CommandConnect) }},
		{"FrameSent", func() { m.FrameSent(CommandConnected) }},
		{"ErrorSent", func() { m.ErrorSent(ErrorProtocol) }},
		{"HeartbeatTimedOut", func() { m.HeartbeatTimedOut() }},
		{"MessagePublished", func() { m.MessagePublished(KindQueue) }},
		{"MessageDelivered", func() { m.MessageDelivered(KindQueue) }},
		{"MessageRedelivered", func() { m.MessageRedelivered() }},
		{"MessageDropped", func() { m.MessageDropped(DropExpired) }},
		{"SlowConsumerDisconnected", func() { m.SlowConsumerDisconnected() }},
		{"ObserveDeliveryLatency", func() { m.ObserveDeliveryLatency(time.Millisecond) }},
		{"ObserveOutboundQueue", func() { m.ObserveOutboundQueue(1024) }},
		{"ObserveBroker", func() { m.ObserveBroker(func() BrokerStats { return BrokerStats{} }) }},
		{"ObserveQueueDepth", func() { m.ObserveQueueDepth([]string{"/queue/a"}, nil) }},
		{"ObserveParkedConnections", func() { m.ObserveParkedConnections(func() int { return 1 }) }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("panicked on a nil *Metrics: %v", r)
				}
			}()
			c.call()
		})
	}
}

func TestRecordingIsAllocationFree(t *testing.T) {
	m, _ := newTestMetrics(t)
	calls := []struct {
		name string
		call func()
	}{
		{"ConnectionClosed", func() { m.ConnectionClosed(TransportWS, CloseSlowConsumer) }},
		{"FrameSent", func() { m.FrameSent(CommandMessage) }},
		{"BytesSent", func() { m.BytesSent(TransportWS, 512) }},
		{"MessageDelivered", func() { m.MessageDelivered(KindTopic) }},
		{"ObserveDeliveryLatency", func() { m.ObserveDeliveryLatency(300 * time.Microsecond) }},
		{"ObserveOutboundQueue", func() { m.ObserveOutboundQueue(8192) }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			c.call() // a native histogram allocates its first sparse bucket once
			if n := testing.AllocsPerRun(100, c.call); n != 0 {
				t.Errorf("%v allocations per call, want 0", n)
			}
		})
	}
}

// TestClusterSeries: a node on its own exports no cluster series; ObserveCluster exports them all.
func TestClusterSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, BuildInfo{Version: "test"})
	if n, err := testutil.GatherAndCount(reg, "stompd_cluster_connected"); err != nil || n != 0 {
		t.Fatalf("cluster series before ObserveCluster: %d (%v)", n, err)
	}
	m.ObserveCluster(func() ClusterStats {
		return ClusterStats{Connected: true, Reconnects: 2, Nodes: 3, MessagesIn: 10, MessagesOut: 20, Failed: 1, Dropped: 4}
	})
	for name, want := range map[string]float64{
		"stompd_cluster_connected": 1, "stompd_cluster_reconnects_total": 2, "stompd_cluster_nodes": 3,
		"stompd_backplane_failed_total": 1, "stompd_backplane_dropped_total": 4,
	} {
		if got := gatherValue(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if n, _ := testutil.GatherAndCount(reg, "stompd_backplane_messages_total"); n != 2 {
		t.Errorf("%d backplane_messages_total series, want in and out", n)
	}
}

// gatherValue returns the value of the one sample of an unlabelled gauge or counter.
func gatherValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if m.GetGauge() != nil {
			return m.GetGauge().GetValue()
		}
		return m.GetCounter().GetValue()
	}
	t.Fatalf("%s not gathered", name)
	return 0
}
