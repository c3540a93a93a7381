package transport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// waitTimeout is how long tests wait for a condition; generous so that a loaded machine does not flake.
const waitTimeout = 15 * time.Second

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// recvTimeout receives from ch or fails the test.
func recvTimeout[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// goroutinesIn counts the goroutines of the whole process whose stack holds a call of function (as
// runtime.Stack prints it, e.g. "transport.(*outbound).writeLoop").
func goroutinesIn(function string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return bytes.Count(buf[:n], []byte(function+"("))
		}
		buf = make([]byte, 2*len(buf))
	}
}

// writerGoroutines counts running writers.
func writerGoroutines() int { return goroutinesIn("transport.(*outbound).writeLoop") }

// wsServer accepts WebSocket connections with fixed options and hands them to the test.
type wsServer struct {
	srv   *httptest.Server
	conns chan Conn
	errs  chan error
}

func newWSServer(t testing.TB, opts WebSocketOptions) *wsServer {
	t.Helper()
	s := &wsServer{conns: make(chan Conn, 4), errs: make(chan error, 4)}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := AcceptWebSocket(w, r, opts)
		if err != nil {
			s.errs <- err
			return
		}
		s.conns <- c
	}))
	s.srv.Config.ConnState = func(c net.Conn, state http.ConnState) {
		if state == http.StateNew {
			shrinkSendBuffer(c)
		}
	}
	s.srv.Start()
	t.Cleanup(s.srv.Close)
	return s
}

// Small socket buffers make a peer that stops reading block the writer after a few kilobytes, whatever
// the kernel's autotuning would otherwise allow, so that tests about stuck consumers are deterministic.
const socketBuffer = 8 << 10

func shrinkSendBuffer(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(socketBuffer)
	}
}

// dialSmallReceive dials TCP with a small receive buffer, set before connecting so that the advertised
// window honours it.
func dialSmallReceive(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, socketBuffer)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	return d.DialContext(ctx, network, addr)
}

func (s *wsServer) url() string { return "ws" + strings.TrimPrefix(s.srv.URL, "http") }

// dial connects a client and returns it with the server's side of the connection. Both are torn down
// when the test ends.
func (s *wsServer) dial(t testing.TB, subprotocols ...string) (*websocket.Conn, Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	httpTransport := &http.Transport{DialContext: dialSmallReceive}
	defer httpTransport.CloseIdleConnections()
	client, _, err := websocket.Dial(ctx, s.url(), &websocket.DialOptions{
		Subprotocols: subprotocols,
		HTTPClient:   &http.Client{Transport: httpTransport},
	})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	client.SetReadLimit(-1)
	server := recvTimeout(t, s.conns, "accepted connection")
	t.Cleanup(func() {
		client.CloseNow()
		server.Abort()
	})
	return client, server
}

// message is one WebSocket message as the client received it.
type message struct {
	typ  websocket.MessageType
	data []byte
}

// readMessages reads messages until want bytes have arrived in total.
func readMessages(t *testing.T, client *websocket.Conn, want int) []message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	var msgs []message
	got := 0
	for got < want {
		typ, data, err := client.Read(ctx)
		if err != nil {
			t.Fatalf("client read after %d of %d bytes: %v", got, want, err)
		}
		msgs = append(msgs, message{typ, data})
		got += len(data)
	}
	return msgs
}

// readUntilClose reads messages until the connection closes and returns them with the read error.
func readUntilClose(client *websocket.Conn) ([]message, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	var msgs []message
	for {
		typ, data, err := client.Read(ctx)
		if err != nil {
			return msgs, err
		}
		msgs = append(msgs, message{typ, data})
	}
}

func joinMessages(msgs []message) []byte {
	var b bytes.Buffer
	for _, m := range msgs {
		b.Write(m.data)
	}
	return b.Bytes()
}

// tcpPair returns a client connection and the server's Conn over loopback TCP.
func tcpPair(t testing.TB, opts Options) (net.Conn, Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	client, err := dialSmallReceive(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc := recvTimeout(t, accepted, "accepted TCP connection")
	if sc == nil {
		t.Fatal("accept failed")
	}
	shrinkSendBuffer(sc)
	server := NewTCPConn(sc, opts)
	t.Cleanup(func() {
		client.Close()
		server.Abort()
	})
	return client, server
}

// pipePair returns a peer and the server's Conn over net.Pipe: writes block until the peer reads, which
// makes a stuck consumer deterministic. It also exercises the copying write path.
func pipePair(t *testing.T, opts Options) (net.Conn, Conn) {
	t.Helper()
	peer, sc := net.Pipe()
	server := NewTCPConn(sc, opts)
	t.Cleanup(func() {
		peer.Close()
		server.Abort()
	})
	return peer, server
}

// peer is the far end of a server Conn as the transport-independent tests see it.
type peer struct {
	server Conn
	// readBytes reads until n bytes have arrived and returns them.
	readBytes func(t *testing.T, n int) []byte
	// readToEnd reads until the connection ends and returns what arrived and how it ended.
	readToEnd func() ([]byte, error)
	// send writes bytes to the server.
	send func(t *testing.T, p []byte)
}

type transportCase struct {
	name string
	open func(t *testing.T, opts Options) peer
}

// transports lists every way a Conn is built: WebSocket, TCP (vectored writes) and a pipe (copying
// writes, synchronous so a peer that does not read blocks the writer at once).
var transports = []transportCase{
	{name: "ws", open: func(t *testing.T, opts Options) peer {
		client, server := newWSServer(t, WebSocketOptions{Options: opts}).dial(t)
		return peer{
			server: server,
			readBytes: func(t *testing.T, n int) []byte {
				return joinMessages(readMessages(t, client, n))
			},
			readToEnd: func() ([]byte, error) {
				msgs, err := readUntilClose(client)
				return joinMessages(msgs), err
			},
			send: func(t *testing.T, p []byte) {
				if err := client.Write(context.Background(), websocket.MessageText, p); err != nil {
					t.Errorf("client write: %v", err)
				}
			},
		}
	}},
	{name: "tcp", open: func(t *testing.T, opts Options) peer {
		client, server := tcpPair(t, opts)
		return streamPeer(client, server)
	}},
	{name: "pipe", open: func(t *testing.T, opts Options) peer {
		client, server := pipePair(t, opts)
		return streamPeer(client, server)
	}},
}

func streamPeer(client net.Conn, server Conn) peer {
	return peer{
		server: server,
		readBytes: func(t *testing.T, n int) []byte {
			t.Helper()
			client.SetReadDeadline(time.Now().Add(waitTimeout))
			buf := make([]byte, n)
			if _, err := io.ReadFull(client, buf); err != nil {
				t.Fatalf("client read: %v", err)
			}
			return buf
		},
		readToEnd: func() ([]byte, error) {
			client.SetReadDeadline(time.Now().Add(waitTimeout))
			b, err := io.ReadAll(client)
			return b, err
		},
		send: func(t *testing.T, p []byte) {
			if _, err := client.Write(p); err != nil {
				t.Errorf("client write: %v", err)
			}
		},
	}
}

// fillUntilSlow enqueues frames sharing one tail until Enqueue reports a slow consumer, checking the
// queue bound on the way. It fails the test if the queue never fills.
func fillUntilSlow(t *testing.T, c Conn, limit int) {
	t.Helper()
	tail := bytes.Repeat([]byte("x"), 16<<10)
	head := []byte("MESSAGE\n\n")
	for i := 0; i < 1<<13; i++ { // at most 128 MiB, far more than loopback buffers hold
		err := c.Enqueue(head, tail, true)
		if q := c.Queued(); q > limit {
			t.Fatalf("Queued() = %d, over the limit %d", q, limit)
		}
		if errors.Is(err, ErrSlowConsumer) {
			return
		}
		if err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
	}
	t.Fatal("Enqueue never reported a slow consumer")
}

// readAsync runs Read on c until it fails and delivers the error.
func readAsync(c Conn) <-chan error {
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, err := c.Read(buf); err != nil {
				done <- err
				return
			}
		}
	}()
	return done
}
