package test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/go-stomp/stomp/v3"
)

// TestDrainOnSIGTERM drives the binary's graceful shutdown with a real SIGTERM: for -drain-delay the
// TCP listener is closed, /readyz and WebSocket upgrades answer 503 with Retry-After, and the sessions
// already open go on; then every session gets ERROR "server shutting down"; a client that stopped
// reading with a backlog is cut off at -shutdown-timeout, and the process exits 0.
func TestDrainOnSIGTERM(t *testing.T) {
	const drain, timeout = 2 * time.Second, 2 * time.Second
	stompAddr := freeLoopbackAddr(t)
	p := startStompd(t, "-stocks=false", "-chat=false", "-stomp-addr", stompAddr,
		"-drain-delay", drain.String(), "-shutdown-timeout", timeout.String(), "-max-outbound-bytes", "65536")
	ts := p.clients(stompAddr)

	readers := map[string]*rawClient{"tcp": ts.rawTCP(t), "ws": ts.rawWS(t, "v12.stomp")}
	for _, c := range readers {
		c.connect("1.2")
		c.send("SUBSCRIBE\nid:news\ndestination:/topic/news\nreceipt:s\n\n\x00")
		c.expect("RECEIPT")
	}
	// A consumer that stops reading with a backlog: queue deliveries wait in the queue for room instead
	// of making it a slow consumer, so it stays connected with its socket and outbound queue full, and
	// the ERROR owed to it at shutdown cannot be flushed.
	stuck, err := net.DialTimeout("tcp", stompAddr, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	if _, err := io.WriteString(stuck, "CONNECT\naccept-version:1.2\nhost:/\n\n\x00SUBSCRIBE\nid:q\ndestination:/queue/backlog\n\n\x00"); err != nil {
		t.Fatal(err)
	}
	pub := ts.dialTCP(t)
	body := bytes.Repeat([]byte("b"), 8<<10)
	for i := range 2000 { // 16 MiB: far more than loopback socket buffers and the 64 KiB queue hold
		if err := pub.Send("/queue/backlog", "", append([]byte(strconv.Itoa(i)+":"), body...)); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Send("/queue/backlog", "", []byte("end"), stomp.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	signalled := time.Now()

	// Draining: new TCP connections are refused, readiness is false, upgrades get 503.
	waitFor(t, "the TCP listener to close", func() bool {
		c, err := net.DialTimeout("tcp", stompAddr, time.Second)
		if err == nil {
			c.Close()
			return false
		}
		return errors.Is(err, syscall.ECONNREFUSED)
	})
	if elapsed := time.Since(signalled); elapsed >= drain {
		t.Fatalf("the TCP listener closed %s after SIGTERM, not during the %s drain delay", elapsed, drain)
	}
	resp, err := http.Get(p.URL() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("/readyz while draining: %s, Retry-After %q; want 503 with Retry-After", resp.Status, resp.Header.Get("Retry-After"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_, resp, err = websocket.Dial(ctx, ts.WSURL, &websocket.DialOptions{Subprotocols: []string{"v12.stomp"}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("WebSocket upgrade while draining: %v; want 503 with Retry-After", err)
	}
	// The sessions already open still work.
	if err := pub.Send("/topic/news", "", []byte("while draining"), stomp.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}
	for tr, c := range readers {
		if m := c.expect("MESSAGE"); string(m.Body) != "while draining" {
			t.Fatalf("%s reader got %s while draining", tr, m)
		}
	}
	if elapsed := time.Since(signalled); elapsed >= drain {
		t.Fatalf("the checks above took %s, longer than the drain delay %s: they did not see the drain", elapsed, drain)
	}

	// Then the sessions are told to go, not before the drain delay is over.
	for tr, c := range readers {
		c.expectError("server shutting down")
		if elapsed := time.Since(signalled); elapsed < drain {
			t.Errorf("%s reader got the shutdown ERROR %s after SIGTERM, before the %s drain delay ended", tr, elapsed, drain)
		}
	}
	if code, _ := readers["ws"].closeInfo(); code != websocket.StatusGoingAway {
		t.Errorf("WebSocket closed with %d at shutdown, want 1001", code)
	}

	// The stuck client holds the process up to the shutdown timeout, not beyond.
	select {
	case <-p.exited:
	case <-time.After(drain + timeout + waitTimeout):
		t.Fatalf("stompd still running %s after SIGTERM; log:\n%s", time.Since(signalled), p.Log())
	}
	exitedAfter := time.Since(signalled)
	if p.waitErr != nil {
		t.Fatalf("stompd exited with %v; log:\n%s", p.waitErr, p.Log())
	}
	// Cutting off takes milliseconds; the slack is for a loaded machine.
	if exitedAfter < drain+timeout || exitedAfter > drain+timeout+2*time.Second {
		t.Errorf("stompd exited %s after SIGTERM, want drain delay plus shutdown timeout (%s): the stuck client was not cut off at the timeout", exitedAfter, drain+timeout)
	}
	if !strings.Contains(p.Log(), "sessions cut off at shutdown timeout") {
		t.Errorf("no log line about the session cut off at the shutdown timeout; log:\n%s", p.Log())
	}
	t.Logf("exited %s after SIGTERM (drain %s, timeout %s)", exitedAfter, drain, timeout)
	// Its connection is gone: what it finally reads ends, rather than waiting.
	_ = stuck.SetReadDeadline(time.Now().Add(waitTimeout))
	if _, err := io.Copy(io.Discard, stuck); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("the stuck client's connection did not end: %v", err)
	}
}
