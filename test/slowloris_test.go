package test

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
)

// TestSlowlorisHandshakes trickles WebSocket upgrade requests one header byte at a time into the real
// binary: each such connection must be closed once -http-header-timeout passes, however steadily it
// trickles, while an ordinary client connects and round-trips in the middle of it.
func TestSlowlorisHandshakes(t *testing.T) {
	const trickles = 50
	stompAddr := freeLoopbackAddr(t)
	p := startStompd(t, "-stocks=false", "-chat=false", "-stomp-addr", stompAddr, "-http-header-timeout", "1s")

	head := "GET /ws HTTP/1.1\r\nHost: " + p.HTTPAddr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
		"Sec-WebSocket-Protocol: v12.stomp\r\nX-Padding: " // never finished
	type outcome struct {
		sent     int
		lifetime time.Duration
		err      error
	}
	results := make([]outcome, trickles)
	var wg sync.WaitGroup
	for i := range trickles {
		wg.Go(func() {
			c, err := net.Dial("tcp", p.HTTPAddr)
			if err != nil {
				results[i].err = err
				return
			}
			defer c.Close()
			start := time.Now()
			closed := make(chan struct{})
			go func() {
				// The server never answers a request it has not read: the read ends at the close.
				_, _ = io.Copy(io.Discard, c)
				close(closed)
			}()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			deadline := time.After(waitTimeout)
			for n := 0; ; n++ {
				select {
				case <-closed:
					results[i] = outcome{sent: n, lifetime: time.Since(start)}
					return
				case <-deadline:
					results[i] = outcome{sent: n, lifetime: time.Since(start)}
					return
				case <-tick.C:
					b := []byte{'x'}
					if n < len(head) {
						b = []byte{head[n]}
					}
					if _, err := c.Write(b); err != nil {
						<-closed
						results[i] = outcome{sent: n, lifetime: time.Since(start)}
						return
					}
				}
			}
		})
	}

	// Meanwhile an ordinary client is served.
	time.Sleep(300 * time.Millisecond)
	conn, _, err := dialStompWSS(t, "ws://"+p.HTTPAddr+"/ws", "", nil)
	if err != nil {
		t.Fatalf("ordinary WebSocket client during the trickle: %v", err)
	}
	roundTrip(t, conn, "/topic/slowloris.ws")
	tcp, err := stomp.Dial("tcp", stompAddr, noHeartBeats, stomp.ConnOpt.Logger(quietLogger{}))
	if err != nil {
		t.Fatalf("ordinary TCP client during the trickle: %v", err)
	}
	defer tcp.MustDisconnect()
	roundTrip(t, tcp, "/topic/slowloris.tcp")

	wg.Wait()
	for i, r := range results {
		switch {
		case r.err != nil:
			t.Fatalf("trickler %d: %v", i, r.err)
		case r.lifetime >= 8*time.Second: // far past 1 s, and short of the 10 s default
			t.Fatalf("trickler %d still open after %v and %d bytes", i, r.lifetime, r.sent)
		case r.lifetime < 900*time.Millisecond:
			t.Fatalf("trickler %d closed after %v, before the 1s header timeout", i, r.lifetime)
		}
	}
}
