package main

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stompd/stompd/broker"
	"github.com/stompd/stompd/broker/natsengine"
	"github.com/stompd/stompd/metrics"
	"github.com/stompd/stompd/stompws"
	"github.com/stompd/stompd/stompws/stompwstest"
)

// quickBench are the flags that keep a test run short.
var quickBench = []string{"-duration", "300ms", "-warmup", "100ms", "-json"}

// decodeReport parses bench's -json output.
func decodeReport(t *testing.T, r result) benchReport {
	t.Helper()
	var rep benchReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("decode %q: %v (stderr %q)", r.stdout, err, r.stderr)
	}
	return rep
}

func TestBenchScenarios(t *testing.T) {
	cases := []struct {
		scenario    string
		args        []string
		connections int
		latency     bool // the run must report latency percentiles
	}{
		{scenario: "fanout", args: []string{"-subscribers", "3"}, connections: 4, latency: true},
		{scenario: "fanin", args: []string{"-publishers", "3"}, connections: 4, latency: true},
		{scenario: "pairs", args: []string{"-pairs", "3"}, connections: 6, latency: true},
		{scenario: "queue", args: []string{"-producers", "2", "-consumers", "3", "-prefetch", "10"}, connections: 5, latency: true},
		{scenario: "latency", args: []string{"-subscribers", "3", "-rate", "200"}, connections: 4, latency: true},
		{scenario: "idle", args: []string{"-connections", "20", "-hold", "200ms"}, connections: 20},
	}
	for _, tc := range cases {
		t.Run(tc.scenario, func(t *testing.T) {
			eachTransport(t, func(t *testing.T, tb *testBroker, url string) {
				args := append(append([]string{"bench", tc.scenario, "-url", url}, quickBench...), tc.args...)
				r := runStomp(t, "", nil, args...)
				mustSucceed(t, r, "bench")
				rep := decodeReport(t, r)
				wantTransport := url[:strings.Index(url, ":")]
				if rep.Scenario != tc.scenario || rep.Transport != wantTransport || rep.URL != url || rep.Connections != tc.connections {
					t.Errorf("scenario %q transport %q url %q connections %d; want %q %q %q %d",
						rep.Scenario, rep.Transport, rep.URL, rep.Connections, tc.scenario, wantTransport, url, tc.connections)
				}
				if rep.Lost != 0 || rep.Duplicated != 0 || rep.OutOfOrder != 0 || rep.Errors != 0 {
					t.Errorf("lost %d duplicated %d out of order %d errors %d; want none", rep.Lost, rep.Duplicated, rep.OutOfOrder, rep.Errors)
				}
				if tc.scenario == "idle" {
					if rep.Published != 0 || rep.Delivered != 0 {
						t.Errorf("idle published %d, delivered %d", rep.Published, rep.Delivered)
					}
					if rep.ConnectsPerS == nil || *rep.ConnectsPerS <= 0 {
						t.Errorf("idle reports no connection rate: %v", rep.ConnectsPerS)
					}
					return
				}
				if rep.Published <= 0 || rep.Delivered <= 0 || rep.DeliveredPerS <= 0 {
					t.Errorf("published %d, delivered %d (%.0f/s): want traffic", rep.Published, rep.Delivered, rep.DeliveredPerS)
				}
				if tc.latency && (rep.LatencyMicros == nil || rep.LatencyMicros.Max < rep.LatencyMicros.P50) {
					t.Errorf("latency %+v", rep.LatencyMicros)
				}
			})
		})
	}
}

func TestBenchLatencyIsPaced(t *testing.T) {
	tb := startBroker(t)
	r := runStomp(t, "", nil, "bench", "latency", "-url", tb.tcpURL, "-subscribers", "2", "-rate", "50", "-duration", "1s", "-warmup", "100ms", "-json")
	mustSucceed(t, r, "bench")
	rep := decodeReport(t, r)
	// 50/s for about a second; a wide margin, since the measured phase is cut by a timer.
	if rep.Published < 25 || rep.Published > 100 {
		t.Errorf("published %d in %.2fs at -rate 50", rep.Published, rep.DurationS)
	}
	if rep.Delivered < rep.Published {
		t.Errorf("delivered %d < published %d with 2 subscribers", rep.Delivered, rep.Published)
	}
}

func TestBenchJSONShape(t *testing.T) {
	tb := startBroker(t)
	pid := strconv.Itoa(os.Getpid())
	numbers := []string{"size", "duration_s", "connections", "published", "delivered", "published_per_s", "delivered_per_s",
		"lost", "duplicated", "out_of_order", "errors"}
	pidNumbers := []string{"broker_cpu_s", "broker_cpu_s_per_million_deliveries", "broker_rss_bytes"}
	cases := []struct {
		name     string
		args     []string
		wantNull []string // keys present with null
		wantNum  []string // keys present with a number
		latency  bool
	}{
		{name: "fanout", args: []string{"fanout", "-subscribers", "2"}, latency: true,
			wantNull: append(slices.Clone(pidNumbers), "broker_rss_per_connection_bytes")},
		{name: "fanout with pid", args: []string{"fanout", "-subscribers", "2", "-pid", pid}, latency: true,
			wantNum: pidNumbers, wantNull: []string{"broker_rss_per_connection_bytes"}},
		{name: "idle with pid", args: []string{"idle", "-connections", "5", "-hold", "100ms", "-pid", pid},
			wantNum:  []string{"broker_cpu_s", "broker_rss_bytes", "broker_rss_per_connection_bytes", "broker_rss_before_bytes", "connects_per_s"},
			wantNull: []string{"latency_us", "broker_cpu_s_per_million_deliveries"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{"bench"}, tc.args...), append([]string{"-url", tb.wsURL}, quickBench...)...)
			r := runStomp(t, "", nil, args...)
			mustSucceed(t, r, "bench")
			if strings.Count(r.stdout, "\n") != 1 {
				t.Fatalf("want one line of JSON, got %q", r.stdout)
			}
			var obj map[string]any
			if err := json.Unmarshal([]byte(r.stdout), &obj); err != nil {
				t.Fatalf("decode %q: %v", r.stdout, err)
			}
			want := map[string]bool{"scenario": true, "url": true, "transport": true, "latency_us": true, "broker_rss_per_connection_bytes": true}
			for _, k := range append(slices.Clone(numbers), pidNumbers...) {
				want[k] = true
			}
			for _, k := range tc.wantNum {
				want[k] = true
			}
			if got := slices.Sorted(maps.Keys(obj)); !slices.Equal(got, slices.Sorted(maps.Keys(want))) {
				t.Errorf("keys %v, want %v", got, slices.Sorted(maps.Keys(want)))
			}
			for _, k := range []string{"scenario", "url", "transport"} {
				if _, ok := obj[k].(string); !ok {
					t.Errorf("%s = %#v, want a string", k, obj[k])
				}
			}
			for _, k := range append(slices.Clone(numbers), tc.wantNum...) {
				if _, ok := obj[k].(float64); !ok {
					t.Errorf("%s = %#v, want a number", k, obj[k])
				}
			}
			for _, k := range tc.wantNull {
				if v, ok := obj[k]; !ok || v != nil {
					t.Errorf("%s = %#v (present %v), want null", k, v, ok)
				}
			}
			if tc.latency {
				lat, ok := obj["latency_us"].(map[string]any)
				if !ok || len(lat) != 4 {
					t.Fatalf("latency_us = %#v, want {p50, p99, p999, max}", obj["latency_us"])
				}
				for _, k := range []string{"p50", "p99", "p999", "max"} {
					if _, ok := lat[k].(float64); !ok {
						t.Errorf("latency_us.%s = %#v, want a number", k, lat[k])
					}
				}
			}
			if rss, ok := obj["broker_rss_bytes"].(float64); ok && rss <= 0 {
				t.Errorf("broker_rss_bytes = %v, want positive", rss)
			}
		})
	}
}

func TestBenchSummary(t *testing.T) {
	tb := startBroker(t)
	r := runStomp(t, "", nil, "bench", "pairs", "-url", tb.tcpURL, "-pairs", "2", "-duration", "200ms", "-warmup", "0s", "-pid", strconv.Itoa(os.Getpid()))
	mustSucceed(t, r, "bench")
	for _, want := range []string{"pairs over tcp", "published", "delivered", "lost 0, duplicated 0, out of order 0, errors 0", "latency", "p99.9", "broker CPU", "broker RSS"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("summary %q lacks %q", r.stdout, want)
		}
	}
	if r.stderr != "" {
		t.Errorf("stderr %q: progress belongs on a terminal only", r.stderr)
	}
}

func TestBenchFlowControlWindow(t *testing.T) {
	// A receiver slowed down to about a thousand messages a second, against publishers that would
	// otherwise run thousands ahead: the window must hold them back. Sampling published before
	// delivered can only understate how far ahead publishers are, so a violation is never imagined.
	cases := []struct {
		name      string
		args      []string
		fanout    int64 // deliveries per publish
		receivers int64 // windows that may be in flight at once: one per receiver (queue: per producer)
	}{
		{name: "pairs", args: []string{"pairs", "-pairs", "2", "-window", "10"}, fanout: 1, receivers: 2},
		{name: "fanout", args: []string{"fanout", "-subscribers", "3", "-window", "10"}, fanout: 3, receivers: 3},
		{name: "fanin", args: []string{"fanin", "-publishers", "3", "-window", "9"}, fanout: 1, receivers: 1},
		{name: "queue", args: []string{"queue", "-producers", "1", "-consumers", "2", "-window", "10"}, fanout: 1, receivers: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tb := startBroker(t)
			con := &console{stdin: strings.NewReader(""), stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, lookupEnv: func(string) (string, bool) { return "", false }}
			args := append(tc.args, "-url", tb.tcpURL, "-duration", "300ms", "-warmup", "100ms", "-json")
			cfg, err := parseBenchArgs(args, con)
			if err != nil {
				t.Fatal(err)
			}
			window := int64(cfg.window)
			var worst, samples atomic.Int64
			var wg sync.WaitGroup
			done := make(chan struct{})
			cfg.hooks.delivered = func() { time.Sleep(time.Millisecond) }
			cfg.hooks.started = func(run *benchRun) {
				wg.Go(func() {
					for {
						select {
						case <-done:
							return
						default:
						}
						s, _ := run.counts()
						ahead := s.published*tc.fanout - s.delivered
						if ahead > worst.Load() {
							worst.Store(ahead)
						}
						samples.Add(1)
						time.Sleep(50 * time.Microsecond)
					}
				})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*waitTimeout)
			defer cancel()
			err = cfg.run(ctx, con)
			close(done)
			wg.Wait()
			if bound := window * tc.receivers; worst.Load() > bound {
				t.Errorf("publishers got %d deliveries ahead, over window %d × %d receivers", worst.Load(), window, tc.receivers)
			}
			if err != nil {
				t.Fatalf("bench: %v", err)
			}
			if samples.Load() == 0 || worst.Load() <= 0 {
				t.Errorf("%d samples, at most %d ahead: the slow receiver never held anything back", samples.Load(), worst.Load())
			}
		})
	}
}

func TestBenchBrokerErrors(t *testing.T) {
	readOnly := stompwstest.Start(t, stompwstest.Config{BrokerOptions: broker.Options{
		Policies: []broker.DestinationPolicy{{Pattern: "/topic/readonly.#", ReadOnly: true}},
	}})
	eachTransport(t, func(t *testing.T, tb *testBroker, url string) {
		roURL := "tcp://" + readOnly.TCPAddr
		if strings.HasPrefix(url, "ws") {
			roURL = readOnly.WSURL
		}
		cases := []struct {
			name string
			args []string
			want string
		}{
			{name: "refused subscription", args: []string{"fanout", "-url", url, "-subscribers", "2", "-dest-prefix", "/nowhere"}, want: "broker ERROR: unknown destination"},
			{name: "refused queue subscription", args: []string{"queue", "-url", url, "-dest-prefix", "/nowhere"}, want: "broker ERROR: unknown destination"},
			{name: "refused publish", args: []string{"pairs", "-url", roURL, "-pairs", "2", "-dest-prefix", "/topic/readonly"}, want: "broker ERROR: "},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := runStomp(t, "", nil, append([]string{"bench"}, append(tc.args, quickBench...)...)...)
				if r.code != exitFailure || !strings.Contains(r.stderr, tc.want) || strings.Count(r.stderr, "\n") != 1 {
					t.Errorf("exit %d, stderr %q; want %d and one line with %q", r.code, r.stderr, exitFailure, tc.want)
				}
				if r.stdout != "" {
					t.Errorf("stdout %q: a failed run prints no report", r.stdout)
				}
			})
		}
	})
}

func TestBenchConnectionFailures(t *testing.T) {
	silent, refusedURL := deadEnds(t)
	cases := []struct {
		name     string
		args     []string
		wantCode int
		want     string
	}{
		{name: "timeout", args: []string{"fanout", "-url", "tcp://" + silent.Addr().String(), "-subscribers", "2", "-timeout", "200ms"}, wantCode: exitTimeout, want: "-timeout 200ms"},
		{name: "refused", args: []string{"pairs", "-url", refusedURL, "-pairs", "1"}, wantCode: exitFailure, want: "connect " + refusedURL},
		{name: "no such pid", args: []string{"pairs", "-url", refusedURL, "-pid", "999999999"}, wantCode: exitFailure, want: "-pid 999999999"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := runStomp(t, "", nil, append([]string{"bench"}, tc.args...)...)
			if r.code != tc.wantCode || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, tc.wantCode, tc.want)
			}
		})
	}
}

func TestBenchUsage(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{name: "no scenario", args: nil, want: "want one SCENARIO"},
		{name: "two scenarios", args: []string{"fanout", "fanin"}, want: "want one SCENARIO"},
		{name: "unknown scenario", args: []string{"stampede"}, want: `unknown scenario "stampede"`},
		{name: "flag of another scenario", args: []string{"pairs", "-subscribers", "3"}, want: "-subscribers does not apply to pairs"},
		{name: "idle flag on fanout", args: []string{"fanout", "-hold", "1s"}, want: "-hold does not apply to fanout"},
		{name: "size below the stamp", args: []string{"fanout", "-size", "10"}, want: "-size must be at least"},
		{name: "zero window", args: []string{"fanout", "-window", "0"}, want: "-window must be at least 1"},
		{name: "zero subscribers", args: []string{"latency", "-subscribers", "0"}, want: "-subscribers must be at least 1"},
		{name: "negative rate", args: []string{"pairs", "-rate", "-1"}, want: "-rate"},
		{name: "zero duration", args: []string{"pairs", "-duration", "0s"}, want: "-duration"},
		{name: "too many source addresses", args: []string{"idle", "-source-ips", "300"}, want: "-source-ips"},
		{name: "bad url", args: []string{"pairs", "-url", "http://localhost"}, want: "unknown scheme"},
		{name: "tls flag without tls", args: []string{"pairs", "-url", "tcp://127.0.0.1:1", "-insecure"}, want: "need a tcps://"},
		{name: "bad flag", args: []string{"pairs", "-frobnicate"}, want: "flag provided but not defined"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := runStomp(t, "", nil, append([]string{"bench"}, tc.args...)...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, exitUsage, tc.want)
			}
		})
	}
}

func TestBenchHelp(t *testing.T) {
	r := runStomp(t, "", nil, "bench", "-h")
	mustSucceed(t, r, "bench -h")
	for _, want := range []string{"usage: stomp bench SCENARIO [flags]", "fanout", "fanin", "pairs", "queue", "latency", "idle", "-window", "-source-ips", "-pid"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

func TestBenchIdleSourceIPs(t *testing.T) {
	// The broker admits two connections per remote address: six connections fit only when bench
	// spreads them over three source addresses.
	for _, transport := range []string{"tcp", "ws"} {
		t.Run(transport, func(t *testing.T) {
			s := stompwstest.Start(t, stompwstest.Config{Options: stompws.Options{MaxConnectionsPerIP: 2}})
			url := "tcp://" + s.TCPAddr
			if transport == "ws" {
				url = s.WSURL
			}
			args := append([]string{"bench", "idle", "-url", url, "-connections", "6", "-hold", "50ms"}, quickBench...)
			r := runStomp(t, "", nil, append(args, "-source-ips", "3")...)
			mustSucceed(t, r, "bench idle -source-ips 3")
			if rep := decodeReport(t, r); rep.Connections != 6 || rep.Errors != 0 {
				t.Errorf("connections %d, errors %d; want 6, 0", rep.Connections, rep.Errors)
			}
			// Two source addresses cannot carry six connections here, which shows the spreading
			// above was real.
			if r := runStomp(t, "", nil, append(args, "-source-ips", "2")...); r.code != exitFailure {
				t.Errorf("-source-ips 2: exit %d, stderr %q; want %d", r.code, r.stderr, exitFailure)
			} else {
				t.Logf("-source-ips 2: %s", r.stderr)
			}
		})
	}
}

func TestBenchProgress(t *testing.T) {
	tb := startBroker(t)
	con := &console{stdin: strings.NewReader(""), stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, lookupEnv: func(string) (string, bool) { return "", false }}
	cfg, err := parseBenchArgs([]string{"pairs", "-url", tb.tcpURL, "-pairs", "2", "-duration", "300ms", "-warmup", "300ms"}, con)
	if err != nil {
		t.Fatal(err)
	}
	dialer, err := newBenchDialer(&cfg.conn, cfg.sourceIPs)
	if err != nil {
		t.Fatal(err)
	}
	defer dialer.close()
	run := newBenchRun(cfg, dialer)
	var progress lockedBuffer
	stop := startProgress(&progress, run, 20*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitTimeout)
	defer cancel()
	_, err = run.traffic(ctx)
	stop()
	if err != nil {
		t.Fatal(err)
	}
	out := progress.String()
	for _, want := range []string{"\rpairs warm-up", "\rpairs measuring", "delivered", "\r\x1b[K"} {
		if !strings.Contains(out, want) {
			t.Errorf("progress output lacks %q:\n%q", want, out)
		}
	}
	if !strings.HasSuffix(out, "\r\x1b[K") {
		t.Errorf("progress line not cleared at the end: %q", out[max(0, len(out)-40):])
	}
}

// TestBenchReceipts: with -receipt-every N a publisher asks for a RECEIPT on every Nth SEND and waits
// for it, and -persistent marks every SEND persistent:true; against a broker whose queues are stored.
func TestBenchReceipts(t *testing.T) {
	e, err := natsengine.Start(natsengine.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	reg := prometheus.NewRegistry()
	s := stompwstest.Start(t, stompwstest.Config{
		BrokerOptions: broker.Options{Store: e},
		Options:       stompws.Options{Metrics: metrics.New(reg, metrics.BuildInfo{})},
	})
	args := append([]string{"bench", "queue", "-url", "tcp://" + s.TCPAddr, "-producers", "2", "-consumers", "2",
		"-receipt-every", "10", "-persistent"}, quickBench...)
	r := runStomp(t, "", nil, args...)
	mustSucceed(t, r, "bench")
	rep := decodeReport(t, r)
	if rep.Lost != 0 || rep.Duplicated != 0 || rep.Delivered == 0 {
		t.Fatalf("report %+v", rep)
	}
	sends := counterValue(t, reg, "stompd_frames_received_total", "SEND")
	receipts := counterValue(t, reg, "stompd_frames_sent_total", "RECEIPT")
	// Each producer asks for one receipt per 10 SENDs; the last batch of each may be short of it.
	if receipts < sends/10-2 || receipts > sends/10+2 {
		t.Errorf("%v RECEIPTs for %v SENDs, want one per 10", receipts, sends)
	}
}

// counterValue reads the counter name{command=command} from reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name, command string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "command" && l.GetValue() == command {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{command=%q}", name, command)
	return 0
}
