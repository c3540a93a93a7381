package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/go-stomp/stomp/v3"
)

// TestPrometheusScrapesStompd runs Debian's Prometheus against the real binary: it scrapes /metrics
// every second while a STOMP client drives known traffic, and the values Prometheus stores are checked
// through its HTTP API. promtool also lints one scrape.
func TestPrometheusScrapesStompd(t *testing.T) {
	prometheusBin := requireTool(t, "prometheus", "prometheus")
	promtool := requireTool(t, "promtool", "prometheus")

	stompAddr := freeLoopbackAddr(t)
	p := startStompd(t, "-stocks=false", "-chat=false", "-stomp-addr", stompAddr, "-metrics-queues", "/queue/prom")

	// promtool check metrics on a scrape.
	resp, err := http.Get(p.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	scrape, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	lint := exec.Command(promtool, "check", "metrics")
	lint.Stdin = bytes.NewReader(scrape)
	if out, err := lint.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}

	dir := t.TempDir()
	config := fmt.Sprintf("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: stompd\n    static_configs:\n      - targets: [%q]\n", p.HTTPAddr)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	promAddr := freeLoopbackAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	prom := exec.CommandContext(ctx, prometheusBin,
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+promAddr)
	var promLog bytes.Buffer
	prom.Stdout, prom.Stderr = &promLog, &promLog
	if err := prom.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = prom.Wait() })
	waitFor(t, "Prometheus ready", func() bool {
		r, err := http.Get("http://" + promAddr + "/-/ready")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == http.StatusOK
	})

	// Known traffic: two TCP clients; 25 messages into a queue, 10 to a topic with one subscriber, and
	// one to a topic with none.
	consumer, err := stomp.Dial("tcp", stompAddr, stomp.ConnOpt.HeartBeat(0, 0), stomp.ConnOpt.Logger(quietLogger{}))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.MustDisconnect()
	producer, err := stomp.Dial("tcp", stompAddr, stomp.ConnOpt.HeartBeat(0, 0), stomp.ConnOpt.Logger(quietLogger{}))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.MustDisconnect()
	sub, _ := consumer.Subscribe("/topic/prom", stomp.AckAuto)
	// Frames of one connection take effect in order: this receipt means the SUBSCRIBE is live.
	if err := consumer.Send("/topic/sync", "text/plain", nil, stomp.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 25; i++ {
		_ = producer.Send("/queue/prom", "text/plain", []byte(strconv.Itoa(i)))
	}
	for i := 0; i < 10; i++ {
		_ = producer.Send("/topic/prom", "text/plain", []byte(strconv.Itoa(i)), stomp.SendOpt.Receipt)
	}
	for i := 0; i < 10; i++ {
		recv(t, sub)
	}

	query := func(q string) (float64, bool) {
		r, err := http.Get("http://" + promAddr + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			return 0, false
		}
		defer r.Body.Close()
		var out struct {
			Data struct {
				Result []struct {
					Value [2]any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if json.NewDecoder(r.Body).Decode(&out) != nil || len(out.Data.Result) != 1 {
			return 0, false
		}
		s, _ := out.Data.Result[0].Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		return v, err == nil
	}
	want := map[string]float64{
		`stompd_messages_published_total{kind="queue"}`:    25,
		`stompd_messages_published_total{kind="topic"}`:    11,
		`stompd_messages_delivered_total{kind="topic"}`:    10,
		`stompd_connections_current{transport="tcp"}`:      2,
		`stompd_queue_messages{state="ready"}`:             25,
		`stompd_frames_received_total{command="SEND"}`:     36,
		`stompd_frames_sent_total{command="RECEIPT"}`:      11,
		`sum(stompd_connections_opened_total)`:             2,
		`stompd_build_info{version!=""}`:                   1,
		`stompd_subscriptions_current{kind="topic"}`:       1,
		`up{job="stompd"}`:                                 1,
		`stompd_handshake_failures_total{reason="origin"}`: 0,
	}
	if runtime.GOOS == "linux" {
		// Both clients are silent: their sessions wait without a goroutine.
		want[`stompd_connections_parked`] = 2
	}
	for q, v := range want {
		waitFor(t, fmt.Sprintf("Prometheus to store %s = %v", q, v), func() bool {
			got, ok := query(q)
			return ok && got == v
		})
	}
	t.Logf("Prometheus stored %d expected series values", len(want))
}
