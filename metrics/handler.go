package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const (
	// maxScrapesInFlight admits an HA pair of Prometheus servers plus an operator's curl; more
	// concurrent scrapes get 503 instead of piling up gathers.
	maxScrapesInFlight = 4
	// scrapeTimeout stays under Prometheus's default 10s scrape_timeout, so a stuck gather is
	// answered with 503 here rather than being cut off mid-body by the scraper.
	scrapeTimeout = 8 * time.Second
)

// Handler serves a scrape of g: the Prometheus text format, or OpenMetrics when the scraper asks
// for it, compressed as negotiated. At most 4 scrapes run at once (more get 503) and one that takes
// longer than 8s gets 503.
//
// A collector that fails does not fail the scrape: the other metrics are served and the failure is
// counted. When g is also a prometheus.Registerer (a *prometheus.Registry is both), Handler
// registers promhttp_metric_handler_errors_total, promhttp_metric_handler_requests_total and
// promhttp_metric_handler_requests_in_flight on it; calling Handler again on the same registry
// reuses them. Handler is safe for concurrent use.
func Handler(g prometheus.Gatherer) http.Handler {
	opts := promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: maxScrapesInFlight,
		Timeout:             scrapeTimeout,
		EnableOpenMetrics:   true,
	}
	reg, ok := g.(prometheus.Registerer)
	if !ok {
		return promhttp.HandlerFor(g, opts)
	}
	opts.Registry = reg
	return promhttp.InstrumentMetricHandler(reg, promhttp.HandlerFor(g, opts))
}
