package metrics

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// waitTimeout bounds every wait on another goroutine; generous for a loaded machine.
const waitTimeout = 20 * time.Second

// scrape GETs url with the given Accept header and returns the status, content type and body.
func scrape(t *testing.T, url, accept string) (status int, contentType, body string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

func TestHandlerFormats(t *testing.T) {
	m, reg := newTestMetrics(t)
	m.FrameReceived(CommandConnect)
	srv := httptest.NewServer(Handler(reg))
	defer srv.Close()

	tests := []struct {
		name     string
		accept   string
		wantType string
		wantBody []string
	}{
		{
			name:     "prometheus text",
			wantType: "text/plain",
			wantBody: []string{`stompd_frames_received_total{command="CONNECT"} 1`, "go_goroutines", "promhttp_metric_handler_requests_in_flight 1"},
		},
		{
			name:     "openmetrics",
			accept:   "application/openmetrics-text;version=1.0.0",
			wantType: "application/openmetrics-text",
			wantBody: []string{`stompd_frames_received_total{command="CONNECT"} 1.0`, "# EOF\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, ctype, body := scrape(t, srv.URL, tt.accept)
			if status != http.StatusOK {
				t.Fatalf("status %d: %s", status, body)
			}
			if !strings.HasPrefix(ctype, tt.wantType) {
				t.Errorf("Content-Type %q, want %s", ctype, tt.wantType)
			}
			for _, w := range tt.wantBody {
				if !strings.Contains(body, w) {
					t.Errorf("body lacks %q", w)
				}
			}
		})
	}
}

// brokenCollector reports one valid metric and one error, as a collector whose source failed.
type brokenCollector struct{ desc *prometheus.Desc }

func (c brokenCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c brokenCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.NewInvalidMetric(c.desc, io.ErrUnexpectedEOF)
}

func TestHandlerServesTheRestWhenACollectorFails(t *testing.T) {
	m, reg := newTestMetrics(t)
	m.HeartbeatTimedOut()
	reg.MustRegister(brokenCollector{prometheus.NewDesc("broken_thing", "Fails.", nil, nil)})
	h := Handler(reg)
	Handler(reg) // a second handler on the same registry shares the promhttp metrics

	srv := httptest.NewServer(h)
	defer srv.Close()
	status, _, body := scrape(t, srv.URL, "")
	if status != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", status, body)
	}
	if !strings.Contains(body, "stompd_heartbeat_timeouts_total 1") {
		t.Error("the healthy metrics were not served")
	}
	// The second scrape gathers before counting its own failure, so it shows the first one.
	_, _, body = scrape(t, srv.URL, "")
	if want := `promhttp_metric_handler_errors_total{cause="gathering"} 1`; !strings.Contains(body, want) {
		t.Errorf("the failed gather was not counted: body lacks %q", want)
	}
}

func TestHandlerOnAPlainGatherer(t *testing.T) {
	m, reg := newTestMetrics(t)
	m.MessageRedelivered()
	srv := httptest.NewServer(Handler(prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		return reg.Gather()
	})))
	defer srv.Close()
	status, _, body := scrape(t, srv.URL, "")
	if status != http.StatusOK || !strings.Contains(body, "stompd_messages_redelivered_total 1") {
		t.Fatalf("status %d, body lacks the redelivery count:\n%s", status, body)
	}
	if strings.Contains(body, "promhttp_metric_handler_requests_total") {
		t.Error("a plain Gatherer cannot hold the handler's own metrics, yet they were served")
	}
}

// blockingCollector holds every Collect until release is closed, announcing each on entered.
type blockingCollector struct {
	desc    *prometheus.Desc
	entered chan struct{}
	release chan struct{}
}

func (c blockingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c blockingCollector) Collect(ch chan<- prometheus.Metric) {
	c.entered <- struct{}{}
	<-c.release
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, 1)
}

func TestHandlerLimitsConcurrentScrapes(t *testing.T) {
	_, reg := newTestMetrics(t)
	slow := blockingCollector{
		desc:    prometheus.NewDesc("slow_thing", "Blocks.", nil, nil),
		entered: make(chan struct{}, maxScrapesInFlight+1),
		release: make(chan struct{}),
	}
	reg.MustRegister(slow)
	srv := httptest.NewServer(Handler(reg))
	defer srv.Close()

	done := make(chan struct{}, maxScrapesInFlight)
	for range maxScrapesInFlight {
		go func() {
			defer func() { done <- struct{}{} }()
			// The status is not checked: on a very slow machine these may pass the scrape timeout.
			resp, err := http.Get(srv.URL)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	for range maxScrapesInFlight {
		select {
		case <-slow.entered:
		case <-time.After(waitTimeout):
			close(slow.release)
			t.Fatal("the scrapes did not all reach the collector")
		}
	}

	status, _, body := scrape(t, srv.URL, "")
	close(slow.release)
	for range maxScrapesInFlight {
		<-done
	}
	if status != http.StatusServiceUnavailable {
		t.Errorf("scrape beyond the limit: status %d, want 503: %s", status, body)
	}
}
