package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// served is what ServeReads delivered to one test reader.
type served struct {
	mu    sync.Mutex
	bytes []byte
	calls int
	idles int // calls of idle
	err   error
	ended chan struct{} // closed when after returned false
}

// serveReads runs ServeReads on c from a goroutine of its own, which returns once c parks; it checks
// f's and after's contracts and records what arrived. returned is closed when that first call of
// ServeReads has returned.
func serveReads(t *testing.T, c Conn) (s *served, returned <-chan struct{}) {
	t.Helper()
	s = &served{ended: make(chan struct{})}
	ret := make(chan struct{})
	var inCall sync.Mutex // f and after are never called concurrently: TryLock would fail
	go func() {
		defer close(ret)
		ServeReads(c, func(p []byte) {
			if !inCall.TryLock() {
				t.Error("f called concurrently")
				return
			}
			defer inCall.Unlock()
			if len(p) == 0 {
				t.Error("f called with no bytes")
			}
			s.mu.Lock()
			s.bytes = append(s.bytes, p...)
			s.calls++
			s.mu.Unlock()
		}, func(err error) bool {
			if !inCall.TryLock() {
				t.Error("after called concurrently")
				return false
			}
			defer inCall.Unlock()
			if err == nil {
				return true
			}
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
			close(s.ended)
			return false
		}, func() {
			if !inCall.TryLock() {
				t.Error("idle called concurrently")
				return
			}
			defer inCall.Unlock()
			s.mu.Lock()
			s.idles++
			s.mu.Unlock()
		})
	}()
	return s, ret
}

func (s *served) got() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.bytes)
}

// parkable lists the transports whose readers park, with a pipe, whose reader cannot.
var parkableTransports = []struct {
	name  string
	parks bool
	open  func(t *testing.T) (readPeer, Conn)
}{
	{"ws", parkingSupported, readTransports[0].open},
	{"tcp", parkingSupported, readTransports[1].open},
	{"pipe", false, readTransports[2].open},
}

func TestServeReadsParksBetweenArrivals(t *testing.T) {
	pieces := [][]byte{[]byte("CONNECT\n\n\x00"), bytes.Repeat([]byte("0123456789"), 2000), []byte("\n"), []byte("SEND\n\n\x00")}
	for _, tc := range parkableTransports {
		t.Run(tc.name, func(t *testing.T) {
			before := ParkedReaders()
			peer, server := tc.open(t)
			s, returned := serveReads(t, server)
			var want []byte
			for i, p := range pieces {
				if tc.parks {
					waitFor(t, fmt.Sprintf("the reader to park before piece %d", i), func() bool { return ParkedReaders() == before+1 })
				}
				peer.send(t, p)
				want = append(want, p...)
				waitFor(t, fmt.Sprintf("piece %d to be read", i), func() bool { return len(s.got()) == len(want) })
			}
			if tc.parks {
				// The goroutine that started reading is gone: the connection waits without one.
				recvTimeout(t, returned, "ServeReads to return once parked")
				waitFor(t, "the reader to park at the end", func() bool { return ParkedReaders() == before+1 })
			}
			peer.close()
			recvTimeout(t, s.ended, "after to see the end")
			if got := s.got(); !bytes.Equal(got, want) {
				t.Errorf("read %d bytes, want the %d sent", len(got), len(want))
			}
			if s.err != io.EOF {
				t.Errorf("error after a clean close = %v, want io.EOF", s.err)
			}
			if tc.parks && s.idles < len(pieces) {
				t.Errorf("idle called %d times, want at least once before each of the %d parks", s.idles, len(pieces))
			}
			recvTimeout(t, returned, "ServeReads to return")
			if n := ParkedReaders(); n != before {
				t.Errorf("%d readers parked after the end, want %d", n, before)
			}
		})
	}
}

// A parked reader is resumed by whatever ends its connection on this side: Close, Abort, a write
// stuck past the write timeout.
func TestServeReadsWokenByLocalEnd(t *testing.T) {
	ends := []struct {
		name string
		end  func(t *testing.T, c Conn)
		want error
	}{
		{"Close", func(t *testing.T, c Conn) { _ = c.Close(context.Background(), CloseNormal, "") }, ErrClosed},
		{"Abort", func(t *testing.T, c Conn) { c.Abort() }, ErrClosed},
		{"write timeout", func(t *testing.T, c Conn) { fillUntilSlow(t, c, 256<<10) }, ErrWriteTimeout},
	}
	for _, tc := range parkableTransports {
		for _, end := range ends {
			t.Run(tc.name+"/"+end.name, func(t *testing.T) {
				before := ParkedReaders()
				var server Conn
				if end.name == "write timeout" {
					server = openStuck(t, tc.name)
				} else {
					_, server = tc.open(t)
				}
				s, returned := serveReads(t, server)
				if tc.parks {
					waitFor(t, "the reader to park", func() bool { return ParkedReaders() == before+1 })
					recvTimeout(t, returned, "ServeReads to return once parked")
				}
				go end.end(t, server)
				recvTimeout(t, s.ended, "after to see the end")
				if !errors.Is(s.err, end.want) {
					t.Errorf("after got %v, want %v", s.err, end.want)
				}
				if n := ParkedReaders(); n != before {
					t.Errorf("%d readers parked after the end, want %d", n, before)
				}
			})
		}
	}
}

// openStuck opens a server Conn of the named transport whose peer never reads, with a short write
// timeout.
func openStuck(t *testing.T, name string) Conn {
	opts := Options{MaxQueuedBytes: 256 << 10, WriteTimeout: 100 * time.Millisecond}
	for _, tr := range transports {
		if tr.name == name {
			return tr.open(t, opts).server
		}
	}
	t.Fatalf("no transport %q", name)
	return nil
}

// A ping arriving while the reader is parked is answered; the data that follows is read.
func TestServeReadsAnswersPingWhileParked(t *testing.T) {
	if !parkingSupported {
		t.Skip("no parking on this platform: covered by the read tests")
	}
	before := ParkedReaders()
	client, server := newWSServer(t, WebSocketOptions{}).dial(t)
	s, _ := serveReads(t, server)
	waitFor(t, "the reader to park", func() bool { return ParkedReaders() == before+1 })
	// The client's Ping waits for the pong, which its reader receives: read on the side.
	go func() { _, _, _ = client.Read(context.Background()) }()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := client.Ping(ctx); err != nil {
		t.Fatalf("ping while parked: %v", err)
	}
	if err := client.Write(ctx, websocket.MessageText, []byte("SEND\n\n\x00")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the message after the ping", func() bool { return string(s.got()) == "SEND\n\n\x00" })
	waitFor(t, "the reader to park again", func() bool { return ParkedReaders() == before+1 })
}

// Many connections parking and resuming at once, each receiving bursts at random moments, get every
// byte in order.
func TestServeReadsManyConnections(t *testing.T) {
	const conns, bursts = 24, 40
	before := ParkedReaders()
	var wg sync.WaitGroup
	results := make([]*served, conns)
	wants := make([][]byte, conns)
	for i := range conns {
		tc := parkableTransports[i%2] // ws and tcp
		peer, server := tc.open(t)
		results[i], _ = serveReads(t, server)
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			var sent []byte
			for b := range bursts {
				p := fmt.Appendf(nil, "%d:%d:%s;", i, b, bytes.Repeat([]byte{'x'}, rng.IntN(3000)))
				peer.send(t, p)
				sent = append(sent, p...)
				time.Sleep(time.Duration(rng.IntN(2000)) * time.Microsecond)
			}
			wants[i] = sent
			peer.close()
		}()
	}
	wg.Wait()
	for i, s := range results {
		recvTimeout(t, s.ended, fmt.Sprintf("connection %d to end", i))
		if got := s.got(); !bytes.Equal(got, wants[i]) {
			t.Errorf("connection %d read %d bytes, want the %d sent", i, len(got), len(wants[i]))
		}
		if s.err != io.EOF {
			t.Errorf("connection %d ended with %v, want io.EOF", i, s.err)
		}
	}
	if n := ParkedReaders(); n != before {
		t.Errorf("%d readers parked after the end, want %d", n, before)
	}
}

// A parked connection has no goroutine.
func TestServeReadsParkedHoldNoGoroutine(t *testing.T) {
	if !parkingSupported {
		t.Skip("no parking on this platform: a waiting reader keeps its goroutine there by design")
	}
	const conns = 200
	before := ParkedReaders()
	for i := range conns {
		_, server := parkableTransports[i%2].open(t)
		serveReads(t, server)
	}
	waitFor(t, "every reader to park", func() bool { return ParkedReaders() == before+conns })
	waitFor(t, "no goroutine left reading", func() bool { return readingGoroutines() == 0 })
}

// readingGoroutines counts the goroutines inside ServeReads.
func readingGoroutines() int {
	return goroutinesIn("transport.ServeReads") + goroutinesIn("transport.(*readPump).run")
}
