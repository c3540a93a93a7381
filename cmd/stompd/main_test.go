package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/go-stomp/stomp/v3"

	"github.com/stompd/stompd/stompws/stompwstest"
)

func TestMain(m *testing.M) { stompwstest.VerifyTestMain(m, nil) }

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestConfigPrecedenceAndErrors(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(*config) bool
		wantErr string
	}{
		{name: "defaults", check: func(c *config) bool {
			return c.HTTPAddr == ":8080" && c.StompAddr == ":61613" && c.MaxFrameSize == 4<<20 &&
				c.HeartBeat.send == 10*time.Second && c.HeartBeat.receive == 10*time.Second
		}},
		{name: "env", env: map[string]string{"STOMPD_HTTP_ADDR": ":9000", "STOMPD_MAX_FRAME_SIZE": "64KiB"},
			check: func(c *config) bool { return c.HTTPAddr == ":9000" && c.MaxFrameSize == 64<<10 }},
		{name: "flag beats env", args: []string{"-http-addr", ":9100"}, env: map[string]string{"STOMPD_HTTP_ADDR": ":9000"},
			check: func(c *config) bool { return c.HTTPAddr == ":9100" }},
		{name: "empty stomp addr disables tcp", args: []string{"-stomp-addr="}, check: func(c *config) bool { return c.StompAddr == "" }},
		{name: "heartbeat", args: []string{"-heartbeat", "0,5000"},
			check: func(c *config) bool { return c.HeartBeat.send == 0 && c.HeartBeat.receive == 5*time.Second }},
		{name: "bad byte size", args: []string{"-max-frame-size", "lots"}, wantErr: `invalid value "lots" for flag -max-frame-size`},
		{name: "bad env", env: map[string]string{"STOMPD_MAX_HEADERS": "many"}, wantErr: `invalid value "many" for STOMPD_MAX_HEADERS`},
		{name: "bad heartbeat", args: []string{"-heartbeat", "10"}, wantErr: "want send,receive in milliseconds"},
		{name: "bad log level", args: []string{"-log-level", "loud"}, wantErr: "-log-level"},
		{name: "bad log format", args: []string{"-log-format", "xml"}, wantErr: "-log-format"},
		{name: "zero limit", args: []string{"-max-queue-depth", "0"}, wantErr: "-max-queue-depth: must be positive"},
		{name: "unknown flag", args: []string{"-nope"}, wantErr: "flag provided but not defined: -nope"},
		{name: "stray argument", args: []string{"extra"}, wantErr: `unexpected argument "extra"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig(tc.args, env(tc.env), &bytes.Buffer{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Fatalf("error spans lines: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Fatalf("unexpected config %+v", c)
			}
		})
	}
}

func TestHelpDocumentsEveryFlag(t *testing.T) {
	var out bytes.Buffer
	if _, err := parseConfig([]string{"-h"}, env(nil), &out); err != errHelp {
		t.Fatalf("-h: %v", err)
	}
	for _, name := range []string{"http-addr", "stomp-addr", "log-level", "log-format", "max-frame-size", "max-headers",
		"max-header-length", "max-subscriptions", "max-transactions", "max-tx-frames", "max-queue-depth",
		"max-outbound-bytes", "write-timeout", "heartbeat", "heartbeat-min", "heartbeat-max", "heartbeat-grace",
		"shutdown-timeout"} {
		if !strings.Contains(out.String(), "-"+name) {
			t.Errorf("usage lacks -%s", name)
		}
	}
	for _, def := range []string{`(default ":8080")`, `(default ":61613")`, "(default 4MiB)", "(default 10000,10000)"} {
		if !strings.Contains(out.String(), def) {
			t.Errorf("usage lacks %s", def)
		}
	}
	if !strings.Contains(out.String(), "STOMPD_") {
		t.Error("usage does not explain the environment variables")
	}
}

// TestRunServesBothTransportsAndShutsDown drives run in-process: a client on each transport, then a
// cancelled context (what SIGINT/SIGTERM do) must reach both clients as ERROR and return exit code 0.
func TestRunServesBothTransportsAndShutsDown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan listenAddrs, 1)
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"-http-addr", "127.0.0.1:0", "-stomp-addr", "127.0.0.1:0", "-log-format", "json"},
			env(nil), io.Discard, io.Discard, ready)
	}()
	addrs := <-ready

	tcp, err := stomp.Dial("tcp", addrs.STOMP, stomp.ConnOpt.HeartBeat(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	wsc, _, err := websocket.Dial(context.Background(), "ws://"+addrs.HTTP+"/ws", &websocket.DialOptions{Subprotocols: []string{"v12.stomp"}})
	if err != nil {
		t.Fatal(err)
	}
	ws, err := stomp.Connect(websocket.NetConn(context.Background(), wsc, websocket.MessageText), stomp.ConnOpt.HeartBeat(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	// Each transport's client subscribes, and each receives what the other sends.
	clients := map[string]*stomp.Conn{"tcp": tcp, "ws": ws}
	subs := map[string]*stomp.Subscription{}
	for name, c := range clients {
		sub, err := c.Subscribe("/topic/to-"+name, stomp.AckAuto)
		if err != nil {
			t.Fatal(err)
		}
		// Frames of one connection take effect in order: this receipt means the SUBSCRIBE is live.
		if err := c.Send("/topic/sync", "text/plain", nil, stomp.SendOpt.Receipt); err != nil {
			t.Fatal(err)
		}
		subs[name] = sub
	}
	for from, to := range map[string]string{"tcp": "ws", "ws": "tcp"} {
		if err := clients[from].Send("/topic/to-"+to, "text/plain", []byte("over "+from), stomp.SendOpt.Receipt); err != nil {
			t.Fatal(err)
		}
		if m := recvWithin(t, subs[to]); m.Err != nil || string(m.Body) != "over "+from {
			t.Fatalf("%s subscriber got %+v, want the message sent over %s", to, m, from)
		}
	}

	cancel()
	select {
	case code := <-exit:
		if code != 0 {
			t.Fatalf("exit code %d", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	for name, sub := range subs {
		if m := recvWithin(t, sub); m.Err == nil || !strings.Contains(m.Err.Error(), "server shutting down") {
			t.Fatalf("%s client got %+v, want ERROR server shutting down", name, m)
		}
	}
	_ = tcp.MustDisconnect()
	_ = ws.MustDisconnect()
}

// recvWithin returns the next message of sub, failing the test if none comes within 20 s.
func recvWithin(t *testing.T, sub *stomp.Subscription) *stomp.Message {
	t.Helper()
	select {
	case m, ok := <-sub.C:
		if !ok {
			t.Fatalf("subscription to %s ended", sub.Destination())
		}
		return m
	case <-time.After(20 * time.Second):
		t.Fatalf("nothing on %s within 20 s", sub.Destination())
		return nil
	}
}

// TestBinarySIGTERM builds the real binary, starts it with no configuration but free ports, reads where
// it listens from its log, connects, and checks SIGTERM makes it exit 0 promptly.
func TestBinarySIGTERM(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "stompd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "STOMPD_HTTP_ADDR=127.0.0.1:0", "STOMPD_STOMP_ADDR=127.0.0.1:0", "STOMPD_LOG_FORMAT=json")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stderr)
	var started struct{ Websocket, Stomp string }
	for lines.Scan() {
		if json.Unmarshal(lines.Bytes(), &started) == nil && started.Websocket != "" {
			break
		}
	}
	if !strings.HasPrefix(started.Websocket, "ws://") || !strings.HasSuffix(started.Websocket, "/ws") || !strings.HasPrefix(started.Stomp, "tcp://") {
		_ = cmd.Process.Kill()
		t.Fatalf("start log line names %+v", started)
	}
	go func() {
		for lines.Scan() {
		}
	}()
	conn, err := net.Dial("tcp", strings.TrimPrefix(started.Stomp, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c, err := stomp.Connect(conn, stomp.ConnOpt.HeartBeat(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	sub, _ := c.Subscribe("/queue/x", stomp.AckAuto)
	begin := time.Now()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("no exit within 20s of SIGTERM")
	}
	t.Logf("exited %s after SIGTERM", time.Since(begin).Round(time.Millisecond))
	if m := <-sub.C; m.Err == nil || !strings.Contains(m.Err.Error(), "server shutting down") {
		t.Fatalf("client got %+v, want ERROR server shutting down", m)
	}
	_ = c.MustDisconnect()
}

// TestDrainRefusesNewConnectionsFirst: with -drain-delay, a signal first turns readiness false and
// refuses new WebSocket upgrades with 503 and Retry-After while existing sessions go on; then the
// sessions get their ERROR and the process exits 0. Metrics and health move to -metrics-addr.
func TestDrainRefusesNewConnectionsFirst(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan listenAddrs, 1)
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"-http-addr", "127.0.0.1:0", "-stomp-addr", "127.0.0.1:0", "-metrics-addr", "127.0.0.1:0",
			"-drain-delay", "1s", "-stocks=false", "-chat=false"}, env(nil), io.Discard, io.Discard, ready)
	}()
	addrs := <-ready
	get := func(url string) (int, http.Header) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header
	}
	for path, want := range map[string]int{"/metrics": 200, "/healthz": 200, "/readyz": 200} {
		if code, _ := get("http://" + addrs.Metrics + path); code != want {
			t.Fatalf("admin %s: %d, want %d", path, code, want)
		}
		if code, _ := get("http://" + addrs.HTTP + path); code != http.StatusNotFound {
			t.Fatalf("%s is also on -http-addr (%d) although -metrics-addr is set", path, code)
		}
	}
	c, err := stomp.Dial("tcp", addrs.STOMP, stomp.ConnOpt.HeartBeat(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	sub, _ := c.Subscribe("/topic/x", stomp.AckAuto)

	cancel()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, h := get("http://" + addrs.Metrics + "/readyz")
		if code == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d after the signal (%v)", code, h)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, h := get("http://" + addrs.HTTP + "/ws"); code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
		t.Fatalf("upgrade during drain: %d Retry-After %q, want 503 with Retry-After", code, h.Get("Retry-After"))
	}
	// The existing session is still served during the drain delay.
	if err := c.Send("/topic/x", "", []byte("still on"), stomp.SendOpt.Receipt); err != nil {
		t.Fatalf("existing session during drain: %v", err)
	}
	if m := <-sub.C; m.Err != nil || string(m.Body) != "still on" {
		t.Fatalf("during drain got %+v", m)
	}
	if m := <-sub.C; m.Err == nil || !strings.Contains(m.Err.Error(), "server shutting down") {
		t.Fatalf("after drain got %+v, want ERROR server shutting down", m)
	}
	if code := <-exit; code != 0 {
		t.Fatalf("exit code %d", code)
	}
	_ = c.MustDisconnect()
}

func TestHealthcheckFlag(t *testing.T) {
	for _, tc := range []struct {
		status, want int
	}{{200, 0}, {503, 1}} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(tc.status) }))
		code := run(context.Background(), []string{"-healthcheck", srv.URL}, env(nil), io.Discard, io.Discard, nil)
		srv.Close()
		if code != tc.want {
			t.Errorf("-healthcheck against %d: exit %d, want %d", tc.status, code, tc.want)
		}
	}
	if code := run(context.Background(), []string{"-healthcheck", "http://127.0.0.1:1/healthz"}, env(nil), io.Discard, io.Discard, nil); code != 1 {
		t.Errorf("-healthcheck with nothing listening: exit %d, want 1", code)
	}
}

func TestCheckConfigPrintsEffectiveConfiguration(t *testing.T) {
	file := filepath.Join(t.TempDir(), "stompd.yaml")
	yaml := "max-queue-depth: 42\npolicies:\n  - pattern: /topic/prices.#\n    slow-consumer: conflate\n"
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	code := run(context.Background(), []string{"-config", file, "-check-config", "-http-addr", ":9999"},
		env(map[string]string{"STOMPD_MAX_HEADERS": "7"}), &out, io.Discard, nil)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	for _, want := range []string{"max-queue-depth: 42", "file", "max-headers: 7", "env", "http-addr: :9999", "flag", "/topic/prices.#", "conflate"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-check-config output lacks %q:\n%s", want, out.String())
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	_ = os.WriteFile(bad, []byte("http-addr: :1\nmax-frame-sise: 1\n"), 0o644)
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"-config", bad, "-check-config"}, env(nil), io.Discard, &stderr, nil); code != 2 ||
		!strings.Contains(stderr.String(), "bad.yaml:2:") || !strings.Contains(stderr.String(), "max-frame-sise") {
		t.Fatalf("bad file: exit %d, %q", code, stderr.String())
	}
}

// TestPprofIsOptIn: /debug/pprof/ is absent by default and served on the admin address with -pprof.
func TestPprofIsOptIn(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{
		{nil, http.StatusNotFound},
		{[]string{"-pprof"}, http.StatusOK},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		ready := make(chan listenAddrs, 1)
		exit := make(chan int, 1)
		args := append([]string{"-http-addr", "127.0.0.1:0", "-stomp-addr", "", "-metrics-addr", "127.0.0.1:0",
			"-stocks=false", "-chat=false"}, tc.args...)
		go func() { exit <- run(ctx, args, env(nil), io.Discard, io.Discard, ready) }()
		addrs := <-ready
		resp, err := http.Get("http://" + addrs.Metrics + "/debug/pprof/goroutine?debug=1")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		if code := <-exit; code != 0 {
			t.Fatalf("%v: exit %d", tc.args, code)
		}
		if resp.StatusCode != tc.want {
			t.Fatalf("%v: /debug/pprof/goroutine answered %d, want %d", tc.args, resp.StatusCode, tc.want)
		}
		if tc.want == http.StatusOK && !strings.Contains(string(body), "goroutine profile") {
			t.Fatalf("-pprof: not a goroutine profile: %.200s", body)
		}
	}
}
