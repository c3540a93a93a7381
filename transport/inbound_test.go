package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// readPeer is the far end of a server Conn for the read tests: it sends bytes and then closes cleanly.
type readPeer struct {
	send  func(t *testing.T, p []byte)
	close func()
}

// readTransports lists the ways ReadPooled reads: WebSocket (waiting in the library over the
// socketReader), TCP (waiting on the socket itself) and a pipe (no socket: the buffer is held while
// Read blocks).
var readTransports = []struct {
	name string
	open func(t *testing.T) (readPeer, Conn)
}{
	{"ws", func(t *testing.T) (readPeer, Conn) {
		client, server := newWSServer(t, WebSocketOptions{}).dial(t)
		return readPeer{
			send: func(t *testing.T, p []byte) {
				if err := client.Write(context.Background(), websocket.MessageText, p); err != nil {
					t.Errorf("client write: %v", err)
				}
			},
			// The close handshake needs the server reading, which the test does meanwhile.
			close: func() { go client.Close(websocket.StatusNormalClosure, "") },
		}, server
	}},
	{"tcp", func(t *testing.T) (readPeer, Conn) {
		client, server := tcpPair(t, Options{})
		return streamReadPeer(client), server
	}},
	{"pipe", func(t *testing.T) (readPeer, Conn) {
		client, server := pipePair(t, Options{})
		return streamReadPeer(client), server
	}},
}

func streamReadPeer(c net.Conn) readPeer {
	return readPeer{
		send: func(t *testing.T, p []byte) {
			if _, err := c.Write(p); err != nil {
				t.Errorf("client write: %v", err)
			}
		},
		close: func() { c.Close() },
	}
}

// readAllPooled reads c with ReadPooled until it fails, checking every call's contract, and returns
// what arrived and the final error.
func readAllPooled(t *testing.T, c Conn) ([]byte, error) {
	var got []byte
	for {
		calls := 0
		n, err := ReadPooled(c, func(p []byte) {
			calls++
			if len(p) == 0 {
				t.Error("f called with no bytes")
			}
			got = append(got, p...)
		})
		if n > 0 && calls != 1 || n == 0 && calls != 0 {
			t.Errorf("ReadPooled returned %d after %d calls of f", n, calls)
		}
		if err != nil {
			return got, err
		}
	}
}

func TestReadPooled(t *testing.T) {
	// Larger than a read buffer, so that reads are split, and shorter pieces that may be coalesced.
	pieces := [][]byte{[]byte("CONNECT\n\n\x00"), bytes.Repeat([]byte("0123456789"), 2000), []byte("\n")}
	for _, tc := range readTransports {
		t.Run(tc.name, func(t *testing.T) {
			peer, server := tc.open(t)
			go func() {
				for _, p := range pieces {
					peer.send(t, p)
				}
				peer.close()
			}()
			got, err := readAllPooled(t, server)
			if want := bytes.Join(pieces, nil); !bytes.Equal(got, want) {
				t.Errorf("read %d bytes, want the %d sent", len(got), len(want))
			}
			if err != io.EOF {
				t.Errorf("error after a clean close = %v, want io.EOF", err)
			}
		})
	}
}

// TestReadPooledAfterRead: Read and ReadPooled may take turns on one connection, also in the middle of
// a WebSocket message.
func TestReadPooledAfterRead(t *testing.T) {
	msg := bytes.Repeat([]byte("0123456789"), 10)
	for _, tc := range readTransports {
		t.Run(tc.name, func(t *testing.T) {
			peer, server := tc.open(t)
			go peer.send(t, msg)
			first := make([]byte, 10)
			if _, err := io.ReadFull(server, first); err != nil {
				t.Fatal(err)
			}
			rest := []byte{}
			for len(first)+len(rest) < len(msg) {
				if _, err := ReadPooled(server, func(p []byte) { rest = append(rest, p...) }); err != nil {
					t.Fatal(err)
				}
			}
			if got := append(first, rest...); !bytes.Equal(got, msg) {
				t.Errorf("read %q, want %q", got, msg)
			}
		})
	}
}

func TestReadPooledAfterClose(t *testing.T) {
	for _, tc := range readTransports {
		t.Run(tc.name, func(t *testing.T) {
			_, server := tc.open(t)
			done := make(chan error, 1)
			go func() {
				_, err := readAllPooled(t, server)
				done <- err
			}()
			server.Abort()
			if err := recvTimeout(t, done, "ReadPooled to return"); !errors.Is(err, ErrClosed) {
				t.Errorf("ReadPooled after Abort = %v, want ErrClosed", err)
			}
		})
	}
}

// trackLiveReadBuffers empties the pool and counts, for the rest of the test, the buffers it allocates
// that are still alive: a buffer leaves the count when the collector frees it. No reader may run when
// it is called.
func trackLiveReadBuffers(t *testing.T) *atomic.Int64 {
	runtime.GC() // a pool keeps what it holds through one collection, not two
	runtime.GC()
	var live atomic.Int64
	old := readBufferPool.New
	readBufferPool.New = func() any {
		b := new(readBuffer)
		live.Add(1)
		runtime.AddCleanup(b, func(live *atomic.Int64) { live.Add(-1) }, &live)
		return b
	}
	t.Cleanup(func() { readBufferPool.New = old })
	return &live
}

// TestReadPooledIdleHoldsNoBuffer: connections read in turn and then left waiting must hold no read
// buffer. Two collections empty the pool, so every buffer still alive after them is one a waiting
// reader keeps. This counts what is kept rather than what was allocated, because the race detector
// makes the pool drop a random quarter of what it is given back.
func TestReadPooledIdleHoldsNoBuffer(t *testing.T) {
	const conns = 64
	for _, tc := range readTransports[:2] { // the pipe holds its buffer while it waits, by design
		t.Run(tc.name, func(t *testing.T) {
			live := trackLiveReadBuffers(t)
			received := make(chan struct{})
			for i := range conns {
				peer, server := tc.open(t)
				go func() {
					for {
						if _, err := ReadPooled(server, func([]byte) { received <- struct{}{} }); err != nil {
							return
						}
					}
				}()
				peer.send(t, []byte(fmt.Sprintf("frame %d", i)))
				recvTimeout(t, received, "the frame")
			}
			// Cleanups run on their own goroutine after a collection, so the count settles a little later.
			deadline := time.Now().Add(waitTimeout)
			for {
				runtime.GC()
				n := live.Load()
				if n == 0 {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d read buffers still alive with %d connections waiting and the pool emptied", n, conns)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// TestWebSocketReadsBytesBufferedAtUpgrade: a client that sends its first frame right behind the
// upgrade request, without waiting for the 101, has it read by net/http along with the request; it
// must not be lost when net/http's buffer is given up.
func TestWebSocketReadsBytesBufferedAtUpgrade(t *testing.T) {
	reads := []struct {
		name string
		read func(t *testing.T, c Conn, n int) []byte
	}{
		{"Read", func(t *testing.T, c Conn, n int) []byte {
			buf := make([]byte, n)
			if _, err := io.ReadFull(c, buf); err != nil {
				t.Fatal(err)
			}
			return buf
		}},
		{"ReadPooled", func(t *testing.T, c Conn, n int) []byte {
			var got []byte
			for len(got) < n {
				if _, err := ReadPooled(c, func(p []byte) { got = append(got, p...) }); err != nil {
					t.Fatal(err)
				}
			}
			return got
		}},
	}
	for _, rd := range reads {
		t.Run(rd.name, func(t *testing.T) {
			s := newWSServer(t, WebSocketOptions{})
			raw, err := net.Dial("tcp", s.srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			frame := "CONNECT\naccept-version:1.2\n\n\x00"
			req := fmt.Sprintf("GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", s.srv.Listener.Addr())
			if _, err := raw.Write(append([]byte(req), maskedTextFrame(frame)...)); err != nil {
				t.Fatal(err)
			}
			server := recvTimeout(t, s.conns, "accepted connection")
			defer server.Abort()
			if got := rd.read(t, server, len(frame)); string(got) != frame {
				t.Errorf("read %q, want %q", got, frame)
			}
		})
	}
}

// TestWebSocketControlFramesBetweenMessages: the library answers pings on its own while the writer
// streams messages; both write the same socket, and neither may split the other's frame.
func TestWebSocketControlFramesBetweenMessages(t *testing.T) {
	opts := WebSocketOptions{Options: Options{MaxBatchBytes: 2 << 10}}
	client, server := newWSServer(t, opts).dial(t)
	go func() { // the server must read for the library to see the pings
		buf := make([]byte, 512)
		for {
			if _, err := server.Read(buf); err != nil {
				return
			}
		}
	}()
	const frames = 3000
	var want []byte
	go func() {
		for i := range frames {
			head := []byte(fmt.Sprintf("MESSAGE\nseq:%d\n\n", i))
			tail := bytes.Repeat([]byte{'a' + byte(i%26)}, i%700)
			for {
				err := server.Enqueue(head, tail, false)
				if err == nil {
					break
				}
				if !errors.Is(err, ErrSlowConsumer) {
					t.Errorf("Enqueue: %v", err)
					return
				}
				time.Sleep(time.Millisecond)
			}
		}
	}()
	for i := range frames {
		want = append(want, fmt.Sprintf("MESSAGE\nseq:%d\n\n", i)...)
		want = append(want, bytes.Repeat([]byte{'a' + byte(i%26)}, i%700)...)
	}

	// Ping needs the client reading too, to see the pongs; it reads until the test ends.
	var got []byte
	complete := make(chan struct{})
	readErr := make(chan error, 1)
	go func() {
		for {
			_, data, err := client.Read(context.Background())
			if err != nil {
				readErr <- err
				return
			}
			got = append(got, data...)
			if len(got) == len(want) {
				close(complete)
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for i := 0; i < 100; i++ {
		if err := client.Ping(ctx); err != nil {
			t.Fatalf("ping %d: %v", i, err)
		}
	}
	select {
	case <-complete:
	case err := <-readErr:
		t.Fatalf("client read: %v", err)
	case <-ctx.Done():
		t.Fatal("timed out waiting for the messages")
	}
	client.CloseNow()
	<-readErr
	if !bytes.Equal(got, want) {
		t.Fatalf("received %d bytes that differ from the %d sent", len(got), len(want))
	}
}

// TestWebSocketNoDataAfterCloseFrame: once the library has sent a close frame (here written as it
// would write one), the writer fails rather than send data behind it.
func TestWebSocketNoDataAfterCloseFrame(t *testing.T) {
	client, server := newWSServer(t, WebSocketOptions{}).dial(t)
	closeFrame := []byte{wsFin | wsOpClose, 2, 0x03, 0xe8} // 1000, no reason
	if _, err := server.(*wsConn).wire.Write(closeFrame); err != nil {
		t.Fatal(err)
	}
	if err := server.Enqueue([]byte("MESSAGE\n\n"), []byte("late\x00"), false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the writer to give up", func() bool {
		return errors.Is(server.Enqueue([]byte("x"), nil, false), ErrClosed)
	})
	msgs, err := readUntilClose(client)
	if len(msgs) > 0 {
		t.Errorf("client received %d messages after the close frame", len(msgs))
	}
	if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Errorf("client read ended with %v, want the close frame", err)
	}
}

// TestWebSocketOverTLS covers the connection that cannot be written with writev nor read on its
// socket: batches are copied into one write, a frame too big to batch is written in two, and reads
// wait inside the library.
func TestWebSocketOverTLS(t *testing.T) {
	conns := make(chan Conn, 1)
	opts := WebSocketOptions{Options: Options{MaxBatchBytes: 1 << 10}}
	srv := newTLSWSServer(t, opts, conns)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	client, _, err := websocket.Dial(ctx, "wss"+srv.URL[len("https"):], &websocket.DialOptions{HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	defer client.CloseNow()
	client.SetReadLimit(-1)
	server := recvTimeout(t, conns, "accepted connection")
	defer server.Abort()
	if _, ok := server.(*wsConn).raw.(*net.TCPConn); ok {
		t.Fatal("the hijacked connection is plain TCP: TLS is not under test")
	}

	small := []byte("RECEIPT\nreceipt-id:1\n\n\x00")
	big := bytes.Repeat([]byte("b"), 3<<10)
	for _, f := range [][2][]byte{{small, nil}, {small, nil}, {[]byte("MESSAGE\n\n"), big}} {
		if err := server.Enqueue(f[0], f[1], false); err != nil {
			t.Fatal(err)
		}
	}
	want := append(append(append(append([]byte{}, small...), small...), "MESSAGE\n\n"...), big...)
	if got := joinMessages(readMessages(t, client, len(want))); !bytes.Equal(got, want) {
		t.Errorf("client received %d bytes that differ from the %d sent", len(got), len(want))
	}

	go client.Write(ctx, websocket.MessageText, []byte("SEND\n\n\x00"))
	var got []byte
	if _, err := ReadPooled(server, func(p []byte) { got = append(got, p...) }); err != nil || string(got) != "SEND\n\n\x00" {
		t.Errorf("ReadPooled = %q, %v", got, err)
	}
}

func TestAppendMessageHeader(t *testing.T) {
	tests := []struct {
		binary  bool
		payload int
		want    []byte
	}{
		{false, 0, []byte{0x81, 0}},
		{true, 125, []byte{0x82, 125}},
		{false, 126, []byte{0x81, 126, 0, 126}},
		{false, 0xffff, []byte{0x81, 126, 0xff, 0xff}},
		{true, 0x10000, []byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.payload), func(t *testing.T) {
			if got := appendMessageHeader(nil, tt.binary, tt.payload); !bytes.Equal(got, tt.want) {
				t.Errorf("header = % x, want % x", got, tt.want)
			}
		})
	}
}

func newTLSWSServer(t *testing.T, opts WebSocketOptions, conns chan<- Conn) *httptest.Server {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := AcceptWebSocket(w, r, opts)
		if err != nil {
			t.Error(err)
			return
		}
		conns <- c
	}))
	t.Cleanup(srv.Close)
	return srv
}
