package test

import (
	"context"
	"net/http"
	"testing"

	"github.com/coder/websocket"
	"github.com/go-stomp/stomp/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stompd/stompd/metrics"
)

// TestMetricsAfterRealTraffic drives a server with real clients and bad input and checks the values
// the registry exports.
func TestMetricsAfterRealTraffic(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, metrics.BuildInfo{Version: "test"})
	ts := startServer(t, func(c *serverConfig) { c.opts.Metrics = m })

	ws := ts.dialWS(t)
	tcp := ts.dialTCP(t)
	sub, _ := ws.Subscribe("/topic/m", stomp.AckAuto)
	waitFor(t, "subscription", func() bool { return ts.Broker.Stats().Subscriptions == 1 })
	for i := 0; i < 3; i++ {
		if err := tcp.Send("/topic/m", "text/plain", []byte("x"), stomp.SendOpt.Receipt); err != nil {
			t.Fatal(err)
		}
		recv(t, sub)
	}
	bad := ts.rawTCP(t)
	bad.connect("1.2")
	bad.send("SEND\ndestination:/nowhere\n\nx\x00")
	bad.expectError("unknown destination")

	// A browser page from another origin is refused before the upgrade.
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, ts.WSURL, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"https://evil.example"}}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin upgrade: %v, want 403", err)
	}

	waitFor(t, "the refused session to be counted closed", func() bool {
		return metricValue(t, reg, "stompd_connections_closed_total", "reason", "protocol_error", "transport", "tcp") == 1
	})
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"stompd_connections_current", []string{"transport", "tcp"}, 1},
		{"stompd_connections_current", []string{"transport", "ws"}, 1},
		{"stompd_connections_opened_total", []string{"transport", "tcp"}, 2},
		{"stompd_frames_received_total", []string{"command", "SEND"}, 4},
		{"stompd_frames_sent_total", []string{"command", "RECEIPT"}, 3},
		{"stompd_frames_sent_total", []string{"command", "ERROR"}, 1},
		{"stompd_errors_sent_total", []string{"reason", "unknown_destination"}, 1},
		{"stompd_handshake_failures_total", []string{"reason", "origin"}, 1},
	} {
		if got := metricValue(t, reg, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// MESSAGE frames are counted when the subscriber's connection drains, right after each write.
	waitFor(t, "3 MESSAGE frames counted", func() bool {
		return metricValue(t, reg, "stompd_frames_sent_total", "command", "MESSAGE") == 3
	})
	if got := metricValue(t, reg, "stompd_sent_bytes_total", "transport", "ws"); got < 3*30 {
		t.Errorf("sent bytes on ws %v: too few for 3 MESSAGE frames", got)
	}
}

// metricValue returns the value of the counter or gauge name whose labels include the given
// name/value pairs; -1 if there is none.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labelPairs ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labelPairs); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					found = found || (l.GetName() == labelPairs[i] && l.GetValue() == labelPairs[i+1])
				}
				if !found {
					continue next
				}
			}
			if m.Counter != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return -1
}
