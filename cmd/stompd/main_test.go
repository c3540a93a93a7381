package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/go-stomp/stomp/v3"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

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
	sub, err := ws.Subscribe("/topic/hello", stomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if err := tcp.Send("/topic/hello", "text/plain", []byte("over tcp"), stomp.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}
	if m := <-sub.C; m.Err != nil || string(m.Body) != "over tcp" {
		t.Fatalf("websocket subscriber got %+v", m)
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
	if m := <-sub.C; m.Err == nil || !strings.Contains(m.Err.Error(), "server shutting down") {
		t.Fatalf("websocket client got %+v, want ERROR server shutting down", m)
	}
	_ = tcp.MustDisconnect()
	_ = ws.MustDisconnect()
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
