package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/stompd/stompd/broker"
	"github.com/stompd/stompd/stompws/stompwstest"
)

func TestMain(m *testing.M) {
	stompwstest.VerifyTestMain(m, nil, goleak.IgnoreTopFunction(goStompServerTop))
}

// waitTimeout bounds every wait in these tests; generous, because test machines are shared.
const waitTimeout = 20 * time.Second

// testBroker is an in-process stompd serving STOMP over TCP and over WebSocket at /ws, shut down
// when the test ends.
type testBroker struct {
	broker *broker.Broker
	tcpURL string
	wsURL  string
}

func startBroker(t *testing.T) *testBroker {
	t.Helper()
	s := stompwstest.Start(t, stompwstest.Config{})
	return &testBroker{broker: s.Broker, tcpURL: "tcp://" + s.TCPAddr, wsURL: s.WSURL}
}

// eachTransport runs f once over TCP and once over WebSocket, each with its own broker.
func eachTransport(t *testing.T, f func(t *testing.T, tb *testBroker, url string)) {
	for _, tr := range []string{"tcp", "ws"} {
		t.Run(tr, func(t *testing.T) {
			tb := startBroker(t)
			url := tb.tcpURL
			if tr == "ws" {
				url = tb.wsURL
			}
			f(t, tb, url)
		})
	}
}

// result is what one run of the program produced.
type result struct {
	code           int
	stdout, stderr string
}

// lockedBuffer lets a test read output while the command is still writing it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runStomp runs the program with args, stdin and an environment holding only env, and waits for it.
func runStomp(t *testing.T, stdin string, env map[string]string, args ...string) result {
	t.Helper()
	var stdout lockedBuffer
	r := runStompTo(t, &stdout, stdin, env, args...)
	r.stdout = stdout.String()
	return r
}

// runStompTo is runStomp writing standard output to stdout; the result's stdout is empty.
func runStompTo(t *testing.T, stdout io.Writer, stdin string, env map[string]string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitTimeout)
	defer cancel()
	var stderr lockedBuffer
	code := run(ctx, args, &console{
		stdin:  strings.NewReader(stdin),
		stdout: stdout,
		stderr: &stderr,
		lookupEnv: func(k string) (string, bool) {
			v, ok := env[k]
			return v, ok
		},
	})
	return result{code: code, stderr: stderr.String()}
}

// mustSucceed fails the test unless r exited 0.
func mustSucceed(t *testing.T, r result, what string) {
	t.Helper()
	if r.code != exitOK {
		t.Fatalf("%s: exit %d, stderr %q", what, r.code, r.stderr)
	}
}

// waitFor polls cond until it holds or waitTimeout passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
