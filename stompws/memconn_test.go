package stompws

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/stompd/stompd/transport"
)

// memConn is an in-memory transport.Conn for tests and benchmarks: Read plays a script (in chunks of at
// most chunk bytes when chunk > 0), then blocks until Close — or returns io.EOF at once when eof is
// set, like a peer that sent its bytes and left. Made by newMemConn, Enqueue never refuses for lack of
// room; it counts what a socket would have been handed and, when capture is set, keeps a copy. Made by
// newBoundedMemConn, it has an outbound queue like the real transports': see there.
type memConn struct {
	script []byte
	chunk  int
	eof    bool

	closed chan struct{}
	once   sync.Once
	frames atomic.Int64
	bytes  atomic.Int64

	trackTails bool     // record distinct tail pointers (not concurrency-safe to toggle while delivering)
	tails      sync.Map // distinct tail base pointers seen, to prove the shared part is not copied per delivery

	capture  bool
	mu       sync.Mutex
	captured []byte // everything enqueued (bounded: written), in order, while capture is set

	// Bounded only: frames wait in pending until the writer goroutine moves them to captured.
	capacity int           // most bytes pending; 0 means unbounded
	pending  []byte        // guarded by mu
	shut     bool          // guarded by mu: closed or aborted; the writer moves nothing more
	wake     chan struct{} // tells the writer that pending has bytes
	onDrain  atomic.Pointer[func()]
}

func newMemConn(script string) *memConn {
	return &memConn{script: []byte(script), closed: make(chan struct{})}
}

// newBoundedMemConn is a memConn with an outbound queue of capacity bytes, as the transports have:
// Enqueue refuses with transport.ErrSlowConsumer a frame that does not fit (a frame always fits an empty
// queue), and a writer goroutine empties the queue into what capture keeps, then calls the drain
// callback, whenever it gets to run. Close flushes what is queued; Abort drops it. The writer ends with
// the connection.
func newBoundedMemConn(script string, capacity int) *memConn {
	c := newMemConn(script)
	c.capacity, c.wake = capacity, make(chan struct{}, 1)
	go c.writeLoop()
	return c
}

func (c *memConn) writeLoop() {
	for {
		select {
		case <-c.wake:
		case <-c.closed:
			return
		}
		c.mu.Lock()
		if c.shut {
			c.mu.Unlock()
			return
		}
		if c.capture {
			c.captured = append(c.captured, c.pending...)
		}
		c.pending = c.pending[:0]
		c.mu.Unlock()
		if f := c.onDrain.Load(); f != nil {
			(*f)()
		}
	}
}

func (c *memConn) Read(p []byte) (int, error) {
	if len(c.script) > 0 {
		if c.chunk > 0 && len(p) > c.chunk {
			p = p[:c.chunk]
		}
		n := copy(p, c.script)
		c.script = c.script[n:]
		return n, nil
	}
	if c.eof {
		return 0, io.EOF
	}
	<-c.closed
	return 0, io.EOF
}

func (c *memConn) Enqueue(head, tail []byte, binary bool) error {
	select {
	case <-c.closed:
		return transport.ErrClosed
	default:
	}
	if c.capacity > 0 {
		return c.enqueueBounded(head, tail)
	}
	c.frames.Add(1)
	c.bytes.Add(int64(len(head) + len(tail)))
	if c.trackTails && len(tail) > 0 {
		c.tails.Store(unsafe.SliceData(tail), true)
	}
	if c.capture {
		c.mu.Lock()
		c.captured = append(append(c.captured, head...), tail...)
		c.mu.Unlock()
	}
	return nil
}

// output returns a copy of what was captured.
func (c *memConn) output() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.captured...)
}

func (c *memConn) enqueueBounded(head, tail []byte) error {
	n := len(head) + len(tail)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.shut:
		return transport.ErrClosed
	case len(c.pending) > 0 && len(c.pending)+n > c.capacity:
		return transport.ErrSlowConsumer
	}
	c.pending = append(append(c.pending, head...), tail...)
	c.frames.Add(1)
	c.bytes.Add(int64(n))
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return nil
}

func (c *memConn) SetOnDrain(f func()) { c.onDrain.Store(&f) }

func (c *memConn) Queued() int {
	if c.capacity == 0 {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

func (c *memConn) LastWrite() time.Time { return time.Now() }
func (c *memConn) Written() uint64      { return uint64(c.bytes.Load()) }

// Close flushes what is queued, as a graceful close does, and ends the connection.
func (c *memConn) Close(context.Context, transport.CloseCode, string) error {
	c.mu.Lock()
	if !c.shut && c.capture {
		c.captured = append(c.captured, c.pending...)
		c.pending = nil
	}
	c.mu.Unlock()
	c.Abort()
	return nil
}

// Abort ends the connection; what is still queued is never written.
func (c *memConn) Abort() {
	c.mu.Lock()
	c.shut = true
	c.mu.Unlock()
	c.once.Do(func() { close(c.closed) })
}
func (c *memConn) Transport() string   { return "mem" }
func (c *memConn) Subprotocol() string { return "" }
func (c *memConn) RemoteAddr() string  { return "memory" }
