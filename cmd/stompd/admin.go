package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stompd/stompd/metrics"
	"github.com/stompd/stompd/stompws"
)

// adminRoutes registers the operator endpoints on mux: Prometheus metrics, liveness and readiness.
//
//   - /healthz answers 200 while the process serves HTTP at all.
//   - /readyz answers 200 while the server accepts new connections and 503 once it is draining, so
//     that load balancers stop sending clients before the sessions are told to go. With -data-dir, a
//     store in trouble (a failed write in the last minute, 95% of -max-store-bytes used) is named in
//     the body, on a line after "ready".
//
// With withPprof, the runtime profiles of net/http/pprof are served under /debug/pprof/ too. They are
// off by default: a CPU profile costs the server while it runs, and the endpoints tell an onlooker
// much about the process, so they belong on an admin address that only operators reach.
//   - in a cluster (-nats), /readyz answers 503 with the reason before the node first reaches NATS
//     and once it has lost NATS for longer than -nats-ready-grace.
func adminRoutes(mux *http.ServeMux, reg *prometheus.Registry, srv *stompws.Server, h health, withPprof bool) {
	if withPprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	mux.Handle("GET /metrics", metrics.Handler(reg))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !srv.Accepting() {
			w.Header().Set("Retry-After", "5")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "draining\n")
			return
		}
		if h.notReady != nil {
			if problem := h.notReady(); problem != "" {
				w.Header().Set("Retry-After", "5")
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = io.WriteString(w, "not ready\n"+problem+"\n")
				return
			}
		}
		_, _ = io.WriteString(w, "ready\n")
		// A store in trouble refuses SENDs to /queue/ destinations, but topics, deliveries and
		// everything in memory go on: the node stays ready, and says what is wrong.
		if h.store != nil {
			if problem := h.store(); problem != "" {
				_, _ = io.WriteString(w, problem+"\n")
			}
		}
	})
}

// health are the checks /readyz adds to the server's own: a store's trouble, named while staying
// ready, and a reason not to be ready. Either may be nil.
type health struct {
	store    func() string
	notReady func() string
}

// healthCheck is `stompd -healthcheck URL`, for container health checks in images without a shell:
// it GETs url and returns exit code 0 on 200, 1 otherwise.
func healthCheck(url string, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintf(stderr, "stompd: healthcheck: %v\n", err)
		return 1
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "stompd: healthcheck: %v\n", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "stompd: healthcheck: %s answered %s\n", url, resp.Status)
		return 1
	}
	return 0
}
