package stompws

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stompd/stompd/broker"
	"github.com/stompd/stompd/metrics"
)

// startMemSessions serves n sessions, each subscribed to dest, and returns their connections.
func startMemSessions(tb testing.TB, srv *Server, b *broker.Broker, n int, dest string) []*memConn {
	tb.Helper()
	conns := make([]*memConn, n)
	for i := range conns {
		conns[i] = newMemConn("CONNECT\naccept-version:1.2\n\n\x00SUBSCRIBE\nid:" + strconv.Itoa(i) + "\ndestination:" + dest + "\n\n\x00")
		go func(c *memConn) { _ = srv.ServeConn(context.Background(), c) }(conns[i])
	}
	deadline := time.Now().Add(20 * time.Second)
	for b.Stats().Subscriptions < n {
		if time.Now().After(deadline) {
			tb.Fatalf("%d of %d subscriptions", b.Stats().Subscriptions, n)
		}
		time.Sleep(time.Millisecond)
	}
	return conns
}

func stopMemSessions(tb testing.TB, srv *Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkFanout1000 publishes one 128-byte message to a topic with 1,000 subscribed sessions: the
// broker's fan-out plus each session's MESSAGE encoding and enqueue, i.e. everything but the socket.
func BenchmarkFanout1000(b *testing.B) {
	b.Run("metrics=off", func(b *testing.B) { benchmarkFanout(b, nil) })
	b.Run("metrics=on", func(b *testing.B) { benchmarkFanout(b, metrics.New(prometheus.NewRegistry(), metrics.BuildInfo{})) })
}

func benchmarkFanout(b *testing.B, m *metrics.Metrics) {
	const subscribers = 1000
	br := broker.New(broker.Options{})
	srv := NewServer(br, Options{NoHeartBeatSend: true, NoHeartBeatReceive: true, Metrics: m})
	conns := startMemSessions(b, srv, br, subscribers, "/topic/bench")
	defer stopMemSessions(b, srv)
	body := make([]byte, 128)
	header := []broker.Header{{Name: "content-type", Value: "application/json"}}

	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := br.Publish(&broker.Message{Destination: "/topic/bench", Header: header, Body: body}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	deliveries := float64(b.N) * subscribers
	b.ReportMetric(b.Elapsed().Seconds()*1e9/deliveries, "ns/delivery")
	b.ReportMetric(deliveries/b.Elapsed().Seconds(), "deliveries/s")
	if got := conns[0].frames.Load(); got < int64(b.N) {
		b.Fatalf("subscriber 0 got %d of %d", got, b.N)
	}
}

// TestFanoutSharesEncodedMessage checks the invariant the benchmark relies on: every delivery of one
// message hands the connection the same encoded bytes (the shared part is encoded once and the body is
// not copied per subscriber), and deliveries do not allocate.
func TestFanoutSharesEncodedMessage(t *testing.T) {
	br := broker.New(broker.Options{})
	srv := NewServer(br, Options{NoHeartBeatSend: true, NoHeartBeatReceive: true})
	conns := startMemSessions(t, srv, br, 50, "/topic/shared")
	defer stopMemSessions(t, srv)
	for _, c := range conns {
		c.trackTails = true
	}
	if err := br.Publish(&broker.Message{Destination: "/topic/shared", Body: []byte("hello")}); err != nil {
		t.Fatal(err)
	}
	seen := map[*byte]bool{}
	for _, c := range conns {
		c.tails.Range(func(k, _ any) bool { seen[k.(*byte)] = true; return true })
	}
	if len(seen) != 1 {
		t.Fatalf("%d distinct encodings for one message delivered to 50 sessions, want 1", len(seen))
	}
	for _, c := range conns {
		c.trackTails = false
	}
	m := &broker.Message{Destination: "/topic/shared", Body: make([]byte, 128)}
	_ = br.Publish(m) // warm the per-version encoding path
	allocs := testing.AllocsPerRun(100, func() {
		_ = br.Publish(&broker.Message{Destination: "/topic/shared", Body: m.Body})
	})
	// Per publish: the message, its id, and its one encoding; nothing per delivery (50 here).
	if allocs > 6 {
		t.Fatalf("%.0f allocations per publish to 50 sessions: deliveries allocate", allocs)
	}
}
