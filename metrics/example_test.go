package metrics_test

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stompd/stompd/metrics"
)

// Example wires metrics the way the server does: one registry, the recording methods on the
// hot paths, a snapshot function for the broker's size and message counters, and the handler on
// /metrics.
func Example() {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, metrics.BuildInfo{Version: "v1.0.0", Revision: "0123abc"})

	m.ConnectionOpened(metrics.TransportWS)
	if c, ok := metrics.ParseCommand("SUBSCRIBE"); ok {
		m.FrameReceived(c)
	}
	m.ObserveBroker(func() metrics.BrokerStats {
		var st metrics.BrokerStats
		st.Subscriptions[metrics.KindTopic] = 1
		st.Published[metrics.KindTopic] = 3 // the broker's total since it started
		return st
	})

	mux := http.NewServeMux()
	mux.Handle("/metrics", metrics.Handler(reg))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	for sc := bufio.NewScanner(resp.Body); sc.Scan(); {
		line := sc.Text()
		if strings.HasPrefix(line, `stompd_connections_current{transport="ws"}`) ||
			strings.HasPrefix(line, `stompd_frames_received_total{command="SUBSCRIBE"}`) ||
			strings.HasPrefix(line, `stompd_subscriptions_current{kind="topic"}`) ||
			strings.HasPrefix(line, `stompd_messages_published_total{kind="topic"}`) {
			fmt.Println(line)
		}
	}
	// Output:
	// stompd_connections_current{transport="ws"} 1
	// stompd_frames_received_total{command="SUBSCRIBE"} 1
	// stompd_messages_published_total{kind="topic"} 3
	// stompd_subscriptions_current{kind="topic"} 1
}
