package test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The stomp command-line client must work against RabbitMQ, the broker most users arrive from, over
// both of its STOMP transports. These tests start a private RabbitMQ node with the script the
// benchmark comparison uses (test/bench/rabbitmq.sh) and drive it with the built stomp binary.

// rabbitMQServer is what Debian's rabbitmq-server package installs and rabbitmq.sh runs.
const rabbitMQServer = "/usr/lib/rabbitmq/bin/rabbitmq-server"

// rabbitMQScript starts and stops a RabbitMQ node whose files all live in one directory.
const rabbitMQScript = "bench/rabbitmq.sh"

// rabbitMQ is a RabbitMQ node started for one test, with STOMP over TCP and Web-STOMP on loopback
// ports of its own. It is stopped when the test ends.
type rabbitMQ struct {
	PID      int    // the Erlang VM
	STOMPURL string // tcp://127.0.0.1:port
	WSURL    string // ws://127.0.0.1:port/ws
}

// startRabbitMQ starts a node in a temporary directory. Starting takes a few seconds.
func startRabbitMQ(t *testing.T) *rabbitMQ {
	t.Helper()
	if _, err := os.Stat(rabbitMQServer); err != nil {
		missingTool(t, "rabbitmq-server (Debian package rabbitmq-server)")
	}
	dir := t.TempDir()
	ports := freeLoopbackPorts(t, 5)
	env := append(os.Environ(),
		"RABBIT_STOMP_PORT="+ports[0],
		"RABBIT_WS_PORT="+ports[1],
		"RABBIT_AMQP_PORT="+ports[2],
		"RABBIT_DIST_PORT="+ports[3],
		"RABBIT_EPMD_PORT="+ports[4],
	)
	script := func(action string) (stdout, stderr string, err error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", rabbitMQScript, action, dir)
		cmd.Env = env
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err = cmd.Run()
		return out.String(), errOut.String(), err
	}
	// Registered before the start, so that a node that came half up is stopped too; it runs before
	// t.TempDir's removal of dir.
	t.Cleanup(func() {
		if _, stderr, err := script("stop"); err != nil {
			t.Errorf("rabbitmq.sh stop: %v\n%s", err, stderr)
		}
	})
	stdout, stderr, err := script("start")
	if err != nil {
		t.Fatalf("rabbitmq.sh start: %v\n%s", err, stderr)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(stdout))
	if err != nil || pid <= 0 {
		t.Fatalf("rabbitmq.sh start printed %q, want the node's pid", stdout)
	}
	return &rabbitMQ{
		PID:      pid,
		STOMPURL: "tcp://127.0.0.1:" + ports[0],
		WSURL:    "ws://127.0.0.1:" + ports[1] + "/ws",
	}
}

// freeLoopbackPorts returns n distinct loopback ports that were free a moment ago; the listeners are
// held until all are chosen, so that no port comes out twice.
func freeLoopbackPorts(t *testing.T, n int) []string {
	t.Helper()
	ports := make([]string, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		_, ports[i], _ = net.SplitHostPort(ln.Addr().String())
	}
	return ports
}

// buildStompCLI builds ./cmd/stomp into a directory removed when the test ends.
func buildStompCLI(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stomp")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", path, "./cmd/stomp")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/stomp: %v\n%s", err, out)
	}
	return path
}

// stompCLI runs the stomp binary against one broker URL, logged in as RabbitMQ's guest (allowed
// from loopback) through the environment, as a script would.
type stompCLI struct {
	path string
	url  string
}

// cliResult is how a stomp command ended.
type cliResult struct {
	stdout, stderr string
	code           int // exit code; -1 when it did not exit normally
}

// command prepares `stomp NAME -url URL ARGS...`, bounded by ctx.
func (c *stompCLI) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.path, append([]string{name, "-url", c.url}, args...)...)
	cmd.Env = append(os.Environ(), "STOMP_LOGIN=guest", "STOMP_PASSCODE=guest")
	return cmd
}

// run runs a stomp command to its end, with stdin as its input.
func (c *stompCLI) run(t *testing.T, stdin string, name string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := c.command(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return cliResult{stdout: stdout.String(), stderr: stderr.String(), code: exitCodeOf(t, err)}
}

// exitCodeOf maps exec's error to the exit code; anything but an exit fails the test.
func exitCodeOf(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("stomp did not run: %v", err)
	return -1
}

// mustSucceed fails the test unless the command exited 0.
func (r cliResult) mustSucceed(t *testing.T, what string) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("%s: exit %d, want 0\nstdout: %s\nstderr: %s", what, r.code, r.stdout, r.stderr)
	}
}

// cliMessage is the part of stomp sub -json's output these tests check.
type cliMessage struct {
	Destination  string            `json:"destination"`
	Subscription string            `json:"subscription"`
	MessageID    string            `json:"message_id"`
	Headers      map[string]string `json:"headers"`
	Body         *string           `json:"body"`
}

// cliMessages decodes stomp sub -json's output, one object per line.
func cliMessages(t *testing.T, out string) []cliMessage {
	t.Helper()
	var msgs []cliMessage
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var m cliMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("sub -json printed %q: %v", sc.Text(), err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// benchSummary is the part of stomp bench -json's summary these tests check.
type benchSummary struct {
	Scenario    string  `json:"scenario"`
	Transport   string  `json:"transport"`
	Published   int64   `json:"published"`
	Delivered   int64   `json:"delivered"`
	Lost        int64   `json:"lost"`
	Duplicated  int64   `json:"duplicated"`
	OutOfOrder  int64   `json:"out_of_order"`
	Errors      int64   `json:"errors"`
	BrokerCPUS  float64 `json:"broker_cpu_s"`
	BrokerRSS   int64   `json:"broker_rss_bytes"`
	DeliveredPS float64 `json:"delivered_per_s"`
}

func TestRabbitMQ(t *testing.T) {
	rmq := startRabbitMQ(t)
	stomp := buildStompCLI(t)
	for _, tr := range []struct{ name, url string }{
		{"tcp", rmq.STOMPURL},
		{"ws", rmq.WSURL},
	} {
		t.Run(tr.name, func(t *testing.T) {
			c := &stompCLI{path: stomp, url: tr.url}
			t.Run("topic round trip", func(t *testing.T) {
				testRabbitMQRoundTrip(t, c, "/topic/roundtrip-"+tr.name)
			})
			t.Run("client-individual ack on a queue", func(t *testing.T) {
				testRabbitMQQueueAck(t, c, "/queue/ack-"+tr.name)
			})
			t.Run("bench fanout", func(t *testing.T) {
				r := c.run(t, "", "bench", "fanout", "-duration", "1s", "-warmup", "500ms", "-subscribers", "5",
					"-pid", strconv.Itoa(rmq.PID), "-json")
				r.mustSucceed(t, "stomp bench fanout")
				var s benchSummary
				if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &s); err != nil {
					t.Fatalf("bench -json printed %q: %v", r.stdout, err)
				}
				if s.Scenario != "fanout" || s.Transport != tr.name {
					t.Errorf("scenario %q transport %q, want fanout %s", s.Scenario, s.Transport, tr.name)
				}
				if s.Published == 0 || s.Delivered == 0 {
					t.Errorf("published %d, delivered %d; want both positive", s.Published, s.Delivered)
				}
				if s.Lost != 0 || s.Duplicated != 0 || s.OutOfOrder != 0 || s.Errors != 0 {
					t.Errorf("lost %d, duplicated %d, out of order %d, errors %d; want none", s.Lost, s.Duplicated, s.OutOfOrder, s.Errors)
				}
				if s.BrokerCPUS <= 0 || s.BrokerRSS <= 0 {
					t.Errorf("broker CPU %gs, RSS %d bytes from -pid %d; want both positive", s.BrokerCPUS, s.BrokerRSS, rmq.PID)
				}
			})
		})
	}
}

// testRabbitMQRoundTrip subscribes with stomp sub -json and publishes with stomp pub until the
// subscriber has its message: RabbitMQ drops topic messages sent before the subscription is bound,
// and the CLI has no way to say when that is.
func testRabbitMQRoundTrip(t *testing.T, c *stompCLI, dest string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	sub := c.command(ctx, "sub", "-json", "-count", "1", "-timeout", "30s", dest)
	var subOut, subErr bytes.Buffer
	sub.Stdout, sub.Stderr = &subOut, &subErr
	if err := sub.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	subDone := make(chan error, 1)
	go func() { subDone <- sub.Wait() }()
	var subErrResult error
	finished := false
	defer func() {
		cancel()
		if !finished {
			<-subDone
		}
	}()

	body := "hello over " + c.url
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for !finished {
		c.run(t, "", "pub", "-H", "x-test:round-trip", dest, body).mustSucceed(t, "stomp pub")
		select {
		case subErrResult = <-subDone:
			finished = true
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("stomp sub got nothing within a minute; stderr: %s", subErr.String())
		}
	}
	if code := exitCodeOf(t, subErrResult); code != 0 {
		t.Fatalf("stomp sub: exit %d, want 0\nstdout: %s\nstderr: %s", code, subOut.String(), subErr.String())
	}
	msgs := cliMessages(t, subOut.String())
	if len(msgs) != 1 {
		t.Fatalf("sub -count 1 printed %d messages, want 1: %q", len(msgs), subOut.String())
	}
	m := msgs[0]
	if m.Body == nil || *m.Body != body {
		t.Errorf("body %v, want %q", m.Body, body)
	}
	if m.Destination != dest || m.Headers["destination"] != dest {
		t.Errorf("destination %q (header %q), want %q", m.Destination, m.Headers["destination"], dest)
	}
	if m.MessageID == "" || m.Subscription == "" {
		t.Errorf("message_id %q, subscription %q; want both set", m.MessageID, m.Subscription)
	}
	if got := m.Headers["x-test"]; got != "round-trip" {
		t.Errorf("header x-test %q, want %q (headers %v)", got, "round-trip", m.Headers)
	}
}

// testRabbitMQQueueAck checks that stomp sub -ack client-individual acknowledges what it printed and
// only that: a queue holding two messages gives one to each of two subscribers that stop after one,
// and then nothing to a third.
func testRabbitMQQueueAck(t *testing.T, c *stompCLI, dest string) {
	c.run(t, "first\nsecond\n", "pub", "-lines", dest, "-").mustSucceed(t, "stomp pub -lines")
	for _, want := range []string{"first", "second"} {
		r := c.run(t, "", "sub", "-json", "-ack", "client-individual", "-count", "1", "-timeout", "30s", dest)
		r.mustSucceed(t, "stomp sub -ack client-individual")
		msgs := cliMessages(t, r.stdout)
		if len(msgs) != 1 || msgs[0].Body == nil || *msgs[0].Body != want {
			t.Fatalf("sub -count 1 printed %q, want one message %q", r.stdout, want)
		}
		if msgs[0].Headers["ack"] == "" {
			t.Errorf("message %q has no ack header (headers %v); a client-individual subscription needs one", want, msgs[0].Headers)
		}
	}
	// Both messages were acknowledged, so none comes back.
	r := c.run(t, "", "sub", "-json", "-ack", "client-individual", "-timeout", "2s", dest)
	if r.code != 3 || r.stdout != "" {
		t.Fatalf("sub on the drained queue: exit %d, stdout %q; want exit 3 (timeout) and nothing\nstderr: %s", r.code, r.stdout, r.stderr)
	}
}
