package test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/go-stomp/stomp/v3"

	"github.com/stompd/stompd/broker"
	"github.com/stompd/stompd/broker/natsengine"
	"github.com/stompd/stompd/stompws"
	"github.com/stompd/stompd/stompws/frame"
	"github.com/stompd/stompd/stompws/stompwstest"
)

// waitTimeout bounds every wait in these tests; generous, because CI machines are shared.
const waitTimeout = 20 * time.Second

// testServer is an in-process stompd: a broker, a STOMP server, WebSocket on an httptest server and TCP
// on a loopback listener. It is shut down when the test ends.
type testServer struct {
	Broker  *broker.Broker
	Server  *stompws.Server
	WSURL   string // ws://127.0.0.1:port/ws
	HTTPURL string // http://127.0.0.1:port
	TCPAddr string // 127.0.0.1:port
}

type serverConfig struct {
	heartBeats bool // the server takes part in heart-beats, as in production; off by default
	opts       stompws.Options
	bopts      broker.Options
	routes     map[string]http.Handler
	onStart    []func(*broker.Broker) // run once the broker exists, before clients connect
	t          testing.TB             // the test starting the server, for configurations that need one
}

// startServer starts an in-process server (stompwstest) shut down when the test ends; configure adjusts
// the options first. Heart-beats are off unless a test sets them.
func startServer(t testing.TB, configure ...func(*serverConfig)) *testServer {
	t.Helper()
	cfg := serverConfig{routes: map[string]http.Handler{}, t: t}
	if os.Getenv("STOMPD_TEST_LOG") != "" {
		cfg.opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	} else {
		// The server's log is shown when the test fails (its last lines: why connections ended).
		log := &logTail{}
		cfg.opts.Logger = slog.New(slog.NewTextHandler(log, nil))
		t.Cleanup(func() { // after the server's own cleanup, which logs the last closes
			if t.Failed() {
				t.Logf("server log (last %d KiB at most):\n%s", logTailBytes>>10, log.String())
			}
		})
	}
	for _, f := range configure {
		f(&cfg)
	}
	s := stompwstest.Start(t, stompwstest.Config{Options: cfg.opts, BrokerOptions: cfg.bopts, Routes: cfg.routes, OnStart: cfg.onStart, HeartBeats: cfg.heartBeats})
	return &testServer{Broker: s.Broker, Server: s.STOMP, WSURL: s.WSURL, HTTPURL: s.HTTPURL, TCPAddr: s.TCPAddr}
}

// logTailBytes bounds what logTail keeps.
const logTailBytes = 32 << 10

// logTail keeps the last logTailBytes written to it, for any goroutine.
type logTail struct {
	mu  sync.Mutex
	buf []byte
}

func (l *logTail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	if over := len(l.buf) - logTailBytes; over > 0 {
		l.buf = append(l.buf[:0], l.buf[over:]...)
	}
	return len(p), nil
}

func (l *logTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf)
}

// noHeartBeats keeps go-stomp clients from negotiating heart-beats unless a test asks for them.
var noHeartBeats = stomp.ConnOpt.HeartBeat(0, 0)

// dialTCP connects a go-stomp client over TCP.
func (ts *testServer) dialTCP(t testing.TB, opts ...func(*stomp.Conn) error) *stomp.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", ts.TCPAddr, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	return connectStomp(t, nc, opts)
}

// dialWS connects a go-stomp client over WebSocket (go-stomp speaks to a net.Conn; websocket.NetConn
// adapts). Frames the server sends as binary messages would fail NetConn's text mode, so tests with
// non-UTF-8 bodies use TCP or the byte-level client.
func (ts *testServer) dialWS(t testing.TB, opts ...func(*stomp.Conn) error) *stomp.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, ts.WSURL, &websocket.DialOptions{Subprotocols: []string{"v12.stomp"}})
	if err != nil {
		t.Fatal(err)
	}
	return connectStomp(t, websocket.NetConn(context.Background(), c, websocket.MessageText), opts)
}

// connectStomp completes a go-stomp CONNECT over nc and disconnects at the end of the test.
//
// Tests end a go-stomp subscription by disconnecting its connection (or leave it to this cleanup),
// never with Subscription.Unsubscribe: go-stomp v3.1.3 waits for the UNSUBSCRIBE receipt on a
// sync.Cond that the receipt's goroutine signals without holding the Cond's lock, so a receipt that
// comes back quickly is missed, Unsubscribe gives up after 30 s and leaves a goroutine waiting forever.
// UNSUBSCRIBE itself is tested with raw frames.
func connectStomp(t testing.TB, nc net.Conn, opts []func(*stomp.Conn) error) *stomp.Conn {
	t.Helper()
	all := append([]func(*stomp.Conn) error{noHeartBeats, stomp.ConnOpt.Host("/"), stomp.ConnOpt.Logger(quietLogger{})}, opts...)
	conn, err := stomp.Connect(nc, all...)
	if err != nil {
		nc.Close()
		t.Fatalf("stomp connect: %v", err)
	}
	t.Cleanup(func() { _ = conn.Disconnect(); nc.Close() })
	return conn
}

// quietLogger silences go-stomp's client log; failures surface through the tests' assertions.
type quietLogger struct{}

func (quietLogger) Debugf(string, ...interface{})   {}
func (quietLogger) Debug(string)                    {}
func (quietLogger) Infof(string, ...interface{})    {}
func (quietLogger) Info(string)                     {}
func (quietLogger) Warningf(string, ...interface{}) {}
func (quietLogger) Warning(string)                  {}
func (quietLogger) Errorf(string, ...interface{})   {}
func (quietLogger) Error(string)                    {}

// transports runs f once over TCP and once over WebSocket.
func transports(t *testing.T, f func(t *testing.T, dial func(testing.TB, ...func(*stomp.Conn) error) *stomp.Conn, ts *testServer)) {
	transportsWith(t, func(*serverConfig) {}, f)
}

// transportsWith is transports against a server set up by configure.
func transportsWith(t *testing.T, configure func(*serverConfig), f func(t *testing.T, dial func(testing.TB, ...func(*stomp.Conn) error) *stomp.Conn, ts *testServer)) {
	for _, tr := range []string{"tcp", "ws"} {
		t.Run(tr, func(t *testing.T) {
			ts := startServer(t, configure)
			dial := ts.dialTCP
			if tr == "ws" {
				dial = ts.dialWS
			}
			f(t, dial, ts)
		})
	}
}

// recv waits for the next message of sub.
func recv(t testing.TB, sub *stomp.Subscription) *stomp.Message {
	t.Helper()
	select {
	case m, ok := <-sub.C:
		if !ok {
			t.Fatalf("subscription %s closed", sub.Destination())
		}
		if m.Err != nil {
			t.Fatalf("subscription %s: %v", sub.Destination(), m.Err)
		}
		return m
	case <-time.After(waitTimeout):
		t.Fatalf("no message on %s within %s", sub.Destination(), waitTimeout)
	}
	return nil
}

// drain discards what sub receives until it ends.
func drain(sub *stomp.Subscription) {
	for range sub.C {
	}
}

// noMessage asserts that sub receives nothing for a short while and is still alive: a subscription
// that ended (its connection failed or got an ERROR) would receive nothing either, so it fails too.
func noMessage(t testing.TB, sub *stomp.Subscription, within time.Duration) {
	t.Helper()
	select {
	case m, ok := <-sub.C:
		switch {
		case !ok:
			t.Fatalf("subscription %s ended while checking that no message arrives", sub.Destination())
		case m.Err != nil:
			t.Fatalf("subscription %s failed while checking that no message arrives: %v", sub.Destination(), m.Err)
		default:
			t.Fatalf("unexpected message on %s: %q", sub.Destination(), m.Body)
		}
	case <-time.After(within):
	}
	if !sub.Active() {
		t.Fatalf("subscription %s is no longer active", sub.Destination())
	}
}

// rawFrame is a frame read by the byte-level client, copied out of the parser.
type rawFrame struct {
	Command string
	Headers [][2]string
	Body    []byte
}

// Get returns the first value of header name.
func (f *rawFrame) Get(name string) string {
	for _, h := range f.Headers {
		if h[0] == name {
			return h[1]
		}
	}
	return ""
}

func (f *rawFrame) String() string {
	return fmt.Sprintf("%s %v %q", f.Command, f.Headers, f.Body)
}

// rawClient writes bytes exactly as a test crafts them and parses what comes back, over TCP or
// WebSocket. Frames are read by a goroutine into a channel; heart-beats are counted.
type rawClient struct {
	t          testing.TB
	write      func(p []byte, binary bool) error
	close      func()
	frames     chan *rawFrame
	readErr    chan error
	mu         sync.Mutex
	heartBeats int
	msgTypes   []websocket.MessageType // WebSocket: type of every message received
	closeCode  websocket.StatusCode
	closeText  string
	gate       *readGate // pause stops reading, so the server sees a consumer that stopped reading
}

func newRawClient(t testing.TB) *rawClient {
	return &rawClient{t: t, frames: make(chan *rawFrame, 1<<14), readErr: make(chan error, 1), gate: newReadGate()}
}

// pause stops the client from reading its connection until resume.
func (rc *rawClient) pause() { rc.gate.pause() }

// resume restarts reading after pause.
func (rc *rawClient) resume() { rc.gate.resume() }

// rawTCP opens a byte-level client over TCP.
func (ts *testServer) rawTCP(t testing.TB) *rawClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", ts.TCPAddr, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	rc := newRawClient(t)
	rc.write = func(p []byte, _ bool) error { _, err := nc.Write(p); return err }
	rc.close = func() { nc.Close() }
	go rc.readLoop(func(buf []byte) (int, error) { return nc.Read(buf) })
	t.Cleanup(rc.close)
	return rc
}

// rawOver opens a byte-level client over transport tr: "tcp", or "ws" offering v12.stomp.
func (ts *testServer) rawOver(t testing.TB, tr string) *rawClient {
	t.Helper()
	if tr == "ws" {
		return ts.rawWS(t, "v12.stomp")
	}
	return ts.rawTCP(t)
}

// readGate lets a test stop and restart a client's reading.
type readGate struct {
	mu     sync.Mutex
	cond   *sync.Cond
	paused bool
}

func newReadGate() *readGate {
	g := &readGate{}
	g.cond = sync.NewCond(&g.mu)
	return g
}

func (g *readGate) wait() {
	g.mu.Lock()
	for g.paused {
		g.cond.Wait()
	}
	g.mu.Unlock()
}

func (g *readGate) pause() { g.mu.Lock(); g.paused = true; g.mu.Unlock() }

func (g *readGate) resume() { g.mu.Lock(); g.paused = false; g.cond.Broadcast(); g.mu.Unlock() }

// rawWS opens a byte-level client over WebSocket offering subprotocols; each write is one message.
func (ts *testServer) rawWS(t testing.TB, subprotocols ...string) *rawClient {
	t.Helper()
	rc, _, err := ts.rawWSWith(t, ts.WSURL, nil, subprotocols...)
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

// rawWSWith is rawWS to url with extra request headers; it returns the handshake's response and error
// instead of failing the test, for handshakes expected to be refused.
func (ts *testServer) rawWSWith(t testing.TB, url string, header http.Header, subprotocols ...string) (*rawClient, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: subprotocols, HTTPHeader: header})
	if err != nil {
		return nil, resp, err
	}
	c.SetReadLimit(64 << 20)
	rc := newRawClient(t)
	rc.write = func(p []byte, binary bool) error {
		typ := websocket.MessageText
		if binary {
			typ = websocket.MessageBinary
		}
		return c.Write(context.Background(), typ, p)
	}
	rc.close = func() { c.CloseNow() }
	go rc.readLoop(func(buf []byte) (int, error) {
		typ, p, err := c.Read(context.Background())
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				rc.mu.Lock()
				rc.closeCode, rc.closeText = ce.Code, ce.Reason
				rc.mu.Unlock()
				return 0, io.EOF
			}
			return 0, err
		}
		rc.mu.Lock()
		rc.msgTypes = append(rc.msgTypes, typ)
		rc.mu.Unlock()
		// Hand back the whole message; the parser does not care where messages end.
		return copy(buf, p), nil
	})
	t.Cleanup(rc.close)
	return rc, resp, nil
}

// readLoop parses inbound bytes into frames until read fails.
func (rc *rawClient) readLoop(read func([]byte) (int, error)) {
	p := frame.NewParser(frame.Limits{MaxFrameBytes: 64 << 20})
	buf := make([]byte, 8<<20)
	for {
		rc.gate.wait()
		n, err := read(buf)
		if n > 0 {
			perr := p.Feed(buf[:n], func(f *frame.Frame) error {
				if f == nil {
					rc.mu.Lock()
					rc.heartBeats++
					rc.mu.Unlock()
					return nil
				}
				rf := &rawFrame{Command: f.Command, Body: bytes.Clone(f.Body)}
				for _, h := range f.Headers {
					rf.Headers = append(rf.Headers, [2]string{string(h.Name), string(h.Value)})
				}
				if f.Command == frame.CONNECTED {
					// The server's frames after CONNECTED are escaped per the negotiated version.
					if v, ok := frame.ParseVersion(rf.Get("version")); ok {
						p.SetVersion(v)
					}
				}
				rc.frames <- rf
				return nil
			})
			if perr != nil {
				rc.readErr <- fmt.Errorf("client parser: %w", perr)
				return
			}
		}
		if err != nil {
			rc.readErr <- err
			return
		}
	}
}

// send writes s as is (one WebSocket text message, or TCP bytes).
func (rc *rawClient) send(s string) {
	rc.t.Helper()
	if err := rc.write([]byte(s), false); err != nil {
		rc.t.Fatalf("raw write: %v", err)
	}
}

// sendBinary writes p as one WebSocket binary message (TCP: plain bytes).
func (rc *rawClient) sendBinary(p []byte) {
	rc.t.Helper()
	if err := rc.write(p, true); err != nil {
		rc.t.Fatalf("raw write: %v", err)
	}
}

// next returns the next frame from the server.
func (rc *rawClient) next() *rawFrame {
	rc.t.Helper()
	select {
	case f := <-rc.frames:
		return f
	case err := <-rc.readErr:
		rc.readErr <- err
		// Frames read before the connection ended come first.
		select {
		case f := <-rc.frames:
			return f
		default:
		}
		rc.t.Fatalf("connection ended while waiting for a frame: %v", err)
	case <-time.After(waitTimeout):
		rc.t.Fatalf("no frame within %s", waitTimeout)
	}
	return nil
}

// nextWithin returns the next frame if one arrives within d, else nil.
func (rc *rawClient) nextWithin(d time.Duration) *rawFrame {
	select {
	case f := <-rc.frames:
		return f
	case <-time.After(d):
		return nil
	}
}

// expect reads the next frame and checks its command.
func (rc *rawClient) expect(command string) *rawFrame {
	rc.t.Helper()
	f := rc.next()
	if f.Command != command {
		rc.t.Fatalf("got %s, want %s", f, command)
	}
	return f
}

// expectError reads an ERROR frame with the given message header, then the end of the connection.
func (rc *rawClient) expectError(message string) *rawFrame {
	rc.t.Helper()
	f := rc.expect(frame.ERROR)
	if got := f.Get("message"); got != message {
		rc.t.Fatalf("ERROR message %q, want %q (frame %s)", got, message, f)
	}
	rc.expectClosed()
	return f
}

// expectClosed waits until the server has closed the connection, with no further frame.
func (rc *rawClient) expectClosed() {
	rc.t.Helper()
	select {
	case f := <-rc.frames:
		rc.t.Fatalf("unexpected frame before close: %s", f)
	case err := <-rc.readErr:
		rc.readErr <- err
		select {
		case f := <-rc.frames:
			rc.t.Fatalf("unexpected frame before close: %s", f)
		default:
		}
	case <-time.After(waitTimeout):
		rc.t.Fatalf("connection still open after %s", waitTimeout)
	}
}

// connect sends CONNECT for version (e.g. "1.2") and returns CONNECTED.
// subscribe subscribes with id 1 to dest, with the extra headers ("name:value" each), and waits for
// the RECEIPT.
func (rc *rawClient) subscribe(dest string, headers ...string) {
	var b strings.Builder
	b.WriteString("SUBSCRIBE\nid:1\ndestination:" + dest + "\n")
	for _, h := range headers {
		b.WriteString(h + "\n")
	}
	rc.send(b.String() + "receipt:subscribed\n\n\x00")
	rc.expect(frame.RECEIPT)
}

func (rc *rawClient) connect(version string, extraHeaders ...string) *rawFrame {
	rc.t.Helper()
	hdr := "accept-version:" + version + "\nhost:/\n"
	for _, h := range extraHeaders {
		hdr += h + "\n"
	}
	rc.send("CONNECT\n" + hdr + "\n\x00")
	return rc.expect(frame.CONNECTED)
}

func (rc *rawClient) closeInfo() (websocket.StatusCode, string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.closeCode, rc.closeText
}

// waitFor polls cond until it holds or the wait times out.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// forQueueModes runs f once with queues in memory (the default) and once with queues stored in a
// data directory, as stompd -data-dir keeps them: mode configures the server accordingly.
func forQueueModes(t *testing.T, f func(t *testing.T, mode func(*serverConfig))) {
	t.Run("memory", func(t *testing.T) { f(t, func(*serverConfig) {}) })
	t.Run("durable", func(t *testing.T) { f(t, storedQueues) })
}

// storedQueues gives the server a store of its own on a fresh data directory, for its queues, streams
// and durable subscriptions, closed after the server.
func storedQueues(c *serverConfig) {
	c.t.Helper()
	e, err := natsengine.Start(natsengine.Config{Dir: c.t.TempDir()})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { e.Close() })
	c.bopts.Store, c.bopts.Streams, c.bopts.Durables = e, e, e
}
