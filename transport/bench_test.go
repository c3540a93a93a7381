package transport

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"

	"github.com/coder/websocket"
)

// benchFrame is a 256-byte frame: a 64-byte head (the per-subscriber part of a MESSAGE) and a 192-byte
// tail (the shared body).
var benchHead, benchTail = make([]byte, 64), make([]byte, 192)

// enqueueAll queues b.N frames, yielding while the queue is full, then waits for the queue to drain,
// and reports throughput and frames per write call.
func enqueueAll(b *testing.B, c Conn, o *outbound) {
	b.SetBytes(int64(len(benchHead) + len(benchTail)))
	b.ReportAllocs()
	b.ResetTimer()
	writesBefore := o.writeCalls.Load()
	for i := 0; i < b.N; i++ {
		for {
			err := c.Enqueue(benchHead, benchTail, false)
			if err == nil {
				break
			}
			if !errors.Is(err, ErrSlowConsumer) {
				b.Fatal(err)
			}
			runtime.Gosched()
		}
	}
	for c.Queued() > 0 {
		runtime.Gosched()
	}
	b.StopTimer()
	if writes := o.writeCalls.Load() - writesBefore; writes > 0 {
		b.ReportMetric(float64(b.N)/float64(writes), "frames/write")
	}
}

// BenchmarkWebSocketEnqueue measures Enqueue plus the write path over loopback to a client that
// discards everything (see discardingWebSocket).
func BenchmarkWebSocketEnqueue(b *testing.B) {
	c, o, stop := discardingWebSocket(b)
	defer stop()
	enqueueAll(b, c, o)
}

// BenchmarkTCPEnqueue is BenchmarkWebSocketEnqueue over plain TCP (vectored writes).
func BenchmarkTCPEnqueue(b *testing.B) {
	c, o, stop := discardingTCP(b)
	defer stop()
	enqueueAll(b, c, o)
}

// BenchmarkTCPEnqueueOneAtATime queues each frame only after the previous one was written, so that
// every frame starts a writer goroutine, borrows the pooled batch and buffers, and gives them back: the
// cost of a connection that is mostly idle.
func BenchmarkTCPEnqueueOneAtATime(b *testing.B) {
	c, o, stop := discardingTCP(b)
	defer stop()
	enqueueOneAtATime(b, c, o)
}

// BenchmarkWebSocketEnqueueOneAtATime is BenchmarkTCPEnqueueOneAtATime over WebSocket: every frame
// is a message of its own.
func BenchmarkWebSocketEnqueueOneAtATime(b *testing.B) {
	c, o, stop := discardingWebSocket(b)
	defer stop()
	enqueueOneAtATime(b, c, o)
}

func enqueueOneAtATime(b *testing.B, c Conn, o *outbound) {
	drained := make(chan struct{}, 1)
	c.SetOnDrain(func() { drained <- struct{}{} })
	b.SetBytes(int64(len(benchHead) + len(benchTail)))
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Enqueue(benchHead, benchTail, false); err != nil {
			b.Fatal(err)
		}
		<-drained
		// OnDrain runs just before the writer lets go; wait for it to be gone.
		for {
			o.mu.Lock()
			idle := !o.writing
			o.mu.Unlock()
			if idle {
				break
			}
			runtime.Gosched()
		}
	}
}

// benchSend is a 200-byte inbound frame, the size of a typical SEND.
var benchSend = append(append([]byte("SEND\ndestination:/topic/bench\ncontent-length:150\n\n"), make([]byte, 150)...), 0)

// streamInbound makes the peer write frames (already framed for the transport) without pause until
// stop is closed.
func streamInbound(peer net.Conn, blob []byte, stop <-chan struct{}) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := peer.Write(blob); err != nil {
				return
			}
		}
	}()
	return done
}

// readInbound reads b.N frames' worth of bytes with read and reports throughput.
func readInbound(b *testing.B, frame int, read func() (int, error)) {
	b.SetBytes(int64(frame))
	b.ReportAllocs()
	b.ResetTimer()
	want := b.N * frame
	for got := 0; got < want; {
		n, err := read()
		if err != nil {
			b.Fatal(err)
		}
		got += n
	}
	b.StopTimer()
}

// BenchmarkWebSocketRead measures the inbound path: a raw client streams one 200-byte frame per
// WebSocket message, and the server reads.
func BenchmarkWebSocketRead(b *testing.B) {
	conns := make(chan Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := AcceptWebSocket(w, r, WebSocketOptions{})
		if err != nil {
			b.Error(err)
			return
		}
		conns <- c
	}))
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	fmt.Fprintf(raw, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", addr)
	resp, err := http.ReadResponse(bufio.NewReader(raw), nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		b.Fatalf("upgrade: %v %v", resp, err)
	}
	c := <-conns
	var blob []byte
	for range 64 {
		blob = append(blob, maskedTextFrame(string(benchSend))...)
	}
	stop := make(chan struct{})
	done := streamInbound(raw, blob, stop)

	benchmarkReads(b, c)

	close(stop)
	c.Abort()
	raw.Close()
	<-done
}

// benchmarkReads reads c with Read into the caller's buffer and with ReadPooled.
func benchmarkReads(b *testing.B, c Conn) {
	b.Run("Read", func(b *testing.B) {
		buf := make([]byte, readBufferSize)
		readInbound(b, len(benchSend), func() (int, error) { return c.Read(buf) })
	})
	b.Run("ReadPooled", func(b *testing.B) {
		var sum int
		f := func(p []byte) { sum += int(p[0]) }
		readInbound(b, len(benchSend), func() (int, error) { return ReadPooled(c, f) })
	})
}

// BenchmarkTCPRead is BenchmarkWebSocketRead over plain TCP.
func BenchmarkTCPRead(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	sc, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	c := NewTCPConn(sc, Options{})
	stop := make(chan struct{})
	done := streamInbound(client, bytes.Repeat(benchSend, 64), stop)

	benchmarkReads(b, c)

	close(stop)
	c.Abort()
	client.Close()
	<-done
}

// discardingWebSocket serves one WebSocket connection over loopback to a client that discards
// everything. The client is a raw upgrade with no WebSocket library, so that the allocations a
// benchmark reports are the server's. stop closes both ends.
func discardingWebSocket(b *testing.B) (c Conn, o *outbound, stop func()) {
	conns := make(chan Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := AcceptWebSocket(w, r, WebSocketOptions{})
		if err != nil {
			b.Error(err)
			return
		}
		conns <- c
	}))
	addr := srv.Listener.Addr().String()
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	fmt.Fprintf(raw, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", addr)
	br := bufio.NewReader(raw)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		b.Fatalf("upgrade: %v %v", resp, err)
	}
	c = <-conns
	discarded := discardAll(br)
	return c, &c.(*wsConn).outbound, func() {
		c.Abort()
		raw.Close()
		<-discarded
		srv.Close()
	}
}

// discardingTCP is discardingWebSocket over plain TCP (vectored writes). It does not use tcpPair,
// whose small socket buffers would bound the throughput measured.
func discardingTCP(b *testing.B) (c Conn, o *outbound, stop func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	sc, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	c = NewTCPConn(sc, Options{})
	discarded := discardAll(client)
	return c, &c.(*tcpConn).outbound, func() {
		c.Abort()
		client.Close()
		<-discarded
		ln.Close()
	}
}

// discardAll reads r to its end on a goroutine of its own, throwing the bytes away; the channel is
// closed when it has returned.
func discardAll(r io.Reader) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(io.Discard, r)
	}()
	return done
}

// BenchmarkWakeRoundTrip measures what it costs a reader to wait for each inbound byte: the peer sends
// one byte, the server's reader echoes it, and the peer waits for the echo before the next. "waiting"
// reads on a goroutine that stays in ReadPooled; "parked" reads with ServeReads, which parks the
// connection after every byte and resumes it on a worker when the next arrives.
func BenchmarkWakeRoundTrip(b *testing.B) {
	for _, tr := range []string{"tcp", "ws"} {
		for _, mode := range []string{"waiting", "parked"} {
			b.Run(tr+"/"+mode, func(b *testing.B) {
				var server Conn
				var send func() error
				var receive func() error
				if tr == "tcp" {
					client, c := tcpPair(b, Options{})
					server = c
					one := []byte{'x'}
					var echo [1]byte
					send = func() error { _, err := client.Write(one); return err }
					receive = func() error { _, err := io.ReadFull(client, echo[:]); return err }
				} else {
					client, c := newWSServer(b, WebSocketOptions{}).dial(b)
					server = c
					one := []byte{'x'}
					ctx := context.Background()
					send = func() error { return client.Write(ctx, websocket.MessageText, one) }
					receive = func() error { _, _, err := client.Read(ctx); return err }
				}
				echo := func(p []byte) { _ = server.Enqueue(nil, p, false) }
				ended := make(chan struct{})
				after := func(err error) bool {
					if err != nil {
						close(ended)
						return false
					}
					return true
				}
				if mode == "parked" {
					go ServeReads(server, echo, after, nil)
				} else {
					go func() {
						for {
							_, err := ReadPooled(server, echo)
							if !after(err) {
								return
							}
						}
					}()
				}
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					if err := send(); err != nil {
						b.Fatal(err)
					}
					if err := receive(); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				server.Abort()
				<-ended
			})
		}
	}
}
