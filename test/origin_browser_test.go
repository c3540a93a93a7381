package test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stompd/stompd/metrics"
)

// originTestPage serves, from its own origin, a page whose STOMP.js client connects to the broker
// named in its ws query parameter, and reports either a round trip or the refused connection.
func originTestPage() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/origin-test/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<!doctype html><meta charset="utf-8"><title>stompd Origin test</title>
<script src="stomp.umd.min.js"></script>
<script>
const brokerURL = new URLSearchParams(location.search).get('ws');
const client = new StompJs.Client({ brokerURL, reconnectDelay: 0, debug: () => {} });
client.onConnect = () => {
  client.subscribe('/topic/origin', (m) => {
    window.stompResult = { ok: true, passed: ['connected', 'round trip ' + m.body] };
    client.deactivate();
  });
  client.publish({ destination: '/topic/origin', body: location.origin });
};
client.onWebSocketClose = (evt) => {
  if (!window.stompResult) window.stompResult = { ok: true, passed: ['refused ' + evt.code] };
  client.deactivate();
};
client.activate();
</script>`))
	})
	mux.HandleFunc("/origin-test/stomp.umd.min.js", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join("js", "node_modules", "@stomp", "stompjs", "bundles", "stomp.umd.min.js"))
	})
	return mux
}

// TestOriginInChromium loads a page from one origin in headless Chromium and lets its STOMP.js client
// connect to brokers on another: one that allows the page's origin, where it round-trips a message,
// and one that does not, where the upgrade is refused (403, counted as an origin failure) and the
// client sees the WebSocket close without ever connecting.
func TestOriginInChromium(t *testing.T) {
	requireJS(t, true)
	pages := httptest.NewServer(originTestPage())
	t.Cleanup(pages.Close)
	pageHost := strings.TrimPrefix(pages.URL, "http://")

	cases := []struct {
		name     string
		patterns []string
		want     string
		refused  float64
	}{
		{"allowed", []string{"app.example.com", pageHost}, "round trip " + pages.URL, 0},
		{"disallowed", []string{"app.example.com"}, "refused 1006", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			ts := startServer(t, func(c *serverConfig) {
				c.opts.OriginPatterns = tc.patterns
				c.opts.Metrics = metrics.New(reg, metrics.BuildInfo{Version: "test"})
			})
			res := runNode(t, "stompjs_browser.mjs", pages.URL+"/origin-test/?ws="+url.QueryEscape(ts.WSURL))
			if !slices.Contains(res.Passed, tc.want) {
				t.Fatalf("page reported %q, want %q", res.Passed, tc.want)
			}
			if got := metricValue(t, reg, "stompd_handshake_failures_total", "reason", "origin"); got != tc.refused {
				t.Errorf("handshake_failures{reason=origin} = %v, want %v", got, tc.refused)
			}
		})
	}
}
